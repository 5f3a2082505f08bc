//! The media pipeline: uploads streamed to disk and probed before acceptance, transcode jobs on
//! the queue, and the workers that run them. A job is idempotent: it writes into a fresh folder
//! (`videos/<id>/<generation>/`), the database switches the video to it in one update, and older
//! generations are removed afterwards; a job for a deleted or finished video does nothing, and a
//! running job stops when its video is deleted.

use std::{path::PathBuf, sync::Arc, time::Duration};

use super::status::StatusHub;
use crate::{
    domain::VideoId,
    error::{AppError, AppResult},
    media::TranscodeOptions,
    queue::JobQueue,
    store::Store,
};

mod debris;
mod job;
mod upload;

pub use upload::Incoming;

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
    queue: JobQueue,
    hub: StatusHub,
    config: Arc<PipelineConfig>,
    /// Upload probes running at once.
    probes: Arc<tokio::sync::Semaphore>,
    /// Videos this process will look at again (a job held them): one recheck each.
    rechecks: Arc<std::sync::Mutex<std::collections::HashSet<VideoId>>>,
}

/// An upload nobody wrote to for this long is abandoned (its process died).
const UPLOAD_IDLE: Duration = Duration::from_secs(600);
/// Upload probes one process runs at once (each decodes at most one frame).
const PROBES_AT_ONCE: usize = 2;
/// How long an upload waits for a probe slot, and how long its probe may take.
const PROBE_DEADLINE: Duration = Duration::from_secs(30);

impl Pipeline {
    /// Wires the pipeline.
    pub fn new(store: Store, queue: JobQueue, hub: StatusHub, config: PipelineConfig) -> Self {
        Self {
            store,
            queue,
            hub,
            config: Arc::new(config),
            probes: Arc::new(tokio::sync::Semaphore::new(PROBES_AT_ONCE)),
            rechecks: Arc::default(),
        }
    }

    /// The process stops (one signal, kept by the status hub): status watchers end, workers
    /// take no new job, and a running transcode is abandoned with its claim released and the
    /// video queued again, so another worker takes it at once (not once the claim goes stale);
    /// its partial outputs are removed.
    pub fn shutdown(&self) {
        self.hub.shutdown();
    }

    /// Whether the process stops.
    fn is_stopping(&self) -> bool {
        self.hub.is_stopping()
    }

    /// Resolves once the process stops.
    async fn stopped(&self) {
        self.hub.stopped().await;
    }

    /// How long an upload may go without sending anything.
    pub fn upload_idle(&self) -> Duration {
        self.config.upload_idle
    }

    /// How full the transcode queue is.
    pub async fn queue_depth(&self) -> AppResult<crate::queue::QueueDepth> {
        self.queue.depth().await
    }

    /// The status hub (for watchers).
    pub fn hub(&self) -> &StatusHub {
        &self.hub
    }

    /// The largest accepted upload.
    pub fn upload_limit(&self) -> u64 {
        self.config.upload_limit
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

    async fn work(self, consumer: String) {
        loop {
            let next = tokio::select! {
                next = self.queue.next(&consumer) => next,
                () = self.stopped() => return,
            };
            match next {
                Ok(delivery) => {
                    let id = delivery.video_id;
                    // The job's log lines carry its video and the request that queued it.
                    let span = tracing::info_span!(
                        "job",
                        video_id = %id,
                        request_id = delivery.request_id.as_deref().unwrap_or("-")
                    );
                    let ran =
                        tracing::Instrument::instrument(self.run(&delivery, &consumer), span).await;
                    match ran {
                        Ok(()) => {
                            if let Err(e) = self.queue.ack(&delivery).await {
                                // Redelivered later; the job is idempotent.
                                tracing::warn!(video_id = %id, error = %e, "ack failed");
                            }
                        }
                        Err(e) => {
                            // The database or Redis failed. Redis redelivers the entry after the
                            // visibility timeout; the in-process queue needs it back.
                            tracing::error!(video_id = %id, error = %e, "job interrupted");
                            if !self.queue.redelivers() {
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

    /// Queues `id` again once a claim seen now would be stale, unless this process already
    /// will (every sweep would otherwise add one more recheck per running job).
    fn recheck_later(&self, id: VideoId) {
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
                tracing::error!(video_id = %id, error = %e, "re-enqueue failed");
            }
        });
    }

    /// Queues `id` again and again (after 1 s, doubling to 30 s, for about a quarter of an
    /// hour) until the queue takes it or the process stops: an upload accepted while Redis was
    /// away starts as soon as Redis is back, not at the next sweep (which still covers a process
    /// that dies first).
    fn enqueue_until_taken(&self, id: VideoId) {
        let pipeline = self.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            for _ in 0..40 {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = pipeline.stopped() => return,
                }
                match pipeline.queue.enqueue(id).await {
                    Ok(()) => {
                        tracing::info!(video_id = %id, "queued after all");
                        return;
                    }
                    Err(e) => tracing::debug!(video_id = %id, error = %e, "enqueue failed again"),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        });
    }

    /// Queues `id` again after `delay`. If that fails (or the process dies first), the sweep
    /// finds the video still pending.
    fn enqueue_later(&self, id: VideoId, delay: Duration) {
        let queue = self.queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = queue.enqueue(id).await {
                tracing::error!(video_id = %id, error = %e, "re-enqueue failed");
            }
        });
    }
}

/// A media file operation that failed: a full disk (or quota) is [`AppError::StorageFull`],
/// anything else internal.
fn internal(e: std::io::Error) -> AppError {
    if is_storage_full(&e) {
        return AppError::StorageFull(e.to_string());
    }
    AppError::Internal(anyhow::Error::new(e).context("media files"))
}

/// Whether `e` says the disk (or the user's quota) is full.
pub(crate) fn is_storage_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
