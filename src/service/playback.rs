//! Playback use cases, whatever the transport: signed media URLs, answer validators (etags),
//! a rendition streamed from an offset, and a video's live transcode status (from the row,
//! then the job's events, with the database checked when events may have been missed).

use std::{path::PathBuf, time::Duration};

use bytes::Bytes;
use tokio::{
    io::{AsyncReadExt as _, AsyncSeekExt as _},
    sync::{broadcast::error::RecvError, mpsc},
};
use tokio_stream::wrappers::ReceiverStream;
use url::Url;

use super::{Caller, Catalog, StatusEvent, StatusHub, VideoView};
use crate::{
    domain::{Rung, VideoId, VideoStatus},
    error::{AppError, AppResult},
    security::{AnswerUrls, MediaSigner},
};

/// Bytes per streamed chunk.
const STREAM_CHUNK: usize = 256 * 1024;
/// How often a status watcher asks the database whether the job ended (a lost message, a
/// deleted video): events arrive as they happen, this only bounds how long a watcher can hang.
const STATUS_CHECK: Duration = Duration::from_secs(5);

/// Which file of a video to stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The best there is: the largest rung, else the original.
    Best,
    /// This rung.
    Rung(Rung),
    /// The uploaded original.
    Original,
}

/// A file being streamed.
pub struct Download {
    /// The rung served (None: the original).
    pub rung: Option<Rung>,
    /// What the client sees as its name: `720p`, a small source's own `240p`, or `original`.
    pub name: String,
    /// `video/mp4` or `application/octet-stream`.
    pub content_type: &'static str,
    /// Size of the whole file.
    pub total: u64,
    /// Chunks from the offset on, each with its own offset.
    pub chunks: ReceiverStream<AppResult<(u64, Bytes)>>,
}

/// Playback; cheap to clone.
#[derive(Clone)]
pub struct Playback {
    catalog: Catalog,
    hub: StatusHub,
    media_dir: PathBuf,
    signer: MediaSigner,
    /// `<PUBLIC_URL>media/`, the base of every media URL.
    media_base: String,
    /// How long a download waits for a client that stopped reading before it ends.
    stall_timeout: Duration,
}

impl Playback {
    /// Files under `media_dir`, URLs under `public_url` signed by `signer`.
    pub fn new(
        catalog: Catalog,
        hub: StatusHub,
        media_dir: PathBuf,
        signer: MediaSigner,
        public_url: Url,
    ) -> Self {
        Self {
            catalog,
            hub,
            media_dir,
            signer,
            media_base: public_url
                .join("media/")
                .map(String::from)
                .unwrap_or_default(),
            stall_timeout: Duration::from_secs(60),
        }
    }

    /// Downloads end once their client has taken no chunk for `timeout` (WRITE_STALL_TIMEOUT).
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// The media URLs of one answer, valid until `expires` (one
    /// [`MediaSigner::current_expiry`] per answer): build one per answer, so each video's folder
    /// is signed once for all its files.
    pub fn media_urls(&self, expires: u64) -> AnswerUrls<'_> {
        self.signer.urls(&self.media_base, expires)
    }

    /// The etag of a request (`request`: its canonical bytes, without the client's validator)
    /// as `caller` sees it, and whether `if_none_match` names it: then the caller already holds
    /// the answer. Media URLs are part of an answer, so their base and expiry are too.
    pub async fn etag(
        &self,
        caller: &Caller,
        request: &[u8],
        if_none_match: &str,
    ) -> (String, bool) {
        let mut bytes = request.to_vec();
        bytes.extend_from_slice(self.media_base.as_bytes());
        bytes.extend_from_slice(&MediaSigner::current_expiry().to_be_bytes());
        let etag = self.catalog.etag(caller, &bytes).await;
        let unchanged = !etag.is_empty() && etag == if_none_match;
        (etag, unchanged)
    }

    /// Streams a file of video `id` from byte `offset`; the reader waits for the client and
    /// stops when the client goes away.
    pub async fn stream(
        &self,
        caller: &Caller,
        id: VideoId,
        wanted: Wanted,
        offset: u64,
    ) -> AppResult<Download> {
        let view = self.catalog.get(caller, id).await?;
        let media = &view.record.media;
        let (rung, relative) = match wanted {
            Wanted::Best => media.best_file().ok_or(AppError::NotFound("rendition"))?,
            Wanted::Rung(rung) => (Some(rung), media.rungs.get(rung)),
            Wanted::Original => (None, media.video_file.as_str()),
        };
        if relative.is_empty() {
            return Err(AppError::NotFound("rendition"));
        }
        let name = match rung {
            None => "original".to_owned(),
            Some(rung) => media
                .renditions
                .by_mp4(relative)
                .map_or_else(|| rung.as_str().to_owned(), |stored| stored.name.clone()),
        };
        // Paths come from the database, written by the pipeline; never from the request.
        let mut file = tokio::fs::File::open(self.media_dir.join(relative))
            .await
            .map_err(|_| AppError::NotFound("rendition"))?;
        let total = file.metadata().await.map_err(io)?.len();
        if offset > total {
            return Err(AppError::OutOfRange(format!(
                "offset {offset} is past the end ({total} bytes)"
            )));
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io)?;
        // A small channel: the reader waits for the client (HTTP/2 flow control), and stops
        // when the client goes away (the receiver is dropped) or takes nothing for the stall
        // timeout (its file and task are freed; what is queued is at most two chunks).
        let (tx, rx) = mpsc::channel(2);
        let stall = self.stall_timeout;
        tokio::spawn(async move {
            let _open = crate::monitoring::OpenStream::new("download");
            let mut at = offset;
            loop {
                let mut buf = vec![0u8; STREAM_CHUNK];
                let n = match file.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(io(e))).await;
                        return;
                    }
                };
                buf.truncate(n);
                match tokio::time::timeout(stall, tx.send(Ok((at, Bytes::from(buf))))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        tracing::info!(at, "a download stalled: its client stopped reading");
                        return;
                    }
                }
                at += n as u64;
            }
        });
        Ok(Download {
            rung,
            name,
            content_type: if relative.ends_with(".mp4") {
                "video/mp4"
            } else {
                "application/octet-stream"
            },
            total,
            chunks: ReceiverStream::new(rx),
        })
    }

    /// Video `id`'s status from now until it is final: where it stands (mid-transcode, where
    /// the job is, so a reconnecting progress bar does not jump back to 0), then every event.
    pub async fn watch(
        &self,
        caller: &Caller,
        id: VideoId,
    ) -> AppResult<ReceiverStream<AppResult<StatusEvent>>> {
        // Subscribe before reading the current state: no event falls in between.
        let mut events = self.hub.subscribe();
        let view = self.catalog.get(caller, id).await?;
        // A video made from metadata alone has no file and no job: nothing will follow.
        let no_job = view.record.media.video_file.is_empty();
        let first = match self.hub.latest(id).await {
            Some(latest)
                if view.record.status == VideoStatus::Processing
                    && latest.status == VideoStatus::Processing =>
            {
                latest
            }
            _ => event_of(&view),
        };
        let (tx, rx) = mpsc::channel(16);
        let (catalog, caller, hub) = (self.catalog.clone(), caller.clone(), self.hub.clone());
        tokio::spawn(async move {
            let _open = crate::monitoring::OpenStream::new("status");
            let done = first.is_final() || no_job;
            if tx.send(Ok(first)).await.is_err() || done {
                return;
            }
            let mut check = tokio::time::interval(STATUS_CHECK);
            check.tick().await;
            loop {
                let event = tokio::select! {
                    received = events.recv() => match received {
                        Ok(event) if event.video_id == id => Some(event),
                        Ok(_) => continue,
                        // Missed events: the database says where it is.
                        Err(RecvError::Lagged(_)) => {
                            catalog.get(&caller, id).await.map(|view| Some(event_of(&view)))
                                .unwrap_or_else(|e| { let _ = tx.try_send(Err(e)); None })
                        }
                        Err(RecvError::Closed) => return,
                    },
                    // A lost message or a deleted video must not leave the watcher hanging.
                    _ = check.tick() => match catalog.get(&caller, id).await {
                        Ok(view) if view.record.status.is_final() => Some(event_of(&view)),
                        Ok(_) if tx.is_closed() => return,
                        Ok(_) => continue,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    },
                    // The server stops: the stream ends cleanly (the client reconnects to
                    // another server, which starts from the database).
                    () = hub.stopped() => return,
                };
                let Some(event) = event else { return };
                let done = event.is_final();
                if tx.send(Ok(event)).await.is_err() || done {
                    return;
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

/// The current state of a video as an event (where a watcher starts).
fn event_of(view: &VideoView) -> StatusEvent {
    let r = &view.record;
    let percent = if r.status == VideoStatus::Ready {
        100.0
    } else {
        0.0
    };
    StatusEvent::new(r.id, r.status, percent, "", &r.status_reason)
}

fn io(e: std::io::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(e).context("media file"))
}
