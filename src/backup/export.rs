//! Writing an export: rows streamed in id order into a temp file beside the final one (mode
//! 0600), flushed, fsynced and then linked under its final name, so a crash never leaves a
//! half-written export under that name.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt as _, BufWriter};

use super::format::{
    FULL_FORMAT, FULL_VERSION, FavoriteEntry, ProgressEntry, UserEntry, VideoEntry, rfc3339,
};
use crate::{
    error::AppResult,
    store::{Store, Timestamp},
};

/// Rows read per query.
const BATCH: i64 = 500;

/// A temp file older than this is the debris of a killed export.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The final file.
    pub path: PathBuf,
    /// Videos in it.
    pub videos: u64,
    /// Accounts in it (full exports).
    pub users: u64,
    /// Favorites in it (full exports).
    pub favorites: u64,
    /// Progress rows in it (full exports).
    pub progress: u64,
    /// Its size.
    pub bytes: u64,
}

/// The file name of an export made at `at`.
pub fn file_name(at: Timestamp, full: bool) -> String {
    let stamp = at.0.format("%Y-%m-%d_%H-%M-%S");
    if full {
        format!("full_data_{stamp}.json")
    } else {
        format!("video_data_{stamp}.json")
    }
}

/// Whether `name` is one this exporter writes (retention deletes nothing else).
pub fn is_export_name(name: &str) -> bool {
    let stamp = name
        .strip_prefix("video_data_")
        .or_else(|| name.strip_prefix("full_data_"))
        .and_then(|rest| rest.strip_suffix(".json"));
    // `2026-12-01_06-00-00`, optionally `-2`, `-3`… when a second export shares the second.
    stamp.is_some_and(|s| {
        let (time, suffix) = s.split_at(s.len().min(19));
        chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d_%H-%M-%S").is_ok()
            && (suffix.is_empty()
                || suffix
                    .strip_prefix('-')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    })
}

/// Writes an export of `store` into `dir` (created if missing).
pub(crate) async fn write(
    store: &Store,
    dir: &Path,
    full: bool,
    at: Timestamp,
) -> anyhow::Result<Written> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    remove_stale_temps(dir).await;
    let name = file_name(at, full);
    let temp = dir.join(format!(
        ".{name}.tmp-{}",
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let result = write_temp(store, &temp, full, at).await;
    let written = match result {
        Ok(counts) => publish(&temp, dir, &name)
            .await
            .map(|path| Written { path, ..counts }),
        Err(e) => Err(e),
    };
    if written.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    written
}

async fn write_temp(
    store: &Store,
    temp: &Path,
    full: bool,
    at: Timestamp,
) -> anyhow::Result<Written> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .await
        .with_context(|| format!("creating {}", temp.display()))?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let mut counts = Written {
        path: temp.to_owned(),
        videos: 0,
        users: 0,
        favorites: 0,
        progress: 0,
        bytes: 0,
    };
    if full {
        let head = format!(
            "{{\"format\": \"{FULL_FORMAT}\", \"version\": {FULL_VERSION}, \"exported_at\": \"{}\",\n\"users\": ",
            rfc3339(at)
        );
        out.write_all(head.as_bytes()).await?;
        counts.users = section(
            &mut out,
            None,
            |after| store.users_after(after, BATCH),
            |u| Some(u.id),
            UserEntry::from_record,
        )
        .await?;
        out.write_all(b",\n\"videos\": ").await?;
        counts.videos = videos(store, &mut out).await?;
        out.write_all(b",\n\"favorites\": ").await?;
        counts.favorites = section(
            &mut out,
            None,
            |after| store.favorites_after(after, BATCH),
            |f| Some((f.user_id, f.video_id)),
            FavoriteEntry::from_row,
        )
        .await?;
        out.write_all(b",\n\"watch_progress\": ").await?;
        counts.progress = section(
            &mut out,
            None,
            |after| store.progress_after(after, BATCH),
            |p| Some((p.user_id, p.video_id)),
            ProgressEntry::from_row,
        )
        .await?;
        out.write_all(b"\n}\n").await?;
    } else {
        counts.videos = videos(store, &mut out).await?;
        out.write_all(b"\n").await?;
    }
    out.flush().await?;
    let file = out.into_inner();
    file.sync_all().await.context("syncing the export")?;
    counts.bytes = file.metadata().await?.len();
    Ok(counts)
}

/// Writes `[`, one entry per line, `]`; returns the count.
struct ArrayWriter<'a, W> {
    out: &'a mut W,
    count: u64,
}

impl<'a, W: AsyncWrite + Unpin> ArrayWriter<'a, W> {
    async fn open(out: &'a mut W) -> anyhow::Result<Self> {
        out.write_all(b"[").await?;
        Ok(Self { out, count: 0 })
    }

    async fn push(&mut self, entry: &impl Serialize) -> anyhow::Result<()> {
        let line = serde_json::to_vec(entry)?;
        self.out
            .write_all(if self.count == 0 { b"\n" } else { b",\n" })
            .await?;
        self.out.write_all(&line).await?;
        self.count += 1;
        Ok(())
    }

    async fn close(self) -> anyhow::Result<u64> {
        self.out
            .write_all(if self.count == 0 { b"]" } else { b"\n]" })
            .await?;
        Ok(self.count)
    }
}

async fn videos(store: &Store, out: &mut (impl AsyncWrite + Unpin)) -> anyhow::Result<u64> {
    section(
        out,
        None,
        |after| store.videos_after(after, BATCH),
        |v| Some(v.id),
        VideoEntry::from_record,
    )
    .await
}

/// Writes one array of rows read batch by batch in key order (`fetch` gives the rows after a
/// key); returns the count.
async fn section<R, K: Copy, E: Serialize, Fut: Future<Output = AppResult<Vec<R>>>>(
    out: &mut (impl AsyncWrite + Unpin),
    start: K,
    fetch: impl Fn(K) -> Fut,
    key: impl Fn(&R) -> K,
    entry: impl Fn(&R) -> E,
) -> anyhow::Result<u64> {
    let mut array = ArrayWriter::open(out).await?;
    let mut after = start;
    loop {
        let batch = fetch(after).await?;
        for row in &batch {
            array.push(&entry(row)).await?;
        }
        match batch.last() {
            Some(last) => after = key(last),
            None => break,
        }
    }
    array.close().await
}

/// Links the synced temp file under `name` (or `name-2`, … when taken: an export never
/// replaces another), removes the temp name and syncs the folder.
async fn publish(temp: &Path, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let stem = name.trim_end_matches(".json");
    for n in 1..100 {
        let candidate = if n == 1 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}.json"))
        };
        match tokio::fs::hard_link(temp, &candidate).await {
            Ok(()) => {
                tokio::fs::remove_file(temp).await?;
                let dir = dir.to_owned();
                tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all()).await??;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("publishing {}", candidate.display())),
        }
    }
    anyhow::bail!("too many exports named {name} in {}", dir.display())
}

/// Removes the temp files of exports killed mid-way (ours by name, older than a live export).
async fn remove_stale_temps(dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name
            .strip_prefix('.')
            .and_then(|rest| rest.split_once(".tmp-"))
            .is_some_and(|(final_name, _)| is_export_name(final_name));
        let old = entry
            .metadata()
            .await
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP);
        if ours && old {
            tracing::info!(
                file = name,
                "removing the temp file of an unfinished export"
            );
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_are_recognised_and_nothing_else() {
        let at = Timestamp::from_micros(1_796_104_800_000_000);
        let name = file_name(at, false);
        assert_eq!(name, "video_data_2026-12-01_06-00-00.json");
        assert!(is_export_name(&name));
        assert!(is_export_name(&file_name(at, true)));
        assert!(is_export_name("video_data_2026-12-01_06-00-00-2.json"));
        for other in [
            "video_data_2026-12-01.json",
            "video_data_2026-12-01_06-00-00-.json",
            "video_data_2026-12-01_06-00-00.json.bak",
            "notes.json",
            ".video_data_2026-12-01_06-00-00.json.tmp-ab",
        ] {
            assert!(!is_export_name(other), "{other}");
        }
    }
}
