//! The media pipeline: uploads streamed to disk and probed before acceptance, transcode jobs on
//! the queue, and the workers that run them. A job is idempotent: it writes into a fresh folder
//! (`videos/<id>/<generation>/`), the database switches the video to it in one update, and older
//! generations are removed afterwards; a job for a deleted or finished video does nothing, and a
//! running job stops when its video is deleted.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;
use tokio_stream::{Stream, StreamExt as _};

use super::{
    Caller, Catalog, VideoView,
    catalog::CATALOG,
    status::{StatusEvent, StatusHub},
};
use crate::{
    cache::Cache,
    domain::VideoMeta,
    error::{AppError, AppResult},
    media::{self, MediaError, Outputs, TranscodeOptions},
    queue::{Delivery, JobQueue},
    store::{Claim, MediaPaths, Store, StoredRendition},
};

/// Settings of the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Root of every media file.
    pub media_dir: PathBuf,
    /// Largest accepted upload, in bytes.
    pub upload_limit: u64,
    /// Transcode attempts before a video is marked failed.
    pub max_attempts: u32,
    /// Delay before the first retry (doubles each time).
    pub retry_delay: Duration,
    /// A processing video whose job showed no sign of life for this long is taken over.
    pub stale_after: Duration,
    /// Encoder settings.
    pub transcode: TranscodeOptions,
    /// Largest picture (width × height) a source may have.
    pub max_pixels: u64,
    /// How long an upload may go without sending a byte.
    pub upload_idle: Duration,
}

/// Uploads, jobs and workers; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    cache: Cache,
    queue: JobQueue,
    hub: StatusHub,
    config: Arc<PipelineConfig>,
    /// Upload probes running at once.
    probes: Arc<tokio::sync::Semaphore>,
    /// Videos this process will look at again (a job held them): one recheck each.
    rechecks: Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
}

/// An upload nobody wrote to for this long is abandoned (its process died).
const UPLOAD_IDLE: Duration = Duration::from_secs(600);
/// Upload probes one process runs at once (each decodes at most one frame).
const PROBES_AT_ONCE: usize = 2;
/// How long an upload waits for a probe slot, and how long its probe may take.
const PROBE_DEADLINE: Duration = Duration::from_secs(30);

/// An upload on disk, not yet accepted: the file is removed when this is dropped, whatever
/// ends the request (an error, a refused probe, a client that went away mid-upload).
#[derive(Debug)]
pub struct Incoming {
    path: PathBuf,
    size: u64,
    keep: bool,
}

impl Incoming {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Pipeline {
    /// Wires the pipeline.
    pub fn new(
        store: Store,
        cache: Cache,
        queue: JobQueue,
        hub: StatusHub,
        config: PipelineConfig,
    ) -> Self {
        Self {
            store,
            cache,
            queue,
            hub,
            config: Arc::new(config),
            probes: Arc::new(tokio::sync::Semaphore::new(PROBES_AT_ONCE)),
            rechecks: Arc::default(),
        }
    }

    /// How long an upload may go without sending anything.
    pub fn upload_idle(&self) -> Duration {
        self.config.upload_idle
    }

    /// The status hub (for watchers).
    pub fn hub(&self) -> &StatusHub {
        &self.hub
    }

    /// The largest accepted upload.
    pub fn upload_limit(&self) -> u64 {
        self.config.upload_limit
    }

    /// Streams `chunks` to a new file under a generated name, never holding more than one chunk
    /// in memory; over the limit, the file is removed and `TooLarge` returned.
    pub async fn receive<S>(&self, mut chunks: S) -> AppResult<Incoming>
    where
        S: Stream<Item = AppResult<Bytes>> + Unpin,
    {
        let dir = self.config.media_dir.join("incoming");
        tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
        let mut incoming = Incoming {
            path: dir.join(format!("{}.part", uuid::Uuid::new_v4())),
            size: 0,
            keep: false,
        };
        let mut file = tokio::fs::File::create(&incoming.path)
            .await
            .map_err(internal)?;
        let result = async {
            loop {
                // A client that stops sending holds a connection and a file: drop it.
                let next = tokio::time::timeout(self.config.upload_idle, chunks.next())
                    .await
                    .map_err(|_| {
                        AppError::field(
                            "video_file",
                            format!(
                                "The upload stalled: nothing arrived for {} s.",
                                self.config.upload_idle.as_secs()
                            ),
                        )
                    })?;
                let Some(chunk) = next else {
                    break;
                };
                let chunk = chunk?;
                incoming.size += chunk.len() as u64;
                if incoming.size > self.config.upload_limit {
                    return Err(AppError::TooLarge {
                        limit: self.config.upload_limit,
                    });
                }
                file.write_all(&chunk).await.map_err(internal)?;
            }
            file.flush().await.map_err(internal)?;
            Ok(())
        }
        .await;
        drop(file);
        result.map(|()| incoming)
    }

    /// Probes `incoming`; a decodable video becomes a new catalog entry (status pending) with a
    /// transcode job, anything else is removed and refused on the `video_file` field.
    pub async fn accept(
        &self,
        catalog: &Catalog,
        caller: &Caller,
        meta: VideoMeta,
        incoming: Incoming,
    ) -> AppResult<VideoView> {
        catalog.require_admin(caller)?;
        // From here on the steps belong together (row, file, job): a client that goes away
        // must not cancel them half-way, so they run on their own task.
        let (pipeline, catalog, caller) = (self.clone(), catalog.clone(), caller.clone());
        tokio::spawn(async move { pipeline.admit(&catalog, &caller, meta, incoming).await })
            .await
            .map_err(|e| AppError::Internal(e.into()))?
    }

    async fn admit(
        &self,
        catalog: &Catalog,
        caller: &Caller,
        meta: VideoMeta,
        mut incoming: Incoming,
    ) -> AppResult<VideoView> {
        if incoming.size == 0 {
            return Err(AppError::field(
                "video_file",
                "The submitted file is empty.",
            ));
        }
        let probe_path = incoming.path.clone();
        let max_pixels = self.config.max_pixels;
        // Probes run on the blocking pool, a few at a time, each bounded in time; the permit
        // stays with the probe until it really ends.
        let permit = tokio::time::timeout(PROBE_DEADLINE, self.probes.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Unavailable("every probe slot is busy".to_owned()))?
            .map_err(|e| AppError::Internal(e.into()))?;
        let probing = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            media::probe(&probe_path, max_pixels)
        });
        let probed = tokio::time::timeout(PROBE_DEADLINE, probing)
            .await
            .map_err(|_| {
                AppError::field(
                    "video_file",
                    "Upload a valid video file: this one could not be read in time.",
                )
            })?
            .map_err(|e| AppError::Internal(e.into()))?;
        let probe = match probed {
            Ok(probe) => probe,
            Err(e) => {
                return Err(match e {
                    MediaError::NotAVideo(why) => AppError::field(
                        "video_file",
                        format!("Upload a valid video file: this one is {why}."),
                    ),
                    other => AppError::Internal(other.into()),
                });
            }
        };
        let view = catalog.create(caller, meta).await?;
        let id = view.record.id;
        // The stored name comes from the numeric id only, never from client text.
        let relative = format!("videos/{id}/source");
        let target = self.config.media_dir.join(&relative);
        let moved = async {
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(&incoming.path, &target).await
        }
        .await;
        if let Err(e) = moved {
            // No video without its file.
            let _ = self.store.delete_video(id).await;
            self.cache.invalidate(CATALOG).await;
            return Err(internal(e));
        }
        incoming.keep = true;
        if let Err(e) = self.store.set_video_source(id, &relative).await {
            let _ = self.store.delete_video(id).await;
            let _ =
                tokio::fs::remove_dir_all(self.config.media_dir.join(format!("videos/{id}"))).await;
            self.cache.invalidate(CATALOG).await;
            return Err(e);
        }
        self.cache.invalidate(CATALOG).await;
        tracing::info!(
            video_id = id,
            bytes = incoming.size,
            duration = probe.duration,
            width = probe.width,
            height = probe.height,
            "upload accepted"
        );
        // The answer shows the video as accepted (pending), before a worker can take it.
        let view = catalog.get(caller, id).await?;
        self.hub
            .publish(event(id, "pending", 0.0, "queued", ""))
            .await;
        if let Err(e) = self.queue.enqueue(id).await {
            // The row is pending: the next sweep queues it.
            tracing::warn!(video_id = id, error = %e, "enqueue failed; the sweep will retry");
        }
        Ok(view)
    }

    /// Enqueues every unfinished video again (at start-up: a lost queue loses nothing).
    pub async fn sweep(&self) -> AppResult<usize> {
        let ids = self.store.unfinished_videos().await?;
        for id in &ids {
            self.queue.enqueue(*id).await?;
        }
        if !ids.is_empty() {
            tracing::info!(count = ids.len(), "re-enqueued unfinished transcodes");
        }
        Ok(ids.len())
    }

    /// Starts `concurrency` workers taking jobs from the queue (the `sweep` job finds a job lost
    /// on the way: a failed enqueue, a dead worker's in-process queue).
    pub fn spawn_workers(&self, concurrency: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..concurrency.max(1))
            .map(|n| {
                let pipeline = self.clone();
                let consumer = format!("{}-{n}", uuid::Uuid::new_v4().simple());
                tokio::spawn(async move { pipeline.work(consumer).await })
            })
            .collect()
    }

    /// Removes what crashed processes left behind (at start-up and with every sweep): uploads
    /// nobody has written to for [`UPLOAD_IDLE`] (a live one, on any process sharing the media
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
                let fresh_after = crate::store::Timestamp::now()
                    .minus_secs(self.config.stale_after.as_secs().max(1));
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
                    tracing::info!(video_id = id, "removing a dead job's working folder");
                    let _ = tokio::fs::remove_dir_all(entry.path()).await;
                }
            }
        }
    }

    async fn work(self, consumer: String) {
        loop {
            match self.queue.next(&consumer).await {
                Ok(delivery) => {
                    let id = delivery.video_id;
                    match self.run(&delivery, &consumer).await {
                        Ok(()) => {
                            if let Err(e) = self.queue.ack(&delivery).await {
                                // Redelivered later; the job is idempotent.
                                tracing::warn!(video_id = id, error = %e, "ack failed");
                            }
                        }
                        Err(e) => {
                            // The database or Redis failed. Redis redelivers the entry after the
                            // visibility timeout; the in-process queue needs it back.
                            tracing::error!(video_id = id, error = %e, "job interrupted");
                            if matches!(self.queue, JobQueue::Memory(_)) {
                                self.enqueue_later(id, self.config.retry_delay);
                            }
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "job queue unavailable; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    /// Runs one job to an outcome recorded in the database.
    async fn run(&self, delivery: &Delivery, consumer: &str) -> AppResult<()> {
        let id = delivery.video_id;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let stale_before = crate::store::Timestamp::from_micros(
            crate::store::Timestamp::now().micros()
                - i64::try_from(self.config.stale_after.as_micros()).unwrap_or(i64::MAX),
        );
        let claim = match self.store.claim_transcode(id, &token, stale_before).await? {
            Claim::Started(claim) => claim,
            Claim::Busy => {
                // A job held it lately: look again once its heartbeat would be stale, so a job
                // that died (its process killed) is taken over then, not at the next sweep.
                tracing::info!(video_id = id, "another worker is transcoding it");
                self.recheck_later(id);
                return Ok(());
            }
            Claim::Done => {
                tracing::info!(video_id = id, "nothing to do (finished or deleted)");
                return Ok(());
            }
        };
        self.cache.invalidate(CATALOG).await;
        let attempts = u32::try_from(claim.transcode_attempts).unwrap_or(u32::MAX);
        if attempts > self.config.max_attempts {
            let reason = format!("Transcoding failed {} times.", self.config.max_attempts);
            return self.fail(id, &token, &reason).await;
        }
        self.hub
            .publish(event(id, "processing", 0.0, "probing", ""))
            .await;
        // The working folder is named by the claim, so a crashed job's folder is known as such;
        // this job holds the claim now, so every other working folder is a dead job's.
        let generation = token.clone();
        let video_dir = self.config.media_dir.join(format!("videos/{id}"));
        remove_working_folders(&video_dir).await;
        let work_dir = video_dir.join(format!(".tmp-{generation}"));
        tokio::fs::create_dir_all(&work_dir)
            .await
            .map_err(internal)?;
        let source = self.config.media_dir.join(&claim.video_file);

        // Progress from the blocking thread; deletion checks and heartbeats beside it.
        let stop = Arc::new(AtomicBool::new(false));
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
        let forward = {
            let hub = self.hub.clone();
            tokio::spawn(async move {
                while let Some(p) = progress_rx.recv().await {
                    let p: media::Progress = p;
                    hub.publish(event(id, "processing", p.percent, p.step, ""))
                        .await;
                }
            })
        };
        let guard = {
            let (store, queue, stop) = (self.store.clone(), self.queue.clone(), stop.clone());
            let (delivery, consumer, token) =
                (delivery.clone(), consumer.to_owned(), token.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    // Deleted, or taken over after this process stalled: stop.
                    if matches!(store.heartbeat_transcode(id, &token).await, Ok(false)) {
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    if let Err(e) = queue.heartbeat(&delivery, &consumer).await {
                        tracing::warn!(video_id = id, error = %e, "heartbeat failed");
                    }
                }
            })
        };
        let options = self.config.transcode.clone();
        let max_pixels = self.config.max_pixels;
        let (job_dir, job_stop) = (work_dir.clone(), stop.clone());
        let result = tokio::task::spawn_blocking(move || {
            let probe = media::probe(&source, max_pixels)?;
            let mut progress = |p: media::Progress| {
                let _ = progress_tx.send(p);
            };
            let stop = || job_stop.load(Ordering::Relaxed);
            media::transcode(&source, &job_dir, &probe, &options, &mut progress, &stop)
        })
        .await
        .map_err(|e| AppError::Internal(e.into()));
        guard.abort();
        let _ = forward.await;

        match result? {
            Ok(outputs) => {
                let final_dir = video_dir.join(&generation);
                tokio::fs::rename(&work_dir, &final_dir)
                    .await
                    .map_err(internal)?;
                let paths = media_paths(&format!("videos/{id}/{generation}"), &outputs);
                if !self
                    .store
                    .finish_transcode(id, &token, &paths, outputs.duration)
                    .await?
                {
                    // Deleted meanwhile, or another job holds it now: these outputs are unused.
                    self.discard(id, &video_dir, &final_dir).await;
                    return Ok(());
                }
                remove_old_generations(&video_dir, &generation).await;
                self.cache.invalidate(CATALOG).await;
                self.hub
                    .publish(event(id, "ready", 100.0, "done", ""))
                    .await;
                tracing::info!(
                    video_id = id,
                    renditions = outputs.renditions.len(),
                    "ready"
                );
                Ok(())
            }
            Err(MediaError::Cancelled) => {
                self.discard(id, &video_dir, &work_dir).await;
                tracing::info!(video_id = id, "transcode stopped: deleted or taken over");
                Ok(())
            }
            Err(MediaError::NotAVideo(why)) => {
                self.discard(id, &video_dir, &work_dir).await;
                self.fail(
                    id,
                    &token,
                    &format!("The source is not a playable video: {why}."),
                )
                .await
            }
            Err(MediaError::Exceeded(why)) => {
                self.discard(id, &video_dir, &work_dir).await;
                self.fail(
                    id,
                    &token,
                    &format!("The source cannot be transcoded: {why}."),
                )
                .await
            }
            Err(e) => {
                self.discard(id, &video_dir, &work_dir).await;
                tracing::error!(video_id = id, attempt = attempts, error = %e, "transcode failed");
                if attempts >= self.config.max_attempts {
                    return self
                        .fail(id, &token, &format!("Transcoding failed: {e}."))
                        .await;
                }
                let reason = format!("Attempt {attempts} failed ({e}); retrying.");
                if !self
                    .store
                    .set_transcode_status(id, &token, "pending", &reason)
                    .await?
                {
                    return Ok(());
                }
                self.cache.invalidate(CATALOG).await;
                self.hub
                    .publish(event(id, "pending", 0.0, "retrying", &reason))
                    .await;
                self.enqueue_later(
                    id,
                    self.config.retry_delay * 2u32.saturating_pow(attempts - 1),
                );
                Ok(())
            }
        }
    }

    /// Removes a job's own outputs; all of the video's files once it is deleted (a deletion
    /// racing a running job may leave what the job was still writing).
    async fn discard(&self, id: i64, video_dir: &Path, own: &Path) {
        if matches!(self.store.video(id).await, Ok(None)) {
            let _ = tokio::fs::remove_dir_all(video_dir).await;
        } else {
            let _ = tokio::fs::remove_dir_all(own).await;
        }
    }

    /// Queues `id` again once a claim seen now would be stale, unless this process already
    /// will (every sweep would otherwise add one more recheck per running job).
    fn recheck_later(&self, id: i64) {
        let first = self
            .rechecks
            .lock()
            .map(|mut r| r.insert(id))
            .unwrap_or(false);
        if !first {
            return;
        }
        let (queue, rechecks, delay) = (
            self.queue.clone(),
            self.rechecks.clone(),
            self.config.stale_after,
        );
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Ok(mut r) = rechecks.lock() {
                r.remove(&id);
            }
            if let Err(e) = queue.enqueue(id).await {
                tracing::error!(video_id = id, error = %e, "re-enqueue failed");
            }
        });
    }

    /// Queues `id` again after `delay`. If that fails (or the process dies first), the sweep
    /// finds the video still pending.
    fn enqueue_later(&self, id: i64, delay: Duration) {
        let queue = self.queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = queue.enqueue(id).await {
                tracing::error!(video_id = id, error = %e, "re-enqueue failed");
            }
        });
    }

    async fn fail(&self, id: i64, token: &str, reason: &str) -> AppResult<()> {
        if !self
            .store
            .set_transcode_status(id, token, "failed", reason)
            .await?
        {
            return Ok(());
        }
        self.cache.invalidate(CATALOG).await;
        self.hub
            .publish(event(id, "failed", 0.0, "failed", reason))
            .await;
        tracing::warn!(video_id = id, reason, "transcode failed for good");
        Ok(())
    }
}

fn event(video_id: i64, status: &str, percent: f64, step: &str, reason: &str) -> StatusEvent {
    StatusEvent {
        video_id,
        status: status.to_owned(),
        percent,
        step: step.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The database's paths of a finished transcode in `dir` (relative to MEDIA_DIR).
fn media_paths(dir: &str, outputs: &Outputs) -> MediaPaths {
    let mut paths = MediaPaths {
        poster: format!("{dir}/{}", outputs.poster),
        vtt_file: format!("{dir}/{}", outputs.vtt),
        hls: format!("{dir}/{}", outputs.master_playlist),
        ..MediaPaths::default()
    };
    for r in &outputs.renditions {
        let path = format!("{dir}/{}", r.mp4);
        paths.renditions.0.push(StoredRendition {
            name: r.rendition.name.clone(),
            width: r.rendition.width,
            height: r.rendition.height,
            bitrate: r.average_bandwidth,
            mp4: path.clone(),
            playlist: format!("{dir}/{}", r.playlist),
        });
        match r.rendition.name.as_str() {
            "480p" => paths.hd480 = path,
            "720p" => paths.hd720 = path,
            "1080p" => paths.hd1080 = path,
            // 360p, or the single rendition of a source below 360p.
            _ => paths.hd360 = path,
        }
    }
    paths
}

/// Removes every job's working folder (`.tmp-…`) in `video_dir`.
async fn remove_working_folders(video_dir: &Path) {
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
async fn remove_old_generations(video_dir: &Path, keep: &str) {
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

fn internal(e: std::io::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(e).context("media files"))
}
