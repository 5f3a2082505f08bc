//! `UploadVideo`: the metadata first (checked before any byte is stored) or after the file (as
//! multipart forms that put the file first send it), the bytes streamed to disk by the pipeline.

use std::sync::{Arc, Mutex};

use tonic::{Status, Streaming};

use super::{VideoGrpc, convert::meta_from_pb, pb};
use crate::{
    domain::VideoMeta,
    error::{AppError, AppResult},
    service::{Caller, VideoView},
};

use pb::upload_video_request::Payload;

impl VideoGrpc {
    /// Receives, probes and admits one upload for `caller` (already known to be a superuser).
    pub(super) async fn upload(
        &self,
        caller: &Caller,
        mut stream: Streaming<pb::UploadVideoRequest>,
    ) -> Result<VideoView, Status> {
        // The first message has the same time to arrive as any chunk.
        let first = tokio::time::timeout(self.pipeline.upload_idle(), stream.message())
            .await
            .map_err(|_| AppError::field("video_file", "The upload stalled: nothing arrived."))?;
        let (leading, first_chunk) = match first? {
            Some(pb::UploadVideoRequest {
                payload: Some(Payload::Header(header)),
            }) => (Some(header), None),
            Some(pb::UploadVideoRequest {
                payload: Some(Payload::Chunk(bytes)),
            }) => (None, Some(bytes)),
            _ => {
                return Err(AppError::field(
                    "header",
                    "Send the video's metadata, then its bytes (or the bytes, then the metadata).",
                )
                .into());
            }
        };
        let meta_first = match leading {
            Some(header) => {
                let limit = self.pipeline.upload_limit();
                if u64::try_from(header.size_bytes).unwrap_or(0) > limit {
                    return Err(AppError::TooLarge { limit }.into());
                }
                Some(meta_from_pb(header.metadata)?)
            }
            None => None,
        };
        let trailing = Arc::new(Mutex::new(None::<pb::UploadHeader>));
        let rest = chunks(stream, trailing.clone(), meta_first.is_some());
        let chunks = tokio_stream::StreamExt::chain(
            tokio_stream::iter(first_chunk.map(|b| Ok(bytes::Bytes::from(b)))),
            rest,
        );
        let incoming = self.pipeline.receive(chunks).await?;
        let meta = match meta_first {
            Some(meta) => meta,
            // Dropping `incoming` on an error removes the file.
            None => trailing_meta(&trailing)?,
        };
        Ok(self
            .pipeline
            .accept(&self.catalog, caller, meta, incoming)
            .await?)
    }
}

/// The file's bytes from the rest of the stream; a header after the bytes goes to `trailing`
/// (unless one came first).
fn chunks(
    stream: Streaming<pb::UploadVideoRequest>,
    trailing: Arc<Mutex<Option<pb::UploadHeader>>>,
    header_first: bool,
) -> impl tokio_stream::Stream<Item = AppResult<bytes::Bytes>> {
    tokio_stream::StreamExt::map(stream, move |message| {
        let mut slot = trailing
            .lock()
            .map_err(|_| AppError::Unavailable("upload".into()))?;
        match message {
            Ok(pb::UploadVideoRequest {
                payload: Some(Payload::Chunk(bytes)),
            }) if slot.is_none() => Ok(bytes::Bytes::from(bytes)),
            Ok(pb::UploadVideoRequest {
                payload: Some(Payload::Header(header)),
            }) if !header_first && slot.is_none() => {
                *slot = Some(header);
                Ok(bytes::Bytes::new())
            }
            Ok(_) => Err(AppError::field(
                "chunk",
                "Send the metadata once: before the file's bytes or after all of them.",
            )),
            // A chunk over the message limit is the client's mistake, not an outage.
            Err(status)
                if status.code() == tonic::Code::OutOfRange
                    && status.message().contains("message length too large") =>
            {
                Err(AppError::MessageTooLarge)
            }
            Err(status) => Err(AppError::Unavailable(format!(
                "upload interrupted: {}",
                status.message()
            ))),
        }
    })
}

fn trailing_meta(trailing: &Mutex<Option<pb::UploadHeader>>) -> AppResult<VideoMeta> {
    let header = trailing
        .lock()
        .ok()
        .and_then(|mut slot| slot.take())
        .ok_or_else(|| AppError::field("header", "The upload has no metadata."))?;
    meta_from_pb(header.metadata)
}
