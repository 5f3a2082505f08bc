//! The export file formats: the original's video array (plus our own columns), and the versioned
//! full document for disaster recovery. Timestamps are RFC 3339 UTC with microseconds, media
//! fields paths relative to `MEDIA_DIR`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Rung, StoredRendition, Timestamp, UserId},
    store::{ExportedFavorite, ExportedProgress, UserRecord, VideoRecord},
};

/// `format` of a full document.
pub const FULL_FORMAT: &str = "videoflix-full-export";
/// Its version this build writes and reads.
pub const FULL_VERSION: u32 = 1;

/// One video as exported (the original's columns, then ours).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct VideoEntry {
    pub id: i64,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub genre: Option<String>,
    pub uploaded_at: String,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub uploaded_by: Option<i64>,
    /// Always false: favorites are per user now (kept for the original's importer).
    #[serde(default)]
    pub is_favorite: bool,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub video_file: String,
    #[serde(default)]
    pub poster: String,
    #[serde(default)]
    pub vtt_file: String,
    #[serde(default)]
    pub video_file_hd360: String,
    #[serde(default)]
    pub video_file_hd480: String,
    #[serde(default)]
    pub video_file_hd720: String,
    #[serde(default)]
    pub video_file_hd1080: String,
    #[serde(default)]
    pub duration: f64,
    /// Absent in the original's files: then `ready` when a rendition exists, else `pending`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub status_reason: String,
    #[serde(default)]
    pub hls: String,
    #[serde(default)]
    pub renditions: Vec<StoredRendition>,
}

impl VideoEntry {
    /// The entry of a stored video.
    pub(crate) fn from_record(v: &VideoRecord) -> Self {
        let m = &v.media;
        Self {
            id: v.id.get(),
            title: v.title.clone(),
            description: v.description.clone(),
            author: v.author.clone(),
            genre: v.genre.map(|g| g.as_str().to_owned()),
            uploaded_at: rfc3339(v.uploaded_at),
            updated_at: Some(rfc3339(v.updated_at)),
            uploaded_by: v.uploaded_by.map(UserId::get),
            is_favorite: false,
            language: v.language.map(|l| l.as_str().to_owned()),
            video_file: m.video_file.clone(),
            poster: m.poster.clone(),
            vtt_file: m.vtt_file.clone(),
            video_file_hd360: m.rungs.get(Rung::P360).to_owned(),
            video_file_hd480: m.rungs.get(Rung::P480).to_owned(),
            video_file_hd720: m.rungs.get(Rung::P720).to_owned(),
            video_file_hd1080: m.rungs.get(Rung::P1080).to_owned(),
            duration: v.duration,
            status: Some(v.status.as_str().to_owned()),
            status_reason: v.status_reason.clone(),
            hls: m.hls.clone(),
            renditions: m.renditions.0.clone(),
        }
    }
}

/// One account in a full document (with its password hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserEntry {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_guest: bool,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub address: String,
    pub created_at: String,
    #[serde(default)]
    pub last_login: Option<String>,
}

impl UserEntry {
    /// The entry of a stored account.
    pub(crate) fn from_record(u: &UserRecord) -> Self {
        Self {
            id: u.id.get(),
            email: u.email.clone(),
            password_hash: u.password_hash.clone(),
            is_active: u.is_active,
            is_superuser: u.is_superuser,
            is_guest: u.is_guest,
            phone: u.phone.clone(),
            address: u.address.clone(),
            created_at: rfc3339(u.created_at),
            last_login: u.last_login.map(rfc3339),
        }
    }
}

/// A favorite in a full document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FavoriteEntry {
    pub user_id: i64,
    pub video_id: i64,
    pub created_at: String,
}

impl FavoriteEntry {
    /// The entry of a stored favorite.
    pub(crate) fn from_row(f: &ExportedFavorite) -> Self {
        Self {
            user_id: f.user_id.get(),
            video_id: f.video_id.get(),
            created_at: rfc3339(f.created_at),
        }
    }
}

/// Watch progress in a full document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProgressEntry {
    pub user_id: i64,
    pub video_id: i64,
    pub position: f64,
    pub updated_at: String,
}

impl ProgressEntry {
    /// The entry of stored progress.
    pub(crate) fn from_row(p: &ExportedProgress) -> Self {
        Self {
            user_id: p.user_id.get(),
            video_id: p.video_id.get(),
            position: p.position,
            updated_at: rfc3339(p.updated_at),
        }
    }
}

/// A full document, as read (written section by section by the exporter).
#[derive(Debug, Deserialize)]
pub(crate) struct FullDocument {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    #[serde(default)]
    pub videos: Vec<VideoEntry>,
    #[serde(default)]
    pub favorites: Vec<FavoriteEntry>,
    #[serde(default)]
    pub watch_progress: Vec<ProgressEntry>,
}

/// Either file an export writes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ExportFile {
    /// The original's format: an array of videos.
    Videos(Vec<VideoEntry>),
    /// `--full`.
    Full(FullDocument),
}

/// RFC 3339 in UTC with microseconds: `2026-12-01T06:00:00.000000Z`.
pub fn rfc3339(t: Timestamp) -> String {
    t.0.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an RFC 3339 time (any offset) to the microsecond.
pub(crate) fn parse_time(raw: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| Timestamp::from_micros(t.with_timezone(&Utc).timestamp_micros()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_their_microseconds_and_any_offset_becomes_utc() {
        let t = parse_time("2026-12-01T07:00:00.123456+01:00").expect("a time");
        assert_eq!(rfc3339(t), "2026-12-01T06:00:00.123456Z");
        assert_eq!(parse_time(&rfc3339(t)), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn both_formats_are_read() {
        let array = r#"[{"id": 1, "title": "A", "uploaded_at": "2026-01-01T00:00:00Z"}]"#;
        assert!(matches!(
            serde_json::from_str::<ExportFile>(array),
            Ok(ExportFile::Videos(v)) if v.len() == 1
        ));
        let full = r#"{"format": "videoflix-full-export", "version": 1, "videos": []}"#;
        assert!(matches!(
            serde_json::from_str::<ExportFile>(full),
            Ok(ExportFile::Full(d)) if d.version == 1
        ));
    }
}
