//! Uploads: streamed to a file under a generated name, probed, then admitted as a catalog entry
//! with its transcode job.

use std::path::PathBuf;

use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;
use tokio_stream::{Stream, StreamExt as _};

use super::{PROBE_DEADLINE, Pipeline, internal};
use crate::{
    domain::{VideoMeta, VideoStatus},
    error::{AppError, AppResult},
    media::{self, MediaError},
    service::{Caller, Catalog, StatusEvent, VideoView},
};

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
                // A client that stops sending holds a connection and a file: drop it. At
                // shutdown an upload still arriving is refused (its file removed) rather than
                // left to run into the end of the grace period.
                let next = tokio::select! {
                    next = tokio::time::timeout(self.config.upload_idle, chunks.next()) => {
                        next.map_err(|_| {
                            AppError::field(
                                "video_file",
                                format!(
                                    "The upload stalled: nothing arrived for {} s.",
                                    self.config.upload_idle.as_secs()
                                ),
                            )
                        })?
                    }
                    () = self.stopped() => {
                        return Err(AppError::Unavailable(
                            "the server is shutting down; an upload was refused".into(),
                        ));
                    }
                };
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
        let admit = async move { pipeline.admit(&catalog, &caller, meta, incoming).await };
        // The task keeps the request's id (for its logs and the job it queues).
        let request_id = crate::monitoring::current_request_id();
        let admit = tracing::Instrument::in_current_span(async move {
            match request_id {
                Some(id) => crate::monitoring::with_request_id(id, admit).await,
                None => admit.await,
            }
        });
        tokio::spawn(admit)
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
        let probe = self.probe_upload(&incoming).await?;
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
            return Err(internal(e));
        }
        incoming.keep = true;
        if let Err(e) = self.store.set_video_source(id, &relative).await {
            let _ = self.store.delete_video(id).await;
            let _ =
                tokio::fs::remove_dir_all(self.config.media_dir.join(format!("videos/{id}"))).await;
            return Err(e);
        }
        tracing::info!(
            video_id = %id,
            bytes = incoming.size,
            duration = probe.duration,
            width = probe.width,
            height = probe.height,
            "upload accepted"
        );
        // The answer shows the video as accepted (pending), before a worker can take it.
        let view = catalog.get(caller, id).await?;
        self.hub
            .publish(StatusEvent::new(
                id,
                VideoStatus::Pending,
                0.0,
                "queued",
                "",
            ))
            .await;
        if let Err(e) = self.queue.enqueue(id).await {
            // The row is pending: this process keeps trying, and the sweep queues it anyway.
            tracing::warn!(video_id = %id, error = %e, "enqueue failed; retrying until it is taken");
            self.enqueue_until_taken(id);
        }
        Ok(view)
    }

    /// Probes an upload on the blocking pool, a few at a time, each bounded in time (the permit
    /// stays with the probe until it really ends); what is no video is refused on `video_file`.
    async fn probe_upload(&self, incoming: &Incoming) -> AppResult<media::Probe> {
        let probe_path = incoming.path.clone();
        let max_pixels = self.config.max_pixels;
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
        probed.map_err(|e| match e {
            MediaError::NotAVideo(why) => AppError::field(
                "video_file",
                format!("Upload a valid video file: this one is {why}."),
            ),
            other => AppError::Internal(other.into()),
        })
    }
}
