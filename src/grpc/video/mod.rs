//! `videoflix.v1.VideoService`: the catalog, favorites and watch progress, uploads, streaming
//! and live transcoding status. Each handler takes the caller the authentication layer found,
//! parses its request ([`convert`]), runs the use case and renders the answer.

mod convert;
mod upload;

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use self::convert::{
    event_pb, genre_pb, list_request, meta_from_pb, offset_from_token, offset_token, page_size,
    patch_from_pb, served_pb, timestamp_pb, version_of, version_tag, video_id, video_pb,
    wanted_from_pb,
};
use super::{
    authn::caller,
    pb::{self, video_service_server::VideoService},
};
use crate::{
    domain::{Ordering, PageToken, VideoId},
    error::AppError,
    service::{Catalog, ListRequest, Paging, Pipeline, Playback, VideoView},
    store::VideoFilter,
};

/// gRPC face of [`Catalog`], [`Pipeline`] and [`Playback`].
#[derive(Clone)]
pub struct VideoGrpc {
    catalog: Catalog,
    pipeline: Pipeline,
    playback: Playback,
}

type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl VideoGrpc {
    /// Serves the catalog, uploads and playback.
    pub fn new(catalog: Catalog, pipeline: Pipeline, playback: Playback) -> Self {
        Self {
            catalog,
            pipeline,
            playback,
        }
    }

    fn video(&self, view: &VideoView) -> Option<pb::Video> {
        Some(video_pb(&self.playback, view))
    }

    fn videos(&self, views: &[VideoView]) -> Vec<pb::Video> {
        views.iter().map(|v| video_pb(&self.playback, v)).collect()
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
        let caller = caller(&request)?;
        let mut r = request.into_inner();
        // The etag covers the request without the client's validator.
        let if_none_match = std::mem::take(&mut r.if_none_match);
        let list = list_request(&r)?;
        let (etag, unchanged) = self
            .playback
            .etag(&caller, &prost::Message::encode_to_vec(&r), &if_none_match)
            .await;
        if unchanged {
            return Ok(Response::new(pb::ListVideosResponse {
                etag,
                not_modified: true,
                ..Default::default()
            }));
        }
        let page = self.catalog.list(&caller, list).await?;
        Ok(Response::new(pb::ListVideosResponse {
            next_page_token: page.next.map(|t| t.encode()).unwrap_or_default(),
            total_size: page.total,
            videos: self.videos(&page.videos),
            etag,
            not_modified: false,
        }))
    }

    async fn get_video(
        &self,
        request: Request<pb::GetVideoRequest>,
    ) -> Result<Response<pb::GetVideoResponse>, Status> {
        let caller = caller(&request)?;
        let mut r = request.into_inner();
        // The etag covers the request without the client's validator.
        let if_none_match = std::mem::take(&mut r.if_none_match);
        let id = video_id(r.id)?;
        // The answer's validator, before reading (an answer is never older than its tag).
        let (answer, _) = self
            .playback
            .etag(&caller, &prost::Message::encode_to_vec(&r), "")
            .await;
        let view = self.catalog.get(&caller, id).await?;
        // The video's version, then the answer's: one tag serves If-Match and If-None-Match.
        let etag = format!("{}.{answer}", version_tag(&view));
        if !answer.is_empty() && etag == if_none_match {
            return Ok(Response::new(pb::GetVideoResponse {
                video: None,
                etag,
                not_modified: true,
            }));
        }
        Ok(Response::new(pb::GetVideoResponse {
            video: self.video(&view),
            etag,
            not_modified: false,
        }))
    }

    async fn list_recent_videos(
        &self,
        request: Request<pb::ListRecentVideosRequest>,
    ) -> Result<Response<pb::ListRecentVideosResponse>, Status> {
        let caller = caller(&request)?;
        let mut r = request.into_inner();
        // The etag covers the request without the client's validator.
        let if_none_match = std::mem::take(&mut r.if_none_match);
        // Any id that names no video excludes nothing.
        let exclude = VideoId::parse(r.to_exclude_id, "to_exclude_id").ok();
        let (etag, unchanged) = self
            .playback
            .etag(&caller, &prost::Message::encode_to_vec(&r), &if_none_match)
            .await;
        if unchanged {
            return Ok(Response::new(pb::ListRecentVideosResponse {
                videos: Vec::new(),
                etag,
                not_modified: true,
            }));
        }
        let views = self.catalog.recent(&caller, exclude).await?;
        Ok(Response::new(pb::ListRecentVideosResponse {
            videos: self.videos(&views),
            etag,
            not_modified: false,
        }))
    }

    async fn list_categorized_videos(
        &self,
        request: Request<pb::ListCategorizedVideosRequest>,
    ) -> Result<Response<pb::ListCategorizedVideosResponse>, Status> {
        let caller = caller(&request)?;
        let mut r = request.into_inner();
        // The etag covers the request without the client's validator.
        let if_none_match = std::mem::take(&mut r.if_none_match);
        let (etag, unchanged) = self
            .playback
            .etag(&caller, &prost::Message::encode_to_vec(&r), &if_none_match)
            .await;
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
                    videos: self.videos(&views),
                })
                .collect(),
        }))
    }

    async fn create_video(
        &self,
        request: Request<pb::CreateVideoRequest>,
    ) -> Result<Response<pb::CreateVideoResponse>, Status> {
        let caller = caller(&request)?;
        // Permission before validation: a non-admin learns nothing about the input rules.
        caller.require_superuser()?;
        let meta = meta_from_pb(request.into_inner().metadata)?;
        let view = self.catalog.create(&caller, meta).await?;
        Ok(Response::new(pb::CreateVideoResponse {
            video: self.video(&view),
        }))
    }

    async fn upload_video(
        &self,
        request: Request<Streaming<pb::UploadVideoRequest>>,
    ) -> Result<Response<pb::UploadVideoResponse>, Status> {
        let caller = caller(&request)?;
        // Permission before reading anything: a non-admin's bytes are never stored.
        caller.require_superuser()?;
        let view = self.upload(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::UploadVideoResponse {
            video: self.video(&view),
        }))
    }

    async fn update_video(
        &self,
        request: Request<pb::UpdateVideoRequest>,
    ) -> Result<Response<pb::UpdateVideoResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_superuser()?;
        let r = request.into_inner();
        let id = video_id(r.id)?;
        let patch = patch_from_pb(r.metadata, r.update_mask)?;
        let expected = version_of(&r.etag);
        let view = self.catalog.update(&caller, id, patch, expected).await?;
        Ok(Response::new(pb::UpdateVideoResponse {
            video: self.video(&view),
            etag: format!("{}.", version_tag(&view)),
        }))
    }

    async fn delete_video(
        &self,
        request: Request<pb::DeleteVideoRequest>,
    ) -> Result<Response<pb::DeleteVideoResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_superuser()?;
        let id = video_id(request.get_ref().id)?;
        self.catalog.delete(&caller, id).await?;
        Ok(Response::new(pb::DeleteVideoResponse {}))
    }

    async fn stream_video(
        &self,
        request: Request<pb::StreamVideoRequest>,
    ) -> Result<Response<Self::StreamVideoStream>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = video_id(r.video_id)?;
        let offset = u64::try_from(r.offset)
            .map_err(|_| AppError::field("offset", "The offset must not be negative."))?;
        let wanted = wanted_from_pb(r.rendition)?;
        let download = self.playback.stream(&caller, id, wanted, offset).await?;
        let (rendition, name) = (served_pb(download.rung) as i32, download.name);
        let (total, content_type) = (download.total, download.content_type);
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        let stream = download.chunks.map(move |chunk| {
            let (at, data) = chunk?;
            Ok(pb::StreamVideoResponse {
                data: data.to_vec(),
                offset: i64::try_from(at).unwrap_or(i64::MAX),
                total_size: total,
                content_type: content_type.to_owned(),
                rendition,
                rendition_name: name.clone(),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn watch_transcode_status(
        &self,
        request: Request<pb::WatchTranscodeStatusRequest>,
    ) -> Result<Response<Self::WatchTranscodeStatusStream>, Status> {
        let caller = caller(&request)?;
        let id = video_id(request.get_ref().video_id)?;
        let events = self.playback.watch(&caller, id).await?;
        let stream = events.map(|event| Ok(event_pb(&event?)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn add_favorite(
        &self,
        request: Request<pb::AddFavoriteRequest>,
    ) -> Result<Response<pb::AddFavoriteResponse>, Status> {
        let caller = caller(&request)?;
        let id = video_id(request.get_ref().video_id)?;
        let view = self.catalog.add_favorite(&caller, id).await?;
        Ok(Response::new(pb::AddFavoriteResponse {
            video: self.video(&view),
        }))
    }

    async fn remove_favorite(
        &self,
        request: Request<pb::RemoveFavoriteRequest>,
    ) -> Result<Response<pb::RemoveFavoriteResponse>, Status> {
        let caller = caller(&request)?;
        let id = video_id(request.get_ref().video_id)?;
        self.catalog.remove_favorite(&caller, id).await?;
        Ok(Response::new(pb::RemoveFavoriteResponse {}))
    }

    async fn list_favorites(
        &self,
        request: Request<pb::ListFavoritesRequest>,
    ) -> Result<Response<pb::ListFavoritesResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let ordering = Ordering::default();
        let after = match r.page_token.as_str() {
            "" => None,
            token => Some(PageToken::parse(token, ordering).map_err(AppError::from)?),
        };
        let list = ListRequest {
            filter: VideoFilter::default(),
            only_favorites: true,
            ordering,
            page_size: page_size(r.page_size).map_err(AppError::from)?,
            paging: Paging::Cursor(after),
        };
        let page = self.catalog.list(&caller, list).await?;
        Ok(Response::new(pb::ListFavoritesResponse {
            next_page_token: page.next.map(|t| t.encode()).unwrap_or_default(),
            videos: self.videos(&page.videos),
        }))
    }

    async fn update_watch_progress(
        &self,
        request: Request<pb::UpdateWatchProgressRequest>,
    ) -> Result<Response<pb::UpdateWatchProgressResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = video_id(r.video_id)?;
        let at = self
            .catalog
            .save_progress(&caller, id, r.position_seconds)
            .await?;
        Ok(Response::new(pb::UpdateWatchProgressResponse {
            video_id: id.get(),
            position_seconds: r.position_seconds,
            updated_at: Some(timestamp_pb(at)),
        }))
    }

    async fn list_continue_watching(
        &self,
        request: Request<pb::ListContinueWatchingRequest>,
    ) -> Result<Response<pb::ListContinueWatchingResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let size = page_size(r.page_size).map_err(AppError::from)?;
        let offset = offset_from_token(&r.page_token).map_err(AppError::from)?;
        let mut views = self
            .catalog
            .continue_watching(&caller, size + 1, offset)
            .await?;
        let more = i64::try_from(views.len()).unwrap_or(i64::MAX) > size;
        views.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        Ok(Response::new(pb::ListContinueWatchingResponse {
            videos: self.videos(&views),
            next_page_token: if more {
                offset_token(offset + size)
            } else {
                String::new()
            },
        }))
    }
}
