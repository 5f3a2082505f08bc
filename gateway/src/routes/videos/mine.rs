//! The caller's own: favorites, playback positions, continue watching, and a video's live
//! transcode status.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{
    ApiError, ErrorBody, Gateway,
    call::{ApiJson, Forward},
    dto::{ProgressBody, ProgressDto, StatusDto, VideoDto, rfc3339},
    pb,
};

use super::{ApiResult, all_pages, bad, video_id};

/// Mark a video as a favorite of the caller (idempotent).
#[utoipa::path(
    post, path = "/api/videos/{id}/favorite/", tag = "me",
    params(("id" = i64, Path, description = "Video id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The video, now a favorite", body = VideoDto),
        (status = 400, description = "Non-integer id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    )
)]
pub(crate) async fn add_favorite(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
) -> ApiResult<Json<VideoDto>> {
    let id = video_id(&id)?;
    let r = gw
        .video()
        .add_favorite(fwd.request(pb::AddFavoriteRequest { video_id: id }))
        .await?
        .into_inner();
    Ok(Json(r.video.unwrap_or_default().into()))
}

/// Remove a video from the caller's favorites (idempotent).
#[utoipa::path(
    delete, path = "/api/videos/{id}/favorite/", tag = "me",
    params(("id" = i64, Path, description = "Video id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Not a favorite any more"),
        (status = 400, description = "Non-integer id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
    )
)]
pub(crate) async fn remove_favorite(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = video_id(&id)?;
    gw.video()
        .remove_favorite(fwd.request(pb::RemoveFavoriteRequest { video_id: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's favorite videos, newest first.
#[utoipa::path(
    get, path = "/api/favorites/", tag = "me",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Favorites", body = Vec<VideoDto>),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
    )
)]
pub(crate) async fn list_favorites(
    State(gw): State<Gateway>,
    fwd: Forward,
) -> ApiResult<Json<Vec<VideoDto>>> {
    let all = all_pages(|page_token| {
        let mut client = gw.video();
        let request = fwd.page(
            pb::ListFavoritesRequest {
                page_size: 100,
                page_token: page_token.clone(),
            },
            &page_token,
        );
        async move {
            let r = client.list_favorites(request).await?.into_inner();
            Ok((r.videos, r.next_page_token))
        }
    })
    .await?;
    Ok(Json(all))
}

/// Record the caller's playback position in a video.
#[utoipa::path(
    put, path = "/api/videos/{id}/progress/", tag = "me", request_body = ProgressBody,
    params(("id" = i64, Path, description = "Video id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Stored", body = ProgressDto),
        (status = 400, description = "Invalid id or position", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    )
)]
pub(crate) async fn put_progress(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ProgressBody>,
) -> ApiResult<Json<ProgressDto>> {
    let id = video_id(&id)?;
    let position = body
        .position
        .ok_or_else(|| bad("position", "This field is required."))?;
    let r = gw
        .video()
        .update_watch_progress(fwd.request(pb::UpdateWatchProgressRequest {
            video_id: id,
            position_seconds: position,
        }))
        .await?
        .into_inner();
    Ok(Json(ProgressDto {
        video_id: r.video_id,
        position: r.position_seconds,
        updated_at: rfc3339(r.updated_at),
    }))
}

/// Videos the caller started and did not finish, most recently watched first.
#[utoipa::path(
    get, path = "/api/continue-watching/", tag = "me",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Videos with the caller's progress", body = Vec<VideoDto>),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
    )
)]
pub(crate) async fn continue_watching(
    State(gw): State<Gateway>,
    fwd: Forward,
) -> ApiResult<Json<Vec<VideoDto>>> {
    let all = all_pages(|page_token| {
        let mut client = gw.video();
        let request = fwd.page(
            pb::ListContinueWatchingRequest {
                page_size: 100,
                page_token: page_token.clone(),
            },
            &page_token,
        );
        async move {
            let r = client.list_continue_watching(request).await?.into_inner();
            Ok((r.videos, r.next_page_token))
        }
    })
    .await?;
    Ok(Json(all))
}

/// Transcode status of a video as Server-Sent Events: the current state first, then every
/// change, until `ready` or `failed` (then the stream ends).
#[utoipa::path(
    get, path = "/api/videos/{id}/status/", tag = "videos",
    params(("id" = i64, Path, description = "Video id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`text/event-stream` of `status` events", body = StatusDto, content_type = "text/event-stream"),
        (status = 400, description = "Non-integer id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
        (status = 429, description = "Throttled", body = ErrorBody),
    )
)]
pub(crate) async fn video_status(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio_stream::StreamExt as _;
    let id = video_id(&id)?;
    let stream = gw
        .video()
        .watch_transcode_status(fwd.request(pb::WatchTranscodeStatusRequest { video_id: id }))
        .await?
        .into_inner();
    let events = stream.map(|item| {
        let event = match item {
            Ok(e) => Event::default()
                .event("status")
                .json_data(StatusDto::from(e)),
            Err(status) => Event::default()
                .event("error")
                .json_data(ApiError::from(status).into_body()),
        };
        Ok::<Event, std::convert::Infallible>(
            event.unwrap_or_else(|_| Event::default().event("error").data("{}")),
        )
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
