//! The transcode job queue. With Redis it is a stream with a consumer group: at-least-once
//! delivery to any worker process, entries of a dead worker are reclaimed once idle longer than
//! the visibility timeout (a live worker keeps its entry fresh with a heartbeat), and an entry
//! is acknowledged only after the database records the outcome. Without Redis it is an
//! in-process queue. Either way the database row stays the source of truth: a start-up sweep
//! enqueues every unfinished video again, so a lost queue (a Redis flush) loses no upload, and
//! a job for a finished or deleted video does nothing.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use redis::streams::{StreamAutoClaimReply, StreamReadOptions, StreamReadReply};
use tokio::sync::{Mutex, Notify};

use crate::{
    domain::VideoId,
    error::{AppError, AppResult},
    kv::Redis,
};

/// A job handed to a worker; acknowledge it when done.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The video to transcode.
    pub video_id: VideoId,
    /// The request that queued it (an upload), for the job's logs.
    pub request_id: Option<String>,
    entry: Option<String>,
}

/// How full the queue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// Jobs in the queue.
    pub jobs: u64,
    /// Age of the oldest.
    pub oldest: Option<std::time::Duration>,
}

/// The queue; cheap to clone. Which backend it runs on is its own business.
#[derive(Clone)]
pub struct JobQueue(Backend);

#[derive(Clone)]
enum Backend {
    /// In process (single-process deployments).
    Memory(Arc<MemoryQueue>),
    /// A Redis stream shared by every process.
    Redis(Arc<RedisQueue>),
}

/// In-process queue.
#[derive(Default)]
struct MemoryQueue {
    /// Waiting jobs, when each was queued, and by which request.
    jobs: Mutex<VecDeque<(VideoId, std::time::Instant, Option<String>)>>,
    ready: Notify,
}

/// Redis stream queue.
#[derive(Clone)]
struct RedisQueue {
    redis: Redis,
    stream: String,
    group: String,
    visibility: Duration,
}

const GROUP: &str = "workers";

impl JobQueue {
    /// An in-process queue.
    pub fn memory() -> Self {
        Self(Backend::Memory(Arc::new(MemoryQueue::default())))
    }

    /// The Redis stream queue; entries idle longer than `visibility` are taken over.
    pub fn redis(redis: Redis, visibility: Duration) -> Self {
        let stream = redis.key("jobs:transcode");
        Self(Backend::Redis(Arc::new(RedisQueue {
            redis,
            stream,
            group: GROUP.to_owned(),
            visibility,
        })))
    }

    /// Whether a job whose worker gave up on it comes back by itself (Redis redelivers an
    /// unacknowledged entry after the visibility timeout; the in-process queue forgets it).
    pub fn redelivers(&self) -> bool {
        matches!(self.0, Backend::Redis(_))
    }

    /// Adds a job (carrying the id of the request being served, if any).
    pub async fn enqueue(&self, video_id: VideoId) -> AppResult<()> {
        let request_id = crate::monitoring::current_request_id();
        match &self.0 {
            Backend::Memory(q) => {
                q.jobs
                    .lock()
                    .await
                    .push_back((video_id, std::time::Instant::now(), request_id));
                q.ready.notify_one();
                Ok(())
            }
            Backend::Redis(q) => {
                q.redis
                    .bounded(async {
                        let mut conn = q.redis.conn().await?;
                        let mut add = redis::cmd("XADD");
                        add.arg(&q.stream)
                            .arg("*")
                            .arg("video_id")
                            .arg(video_id.get());
                        if let Some(id) = &request_id {
                            add.arg("request_id").arg(id);
                        }
                        let _: String = add.query_async(&mut *conn).await.map_err(unavailable)?;
                        Ok(())
                    })
                    .await
            }
        }
    }

    /// Waits for the next job for `consumer` (a name unique per worker task).
    pub async fn next(&self, consumer: &str) -> AppResult<Delivery> {
        match &self.0 {
            Backend::Memory(q) => loop {
                let notified = q.ready.notified();
                if let Some((video_id, _, request_id)) = q.jobs.lock().await.pop_front() {
                    return Ok(Delivery {
                        video_id,
                        request_id,
                        entry: None,
                    });
                }
                notified.await;
            },
            Backend::Redis(q) => q.next(consumer).await,
        }
    }

    /// How many jobs the queue holds (with Redis: waiting and running, since an entry leaves
    /// the stream when acknowledged) and how old the oldest is.
    pub async fn depth(&self) -> AppResult<QueueDepth> {
        match &self.0 {
            Backend::Memory(q) => {
                let jobs = q.jobs.lock().await;
                Ok(QueueDepth {
                    jobs: jobs.len() as u64,
                    oldest: jobs.front().map(|(_, at, _)| at.elapsed()),
                })
            }
            Backend::Redis(q) => {
                q.redis
                    .bounded(async {
                        let mut conn = q.redis.conn().await?;
                        let (jobs, first): (u64, redis::streams::StreamRangeReply) = redis::pipe()
                            .cmd("XLEN")
                            .arg(&q.stream)
                            .cmd("XRANGE")
                            .arg(&q.stream)
                            .arg("-")
                            .arg("+")
                            .arg("COUNT")
                            .arg(1)
                            .query_async(&mut *conn)
                            .await
                            .map_err(unavailable)?;
                        // An entry id starts with its creation time in milliseconds.
                        let oldest = first
                            .ids
                            .first()
                            .and_then(|e| e.id.split('-').next()?.parse::<u64>().ok())
                            .and_then(|ms| {
                                let now = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .ok()?;
                                now.checked_sub(std::time::Duration::from_millis(ms))
                            });
                        Ok(QueueDepth { jobs, oldest })
                    })
                    .await
            }
        }
    }

    /// Keeps a running job's entry from being taken over.
    pub async fn heartbeat(&self, delivery: &Delivery, consumer: &str) -> AppResult<()> {
        match (&self.0, &delivery.entry) {
            (Backend::Redis(q), Some(entry)) => {
                q.redis
                    .bounded(async {
                        let mut conn = q.redis.conn().await?;
                        let _: redis::Value = redis::cmd("XCLAIM")
                            .arg(&q.stream)
                            .arg(&q.group)
                            .arg(consumer)
                            .arg(0)
                            .arg(entry)
                            .arg("JUSTID")
                            .query_async(&mut *conn)
                            .await
                            .map_err(unavailable)?;
                        Ok(())
                    })
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Removes a finished job (after its outcome is in the database).
    pub async fn ack(&self, delivery: &Delivery) -> AppResult<()> {
        match (&self.0, &delivery.entry) {
            (Backend::Redis(q), Some(entry)) => q.drop_entry(entry).await,
            _ => Ok(()),
        }
    }
}

impl RedisQueue {
    async fn ensure_group(&self, conn: &mut redis::aio::MultiplexedConnection) -> AppResult<()> {
        let created: Result<String, redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn next(&self, consumer: &str) -> AppResult<Delivery> {
        let mut conn = self.redis.dedicated().await?;
        self.ensure_group(&mut conn).await?;
        loop {
            // First, entries whose worker went quiet for longer than the visibility timeout,
            // paging through the whole pending list (Redis scans a bounded slice per call).
            let mut cursor = "0-0".to_owned();
            loop {
                let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                    .arg(&self.stream)
                    .arg(&self.group)
                    .arg(consumer)
                    .arg(u64::try_from(self.visibility.as_millis()).unwrap_or(u64::MAX))
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                for entry in &claimed.claimed {
                    match delivery_of(entry) {
                        Some(delivery) => return Ok(delivery),
                        None => self.drop_entry(&entry.id).await?,
                    }
                }
                if claimed.next_stream_id == "0-0" || claimed.next_stream_id.is_empty() {
                    break;
                }
                cursor = claimed.next_stream_id;
            }
            // Then new entries, waiting up to five seconds (then look for stale ones again).
            let options = StreamReadOptions::default()
                .group(&self.group, consumer)
                .count(1)
                .block(5_000);
            let read: Option<StreamReadReply> =
                redis::AsyncCommands::xread_options(&mut conn, &[&self.stream], &[">"], &options)
                    .await
                    .map_err(unavailable)?;
            let found = read
                .and_then(|r| r.keys.into_iter().next())
                .and_then(|k| k.ids.into_iter().next());
            if let Some(delivery) = found.as_ref().and_then(delivery_of) {
                return Ok(delivery);
            }
            if let Some(bad) = found {
                // Not one of ours (no video id): drop it rather than loop on it forever.
                self.drop_entry(&bad.id).await?;
            }
        }
    }

    async fn drop_entry(&self, id: &str) -> AppResult<()> {
        self.redis
            .bounded(async {
                let mut conn = self.redis.conn().await?;
                let _: (i64, i64) = redis::pipe()
                    .cmd("XACK")
                    .arg(&self.stream)
                    .arg(&self.group)
                    .arg(id)
                    .cmd("XDEL")
                    .arg(&self.stream)
                    .arg(id)
                    .query_async(&mut *conn)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            })
            .await
    }
}

fn delivery_of(entry: &redis::streams::StreamId) -> Option<Delivery> {
    let video_id: i64 = entry.get("video_id")?;
    Some(Delivery {
        video_id: VideoId::parse(video_id, "video_id").ok()?,
        request_id: entry.get("request_id"),
        entry: Some(entry.id.clone()),
    })
}

fn unavailable(e: redis::RedisError) -> AppError {
    AppError::Unavailable(format!("redis: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_carries_the_request_that_queued_it_and_the_depth_counts_it() {
        let queue = JobQueue::memory();
        let id = VideoId::from_db(7);
        crate::monitoring::with_request_id("upload-42".to_owned(), queue.enqueue(id))
            .await
            .expect("enqueue");
        queue.enqueue(VideoId::from_db(8)).await.expect("enqueue");
        let depth = queue.depth().await.expect("depth");
        assert_eq!(depth.jobs, 2);
        assert!(depth.oldest.is_some());
        let first = queue.next("c").await.expect("next");
        assert_eq!(
            (first.video_id, first.request_id.as_deref()),
            (id, Some("upload-42"))
        );
        let second = queue.next("c").await.expect("next");
        assert_eq!(second.request_id, None, "queued outside a request");
        assert_eq!(queue.depth().await.expect("depth").jobs, 0);
    }
}
