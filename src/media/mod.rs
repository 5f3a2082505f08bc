//! Media processing in process with FFmpeg's libraries (ffmpeg-next): probing an upload, planning
//! the rendition ladder, and the single-decode transcode into progressive MP4s, HLS, a poster and
//! preview-thumbnail sprites with their WebVTT index.

mod hls;
mod ladder;
mod probe;
mod transcode;
mod vtt;

use std::sync::Once;

pub use ladder::{LadderStep, Rendition, default_ladder, plan};
pub use probe::{DEFAULT_MAX_PIXELS, Probe, probe};
pub use transcode::{Outputs, Progress, RenditionFiles, TranscodeOptions, transcode};
pub use vtt::{SpriteLayout, thumbnail_interval, vtt};

/// Why media processing failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file is not a video FFmpeg can decode (the client's fault).
    #[error("not a decodable video: {0}")]
    NotAVideo(String),
    /// The job was told to stop (its video was deleted).
    #[error("cancelled")]
    Cancelled,
    /// The source made the job exceed its bounds (output size or time): retrying would do the
    /// same, so the video fails for good.
    #[error("{0}")]
    Exceeded(String),
    /// FFmpeg failed while processing a valid input.
    #[error("ffmpeg: {0}")]
    Ffmpeg(#[from] ffmpeg_next::Error),
    /// Reading or writing files failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Container formats an upload may be (FFmpeg demuxer names). Anything else — in particular
/// playlists (HLS, DASH, concat) that would make FFmpeg fetch URLs or read other local files —
/// is refused.
const FORMATS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,ogg,\
                       asf,m4v,h264,hevc,mxf,nut,dv,wtv";

/// Opens a local media file for reading, with only the file protocol and container formats
/// allowed.
pub(crate) fn open(
    path: &std::path::Path,
) -> Result<ffmpeg_next::format::context::Input, ffmpeg_next::Error> {
    let mut options = ffmpeg_next::Dictionary::new();
    options.set("protocol_whitelist", "file");
    options.set("format_whitelist", FORMATS);
    ffmpeg_next::format::input_with_dictionary(path, options)
}

/// Initialises FFmpeg once per process (quiet logging).
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(e) = ffmpeg_next::init() {
            tracing::error!(error = %e, "FFmpeg initialisation failed");
        }
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
    });
}
