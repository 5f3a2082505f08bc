//! One transcode job: claim the video, transcode into a working folder named by the claim
//! (progress published, heartbeats beside it), then record the outcome — ready, a retry, or a
//! failure for good — fenced by the claim token.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::{
    Pipeline,
    debris::{remove_old_generations, remove_working_folders},
    internal,
};
use crate::{
    domain::{Media, StoredRendition, Timestamp, VideoId, VideoStatus},
    error::{AppError, AppResult},
    media::{self, MediaError, Outputs},
    queue::Delivery,
    service::StatusEvent,
    store::{Claim, TranscodeClaim},
};

/// A claimed job's folders and token.
struct Job {
    id: VideoId,
    token: String,
    attempts: u32,
    /// `videos/<id>` under MEDIA_DIR.
    video_dir: PathBuf,
    /// `.tmp-<token>` inside it, renamed to `<token>` when done.
    work_dir: PathBuf,
}

impl Pipeline {
    /// Runs one job to an outcome recorded in the database.
    pub(super) async fn run(&self, delivery: &Delivery, consumer: &str) -> AppResult<()> {
        let id = delivery.video_id;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let stale_before = Timestamp::now().minus_secs(self.config.stale_after.as_secs());
        let claim = match self.store.claim_transcode(id, &token, stale_before).await? {
            Claim::Started(claim) => claim,
            Claim::Busy => {
                // A job held it lately: look again once its heartbeat would be stale, so a job
                // that died (its process killed) is taken over then, not at the next sweep.
                tracing::info!(video_id = %id, "another worker is transcoding it");
                self.recheck_later(id);
                return Ok(());
            }
            Claim::Done => {
                tracing::info!(video_id = %id, "nothing to do (finished or deleted)");
                return Ok(());
            }
        };
        let attempts = u32::try_from(claim.transcode_attempts).unwrap_or(u32::MAX);
        if attempts > self.config.max_attempts {
            let reason = format!("Transcoding failed {} times.", self.config.max_attempts);
            return self.fail(id, &token, &reason).await;
        }
        self.publish(id, VideoStatus::Processing, 0.0, "probing", "")
            .await;
        // The working folder is named by the claim, so a crashed job's folder is known as such;
        // this job holds the claim now, so every other working folder is a dead job's.
        let video_dir = self.config.media_dir.join(format!("videos/{id}"));
        remove_working_folders(&video_dir).await;
        let job = Job {
            id,
            work_dir: video_dir.join(format!(".tmp-{token}")),
            token,
            attempts,
            video_dir,
        };
        tracing::info!(video_id = %id, attempt = attempts, "transcoding");
        let started = std::time::Instant::now();
        let result = match tokio::fs::create_dir_all(&job.work_dir).await {
            Ok(()) => self.transcode(&job, &claim, delivery, consumer).await?,
            // A full disk, say: an attempt that failed like any other.
            Err(e) => Err(MediaError::Io(e)),
        };
        let outcome = match result {
            Ok(outputs) => self.finish(&job, &outputs).await,
            Err(e) => {
                self.discard(id, &job.video_dir, &job.work_dir).await;
                self.after_failure(&job, e).await
            }
        }?;
        crate::monitoring::transcode_ended(outcome, started.elapsed());
        Ok(())
    }

    /// Transcodes on the blocking pool, with progress forwarded to the hub and a heartbeat
    /// that stops the transcode once the job lost its claim (deleted, taken over).
    async fn transcode(
        &self,
        job: &Job,
        claim: &TranscodeClaim,
        delivery: &Delivery,
        consumer: &str,
    ) -> AppResult<Result<Outputs, MediaError>> {
        let id = job.id;
        let source = self.config.media_dir.join(&claim.video_file);
        let stop = Arc::new(AtomicBool::new(false));
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
        let forward = {
            let pipeline = self.clone();
            tokio::spawn(async move {
                while let Some(p) = progress_rx.recv().await {
                    let p: media::Progress = p;
                    pipeline
                        .publish(id, VideoStatus::Processing, p.percent, p.step, "")
                        .await;
                }
            })
        };
        let guard = {
            let (store, queue, stop) = (self.store.clone(), self.queue.clone(), stop.clone());
            let (delivery, consumer, token) =
                (delivery.clone(), consumer.to_owned(), job.token.clone());
            let pipeline = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                        // The process stops: the transcode ends at its next packet.
                        () = pipeline.stopped() => {
                            stop.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                    // Deleted, or taken over after this process stalled: stop.
                    if matches!(store.heartbeat_transcode(id, &token).await, Ok(false)) {
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    if let Err(e) = queue.heartbeat(&delivery, &consumer).await {
                        tracing::warn!(video_id = %id, error = %e, "heartbeat failed");
                    }
                }
            })
        };
        let options = self.config.transcode.clone();
        let max_pixels = self.config.max_pixels;
        let job_dir = job.work_dir.clone();
        let result = tokio::task::spawn_blocking(move || {
            let probe = media::probe(&source, max_pixels)?;
            let mut progress = |p: media::Progress| {
                let _ = progress_tx.send(p);
            };
            let stop = || stop.load(Ordering::Relaxed);
            media::transcode(&source, &job_dir, &probe, &options, &mut progress, &stop)
        })
        .await
        .map_err(|e| AppError::Internal(e.into()));
        guard.abort();
        let _ = forward.await;
        result
    }

    /// Publishes the job's outputs as the video's media, if the job still holds it; the outcome
    /// for the metrics.
    async fn finish(&self, job: &Job, outputs: &Outputs) -> AppResult<&'static str> {
        let id = job.id;
        let final_dir = job.video_dir.join(&job.token);
        tokio::fs::rename(&job.work_dir, &final_dir)
            .await
            .map_err(internal)?;
        let media = media_of(&format!("videos/{id}/{}", job.token), outputs);
        if !self
            .store
            .finish_transcode(id, &job.token, &media, outputs.duration)
            .await?
        {
            // Deleted meanwhile, or another job holds it now: these outputs are unused.
            self.discard(id, &job.video_dir, &final_dir).await;
            return Ok("stopped");
        }
        remove_old_generations(&job.video_dir, &job.token).await;
        self.publish(id, VideoStatus::Ready, 100.0, "done", "")
            .await;
        tracing::info!(
            video_id = %id,
            renditions = outputs.renditions.len(),
            "ready"
        );
        Ok("ready")
    }

    /// Records why a transcode ended without outputs: stopped (nothing to record), a source
    /// that can never be transcoded (failed for good), or an error worth another attempt.
    async fn after_failure(&self, job: &Job, e: MediaError) -> AppResult<&'static str> {
        let (id, token, attempts) = (job.id, job.token.as_str(), job.attempts);
        match e {
            MediaError::Cancelled if self.is_stopping() => self.release(job).await,
            MediaError::Cancelled => {
                tracing::info!(video_id = %id, "transcode stopped: deleted or taken over");
                Ok("stopped")
            }
            MediaError::NotAVideo(why) => {
                let reason = format!("The source is not a playable video: {why}.");
                self.fail(id, token, &reason).await.map(|()| "failed")
            }
            MediaError::Exceeded(why) => {
                let reason = format!("The source cannot be transcoded: {why}.");
                self.fail(id, token, &reason).await.map(|()| "failed")
            }
            e => {
                tracing::error!(video_id = %id, attempt = attempts, error = %e, "transcode failed");
                if attempts >= self.config.max_attempts {
                    return self
                        .fail(id, token, &format!("Transcoding failed: {e}."))
                        .await
                        .map(|()| "failed");
                }
                let reason = format!("Attempt {attempts} failed ({e}); retrying.");
                if !self
                    .store
                    .set_transcode_status(id, token, VideoStatus::Pending, &reason)
                    .await?
                {
                    return Ok("stopped");
                }
                self.publish(id, VideoStatus::Pending, 0.0, "retrying", &reason)
                    .await;
                self.enqueue_later(
                    id,
                    self.config.retry_delay * 2u32.saturating_pow(attempts - 1),
                );
                Ok("retry")
            }
        }
    }

    /// Gives a job this process stops back: the claim released (the video pending again, if
    /// the job still held it, the run not counted as an attempt) and the video queued again
    /// for any worker.
    async fn release(&self, job: &Job) -> AppResult<&'static str> {
        let released = self.store.release_transcode(job.id, &job.token).await?;
        if released {
            self.publish(job.id, VideoStatus::Pending, 0.0, "queued", "")
                .await;
            if let Err(e) = self.queue.enqueue(job.id).await {
                // The row is pending: the next sweep queues it.
                tracing::warn!(video_id = %job.id, error = %e, "re-enqueue at shutdown failed");
            }
        }
        tracing::info!(video_id = %job.id, released, "transcode abandoned: the process stops");
        Ok("released")
    }

    /// Removes a job's own outputs; all of the video's files once it is deleted (a deletion
    /// racing a running job may leave what the job was still writing).
    async fn discard(&self, id: VideoId, video_dir: &Path, own: &Path) {
        if matches!(self.store.video(id).await, Ok(None)) {
            let _ = tokio::fs::remove_dir_all(video_dir).await;
        } else {
            let _ = tokio::fs::remove_dir_all(own).await;
        }
    }

    async fn fail(&self, id: VideoId, token: &str, reason: &str) -> AppResult<()> {
        if !self
            .store
            .set_transcode_status(id, token, VideoStatus::Failed, reason)
            .await?
        {
            return Ok(());
        }
        self.publish(id, VideoStatus::Failed, 0.0, "failed", reason)
            .await;
        tracing::warn!(video_id = %id, reason, "transcode failed for good");
        Ok(())
    }

    async fn publish(
        &self,
        id: VideoId,
        status: VideoStatus,
        percent: f64,
        step: &str,
        reason: &str,
    ) {
        self.hub
            .publish(StatusEvent::new(id, status, percent, step, reason))
            .await;
    }
}

/// The media of a finished transcode in `dir` (relative to MEDIA_DIR).
fn media_of(dir: &str, outputs: &Outputs) -> Media {
    let renditions = outputs
        .renditions
        .iter()
        .map(|r| StoredRendition {
            name: r.rendition.name.clone(),
            width: r.rendition.width,
            height: r.rendition.height,
            bitrate: r.average_bandwidth,
            mp4: format!("{dir}/{}", r.mp4),
            playlist: format!("{dir}/{}", r.playlist),
        })
        .collect();
    Media::finished(
        String::new(),
        format!("{dir}/{}", outputs.poster),
        format!("{dir}/{}", outputs.vtt),
        format!("{dir}/{}", outputs.master_playlist),
        renditions,
    )
}
