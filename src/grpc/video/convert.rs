//! The VideoService contract ↔ the domain: requests parsed once into typed commands, records
//! rendered as messages. Every rule about what a request may say lives in the domain or the
//! use case; this file only translates.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::pb;
use crate::{
    domain::{
        FieldError, Genre, Language, Ordering, PageToken, RawVideoMeta, Rung, SearchQuery,
        Timestamp, UserId, VideoId, VideoMeta, VideoStatus,
    },
    error::{AppError, AppResult},
    security::MediaSigner,
    service::{
        DEFAULT_PAGE_SIZE, ListRequest, MAX_PAGE_SIZE, Paging, Playback, StatusEvent, VideoPatch,
        VideoView, Wanted,
    },
    store::VideoFilter,
};

/// A video named by a request: ids are positive, so any other number names no video.
pub(super) fn video_id(raw: i64) -> AppResult<VideoId> {
    VideoId::parse(raw, "id").map_err(|_| AppError::NotFound("video"))
}

/// A video's version in its etags: `v<updated_at in microseconds>` (every write moves it).
pub(super) fn version_tag(view: &VideoView) -> String {
    format!("v{}", view.record.updated_at.micros())
}

/// The version an UpdateVideo etag names (empty: none). An etag that is no version of any
/// video names one no video has: it never matches (the update is refused as for a changed
/// video, once the request is otherwise valid).
pub(super) fn version_of(etag: &str) -> Option<Option<Timestamp>> {
    let etag = etag.trim();
    if etag.is_empty() {
        return None;
    }
    Some(
        etag.strip_prefix('v')
            .map(|rest| rest.split_once('.').map_or(rest, |(version, _)| version))
            .and_then(|micros| micros.parse::<i64>().ok())
            .map(Timestamp::from_micros),
    )
}

pub(super) fn genre_pb(genre: Option<Genre>) -> pb::Genre {
    match genre {
        None => pb::Genre::Unspecified,
        Some(Genre::Documentary) => pb::Genre::Documentary,
        Some(Genre::Action) => pb::Genre::Action,
        Some(Genre::Horror) => pb::Genre::Horror,
        Some(Genre::Drama) => pb::Genre::Drama,
        Some(Genre::Technic) => pb::Genre::Technic,
    }
}

fn language_pb(language: Option<Language>) -> pb::Language {
    match language {
        None => pb::Language::Unspecified,
        Some(Language::French) => pb::Language::French,
        Some(Language::English) => pb::Language::English,
        Some(Language::German) => pb::Language::German,
    }
}

fn choices<T: std::fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn genre_from_pb(value: i32) -> Result<Option<Genre>, FieldError> {
    match pb::Genre::try_from(value) {
        Ok(pb::Genre::Unspecified) => Ok(None),
        Ok(pb::Genre::Documentary) => Ok(Some(Genre::Documentary)),
        Ok(pb::Genre::Action) => Ok(Some(Genre::Action)),
        Ok(pb::Genre::Horror) => Ok(Some(Genre::Horror)),
        Ok(pb::Genre::Drama) => Ok(Some(Genre::Drama)),
        Ok(pb::Genre::Technic) => Ok(Some(Genre::Technic)),
        Err(_) => Err(FieldError::new(
            "genre",
            format!(
                "Not a valid choice. Choose one of: {}.",
                choices(Genre::ALL)
            ),
        )),
    }
}

fn language_from_pb(value: i32) -> Result<Option<Language>, FieldError> {
    match pb::Language::try_from(value) {
        Ok(pb::Language::Unspecified) => Ok(None),
        Ok(pb::Language::French) => Ok(Some(Language::French)),
        Ok(pb::Language::English) => Ok(Some(Language::English)),
        Ok(pb::Language::German) => Ok(Some(Language::German)),
        Err(_) => Err(FieldError::new(
            "language",
            format!(
                "Not a valid choice. Choose one of: {}.",
                choices(Language::ALL)
            ),
        )),
    }
}

fn status_pb(status: VideoStatus) -> pb::VideoStatus {
    match status {
        VideoStatus::Pending => pb::VideoStatus::Pending,
        VideoStatus::Processing => pb::VideoStatus::Processing,
        VideoStatus::Ready => pb::VideoStatus::Ready,
        VideoStatus::Failed => pb::VideoStatus::Failed,
    }
}

fn rung_pb(rung: Rung) -> pb::Rendition {
    match rung {
        Rung::P360 => pb::Rendition::Rendition360p,
        Rung::P480 => pb::Rendition::Rendition480p,
        Rung::P720 => pb::Rendition::Rendition720p,
        Rung::P1080 => pb::Rendition::Rendition1080p,
    }
}

/// The file a StreamVideo request asks for.
pub(super) fn wanted_from_pb(value: i32) -> AppResult<Wanted> {
    match pb::Rendition::try_from(value) {
        Ok(pb::Rendition::Unspecified) => Ok(Wanted::Best),
        Ok(pb::Rendition::Original) => Ok(Wanted::Original),
        Ok(pb::Rendition::Rendition360p) => Ok(Wanted::Rung(Rung::P360)),
        Ok(pb::Rendition::Rendition480p) => Ok(Wanted::Rung(Rung::P480)),
        Ok(pb::Rendition::Rendition720p) => Ok(Wanted::Rung(Rung::P720)),
        Ok(pb::Rendition::Rendition1080p) => Ok(Wanted::Rung(Rung::P1080)),
        Err(_) => Err(AppError::field(
            "rendition",
            "Unknown rendition; use 360p, 480p, 720p, 1080p or original (or none: the best).",
        )),
    }
}

/// What a served file is called in the contract.
pub(super) fn served_pb(rung: Option<Rung>) -> pb::Rendition {
    rung.map_or(pb::Rendition::Original, rung_pb)
}

pub(super) fn timestamp_pb(ts: Timestamp) -> prost_types::Timestamp {
    let micros = ts.micros();
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

/// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z (the range of google.protobuf
/// .Timestamp, which both databases store).
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

fn time_from_pb(
    ts: Option<&prost_types::Timestamp>,
    field: &'static str,
) -> Result<Option<Timestamp>, FieldError> {
    let Some(t) = ts else { return Ok(None) };
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(FieldError::new(
            field,
            "The time must lie between the years 1 and 9999.",
        ));
    }
    Ok(Some(Timestamp::from_micros(
        t.seconds * 1_000_000 + i64::from(t.nanos) / 1000,
    )))
}

/// Page size: 0 → the default, above the maximum → the maximum, negative → an error (on every
/// transport: REST passes its `page_size` through).
pub(super) fn page_size(raw: i32) -> Result<i64, FieldError> {
    match i64::from(raw) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(FieldError::new(
            "page_size",
            "The page size must not be negative.",
        )),
        n => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// Offset paging for the small per-user lists, as an opaque token.
pub(super) fn offset_token(offset: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o|{offset}"))
}

pub(super) fn offset_from_token(raw: &str) -> Result<i64, FieldError> {
    if raw.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.strip_prefix("o|").and_then(|n| n.parse::<i64>().ok()))
        .filter(|n| *n >= 0)
        .ok_or_else(|| FieldError::new("page_token", "Invalid page token."))
}

pub(super) fn meta_from_pb(meta: Option<pb::VideoMetadata>) -> AppResult<VideoMeta> {
    let meta = meta.unwrap_or_default();
    let genre = genre_from_pb(meta.genre)?;
    let language = language_from_pb(meta.language)?;
    VideoMeta::parse(&RawVideoMeta {
        title: &meta.title,
        description: &meta.description,
        author: &meta.author,
        genre: genre.map_or("", Genre::as_str),
        language: language.map_or("", Language::as_str),
    })
    .map_err(AppError::Validation)
}

/// A ListVideos request (its validator already taken out) as a list command.
pub(super) fn list_request(r: &pb::ListVideosRequest) -> AppResult<ListRequest> {
    let search = SearchQuery::parse(&r.search)?;
    let ordering = Ordering::for_request(&r.ordering, search.is_some())?;
    let paging = match (r.page_token.is_empty(), r.page) {
        (true, 0) => Paging::Cursor(None),
        (false, 0) => Paging::Cursor(Some(PageToken::parse(&r.page_token, ordering)?)),
        (true, n) if n > 0 => Paging::Number(i64::from(n)),
        (true, _) => return Err(AppError::field("page", "Invalid page.")),
        (false, _) => {
            return Err(AppError::field(
                "page",
                "Give page_token or page, not both.",
            ));
        }
    };
    let uploaded_by = match r.uploaded_by {
        0 => None,
        id => Some(UserId::parse(id, "uploaded_by")?),
    };
    Ok(ListRequest {
        filter: VideoFilter {
            genre: genre_from_pb(r.genre)?,
            language: language_from_pb(r.language)?,
            uploaded_by,
            favorites_of: None,
            uploaded_after: time_from_pb(r.uploaded_after.as_ref(), "uploaded_after")?,
            updated_after: time_from_pb(r.updated_after.as_ref(), "updated_after")?,
            search,
        },
        only_favorites: r.is_favorite,
        ordering,
        page_size: page_size(r.page_size)?,
        paging,
    })
}

/// The fields an UpdateVideo request changes: no mask replaces every field, a mask with no
/// paths changes nothing.
pub(super) fn patch_from_pb(
    meta: Option<pb::VideoMetadata>,
    mask: Option<prost_types::FieldMask>,
) -> AppResult<VideoPatch> {
    let meta = meta.unwrap_or_default();
    let genre = genre_from_pb(meta.genre)?;
    let language = language_from_pb(meta.language)?;
    let paths = mask.map_or_else(
        || {
            ["title", "description", "author", "genre", "language"]
                .map(str::to_owned)
                .to_vec()
        },
        |m| m.paths,
    );
    let mut patch = VideoPatch::default();
    for path in &paths {
        match path.strip_prefix("metadata.").unwrap_or(path) {
            "title" => patch.title = Some(meta.title.clone()),
            "description" => patch.description = Some(meta.description.clone()),
            "author" => patch.author = Some(meta.author.clone()),
            "genre" => patch.genre = Some(genre),
            "language" => patch.language = Some(language),
            other => {
                return Err(AppError::field(
                    "update_mask",
                    format!(
                        "Unknown field {other:?}; updatable: title, description, author, \
                         genre, language."
                    ),
                ));
            }
        }
    }
    Ok(patch)
}

pub(super) fn event_pb(event: &StatusEvent) -> pb::WatchTranscodeStatusResponse {
    pb::WatchTranscodeStatusResponse {
        video_id: event.video_id.get(),
        status: status_pb(event.status) as i32,
        percent: event.percent,
        step: event.step.clone(),
        reason: event.reason.clone(),
    }
}

/// A video as `view`'s caller sees it, its media URLs signed by `playback`.
pub(super) fn video_pb(playback: &Playback, view: &VideoView) -> pb::Video {
    let urls = playback.media_urls(MediaSigner::current_expiry());
    let url = |path: &str| urls.url(path);
    let r = &view.record;
    let m = &r.media;
    pb::Video {
        id: r.id.get(),
        genre: genre_pb(r.genre) as i32,
        language: language_pb(r.language) as i32,
        // Personal data of the uploader only for superusers; others see who, not how to
        // reach them.
        uploaded_by: r.uploaded_by.map(|id| {
            let contact = |field: &Option<String>| {
                view.uploader_contact
                    .then(|| field.clone())
                    .flatten()
                    .unwrap_or_default()
            };
            pb::User {
                id: id.get(),
                email: contact(&r.uploader_email),
                phone: contact(&r.uploader_phone),
                address: contact(&r.uploader_address),
                is_guest: false,
                is_superuser: false,
            }
        }),
        uploaded_at: Some(timestamp_pb(r.uploaded_at)),
        updated_at: Some(timestamp_pb(r.updated_at)),
        duration_seconds: r.duration,
        status: status_pb(r.status) as i32,
        status_reason: r.status_reason.clone(),
        is_favorite: view.is_favorite,
        progress_seconds: view.progress,
        media: Some(pb::VideoMedia {
            original_url: url(&m.video_file),
            poster_url: url(&m.poster),
            thumbnails_vtt_url: url(&m.vtt_file),
            hd360_url: url(m.rungs.get(Rung::P360)),
            hd480_url: url(m.rungs.get(Rung::P480)),
            hd720_url: url(m.rungs.get(Rung::P720)),
            hd1080_url: url(m.rungs.get(Rung::P1080)),
            hls_url: url(&m.hls),
            renditions: m
                .renditions
                .0
                .iter()
                .map(|rendition| pb::MediaRendition {
                    name: rendition.name.clone(),
                    rendition: rendition
                        .name
                        .parse::<Rung>()
                        .map_or(pb::Rendition::Unspecified, rung_pb)
                        as i32,
                    width: i32::try_from(rendition.width).unwrap_or(i32::MAX),
                    height: i32::try_from(rendition.height).unwrap_or(i32::MAX),
                    bitrate: i64::try_from(rendition.bitrate).unwrap_or(i64::MAX),
                    url: url(&rendition.mp4),
                    hls_url: url(&rendition.playlist),
                })
                .collect(),
        }),
        title: r.title.clone(),
        description: r.description.clone(),
        author: r.author.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert_exactly() {
        let ts = Timestamp::from_micros(1_700_000_000_123_456);
        let pb = timestamp_pb(ts);
        assert_eq!((pb.seconds, pb.nanos), (1_700_000_000, 123_456_000));
        assert_eq!(time_from_pb(Some(&pb), "t"), Ok(Some(ts)));
        let ancient = prost_types::Timestamp {
            seconds: -300_000_000_000,
            nanos: 0,
        };
        assert!(time_from_pb(Some(&ancient), "t").is_err());
        let far = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(time_from_pb(Some(&far), "t").is_err());
    }

    #[test]
    fn page_sizes_default_cap_and_reject_negatives() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(1000), Ok(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn offset_tokens_round_trip() {
        assert_eq!(offset_from_token(&offset_token(40)), Ok(40));
        assert_eq!(offset_from_token(""), Ok(0));
        assert!(offset_from_token("nope").is_err());
    }

    #[test]
    fn ids_that_no_video_has_are_not_found() {
        assert!(matches!(video_id(0), Err(AppError::NotFound("video"))));
        assert!(matches!(video_id(-5), Err(AppError::NotFound("video"))));
        assert_eq!(video_id(5).ok().map(VideoId::get), Some(5));
    }
}
