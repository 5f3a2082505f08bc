//! The per-record checks of an import: the API's domain rules, plus references and paths.

use std::path::{Component, Path};

use super::{
    format::{FavoriteEntry, ProgressEntry, UserEntry, VideoEntry, parse_time},
    import::RecordError,
};
use crate::{
    domain::{
        Address, Email, FieldError, Media, Phone, RawVideoMeta, Renditions, Rung, RungFiles,
        StoredRendition, Timestamp, UserId, VideoId, VideoMeta, VideoStatus,
    },
    store::{ExportedFavorite, ExportedProgress, ImportedVideo, UserRecord, VideoRecord},
};

/// The longest video accepted (a week), in seconds.
const MAX_DURATION: f64 = 7.0 * 24.0 * 3600.0;

/// Collects the errors of one record.
pub(super) struct Reporter<'a> {
    errors: &'a mut Vec<RecordError>,
    section: &'static str,
    index: usize,
    id: Option<i64>,
    before: usize,
}

impl<'a> Reporter<'a> {
    pub(super) fn new(
        errors: &'a mut Vec<RecordError>,
        section: &'static str,
        index: usize,
        id: Option<i64>,
    ) -> Self {
        let before = errors.len();
        Self {
            errors,
            section,
            index,
            id,
            before,
        }
    }

    pub(super) fn field(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(RecordError {
            section: self.section,
            index: self.index,
            id: self.id,
            field: field.to_owned(),
            reason: reason.into(),
        });
    }

    /// A favorite's or progress row's account and video must exist here or in the file.
    fn pair(
        &mut self,
        user: i64,
        video: i64,
        user_exists: &impl Fn(UserId) -> bool,
        video_exists: &impl Fn(VideoId) -> bool,
    ) -> Option<(UserId, VideoId)> {
        let user = self.parsed("user_id", UserId::parse(user, "user_id"));
        let video = self.parsed("video_id", VideoId::parse(video, "video_id"));
        if let Some(user) = user
            && !user_exists(user)
        {
            self.field("user_id", format!("no user {user} here or in the file"));
        }
        if let Some(video) = video
            && !video_exists(video)
        {
            self.field("video_id", format!("no video {video} here or in the file"));
        }
        user.zip(video)
    }

    fn domain(&mut self, error: FieldError) {
        self.field(error.field, error.message);
    }

    pub(super) fn failed(&self) -> bool {
        self.errors.len() > self.before
    }

    fn time(&mut self, field: &str, raw: &str) -> Option<Timestamp> {
        let parsed = parse_time(raw);
        if parsed.is_none() {
            self.field(field, "not an RFC 3339 time (e.g. 2026-12-01T06:00:00Z)");
        }
        parsed
    }

    /// An id of the file: positive.
    fn parsed<T>(&mut self, field: &str, id: Result<T, FieldError>) -> Option<T> {
        id.map_err(|_| self.field(field, "must be a positive integer"))
            .ok()
    }

    /// A media path must stay inside `MEDIA_DIR`: relative, plain components only.
    fn media_path(&mut self, field: &str, path: &str) {
        if path.is_empty() {
            return;
        }
        let plain = Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !plain || path.contains(['\\', '\0']) || path.len() > 500 {
            self.field(field, "must be a path inside MEDIA_DIR (relative, no `..`)");
        }
    }
}

pub(super) fn check_user(entry: &UserEntry, report: &mut Reporter<'_>) -> Option<UserRecord> {
    let id = report.parsed("id", UserId::parse(entry.id, "id"));
    let email = Email::parse(&entry.email)
        .map_err(|e| report.domain(e))
        .ok();
    if !entry.password_hash.is_empty() && argon2::PasswordHash::new(&entry.password_hash).is_err() {
        report.field(
            "password_hash",
            "not a password hash in PHC form (or empty)",
        );
    }
    let phone = Phone::parse(&entry.phone)
        .map_err(|e| report.domain(e))
        .ok();
    let address = Address::parse(&entry.address)
        .map_err(|e| report.domain(e))
        .ok();
    let created_at = report.time("created_at", &entry.created_at);
    let last_login = match &entry.last_login {
        Some(raw) => report.time("last_login", raw).map(Some),
        None => Some(None),
    };
    if report.failed() {
        return None;
    }
    Some(UserRecord {
        id: id?,
        email: email?.as_str().to_owned(),
        password_hash: entry.password_hash.clone(),
        is_active: entry.is_active,
        is_superuser: entry.is_superuser,
        is_guest: entry.is_guest,
        phone: phone?.into_inner(),
        address: address?.into_inner(),
        created_at: created_at?,
        last_login: last_login?,
    })
}

/// A video entry by the API's rules, its paths inside `MEDIA_DIR`: `None` when a check failed
/// (each failure reported).
pub(super) fn check_video(entry: &VideoEntry, report: &mut Reporter<'_>) -> Option<ImportedVideo> {
    let id = report.parsed("id", VideoId::parse(entry.id, "id"));
    let meta = check_meta(entry, report);
    let uploaded_at = report.time("uploaded_at", &entry.uploaded_at);
    let updated_at = match &entry.updated_at {
        Some(raw) => report.time("updated_at", raw),
        None => uploaded_at,
    };
    let uploaded_by = entry
        .uploaded_by
        .map(|raw| report.parsed("uploaded_by", UserId::parse(raw, "uploaded_by")));
    if !(entry.duration.is_finite() && (0.0..=MAX_DURATION).contains(&entry.duration)) {
        report.field("duration", "must be between 0 and 604800 seconds");
    }
    let status = check_status(entry, report);
    if entry.status_reason.chars().count() > 1000 {
        report.field("status_reason", "longer than 1000 characters");
    }
    check_media(entry, report);
    if report.failed() {
        return None;
    }
    let checked = CheckedVideo {
        id: id?,
        meta: meta?,
        uploaded_by: match uploaded_by {
            Some(parsed) => Some(parsed?),
            None => None,
        },
        uploaded_at: uploaded_at?,
        updated_at: updated_at?,
        status: status?,
    };
    Some(imported_video(entry, checked))
}

/// The title, description, author, genre and language, by the API's own rules.
fn check_meta(entry: &VideoEntry, report: &mut Reporter<'_>) -> Option<VideoMeta> {
    let meta = VideoMeta::parse(&RawVideoMeta {
        title: &entry.title,
        description: &entry.description,
        author: &entry.author,
        genre: entry.genre.as_deref().unwrap_or(""),
        language: entry.language.as_deref().unwrap_or(""),
    });
    match meta {
        Ok(meta) => Some(meta),
        Err(errors) => {
            errors.into_iter().for_each(|e| report.domain(e));
            None
        }
    }
}

/// The status as written, else (files without one) ready when there is media, pending when not.
fn check_status(entry: &VideoEntry, report: &mut Reporter<'_>) -> Option<VideoStatus> {
    let has_media = [
        &entry.video_file_hd360,
        &entry.video_file_hd480,
        &entry.video_file_hd720,
        &entry.video_file_hd1080,
    ]
    .iter()
    .any(|p| !p.is_empty())
        || !entry.renditions.is_empty();
    match &entry.status {
        Some(raw) => match raw.parse::<VideoStatus>() {
            Ok(status) => Some(status),
            Err(()) => {
                report.field("status", "must be pending, processing, ready or failed");
                None
            }
        },
        None if has_media => Some(VideoStatus::Ready),
        None => Some(VideoStatus::Pending),
    }
}

/// Every media path of the video and its renditions, and the renditions' names and sizes.
fn check_media(entry: &VideoEntry, report: &mut Reporter<'_>) {
    for (field, path) in [
        ("video_file", &entry.video_file),
        ("poster", &entry.poster),
        ("vtt_file", &entry.vtt_file),
        ("video_file_hd360", &entry.video_file_hd360),
        ("video_file_hd480", &entry.video_file_hd480),
        ("video_file_hd720", &entry.video_file_hd720),
        ("video_file_hd1080", &entry.video_file_hd1080),
        ("hls", &entry.hls),
    ] {
        report.media_path(field, path);
    }
    for (i, r) in entry.renditions.iter().enumerate() {
        check_rendition(r, i, report);
    }
}

/// The fields of a video entry that its checks parsed, once every check passed.
struct CheckedVideo {
    id: VideoId,
    meta: VideoMeta,
    uploaded_by: Option<UserId>,
    uploaded_at: Timestamp,
    updated_at: Timestamp,
    status: VideoStatus,
}

/// The row to write: the checked fields, the rest of `entry` as it stands.
fn imported_video(entry: &VideoEntry, checked: CheckedVideo) -> ImportedVideo {
    let meta = checked.meta;
    let search_text = meta.search_text();
    let search_title = meta.search_title();
    let mut rungs = RungFiles::default();
    for (rung, path) in [
        (Rung::P360, &entry.video_file_hd360),
        (Rung::P480, &entry.video_file_hd480),
        (Rung::P720, &entry.video_file_hd720),
        (Rung::P1080, &entry.video_file_hd1080),
    ] {
        rungs.set(rung, path.clone());
    }
    ImportedVideo {
        record: VideoRecord {
            id: checked.id,
            title: meta.title,
            description: meta.description,
            author: meta.author,
            genre: meta.genre,
            language: meta.language,
            uploaded_by: checked.uploaded_by,
            uploader_email: None,
            uploader_phone: None,
            uploader_address: None,
            uploaded_at: checked.uploaded_at,
            updated_at: checked.updated_at,
            duration: entry.duration,
            status: checked.status,
            status_reason: entry.status_reason.clone(),
            media: Media {
                video_file: entry.video_file.clone(),
                poster: entry.poster.clone(),
                vtt_file: entry.vtt_file.clone(),
                hls: entry.hls.clone(),
                rungs,
                renditions: Renditions(entry.renditions.clone()),
            },
        },
        search_text,
        search_title,
    }
}

fn check_rendition(r: &StoredRendition, i: usize, report: &mut Reporter<'_>) {
    let name_ok = !r.name.is_empty()
        && r.name.len() <= 16
        && r.name.bytes().all(|b| b.is_ascii_alphanumeric());
    if !name_ok {
        report.field(&format!("renditions[{i}].name"), "must be like 720p");
    }
    if r.width == 0 || r.height == 0 || r.width > 16_384 || r.height > 16_384 {
        report.field(
            &format!("renditions[{i}]"),
            "width and height must be 1–16384",
        );
    }
    report.media_path(&format!("renditions[{i}].mp4"), &r.mp4);
    report.media_path(&format!("renditions[{i}].playlist"), &r.playlist);
}

pub(super) fn check_favorite(
    entry: &FavoriteEntry,
    report: &mut Reporter<'_>,
    user_exists: &impl Fn(UserId) -> bool,
    video_exists: &impl Fn(VideoId) -> bool,
) -> Option<ExportedFavorite> {
    let pair = report.pair(entry.user_id, entry.video_id, user_exists, video_exists);
    let created_at = report.time("created_at", &entry.created_at);
    if report.failed() {
        return None;
    }
    let (user_id, video_id) = pair?;
    Some(ExportedFavorite {
        user_id,
        video_id,
        created_at: created_at?,
    })
}

pub(super) fn check_progress(
    entry: &ProgressEntry,
    report: &mut Reporter<'_>,
    user_exists: &impl Fn(UserId) -> bool,
    video_exists: &impl Fn(VideoId) -> bool,
) -> Option<ExportedProgress> {
    let pair = report.pair(entry.user_id, entry.video_id, user_exists, video_exists);
    if !(entry.position.is_finite() && (0.0..=MAX_DURATION).contains(&entry.position)) {
        report.field("position", "must be between 0 and 604800 seconds");
    }
    let updated_at = report.time("updated_at", &entry.updated_at);
    if report.failed() {
        return None;
    }
    let (user_id, video_id) = pair?;
    Some(ExportedProgress {
        user_id,
        video_id,
        position: entry.position,
        updated_at: updated_at?,
    })
}
