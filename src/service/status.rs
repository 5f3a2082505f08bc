//! Live transcode status: workers publish events, every server process streams them to its
//! watchers. With Redis the events travel over pub/sub (any worker, any server); without, over
//! an in-process channel. The database row stays the source of truth: a watcher starts from it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_stream::StreamExt as _;

use crate::kv::Redis;

/// One status change of a video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// The video.
    pub video_id: i64,
    /// `pending`, `processing`, `ready` or `failed`.
    pub status: String,
    /// 0–100.
    pub percent: f64,
    /// What the worker is doing.
    pub step: String,
    /// Why it failed (or is retried).
    pub reason: String,
}

impl StatusEvent {
    /// Whether no event follows this one.
    pub fn is_final(&self) -> bool {
        self.status == "ready" || self.status == "failed"
    }
}

/// Publishes and fans out status events; cheap to clone.
#[derive(Clone)]
pub struct StatusHub {
    local: broadcast::Sender<StatusEvent>,
    redis: Option<(Redis, String)>,
}

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

    /// Sends `event` to every watcher (on every process with Redis).
    pub async fn publish(&self, event: StatusEvent) {
        if let Some((redis, channel)) = &self.redis
            && let Ok(payload) = serde_json::to_vec(&event)
        {
            let published = async {
                let mut conn = redis.conn().await.ok()?;
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(payload)
                    .query_async::<i64>(&mut *conn)
                    .await
                    .ok()
            }
            .await;
            if published.is_some() {
                return;
            }
            tracing::warn!("publishing a status event over Redis failed; local only");
        }
        let _ = self.local.send(event);
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.local.subscribe()
    }
}
