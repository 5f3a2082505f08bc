//! What crashed processes leave behind: abandoned uploads, dead jobs' working folders, older
//! generations of a video's outputs.

use std::path::Path;

use super::{Pipeline, UPLOAD_IDLE};
use crate::domain::{Timestamp, VideoId};

impl Pipeline {
    /// Removes what crashed processes left behind (at start-up and with every sweep): uploads
    /// nobody has written to for `UPLOAD_IDLE` (10 minutes) (a live one, on any process sharing the media
    /// folder, keeps writing), and job folders (`.tmp-<claim>`) whose claim is not held by a live
    /// job.
    pub async fn clean_debris(&self) {
        let incoming = self.config.media_dir.join("incoming");
        if let Ok(mut entries) = tokio::fs::read_dir(&incoming).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                // Longer than any upload may pause, whatever UPLOAD_IDLE_TIMEOUT says.
                let abandoned_after = UPLOAD_IDLE.max(self.config.upload_idle * 2);
                let idle = entry
                    .metadata()
                    .await
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > abandoned_after);
                if idle && entry.file_name().to_string_lossy().ends_with(".part") {
                    tracing::info!(file = ?entry.file_name(), "removing an abandoned upload");
                    let _ = tokio::fs::remove_file(entry.path()).await;
                }
            }
        }
        let videos = self.config.media_dir.join("videos");
        let Ok(mut dirs) = tokio::fs::read_dir(&videos).await else {
            return;
        };
        while let Ok(Some(video)) = dirs.next_entry().await {
            let Some(id) = video
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i64>().ok())
                .and_then(|n| VideoId::parse(n, "folder").ok())
            else {
                continue;
            };
            let Ok(mut entries) = tokio::fs::read_dir(video.path()).await else {
                continue;
            };
            while let Ok(Some(entry)) = entries.next_entry().await {
                let name = entry.file_name();
                let Some(token) = name.to_str().and_then(|n| n.strip_prefix(".tmp-")) else {
                    continue;
                };
                let fresh_after =
                    Timestamp::now().minus_secs(self.config.stale_after.as_secs().max(1));
                // A folder written to lately is left alone whatever the database says (another
                // host's clock, a process of an older version).
                let recently_written = entry
                    .metadata()
                    .await
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_none_or(|age| age < self.config.stale_after * 2);
                if !recently_written
                    && matches!(
                        self.store.live_claim(id, token, fresh_after).await,
                        Ok(false)
                    )
                {
                    tracing::info!(video_id = %id, "removing a dead job's working folder");
                    let _ = tokio::fs::remove_dir_all(entry.path()).await;
                }
            }
        }
    }
}

/// Removes every job's working folder (`.tmp-…`) in `video_dir`.
pub(super) async fn remove_working_folders(video_dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(video_dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            tracing::info!(folder = ?entry.path(), "removing a dead job's working folder");
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// Removes the older generations of `video_dir`: every folder but the source, `keep` and the
/// working folders of jobs (`.tmp-…`, possibly running).
pub(super) async fn remove_old_generations(video_dir: &Path, keep: &str) {
    let Ok(mut entries) = tokio::fs::read_dir(video_dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let working = name.to_string_lossy().starts_with(".tmp-");
        if name != "source" && name != keep && !working && entry.path().is_dir() {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}
