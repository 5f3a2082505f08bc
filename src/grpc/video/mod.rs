//! `videoflix.v1.VideoService`: the catalog, favorites and watch progress, uploads, streaming
//! and live transcoding status.

use std::pin::Pin;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use url::Url;

use super::{
    context::throttled_caller,
    pb::{self, video_service_server::VideoService},
};
use crate::{
    domain::{
        FieldError, Genre, Language, Ordering, PageToken, RawVideoMeta, VideoMeta, VideoStatus,
    },
    error::AppError,
    security::MediaSigner,
    service::{
        Accounts, Caller, Catalog, DEFAULT_PAGE_SIZE, ListRequest, MAX_PAGE_SIZE, Paging, Pipeline,
        StatusEvent, VideoPatch, VideoView,
    },
    store::{Timestamp, VideoFilter},
};

/// gRPC face of [`Catalog`].
#[derive(Clone)]
pub struct VideoGrpc {
    accounts: Accounts,
    catalog: Catalog,
    pipeline: Pipeline,
    media_dir: std::path::PathBuf,
    signer: MediaSigner,
    public_url: Url,
    trust_proxy: bool,
}

impl VideoGrpc {
    /// Serves `catalog` and `pipeline`, authenticating through `accounts`; media files live in
    /// `media_dir` and their URLs start at `public_url`.
    pub fn new(
        accounts: Accounts,
        catalog: Catalog,
        pipeline: Pipeline,
        media_dir: std::path::PathBuf,
        signer: MediaSigner,
        public_url: Url,
        trust_proxy: bool,
    ) -> Self {
        Self {
            accounts,
            catalog,
            pipeline,
            media_dir,
            signer,
            public_url,
            trust_proxy,
        }
    }

    /// The etag of `request` (its if_none_match already taken out) as `caller` sees it, and
    /// whether `if_none_match` names it: then the caller already holds the answer.
    async fn etag<M: prost::Message>(
        &self,
        caller: &Caller,
        request: &M,
        if_none_match: &str,
    ) -> (String, bool) {
        let mut bytes = request.encode_to_vec();
        // Media URLs are part of the answer: their base and their expiry.
        bytes.extend_from_slice(self.public_url.as_str().as_bytes());
        bytes.extend_from_slice(&MediaSigner::current_expiry().to_be_bytes());
        let etag = self.catalog.etag(caller, &bytes).await;
        let unchanged = !etag.is_empty() && etag == if_none_match;
        (etag, unchanged)
    }

    /// Authenticates and throttles: anonymous (or bad-token) calls per address, users per user.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        // The gateway's later pages of one REST request were charged with its first.
        let charged = request
            .extensions()
            .get::<videoflix_gateway::AlreadyThrottled>()
            .is_some();
        Ok(throttled_caller(
            &self.accounts,
            &self.catalog,
            request,
            self.trust_proxy,
            charged,
        )
        .await?)
    }

    /// The signed, absolute URL of a stored media path ('' when there is none).
    fn media_url(&self, path: &str, expires: u64) -> String {
        if path.is_empty() {
            return String::new();
        }
        self.signer
            .sign(path, expires)
            .and_then(|signed| self.public_url.join(&format!("media/{signed}")).ok())
            .map(String::from)
            .unwrap_or_default()
    }

    fn video_pb(&self, view: VideoView) -> pb::Video {
        let expires = MediaSigner::current_expiry();
        let r = view.record;
        let status = status_pb(&r.status);
        pb::Video {
            id: r.id,
            genre: genre_pb(r.genre()) as i32,
            language: language_pb(r.language()) as i32,
            // Personal data of the uploader only for superusers; others see who, not how to
            // reach them.
            uploaded_by: r.uploaded_by.map(|id| {
                let contact = |field: &Option<String>| {
                    view.uploader_contact
                        .then(|| field.clone())
                        .flatten()
                        .unwrap_or_default()
                };
                pb::User {
                    id,
                    email: contact(&r.uploader_email),
                    phone: contact(&r.uploader_phone),
                    address: contact(&r.uploader_address),
                    is_guest: false,
                    is_superuser: false,
                }
            }),
            uploaded_at: Some(timestamp_pb(r.uploaded_at)),
            updated_at: Some(timestamp_pb(r.updated_at)),
            duration_seconds: r.duration,
            status: status as i32,
            status_reason: r.status_reason.clone(),
            is_favorite: view.is_favorite,
            progress_seconds: view.progress,
            media: Some(pb::VideoMedia {
                original_url: self.media_url(&r.video_file, expires),
                poster_url: self.media_url(&r.poster, expires),
                thumbnails_vtt_url: self.media_url(&r.vtt_file, expires),
                hd360_url: self.media_url(&r.hd360, expires),
                hd480_url: self.media_url(&r.hd480, expires),
                hd720_url: self.media_url(&r.hd720, expires),
                hd1080_url: self.media_url(&r.hd1080, expires),
                hls_url: self.media_url(&r.hls, expires),
                renditions: r
                    .renditions
                    .0
                    .iter()
                    .map(|rendition| pb::MediaRendition {
                        name: rendition.name.clone(),
                        rendition: rung_pb(&rendition.name) as i32,
                        width: i32::try_from(rendition.width).unwrap_or(i32::MAX),
                        height: i32::try_from(rendition.height).unwrap_or(i32::MAX),
                        bitrate: i64::try_from(rendition.bitrate).unwrap_or(i64::MAX),
                        url: self.media_url(&rendition.mp4, expires),
                        hls_url: self.media_url(&rendition.playlist, expires),
                    })
                    .collect(),
            }),
            title: r.title.clone(),
            description: r.description.clone(),
            author: r.author.clone(),
        }
    }

    fn videos_pb(&self, views: Vec<VideoView>) -> Vec<pb::Video> {
        views.into_iter().map(|v| self.video_pb(v)).collect()
    }
}

/// The ladder rung of a rendition name (UNSPECIFIED for a small source's own size).
fn rung_pb(name: &str) -> pb::Rendition {
    match name {
        "360p" => pb::Rendition::Rendition360p,
        "480p" => pb::Rendition::Rendition480p,
        "720p" => pb::Rendition::Rendition720p,
        "1080p" => pb::Rendition::Rendition1080p,
        _ => pb::Rendition::Unspecified,
    }
}

/// The file of `rendition` (UNSPECIFIED: the best one there is) and what it is.
fn rendition_file(
    record: &crate::store::VideoRecord,
    rendition: pb::Rendition,
) -> (&str, pb::Rendition) {
    let slots = [
        (pb::Rendition::Rendition1080p, &record.hd1080),
        (pb::Rendition::Rendition720p, &record.hd720),
        (pb::Rendition::Rendition480p, &record.hd480),
        (pb::Rendition::Rendition360p, &record.hd360),
        (pb::Rendition::Original, &record.video_file),
    ];
    if rendition == pb::Rendition::Unspecified {
        return slots
            .into_iter()
            .find(|(_, path)| !path.is_empty())
            .map_or(("", pb::Rendition::Unspecified), |(r, path)| {
                (path.as_str(), r)
            });
    }
    let path = slots
        .into_iter()
        .find(|(r, _)| *r == rendition)
        .map_or("", |(_, path)| path.as_str());
    (path, rendition)
}

fn genre_pb(genre: Option<Genre>) -> pb::Genre {
    match genre {
        None => pb::Genre::Unspecified,
        Some(Genre::Documentary) => pb::Genre::Documentary,
        Some(Genre::Action) => pb::Genre::Action,
        Some(Genre::Horror) => pb::Genre::Horror,
        Some(Genre::Drama) => pb::Genre::Drama,
        Some(Genre::Technic) => pb::Genre::Technic,
    }
}

fn language_pb(language: Option<Language>) -> pb::Language {
    match language {
        None => pb::Language::Unspecified,
        Some(Language::French) => pb::Language::French,
        Some(Language::English) => pb::Language::English,
        Some(Language::German) => pb::Language::German,
    }
}

fn genre_from_pb(value: i32) -> Result<Option<Genre>, FieldError> {
    match pb::Genre::try_from(value) {
        Ok(pb::Genre::Unspecified) => Ok(None),
        Ok(pb::Genre::Documentary) => Ok(Some(Genre::Documentary)),
        Ok(pb::Genre::Action) => Ok(Some(Genre::Action)),
        Ok(pb::Genre::Horror) => Ok(Some(Genre::Horror)),
        Ok(pb::Genre::Drama) => Ok(Some(Genre::Drama)),
        Ok(pb::Genre::Technic) => Ok(Some(Genre::Technic)),
        Err(_) => Err(FieldError::new(
            "genre",
            "Not a valid choice. Choose one of: documentary, action, horror, drama, technic.",
        )),
    }
}

fn language_from_pb(value: i32) -> Result<Option<Language>, FieldError> {
    match pb::Language::try_from(value) {
        Ok(pb::Language::Unspecified) => Ok(None),
        Ok(pb::Language::French) => Ok(Some(Language::French)),
        Ok(pb::Language::English) => Ok(Some(Language::English)),
        Ok(pb::Language::German) => Ok(Some(Language::German)),
        Err(_) => Err(FieldError::new(
            "language",
            format!("Unknown language {value}."),
        )),
    }
}

fn timestamp_pb(ts: Timestamp) -> prost_types::Timestamp {
    let micros = ts.micros();
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

/// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z (the range of google.protobuf
/// .Timestamp, which both databases store).
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

fn micros_from_pb(
    ts: Option<&prost_types::Timestamp>,
    field: &'static str,
) -> Result<Option<i64>, FieldError> {
    let Some(t) = ts else { return Ok(None) };
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(FieldError::new(
            field,
            "The time must lie between the years 1 and 9999.",
        ));
    }
    Ok(Some(t.seconds * 1_000_000 + i64::from(t.nanos) / 1000))
}

/// Page size: 0 → default, above the maximum → the maximum, negative → error.
fn page_size(raw: i32) -> Result<i64, FieldError> {
    match i64::from(raw) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(FieldError::new(
            "page_size",
            "The page size must not be negative.",
        )),
        n => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

fn search(raw: &str) -> Result<Option<String>, FieldError> {
    let value = raw.trim().to_lowercase();
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            "search",
            "The search text contains control characters.",
        ));
    }
    if value.chars().count() > 100 {
        return Err(FieldError::new(
            "search",
            "The search text is longer than 100 characters.",
        ));
    }
    Ok(Some(value).filter(|v| !v.is_empty()))
}

fn positive_id(id: i64, field: &'static str) -> Result<i64, FieldError> {
    if id > 0 {
        Ok(id)
    } else {
        Err(FieldError::new(field, "A positive video id is required."))
    }
}

/// Offset paging for the small per-user lists, as an opaque token.
fn offset_token(offset: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o|{offset}"))
}

fn offset_from_token(raw: &str) -> Result<i64, FieldError> {
    if raw.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.strip_prefix("o|").and_then(|n| n.parse::<i64>().ok()))
        .filter(|n| *n >= 0)
        .ok_or_else(|| FieldError::new("page_token", "Invalid page token."))
}

fn meta_from_pb(meta: Option<pb::VideoMetadata>) -> Result<VideoMeta, AppError> {
    let meta = meta.unwrap_or_default();
    let genre = genre_from_pb(meta.genre)?;
    let language = language_from_pb(meta.language)?;
    VideoMeta::parse(&RawVideoMeta {
        title: &meta.title,
        description: &meta.description,
        author: &meta.author,
        genre: genre.map_or("", Genre::as_str),
        language: language.map_or("", Language::as_str),
    })
    .map_err(AppError::Validation)
}

type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Bytes per StreamVideo message.
const STREAM_CHUNK: usize = 256 * 1024;

fn status_pb(status: &str) -> pb::VideoStatus {
    match status.parse::<VideoStatus>() {
        Ok(VideoStatus::Pending) => pb::VideoStatus::Pending,
        Ok(VideoStatus::Processing) => pb::VideoStatus::Processing,
        Ok(VideoStatus::Ready) => pb::VideoStatus::Ready,
        Ok(VideoStatus::Failed) => pb::VideoStatus::Failed,
        Err(()) => pb::VideoStatus::Unspecified,
    }
}

fn event_pb(event: &StatusEvent) -> pb::WatchTranscodeStatusResponse {
    pb::WatchTranscodeStatusResponse {
        video_id: event.video_id,
        status: status_pb(&event.status) as i32,
        percent: event.percent,
        step: event.step.clone(),
        reason: event.reason.clone(),
    }
}

/// The current state of a video as an event (where a watcher starts).
fn event_of(view: &VideoView) -> StatusEvent {
    let r = &view.record;
    StatusEvent {
        video_id: r.id,
        status: r.status.clone(),
        percent: if r.status == "ready" { 100.0 } else { 0.0 },
        step: String::new(),
        reason: r.status_reason.clone(),
    }
}

#[tonic::async_trait]
impl VideoService for VideoGrpc {
    type StreamVideoStream = ServerStream<pb::StreamVideoResponse>;
    type WatchTranscodeStatusStream = ServerStream<pb::WatchTranscodeStatusResponse>;

    async fn list_videos(
        &self,
        request: Request<pb::ListVideosRequest>,
    ) -> Result<Response<pb::ListVideosResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut r = request.into_inner();
        let if_none_match = std::mem::take(&mut r.if_none_match);
        let ordering = Ordering::parse(&r.ordering).map_err(AppError::from)?;
        let paging = match (r.page_token.is_empty(), r.page) {
            (true, 0) => Paging::Cursor(None),
            (false, 0) => Paging::Cursor(Some(
                PageToken::parse(&r.page_token, ordering).map_err(AppError::from)?,
            )),
            (true, n) if n > 0 => Paging::Number(i64::from(n)),
            (true, _) => return Err(AppError::field("page", "Invalid page.").into()),
            (false, _) => {
                return Err(AppError::field("page", "Give page_token or page, not both.").into());
            }
        };
        if r.uploaded_by < 0 {
            return Err(AppError::field("uploaded_by", "Invalid user id.").into());
        }
        let filter = VideoFilter {
            genre: genre_from_pb(r.genre).map_err(AppError::from)?,
            language: language_from_pb(r.language).map_err(AppError::from)?,
            uploaded_by: Some(r.uploaded_by).filter(|id| *id > 0),
            favorites_of: None,
            uploaded_after: micros_from_pb(r.uploaded_after.as_ref(), "uploaded_after")
                .map_err(AppError::from)?,
            updated_after: micros_from_pb(r.updated_after.as_ref(), "updated_after")
                .map_err(AppError::from)?,
            search: search(&r.search).map_err(AppError::from)?,
        };
        let page_size = page_size(r.page_size).map_err(AppError::from)?;
        let (etag, unchanged) = self.etag(&caller, &r, &if_none_match).await;
        if unchanged {
            return Ok(Response::new(pb::ListVideosResponse {
                etag,
                not_modified: true,
                ..Default::default()
            }));
        }
        let page = self
            .catalog
            .list(
                &caller,
                ListRequest {
                    filter,
                    only_favorites: r.is_favorite,
                    ordering,
                    page_size,
                    paging,
                },
            )
            .await?;
        Ok(Response::new(pb::ListVideosResponse {
            next_page_token: page.next.map(|t| t.encode()).unwrap_or_default(),
            total_size: page.total,
            videos: self.videos_pb(page.videos),
            etag,
            not_modified: false,
        }))
    }

    async fn get_video(
        &self,
        request: Request<pb::GetVideoRequest>,
    ) -> Result<Response<pb::GetVideoResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut r = request.into_inner();
        let if_none_match = std::mem::take(&mut r.if_none_match);
        let id = positive_id(r.id, "id").map_err(AppError::from)?;
        let (etag, unchanged) = self.etag(&caller, &r, &if_none_match).await;
        if unchanged {
            return Ok(Response::new(pb::GetVideoResponse {
                video: None,
                etag,
                not_modified: true,
            }));
        }
        let view = self.catalog.get(&caller, id).await?;
        Ok(Response::new(pb::GetVideoResponse {
            video: Some(self.video_pb(view)),
            etag,
            not_modified: false,
        }))
    }

    async fn list_recent_videos(
        &self,
        request: Request<pb::ListRecentVideosRequest>,
    ) -> Result<Response<pb::ListRecentVideosResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut r = request.into_inner();
        let if_none_match = std::mem::take(&mut r.if_none_match);
        let exclude = Some(r.to_exclude_id).filter(|id| *id > 0);
        let (etag, unchanged) = self.etag(&caller, &r, &if_none_match).await;
        if unchanged {
            return Ok(Response::new(pb::ListRecentVideosResponse {
                videos: Vec::new(),
                etag,
                not_modified: true,
            }));
        }
        let views = self.catalog.recent(&caller, exclude).await?;
        Ok(Response::new(pb::ListRecentVideosResponse {
            videos: self.videos_pb(views),
            etag,
            not_modified: false,
        }))
    }

    async fn list_categorized_videos(
        &self,
        request: Request<pb::ListCategorizedVideosRequest>,
    ) -> Result<Response<pb::ListCategorizedVideosResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut r = request.into_inner();
        let if_none_match = std::mem::take(&mut r.if_none_match);
        let (etag, unchanged) = self.etag(&caller, &r, &if_none_match).await;
        if unchanged {
            return Ok(Response::new(pb::ListCategorizedVideosResponse {
                categories: Vec::new(),
                etag,
                not_modified: true,
            }));
        }
        let groups = self.catalog.categorized(&caller).await?;
        Ok(Response::new(pb::ListCategorizedVideosResponse {
            etag,
            not_modified: false,
            categories: groups
                .into_iter()
                .map(|(genre, views)| pb::GenreVideos {
                    genre: genre_pb(Some(genre)) as i32,
                    videos: self.videos_pb(views),
                })
                .collect(),
        }))
    }

    async fn create_video(
        &self,
        request: Request<pb::CreateVideoRequest>,
    ) -> Result<Response<pb::CreateVideoResponse>, Status> {
        let caller = self.caller(&request).await?;
        // Permission before validation: a non-admin learns nothing about the input rules.
        self.catalog.require_admin(&caller)?;
        let meta = meta_from_pb(request.into_inner().metadata)?;
        let view = self.catalog.create(&caller, meta).await?;
        Ok(Response::new(pb::CreateVideoResponse {
            video: Some(self.video_pb(view)),
        }))
    }

    async fn upload_video(
        &self,
        request: Request<Streaming<pb::UploadVideoRequest>>,
    ) -> Result<Response<pb::UploadVideoResponse>, Status> {
        use pb::upload_video_request::Payload;
        let caller = self.caller(&request).await?;
        // Permission before reading anything: a non-admin's bytes are never stored.
        self.catalog.require_admin(&caller)?;
        let mut stream = request.into_inner();
        // The metadata comes first (checked before any byte is stored), or after the file (as
        // multipart forms that put the file first send it).
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
        let trailing = std::sync::Arc::new(std::sync::Mutex::new(None::<pb::UploadHeader>));
        let slot = trailing.clone();
        let header_first = meta_first.is_some();
        let rest = tokio_stream::StreamExt::map(stream, move |message| {
            let mut slot = slot
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
        });
        let chunks = tokio_stream::StreamExt::chain(
            tokio_stream::iter(first_chunk.map(|b| Ok(bytes::Bytes::from(b)))),
            rest,
        );
        let incoming = self.pipeline.receive(chunks).await?;
        let meta = match meta_first {
            Some(meta) => meta,
            // Dropping `incoming` on an error removes the file.
            None => {
                let header = trailing
                    .lock()
                    .ok()
                    .and_then(|mut slot| slot.take())
                    .ok_or_else(|| AppError::field("header", "The upload has no metadata."))?;
                meta_from_pb(header.metadata)?
            }
        };
        let view = self
            .pipeline
            .accept(&self.catalog, &caller, meta, incoming)
            .await?;
        Ok(Response::new(pb::UploadVideoResponse {
            video: Some(self.video_pb(view)),
        }))
    }

    async fn update_video(
        &self,
        request: Request<pb::UpdateVideoRequest>,
    ) -> Result<Response<pb::UpdateVideoResponse>, Status> {
        let caller = self.caller(&request).await?;
        self.catalog.require_admin(&caller)?;
        let r = request.into_inner();
        let id = positive_id(r.id, "id").map_err(AppError::from)?;
        let meta = r.metadata.unwrap_or_default();
        let genre = genre_from_pb(meta.genre).map_err(AppError::from)?;
        let language = language_from_pb(meta.language).map_err(AppError::from)?;
        let all = vec![
            "title".to_owned(),
            "description".to_owned(),
            "author".to_owned(),
            "genre".to_owned(),
            "language".to_owned(),
        ];
        // No mask: replace every field. A mask with no paths: change nothing (answers the
        // video as it is).
        let paths = r.update_mask.map_or(all, |m| m.paths);
        let mut patch = VideoPatch::default();
        for path in &paths {
            let path = path.strip_prefix("metadata.").unwrap_or(path);
            match path {
                "title" => patch.title = Some(meta.title.clone()),
                "description" => patch.description = Some(meta.description.clone()),
                "author" => patch.author = Some(meta.author.clone()),
                "genre" => patch.genre = Some(genre.map_or("", Genre::as_str).to_owned()),
                "language" => {
                    patch.language = Some(language.map_or("", Language::as_str).to_owned());
                }
                other => {
                    return Err(AppError::field(
                        "update_mask",
                        format!(
                            "Unknown field {other:?}; updatable: title, description, author, \
                             genre, language."
                        ),
                    )
                    .into());
                }
            }
        }
        let view = self.catalog.update(&caller, id, patch).await?;
        Ok(Response::new(pb::UpdateVideoResponse {
            video: Some(self.video_pb(view)),
        }))
    }

    async fn delete_video(
        &self,
        request: Request<pb::DeleteVideoRequest>,
    ) -> Result<Response<pb::DeleteVideoResponse>, Status> {
        let caller = self.caller(&request).await?;
        self.catalog.require_admin(&caller)?;
        let id = positive_id(request.get_ref().id, "id").map_err(AppError::from)?;
        self.catalog.delete(&caller, id).await?;
        Ok(Response::new(pb::DeleteVideoResponse {}))
    }

    async fn stream_video(
        &self,
        request: Request<pb::StreamVideoRequest>,
    ) -> Result<Response<Self::StreamVideoStream>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let id = positive_id(r.video_id, "video_id").map_err(AppError::from)?;
        if r.offset < 0 {
            return Err(AppError::field("offset", "The offset must not be negative.").into());
        }
        let view = self.catalog.get(&caller, id).await?;
        let record = &view.record;
        let asked = pb::Rendition::try_from(r.rendition).map_err(|_| {
            AppError::field(
                "rendition",
                "Unknown rendition; use 360p, 480p, 720p, 1080p or original (or none: the best).",
            )
        })?;
        let (relative, rendition) = rendition_file(record, asked);
        let rendition_name = match rendition {
            pb::Rendition::Original => "original".to_owned(),
            _ => record
                .renditions
                .by_mp4(relative)
                .map(|stored| stored.name.clone())
                .unwrap_or_else(|| {
                    rendition
                        .as_str_name()
                        .trim_start_matches("RENDITION_")
                        .to_lowercase()
                }),
        };
        if relative.is_empty() {
            return Err(AppError::NotFound("rendition").into());
        }
        // Paths come from the database, written by the pipeline; never from the request.
        let path = self.media_dir.join(relative);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| AppError::NotFound("rendition"))?;
        let total = file
            .metadata()
            .await
            .map_err(|e| AppError::Internal(e.into()))?
            .len();
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        if r.offset > total {
            return Err(Status::out_of_range(format!(
                "offset {} is past the end ({total} bytes)",
                r.offset
            )));
        }
        let content_type = if relative.ends_with(".mp4") {
            "video/mp4"
        } else {
            "application/octet-stream"
        };
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        file.seek(std::io::SeekFrom::Start(r.offset.unsigned_abs()))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        // A small channel: the reader waits for the client (HTTP/2 flow control), and stops
        // when the client goes away (the receiver is dropped).
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut offset = r.offset;
        tokio::spawn(async move {
            loop {
                let mut buf = vec![0u8; STREAM_CHUNK];
                let n = match file.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(format!("read: {e}")))).await;
                        return;
                    }
                };
                buf.truncate(n);
                let chunk = pb::StreamVideoResponse {
                    data: buf,
                    offset,
                    total_size: total,
                    content_type: content_type.to_owned(),
                    rendition: rendition as i32,
                    rendition_name: rendition_name.clone(),
                };
                offset += i64::try_from(n).unwrap_or(0);
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn watch_transcode_status(
        &self,
        request: Request<pb::WatchTranscodeStatusRequest>,
    ) -> Result<Response<Self::WatchTranscodeStatusStream>, Status> {
        let caller = self.caller(&request).await?;
        let id = positive_id(request.get_ref().video_id, "video_id").map_err(AppError::from)?;
        // Subscribe before reading the current state: no event falls in between.
        let mut events = self.pipeline.hub().subscribe();
        let view = self.catalog.get(&caller, id).await?;
        // A video made from metadata alone has no file and no job: nothing will follow.
        let no_job = view.record.video_file.is_empty();
        // Mid-transcode, the row says only "processing": the job's last progress event says
        // how far it is, so a reconnecting progress bar does not jump back to 0.
        let first = match self.pipeline.hub().latest(id).await {
            Some(latest) if view.record.status == "processing" && latest.status == "processing" => {
                latest
            }
            _ => event_of(&view),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let catalog = self.catalog.clone();
        tokio::spawn(async move {
            let done = first.is_final() || no_job;
            if tx.send(Ok(event_pb(&first))).await.is_err() || done {
                return;
            }
            let mut check = tokio::time::interval(std::time::Duration::from_secs(5));
            check.tick().await;
            loop {
                let event = tokio::select! {
                    received = events.recv() => match received {
                        Ok(event) if event.video_id == id => event,
                        Ok(_) => continue,
                        // Missed events: the database says where it is.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            match catalog.get(&caller, id).await {
                                Ok(view) => event_of(&view),
                                Err(e) => {
                                    let _ = tx.send(Err(e.into())).await;
                                    return;
                                }
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    // A lost message or a deleted video must not leave the watcher hanging.
                    _ = check.tick() => match catalog.get(&caller, id).await {
                        Ok(view) if view.record.status == "ready" || view.record.status == "failed" => {
                            event_of(&view)
                        }
                        Ok(_) => {
                            if tx.is_closed() {
                                return;
                            }
                            continue;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    },
                };
                let done = event.is_final();
                if tx.send(Ok(event_pb(&event))).await.is_err() || done {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn add_favorite(
        &self,
        request: Request<pb::AddFavoriteRequest>,
    ) -> Result<Response<pb::AddFavoriteResponse>, Status> {
        let caller = self.caller(&request).await?;
        let id = positive_id(request.get_ref().video_id, "video_id").map_err(AppError::from)?;
        let view = self.catalog.add_favorite(&caller, id).await?;
        Ok(Response::new(pb::AddFavoriteResponse {
            video: Some(self.video_pb(view)),
        }))
    }

    async fn remove_favorite(
        &self,
        request: Request<pb::RemoveFavoriteRequest>,
    ) -> Result<Response<pb::RemoveFavoriteResponse>, Status> {
        let caller = self.caller(&request).await?;
        let id = positive_id(request.get_ref().video_id, "video_id").map_err(AppError::from)?;
        self.catalog.remove_favorite(&caller, id).await?;
        Ok(Response::new(pb::RemoveFavoriteResponse {}))
    }

    async fn list_favorites(
        &self,
        request: Request<pb::ListFavoritesRequest>,
    ) -> Result<Response<pb::ListFavoritesResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let ordering = Ordering::default();
        let paging = if r.page_token.is_empty() {
            Paging::Cursor(None)
        } else {
            Paging::Cursor(Some(
                PageToken::parse(&r.page_token, ordering).map_err(AppError::from)?,
            ))
        };
        let page = self
            .catalog
            .list(
                &caller,
                ListRequest {
                    filter: VideoFilter::default(),
                    only_favorites: true,
                    ordering,
                    page_size: page_size(r.page_size).map_err(AppError::from)?,
                    paging,
                },
            )
            .await?;
        Ok(Response::new(pb::ListFavoritesResponse {
            next_page_token: page.next.map(|t| t.encode()).unwrap_or_default(),
            videos: self.videos_pb(page.videos),
        }))
    }

    async fn update_watch_progress(
        &self,
        request: Request<pb::UpdateWatchProgressRequest>,
    ) -> Result<Response<pb::UpdateWatchProgressResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let id = positive_id(r.video_id, "video_id").map_err(AppError::from)?;
        let at = self
            .catalog
            .save_progress(&caller, id, r.position_seconds)
            .await?;
        Ok(Response::new(pb::UpdateWatchProgressResponse {
            video_id: id,
            position_seconds: r.position_seconds,
            updated_at: Some(timestamp_pb(at)),
        }))
    }

    async fn list_continue_watching(
        &self,
        request: Request<pb::ListContinueWatchingRequest>,
    ) -> Result<Response<pb::ListContinueWatchingResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let size = page_size(r.page_size).map_err(AppError::from)?;
        let offset = offset_from_token(&r.page_token).map_err(AppError::from)?;
        let mut views = self
            .catalog
            .continue_watching(&caller, size + 1, offset)
            .await?;
        let next = if views.len() as i64 > size {
            views.truncate(usize::try_from(size).unwrap_or(usize::MAX));
            offset_token(offset + size)
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListContinueWatchingResponse {
            videos: self.videos_pb(views),
            next_page_token: next,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert_exactly() {
        let ts = Timestamp::from_micros(1_700_000_000_123_456);
        let pb = timestamp_pb(ts);
        assert_eq!((pb.seconds, pb.nanos), (1_700_000_000, 123_456_000));
        assert_eq!(micros_from_pb(Some(&pb), "t"), Ok(Some(ts.micros())));
        let ancient = prost_types::Timestamp {
            seconds: -300_000_000_000,
            nanos: 0,
        };
        assert!(micros_from_pb(Some(&ancient), "t").is_err());
        let far = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(micros_from_pb(Some(&far), "t").is_err());
    }

    #[test]
    fn page_sizes_default_cap_and_reject_negatives() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(1000), Ok(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn offset_tokens_round_trip() {
        assert_eq!(offset_from_token(&offset_token(40)), Ok(40));
        assert_eq!(offset_from_token(""), Ok(0));
        assert!(offset_from_token("nope").is_err());
    }
}
