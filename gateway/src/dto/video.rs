//! Video bodies: the legacy video object with its renditions, writes, pages, progress and
//! status events.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pb;

use super::{GenreName, LanguageName, UserDto, genre_name, language_name, rfc3339, status_name};

/// A video as the REST API shows it (the original's field names).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub(crate) struct VideoDto {
    /// Numeric id.
    pub id: i64,
    /// Title (≤ 150 characters).
    pub title: String,
    /// Description (≤ 1000 characters).
    pub description: String,
    /// Author (≤ 150 characters).
    pub author: String,
    /// `documentary`, `action`, `horror`, `drama`, `technic` or null.
    #[schema(example = "drama")]
    pub genre: Option<String>,
    /// `french`, `english`, `german` or null.
    #[schema(example = "english")]
    pub language: Option<String>,
    /// Upload time, RFC 3339.
    pub uploaded_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
    /// The uploader, null once their account is gone.
    pub uploaded_by: Option<UserDto>,
    /// Whether the caller marked this video as a favorite.
    pub is_favorite: bool,
    /// Duration in whole seconds, rounded (0 until processed), as the original's integer field.
    pub duration: i64,
    /// The exact duration in seconds (0 until processed).
    pub duration_seconds: f64,
    /// Original file URL or "".
    pub video_file: String,
    /// Poster image URL or "".
    pub poster: String,
    /// Preview-thumbnails WebVTT URL or "".
    pub vtt_file: String,
    /// MP4 URL for a 360p player, "" until ready. Legacy clients expect all four `video_file_hd*`
    /// fields to play: each names the best real rendition at or below its height (the smallest
    /// one when none is below). `renditions` lists what really exists.
    pub video_file_hd360: String,
    /// MP4 URL for a 480p player (see `video_file_hd360`).
    pub video_file_hd480: String,
    /// MP4 URL for a 720p player (see `video_file_hd360`).
    pub video_file_hd720: String,
    /// MP4 URL for a 1080p player (see `video_file_hd360`); a source below 1080p is never
    /// upscaled, so this may name a smaller file.
    pub video_file_hd1080: String,
    /// The renditions that really exist, smallest first.
    pub renditions: Vec<RenditionDto>,
    /// HLS master playlist URL or "".
    pub hls: String,
    /// `pending`, `processing`, `ready` or `failed`.
    pub status: String,
    /// Why processing failed, else "".
    pub status_reason: String,
    /// The caller's playback position in seconds.
    pub progress: f64,
}

/// One real rendition of a video.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub(crate) struct RenditionDto {
    /// `360p`, `480p`, `720p`, `1080p`, or a small source's own size (e.g. `240p`).
    #[schema(example = "720p")]
    pub name: String,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Average bits per second (video and audio), measured.
    pub bitrate: i64,
    /// Progressive MP4 URL.
    pub url: String,
    /// HLS media playlist URL.
    pub hls: String,
}

impl From<&pb::MediaRendition> for RenditionDto {
    fn from(r: &pb::MediaRendition) -> Self {
        Self {
            name: r.name.clone(),
            width: r.width,
            height: r.height,
            bitrate: r.bitrate,
            url: r.url.clone(),
            hls: r.hls_url.clone(),
        }
    }
}

/// The URL a legacy `video_file_hd{height}` field shows: the largest real rendition whose short
/// side is at most `height`, else the smallest one; `exact` when there is no rendition list.
fn legacy_rendition(renditions: &[pb::MediaRendition], height: i32, exact: String) -> String {
    let rung = |r: &&pb::MediaRendition| r.width.min(r.height);
    renditions
        .iter()
        .filter(|r| rung(r) <= height)
        .max_by_key(rung)
        .or_else(|| renditions.iter().min_by_key(rung))
        .map_or(exact, |r| r.url.clone())
}

/// Whole seconds of a duration, as the original's integer field (a clip shorter than half a
/// second still lasts 1).
fn whole_seconds(seconds: f64) -> i64 {
    if !seconds.is_finite() || seconds <= 0.0 {
        return 0;
    }
    // A stored duration is at most a week: the rounded value fits.
    #[allow(clippy::cast_possible_truncation)]
    let whole = seconds.round() as i64;
    whole.max(1)
}

/// Writable video fields of `POST` and `PUT`: every field (a missing one is empty; `null`
/// clears genre or language).
/// Documentation only: handlers read the body as a JSON map, to tell an absent field (keep) from
/// `null` (clear).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct VideoWriteBody {
    /// Title, 1–150 characters (surrounding white space is trimmed), no control characters but tab and line breaks.
    #[schema(
        example = "Big Buck Bunny",
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub title: String,
    /// Description, up to 1000 characters (surrounding white space is trimmed).
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
    /// Author, up to 150 characters (surrounding white space is trimmed).
    #[schema(
        max_length = 150,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub author: Option<String>,
    /// Genre; `""` or `null`: none.
    #[schema(value_type = Option<GenreName>)]
    pub genre: Option<String>,
    /// Language; `""` or `null`: none.
    #[schema(value_type = Option<LanguageName>)]
    pub language: Option<String>,
}

/// Writable video fields of `PATCH`: only those present change (`null` clears description,
/// author, genre or language).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct VideoPatchBody {
    /// Title, 1–150 characters (surrounding white space is trimmed), no control characters but tab and line breaks.
    #[schema(
        example = "Big Buck Bunny",
        min_length = 1,
        max_length = 150,
        nullable = false,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub title: Option<String>,
    /// Description, up to 1000 characters (surrounding white space is trimmed).
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
    /// Author, up to 150 characters (surrounding white space is trimmed).
    #[schema(
        max_length = 150,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub author: Option<String>,
    /// Genre; `""` or `null`: none.
    #[schema(value_type = Option<GenreName>)]
    pub genre: Option<String>,
    /// Language; `""` or `null`: none.
    #[schema(value_type = Option<LanguageName>)]
    pub language: Option<String>,
}

/// A DRF-style page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VideoPageDto {
    /// Matching videos in total.
    pub count: i64,
    /// URL of the next page, or null.
    pub next: Option<String>,
    /// URL of the previous page, or null.
    pub previous: Option<String>,
    /// This page.
    pub results: Vec<VideoDto>,
}

/// `PUT /api/videos/{id}/progress/`
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ProgressBody {
    /// Playback position in seconds, 0 to 604800 (`position_seconds` is accepted too).
    #[serde(default, alias = "position_seconds")]
    #[schema(required = true, nullable = false, minimum = 0, maximum = 604800)]
    pub position: Option<f64>,
}

/// Answer of `PUT /api/videos/{id}/progress/`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProgressDto {
    /// The video.
    pub video_id: i64,
    /// Stored position in seconds.
    pub position: f64,
    /// When it was stored, RFC 3339.
    pub updated_at: String,
}

/// Videos per genre.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CategorizedDto {
    /// Drama.
    pub drama: Vec<VideoDto>,
    /// Documentary.
    pub documentary: Vec<VideoDto>,
    /// Technic.
    pub technic: Vec<VideoDto>,
    /// Horror.
    pub horror: Vec<VideoDto>,
    /// Action.
    pub action: Vec<VideoDto>,
}

impl From<pb::Video> for VideoDto {
    fn from(v: pb::Video) -> Self {
        let media = v.media.unwrap_or_default();
        let status = status_name(v.status);
        Self {
            id: v.id,
            title: v.title,
            description: v.description,
            author: v.author,
            genre: genre_name(v.genre),
            language: language_name(v.language),
            uploaded_at: rfc3339(v.uploaded_at),
            updated_at: rfc3339(v.updated_at),
            uploaded_by: v.uploaded_by.map(UserDto::from),
            is_favorite: v.is_favorite,
            duration: whole_seconds(v.duration_seconds),
            duration_seconds: v.duration_seconds,
            video_file_hd360: legacy_rendition(&media.renditions, 360, media.hd360_url),
            video_file_hd480: legacy_rendition(&media.renditions, 480, media.hd480_url),
            video_file_hd720: legacy_rendition(&media.renditions, 720, media.hd720_url),
            video_file_hd1080: legacy_rendition(&media.renditions, 1080, media.hd1080_url),
            renditions: media.renditions.iter().map(RenditionDto::from).collect(),
            video_file: media.original_url,
            poster: media.poster_url,
            vtt_file: media.thumbnails_vtt_url,
            hls: media.hls_url,
            status,
            status_reason: v.status_reason,
            progress: v.progress_seconds,
        }
    }
}

/// `POST /api/videos/` as a multipart form with the file (metadata fields first).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the form; the handler streams the parts.
pub(crate) struct UploadForm {
    /// Title (required, at most 150 characters).
    pub title: String,
    /// Description (at most 1000 characters).
    pub description: Option<String>,
    /// Author (at most 150 characters).
    pub author: Option<String>,
    /// `documentary`, `action`, `horror`, `drama`, `technic` or empty.
    pub genre: Option<String>,
    /// `french`, `english`, `german` or empty.
    pub language: Option<String>,
    /// The video, any format FFmpeg decodes; send it after the other fields.
    #[schema(value_type = String, format = Binary)]
    pub video_file: Vec<u8>,
}

/// One transcode status event (`GET /api/videos/{id}/status/`, Server-Sent Events named
/// `status`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusDto {
    /// The video.
    pub video_id: i64,
    /// `pending`, `processing`, `ready` or `failed`.
    pub status: String,
    /// 0–100.
    pub percent: f64,
    /// What the worker is doing.
    pub step: String,
    /// Why it failed (or is retried).
    pub reason: String,
}

impl From<pb::WatchTranscodeStatusResponse> for StatusDto {
    fn from(e: pb::WatchTranscodeStatusResponse) -> Self {
        Self {
            video_id: e.video_id,
            status: status_name(e.status),
            percent: e.percent,
            step: e.step,
            reason: e.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(name: &str, width: i32, height: i32) -> pb::MediaRendition {
        pb::MediaRendition {
            name: name.to_owned(),
            width,
            height,
            url: format!("{name}.mp4"),
            ..Default::default()
        }
    }

    #[test]
    fn legacy_fields_name_the_best_real_rendition_at_or_below_their_height() {
        let list = [
            rendition("360p", 640, 360),
            rendition("480p", 854, 480),
            rendition("720p", 1280, 720),
        ];
        let url = |h| legacy_rendition(&list, h, String::new());
        assert_eq!(url(360), "360p.mp4");
        assert_eq!(url(480), "480p.mp4");
        assert_eq!(url(720), "720p.mp4");
        assert_eq!(url(1080), "720p.mp4");
        let small = [rendition("240p", 320, 240)];
        assert_eq!(legacy_rendition(&small, 1080, String::new()), "240p.mp4");
        let portrait = [rendition("360p", 360, 640)];
        assert_eq!(legacy_rendition(&portrait, 480, String::new()), "360p.mp4");
        let only_big = [rendition("720p", 1280, 720)];
        assert_eq!(
            legacy_rendition(&only_big, 360, String::new()),
            "720p.mp4",
            "the smallest when none is below"
        );
        assert_eq!(legacy_rendition(&[], 360, "exact".to_owned()), "exact");
    }

    #[test]
    fn durations_are_whole_seconds() {
        assert_eq!(whole_seconds(6.52), 7);
        assert_eq!(whole_seconds(6.4), 6);
        assert_eq!(whole_seconds(0.2), 1);
        assert_eq!(whole_seconds(0.0), 0);
        assert_eq!(whole_seconds(f64::NAN), 0);
    }
}
