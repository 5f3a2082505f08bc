//! `videoflix.v1.VideoService`. The contract is complete; the catalog, upload and streaming use
//! cases land with their own issues. Until then every RPC authenticates the caller (so clients
//! can already rely on UNAUTHENTICATED) and answers UNIMPLEMENTED.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::{
    context::caller,
    pb::{self, video_service_server::VideoService},
};
use crate::service::Accounts;

/// gRPC face of the catalog.
#[derive(Clone)]
pub struct VideoGrpc {
    accounts: Accounts,
}

impl VideoGrpc {
    /// Serves the catalog, authenticating through `accounts`.
    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }

    async fn not_yet<T, R>(&self, request: &Request<T>, rpc: &str) -> Result<R, Status> {
        caller(&self.accounts, request).await?;
        Err(Status::unimplemented(format!(
            "VideoService.{rpc} is not available on this server yet"
        )))
    }
}

type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl VideoService for VideoGrpc {
    type StreamVideoStream = ServerStream<pb::StreamVideoResponse>;
    type WatchTranscodeStatusStream = ServerStream<pb::WatchTranscodeStatusResponse>;

    async fn list_videos(
        &self,
        request: Request<pb::ListVideosRequest>,
    ) -> Result<Response<pb::ListVideosResponse>, Status> {
        self.not_yet(&request, "ListVideos").await
    }

    async fn get_video(
        &self,
        request: Request<pb::GetVideoRequest>,
    ) -> Result<Response<pb::GetVideoResponse>, Status> {
        self.not_yet(&request, "GetVideo").await
    }

    async fn list_recent_videos(
        &self,
        request: Request<pb::ListRecentVideosRequest>,
    ) -> Result<Response<pb::ListRecentVideosResponse>, Status> {
        self.not_yet(&request, "ListRecentVideos").await
    }

    async fn list_categorized_videos(
        &self,
        request: Request<pb::ListCategorizedVideosRequest>,
    ) -> Result<Response<pb::ListCategorizedVideosResponse>, Status> {
        self.not_yet(&request, "ListCategorizedVideos").await
    }

    async fn create_video(
        &self,
        request: Request<pb::CreateVideoRequest>,
    ) -> Result<Response<pb::CreateVideoResponse>, Status> {
        self.not_yet(&request, "CreateVideo").await
    }

    async fn upload_video(
        &self,
        request: Request<Streaming<pb::UploadVideoRequest>>,
    ) -> Result<Response<pb::UploadVideoResponse>, Status> {
        self.not_yet(&request, "UploadVideo").await
    }

    async fn update_video(
        &self,
        request: Request<pb::UpdateVideoRequest>,
    ) -> Result<Response<pb::UpdateVideoResponse>, Status> {
        self.not_yet(&request, "UpdateVideo").await
    }

    async fn delete_video(
        &self,
        request: Request<pb::DeleteVideoRequest>,
    ) -> Result<Response<pb::DeleteVideoResponse>, Status> {
        self.not_yet(&request, "DeleteVideo").await
    }

    async fn stream_video(
        &self,
        request: Request<pb::StreamVideoRequest>,
    ) -> Result<Response<Self::StreamVideoStream>, Status> {
        self.not_yet(&request, "StreamVideo").await
    }

    async fn watch_transcode_status(
        &self,
        request: Request<pb::WatchTranscodeStatusRequest>,
    ) -> Result<Response<Self::WatchTranscodeStatusStream>, Status> {
        self.not_yet(&request, "WatchTranscodeStatus").await
    }

    async fn add_favorite(
        &self,
        request: Request<pb::AddFavoriteRequest>,
    ) -> Result<Response<pb::AddFavoriteResponse>, Status> {
        self.not_yet(&request, "AddFavorite").await
    }

    async fn remove_favorite(
        &self,
        request: Request<pb::RemoveFavoriteRequest>,
    ) -> Result<Response<pb::RemoveFavoriteResponse>, Status> {
        self.not_yet(&request, "RemoveFavorite").await
    }

    async fn list_favorites(
        &self,
        request: Request<pb::ListFavoritesRequest>,
    ) -> Result<Response<pb::ListFavoritesResponse>, Status> {
        self.not_yet(&request, "ListFavorites").await
    }

    async fn update_watch_progress(
        &self,
        request: Request<pb::UpdateWatchProgressRequest>,
    ) -> Result<Response<pb::UpdateWatchProgressResponse>, Status> {
        self.not_yet(&request, "UpdateWatchProgress").await
    }

    async fn list_continue_watching(
        &self,
        request: Request<pb::ListContinueWatchingRequest>,
    ) -> Result<Response<pb::ListContinueWatchingResponse>, Status> {
        self.not_yet(&request, "ListContinueWatching").await
    }
}
