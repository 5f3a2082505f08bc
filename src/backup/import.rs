//! Reading an export back: the whole file is checked against the API's domain rules first, and
//! only a file with no bad record is written, in one transaction, by id (so importing the same
//! file twice changes nothing the second time).

use std::collections::{HashMap, HashSet};

use super::{
    checks::{Reporter, check_favorite, check_progress, check_user, check_video},
    format::{
        ExportFile, FULL_FORMAT, FULL_VERSION, FavoriteEntry, ProgressEntry, UserEntry, VideoEntry,
    },
};
use crate::{
    domain::{Timestamp, UserId, VideoId},
    error::AppResult,
    store::{ExportedFavorite, ExportedProgress, ImportWrites, ImportedVideo, Store, UserRecord},
};

/// One bad record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// `videos`, `users`, `favorites`, `watch_progress` or `file`.
    pub section: &'static str,
    /// Position in its section.
    pub index: usize,
    /// The record's id, when it has one.
    pub id: Option<i64>,
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.section, self.index)?;
        if let Some(id) = self.id {
            write!(f, " (id {id})")?;
        }
        write!(f, " {}: {}", self.field, self.reason)
    }
}

/// Created / updated / unchanged records of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// New ids.
    pub created: u64,
    /// Existing ids whose record differs.
    pub updated: u64,
    /// Existing ids with the same record.
    pub unchanged: u64,
}

/// What an import does (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preview {
    /// Videos.
    pub videos: Counts,
    /// Accounts (full documents).
    pub users: Counts,
    /// Favorites (full documents).
    pub favorites: Counts,
    /// Watch progress (full documents).
    pub progress: Counts,
}

impl Preview {
    /// Whether the import writes anything.
    pub fn changes_anything(&self) -> bool {
        [self.videos, self.users, self.favorites, self.progress]
            .iter()
            .any(|c| c.created + c.updated > 0)
    }
}

/// A checked file: what to write and what that does.
pub(crate) struct Plan {
    /// The rows to write (only the created and updated ones).
    pub writes: ImportWrites,
    /// The counts.
    pub preview: Preview,
}

/// Parses `bytes` (either format) and checks every record against `store`'s current content.
/// `user_map` maps uploader ids of the file to accounts here.
pub(crate) async fn plan(
    store: &Store,
    bytes: &[u8],
    user_map: &HashMap<i64, i64>,
) -> anyhow::Result<Result<Plan, Vec<RecordError>>> {
    let file = match parse_file(bytes) {
        Ok(file) => file,
        Err(error) => return Ok(Err(vec![error])),
    };
    let existing = Existing::load(store).await?;
    let mut errors = Vec::new();

    // Accounts first: videos, favorites and progress may name the file's accounts.
    let (file_users, users) = plan_users(&file.users, &existing, &mut errors);
    let user_exists =
        |id: UserId| file_users.contains(&id.get()) || existing.users.contains_key(&id);
    let (file_videos, videos) =
        plan_videos(&file.videos, &existing, user_map, &user_exists, &mut errors);
    let video_exists =
        |id: VideoId| file_videos.contains(&id.get()) || existing.video_ids.contains(&id);
    let favorites = plan_favorites(
        &file.favorites,
        &existing,
        &user_exists,
        &video_exists,
        &mut errors,
    );
    let progress = plan_progress(
        &file.progress,
        &existing,
        &user_exists,
        &video_exists,
        &mut errors,
    );
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    Ok(Ok(Plan {
        writes: ImportWrites {
            users: users.rows,
            videos: videos.rows,
            favorites: favorites.rows,
            progress: progress.rows,
        },
        preview: Preview {
            videos: videos.counts,
            users: users.counts,
            favorites: favorites.counts,
            progress: progress.counts,
        },
    }))
}

/// The records of a file by section; a video array (the original's format) has only videos.
struct FileSections {
    users: Vec<UserEntry>,
    videos: Vec<VideoEntry>,
    favorites: Vec<FavoriteEntry>,
    progress: Vec<ProgressEntry>,
}

/// Reads either format; a file that is not JSON of one, or a full document of another format or
/// version, is the one `file` error that stops the import before any record is checked.
fn parse_file(bytes: &[u8]) -> Result<FileSections, RecordError> {
    let file_error = |field: &str, reason: String| RecordError {
        section: "file",
        index: 0,
        id: None,
        field: field.into(),
        reason,
    };
    let file = serde_json::from_slice::<ExportFile>(bytes).map_err(|e| {
        file_error(
            "json",
            format!("not a video export (an array of videos or a full document): {e}"),
        )
    })?;
    match file {
        ExportFile::Videos(videos) => Ok(FileSections {
            users: Vec::new(),
            videos,
            favorites: Vec::new(),
            progress: Vec::new(),
        }),
        ExportFile::Full(doc) if doc.format != FULL_FORMAT || doc.version != FULL_VERSION => {
            Err(file_error(
                "format",
                format!(
                    "expected format \"{FULL_FORMAT}\" version {FULL_VERSION}, found \"{}\" \
                     version {}",
                    doc.format, doc.version
                ),
            ))
        }
        ExportFile::Full(doc) => Ok(FileSections {
            users: doc.users,
            videos: doc.videos,
            favorites: doc.favorites,
            progress: doc.watch_progress,
        }),
    }
}

/// How a record of the file compares with what the database holds under its key.
#[derive(Clone, Copy)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Change {
    /// `new` (in the exported form) against `old`, the database's row with the same key.
    fn of<E: PartialEq>(old: Option<&E>, new: &E) -> Self {
        match old {
            None => Self::Created,
            Some(old) if old == new => Self::Unchanged,
            Some(_) => Self::Updated,
        }
    }
}

/// What one section adds to the plan: the rows to write (created or updated) and the counts.
struct Section<T> {
    rows: Vec<T>,
    counts: Counts,
}

impl<T> Section<T> {
    fn new() -> Self {
        Self {
            rows: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Counts `row`, keeping it for the write unless it changes nothing.
    fn add(&mut self, row: T, change: Change) {
        match change {
            Change::Created => {
                self.counts.created += 1;
                self.rows.push(row);
            }
            Change::Updated => {
                self.counts.updated += 1;
                self.rows.push(row);
            }
            Change::Unchanged => self.counts.unchanged += 1,
        }
    }
}

/// Checks the accounts, each e-mail unique in the file and here. Returns every id the file
/// names (bad records included, so their references are not reported twice) and the section.
fn plan_users(
    users: &[UserEntry],
    existing: &Existing,
    errors: &mut Vec<RecordError>,
) -> (HashSet<i64>, Section<UserRecord>) {
    let mut section = Section::new();
    let mut file_users = HashSet::new();
    let mut file_emails = HashMap::new();
    for (index, entry) in users.iter().enumerate() {
        let mut report = Reporter::new(errors, "users", index, Some(entry.id));
        if !file_users.insert(entry.id) {
            report.field("id", "appears twice in the file");
        }
        let Some(user) = check_user(entry, &mut report) else {
            continue;
        };
        if let Some(other) = file_emails.insert(user.email.clone(), entry.id) {
            report.field(
                "email",
                format!("also the e-mail of user {other} in the file"),
            );
        }
        if let Some(&owner) = existing.emails.get(&user.email)
            && owner != user.id
        {
            report.field("email", format!("already the e-mail of user {owner} here"));
        }
        if report.failed() {
            continue;
        }
        let change = Change::of(existing.users.get(&user.id), &UserEntry::from_record(&user));
        section.add(user, change);
    }
    (file_users, section)
}

/// Checks the videos, their uploaders mapped by `user_map` and required to exist. Returns every
/// id the file names (bad records included) and the section.
fn plan_videos(
    videos: &[VideoEntry],
    existing: &Existing,
    user_map: &HashMap<i64, i64>,
    user_exists: &impl Fn(UserId) -> bool,
    errors: &mut Vec<RecordError>,
) -> (HashSet<i64>, Section<ImportedVideo>) {
    let mut section = Section::new();
    let mut file_videos = HashSet::new();
    for (index, entry) in videos.iter().enumerate() {
        let mut report = Reporter::new(errors, "videos", index, Some(entry.id));
        if !file_videos.insert(entry.id) {
            report.field("id", "appears twice in the file");
        }
        let Some(mut video) = check_video(entry, &mut report) else {
            continue;
        };
        if let Some(uploader) = video.record.uploaded_by {
            let mapped = user_map
                .get(&uploader.get())
                .and_then(|&to| UserId::parse(to, "uploaded_by").ok())
                .unwrap_or(uploader);
            if user_exists(mapped) {
                video.record.uploaded_by = Some(mapped);
            } else {
                report.field(
                    "uploaded_by",
                    format!("no user {uploader} here or in the file (map it with --map-user)"),
                );
                continue;
            }
        }
        let change = Change::of(
            existing.videos.get(&video.record.id),
            &VideoEntry::from_record(&video.record),
        );
        section.add(video, change);
    }
    (file_videos, section)
}

/// Checks the favorites: both ends must exist, each pair once in the file.
fn plan_favorites(
    favorites: &[FavoriteEntry],
    existing: &Existing,
    user_exists: &impl Fn(UserId) -> bool,
    video_exists: &impl Fn(VideoId) -> bool,
    errors: &mut Vec<RecordError>,
) -> Section<ExportedFavorite> {
    let mut section = Section::new();
    let mut seen = HashSet::new();
    for (index, entry) in favorites.iter().enumerate() {
        let mut report = Reporter::new(errors, "favorites", index, None);
        let Some(row) = check_favorite(entry, &mut report, user_exists, video_exists) else {
            continue;
        };
        if !seen.insert((row.user_id, row.video_id)) {
            report.field("video_id", "this favorite appears twice in the file");
            continue;
        }
        let change = Change::of(
            existing.favorites.get(&(row.user_id, row.video_id)),
            &row.created_at,
        );
        section.add(row, change);
    }
    section
}

/// Checks the watch progress: both ends must exist, each pair once in the file.
fn plan_progress(
    progress: &[ProgressEntry],
    existing: &Existing,
    user_exists: &impl Fn(UserId) -> bool,
    video_exists: &impl Fn(VideoId) -> bool,
    errors: &mut Vec<RecordError>,
) -> Section<ExportedProgress> {
    let mut section = Section::new();
    let mut seen = HashSet::new();
    for (index, entry) in progress.iter().enumerate() {
        let mut report = Reporter::new(errors, "watch_progress", index, None);
        let Some(row) = check_progress(entry, &mut report, user_exists, video_exists) else {
            continue;
        };
        if !seen.insert((row.user_id, row.video_id)) {
            report.field("video_id", "this progress appears twice in the file");
            continue;
        }
        let change = Change::of(existing.progress.get(&(row.user_id, row.video_id)), &row);
        section.add(row, change);
    }
    section
}

/// What the database holds now, in the exported form, to tell created, updated and unchanged.
struct Existing {
    users: HashMap<UserId, UserEntry>,
    emails: HashMap<String, UserId>,
    videos: HashMap<VideoId, VideoEntry>,
    video_ids: HashSet<VideoId>,
    favorites: HashMap<(UserId, VideoId), Timestamp>,
    progress: HashMap<(UserId, VideoId), ExportedProgress>,
}

impl Existing {
    async fn load(store: &Store) -> anyhow::Result<Self> {
        let users = all(None, |a| store.users_after(a, 1000), |u| Some(u.id)).await?;
        let videos = all(None, |a| store.videos_after(a, 1000), |v| Some(v.id)).await?;
        let pair = |user_id: UserId, video_id: VideoId| (user_id, video_id);
        let favorites = all(
            None,
            |a| store.favorites_after(a, 1000),
            |f| Some(pair(f.user_id, f.video_id)),
        )
        .await?;
        let progress = all(
            None,
            |a| store.progress_after(a, 1000),
            |p| Some(pair(p.user_id, p.video_id)),
        )
        .await?;
        Ok(Self {
            emails: users.iter().map(|u| (u.email.clone(), u.id)).collect(),
            users: users
                .iter()
                .map(|u| (u.id, UserEntry::from_record(u)))
                .collect(),
            video_ids: videos.iter().map(|v| v.id).collect(),
            videos: videos
                .iter()
                .map(|v| (v.id, VideoEntry::from_record(v)))
                .collect(),
            favorites: favorites
                .into_iter()
                .map(|f| (pair(f.user_id, f.video_id), f.created_at))
                .collect(),
            progress: progress
                .into_iter()
                .map(|p| (pair(p.user_id, p.video_id), p))
                .collect(),
        })
    }
}

/// Every row, read batch by batch in key order.
async fn all<R, K: Copy, Fut: Future<Output = AppResult<Vec<R>>>>(
    start: K,
    fetch: impl Fn(K) -> Fut,
    key: impl Fn(&R) -> K,
) -> AppResult<Vec<R>> {
    let mut rows = Vec::new();
    let mut after = start;
    loop {
        let batch = fetch(after).await?;
        match batch.last() {
            Some(last) => after = key(last),
            None => return Ok(rows),
        }
        rows.extend(batch);
    }
}
