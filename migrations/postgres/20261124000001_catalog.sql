-- The video catalog, per-user favorites and watch progress.
CREATE TABLE videos (
    id            BIGSERIAL PRIMARY KEY,
    title         TEXT             NOT NULL,
    description   TEXT             NOT NULL DEFAULT '',
    author        TEXT             NOT NULL DEFAULT '',
    -- documentary | action | horror | drama | technic, NULL = none
    genre         TEXT,
    -- french | english | german, NULL = none
    language      TEXT,
    uploaded_by   BIGINT           REFERENCES users (id) ON DELETE SET NULL,
    uploaded_at   TIMESTAMPTZ      NOT NULL,
    updated_at    TIMESTAMPTZ      NOT NULL,
    duration      DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- pending | processing | ready | failed
    status        TEXT             NOT NULL DEFAULT 'pending',
    status_reason TEXT             NOT NULL DEFAULT '',
    -- Media paths relative to MEDIA_DIR; '' until the pipeline writes them.
    video_file    TEXT             NOT NULL DEFAULT '',
    poster        TEXT             NOT NULL DEFAULT '',
    vtt_file      TEXT             NOT NULL DEFAULT '',
    hd360         TEXT             NOT NULL DEFAULT '',
    hd480         TEXT             NOT NULL DEFAULT '',
    hd720         TEXT             NOT NULL DEFAULT '',
    hd1080        TEXT             NOT NULL DEFAULT '',
    hls           TEXT             NOT NULL DEFAULT '',
    -- lower(title || ' ' || description), maintained by the application, for search.
    search_text   TEXT             NOT NULL DEFAULT ''
);
CREATE INDEX videos_uploaded_idx ON videos (uploaded_at DESC, id DESC);
CREATE INDEX videos_updated_idx ON videos (updated_at DESC, id DESC);
CREATE INDEX videos_genre_idx ON videos (genre, uploaded_at DESC, id DESC);
CREATE INDEX videos_language_idx ON videos (language, uploaded_at DESC, id DESC);
CREATE INDEX videos_uploader_idx ON videos (uploaded_by, uploaded_at DESC, id DESC);

CREATE TABLE favorites (
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    video_id   BIGINT      NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, video_id)
);
CREATE INDEX favorites_video_idx ON favorites (video_id);

CREATE TABLE watch_progress (
    user_id    BIGINT           NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    video_id   BIGINT           NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    position   DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (user_id, video_id)
);
CREATE INDEX watch_progress_recent_idx ON watch_progress (user_id, updated_at DESC);
CREATE INDEX watch_progress_video_idx ON watch_progress (video_id);
