-- The media pipeline: how often a video's transcode was started (retries stop at a limit), which
-- job holds it (claim_token) and when that job last showed it is alive (claimed_at), and an index
-- for the sweep of unfinished videos.
ALTER TABLE videos ADD COLUMN transcode_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN claim_token TEXT NOT NULL DEFAULT '';
ALTER TABLE videos ADD COLUMN claimed_at TIMESTAMPTZ;
CREATE INDEX videos_unfinished_idx ON videos (id) WHERE status IN ('pending', 'processing');
