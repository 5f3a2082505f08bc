-- The renditions a video really has, as a JSON array written by the transcode: name, width,
-- height, measured bitrate and the paths of the MP4 and its HLS playlist (relative to MEDIA_DIR).
-- The legacy hd360…hd1080 columns stay: each names that rung's MP4, or '' when the source was
-- too small for it.
ALTER TABLE videos ADD COLUMN renditions TEXT NOT NULL DEFAULT '[]';
