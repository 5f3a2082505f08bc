-- The media pipeline: how often a video's transcode was started (retries stop at a limit), and
-- an index for the start-up sweep of unfinished videos.
ALTER TABLE videos ADD COLUMN transcode_attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX videos_unfinished_idx ON videos (id) WHERE status IN ('pending', 'processing');
