//! Live transcode status: workers publish events, every server process streams them to its
//! watchers. With Redis the events travel over pub/sub (any worker, any server); without, over
//! an in-process channel. The database row stays the source of truth: a watcher starts from it,
//! with the last progress event of a running job (kept in Redis, or in process) so a watcher that
//! joins mid-transcode sees where it is at once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_stream::StreamExt as _;

use crate::{
    domain::{VideoId, VideoStatus},
    kv::Redis,
};

/// One status change of a video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// The video.
    pub video_id: VideoId,
    /// Where it stands.
    pub status: VideoStatus,
    /// 0–100.
    pub percent: f64,
    /// What the worker is doing.
    pub step: String,
    /// Why it failed (or is retried).
    pub reason: String,
}

impl StatusEvent {
    /// An event of `video_id`.
    pub fn new(
        video_id: VideoId,
        status: VideoStatus,
        percent: f64,
        step: &str,
        reason: &str,
    ) -> Self {
        Self {
            video_id,
            status,
            percent,
            step: step.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// Whether no event follows this one.
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

/// Publishes and fans out status events; cheap to clone.
#[derive(Clone)]
pub struct StatusHub {
    local: broadcast::Sender<StatusEvent>,
    redis: Option<(Redis, String)>,
    /// The last event of each running job published by this process (without Redis).
    latest: Arc<Mutex<HashMap<VideoId, StatusEvent>>>,
    /// Set when the process stops (watchers end).
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

/// How long Redis keeps a job's last event: longer than any gap between two progress events of
/// a live job, short enough that a dead job's entry goes away by itself.
const LATEST_TTL_SECS: u64 = 600;

impl StatusHub {
    /// A hub; with `redis`, events cross processes (call [`StatusHub::start`]).
    pub fn new(redis: Option<Redis>) -> Self {
        let (local, _) = broadcast::channel(1024);
        Self {
            local,
            redis: redis.map(|r| {
                let channel = r.key("status");
                (r, channel)
            }),
            latest: Arc::default(),
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Relays Redis pub/sub into this process (reconnecting when Redis comes back).
    pub fn start(&self) {
        let Some((redis, channel)) = self.redis.clone() else {
            return;
        };
        let local = self.local.clone();
        tokio::spawn(async move {
            loop {
                match redis.pubsub().await {
                    Ok(mut pubsub) => {
                        if let Err(e) = pubsub.subscribe(&channel).await {
                            tracing::warn!(error = %e, "status subscription failed");
                        } else {
                            let mut messages = pubsub.on_message();
                            while let Some(message) = messages.next().await {
                                let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                                if let Ok(event) = serde_json::from_slice::<StatusEvent>(&payload) {
                                    let _ = local.send(event);
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "status subscription unavailable"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Sends `event` to every watcher (on every process with Redis), and keeps it as the job's
    /// latest while the job runs.
    pub async fn publish(&self, event: StatusEvent) {
        self.remember(&event);
        if let Some((redis, channel)) = &self.redis
            && let Ok(payload) = serde_json::to_vec(&event)
        {
            let latest = latest_key(redis, event.video_id);
            let published = redis
                .bounded(async {
                    let mut conn = redis.conn().await?;
                    let mut pipe = redis::pipe();
                    if event.status == VideoStatus::Processing {
                        pipe.set_ex(&latest, &payload, LATEST_TTL_SECS).ignore();
                    } else {
                        pipe.del(&latest).ignore();
                    }
                    pipe.publish(channel, &payload).ignore();
                    pipe.query_async::<()>(&mut *conn)
                        .await
                        .map_err(|e| crate::error::AppError::Unavailable(format!("redis: {e}")))
                })
                .await;
            if published.is_ok() {
                return;
            }
            tracing::warn!("publishing a status event over Redis failed; local only");
        }
        let _ = self.local.send(event);
    }

    /// The last progress event of `video_id`'s running job (from any process with Redis), if
    /// any.
    pub async fn latest(&self, video_id: VideoId) -> Option<StatusEvent> {
        if let Some((redis, _)) = &self.redis {
            let payload: Option<Vec<u8>> = redis
                .bounded(async {
                    let mut conn = redis.conn().await?;
                    redis::cmd("GET")
                        .arg(latest_key(redis, video_id))
                        .query_async(&mut *conn)
                        .await
                        .map_err(|e| crate::error::AppError::Unavailable(format!("redis: {e}")))
                })
                .await
                .ok()
                .flatten();
            if let Some(event) = payload.and_then(|p| serde_json::from_slice(&p).ok()) {
                return Some(event);
            }
        }
        self.latest.lock().ok()?.get(&video_id).cloned()
    }

    fn remember(&self, event: &StatusEvent) {
        if let Ok(mut latest) = self.latest.lock() {
            if event.status == VideoStatus::Processing {
                latest.insert(event.video_id, event.clone());
            } else {
                latest.remove(&event.video_id);
            }
        }
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.local.subscribe()
    }

    /// The process stops: every watcher's stream ends now, cleanly, instead of being cut when
    /// the grace period is over.
    pub fn shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether [`StatusHub::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once [`StatusHub::shutdown`] is called.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}

fn latest_key(redis: &Redis, video_id: VideoId) -> String {
    redis.key(&format!("status:latest:{video_id}"))
}
