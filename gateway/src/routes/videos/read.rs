//! Catalog reads: lists (whole, paged, filtered), one video, the newest, by genre.

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    ApiError, ErrorBody, Gateway,
    call::Forward,
    conditional::{Answer, Conditional},
    dto::{CategorizedDto, GenreName, LanguageName, VideoDto, VideoPageDto, genre_name},
    pb,
};

use super::{
    ApiResult, bad, genre_value, language_value, more_pages, page_url, parse_bool, parse_i64,
    parse_time, video_id,
};

/// Query of `GET /api/videos/`. Values are validated by the gateway (types) and the service
/// (meaning), each error naming its parameter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this genre (`""`: any).
    #[param(inline, value_type = Option<GenreName>)]
    genre: Option<String>,
    /// Only this language (`""`: any).
    #[param(inline, value_type = Option<LanguageName>)]
    language: Option<String>,
    /// Only videos uploaded by this user id (`0`: any).
    #[param(value_type = Option<i64>, minimum = 0)]
    uploaded_by: Option<String>,
    /// `true` (or `True`, `1`, `yes`): only the caller's favorites; `false`, `False`, `0`, `no`
    /// or `""`: all.
    #[param(inline, value_type = Option<Flag>)]
    is_favorite: Option<String>,
    /// Only videos uploaded at or after this time (RFC 3339 or `YYYY-MM-DD`).
    #[param(value_type = Option<String>, pattern = r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9:.]+([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?)?\s*$")]
    uploaded_at: Option<String>,
    /// Only videos updated at or after this time (RFC 3339 or `YYYY-MM-DD`).
    #[param(value_type = Option<String>, pattern = r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9:.]+([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?)?\s*$")]
    updated_at: Option<String>,
    /// Text in title or description, ignoring case, accents and spacing; parts of words match
    /// (at most 100 characters).
    search: Option<String>,
    /// Sort order (default `-uploaded_at`; a `search` without an ordering is ranked by
    /// relevance: title matches first).
    #[param(inline, value_type = Option<OrderingName>)]
    ordering: Option<String>,
    /// Page size: answer `{count, next, previous, results}` instead of an array (`0`: 20; more
    /// than 100: 100).
    #[param(value_type = Option<i64>, minimum = 0)]
    page_size: Option<String>,
    /// Page number (with `page_size`), from 1.
    #[param(value_type = Option<i64>, minimum = 1)]
    page: Option<String>,
}

crate::dto::string_choice!(
    Flag: "A yes/no flag: `true`, `True`, `1`, `yes`; or `false`, `False`, `0`, `no`, `\"\"`.",
    ["true", "True", "1", "yes", "false", "False", "0", "no", ""]
);
crate::dto::string_choice!(
    OrderingName: "Sort order: `[-]uploaded_at` or `[-]updated_at` (`\"\"`: `-uploaded_at`).",
    ["uploaded_at", "-uploaded_at", "updated_at", "-updated_at", ""]
);

/// Query of `GET /api/videos/recent_videos/`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecentParams {
    /// A video id to leave out (the one being watched).
    #[param(value_type = Option<i64>)]
    to_exclude_id: Option<String>,
}

/// List the catalog: filters, search, ordering; an array, or a page with `page_size`.
#[utoipa::path(
    get, path = "/api/videos/", tag = "videos", params(ListParams, ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 when it is still current")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Videos, newest first (array; `{count, next, previous, results}` with page_size)", body = Vec<VideoDto>, headers(("ETag" = String, description = "Validator of this answer (absent when the cache is off)"))),
        (status = 304, description = "Not modified: the If-None-Match tag is still current"),
        (status = 400, description = "Invalid filter, ordering or page", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 404, description = "Page out of range", body = ErrorBody),
        (status = 429, description = "Throttled", body = ErrorBody),
    )
)]
pub(crate) async fn list_videos(
    State(gw): State<Gateway>,
    fwd: Forward,
    headers: HeaderMap,
    uri: Uri,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(p) = params.map_err(|e| bad("query", &e.body_text()))?;
    let read = Conditional::new(&gw.renders, &headers, &uri);
    let request = pb::ListVideosRequest {
        genre: genre_value(p.genre.as_deref()),
        language: language_value(p.language.as_deref()),
        uploaded_by: parse_i64(p.uploaded_by.as_deref(), "uploaded_by")?.unwrap_or(0),
        is_favorite: parse_bool(p.is_favorite.as_deref(), "is_favorite")?,
        uploaded_after: parse_time(p.uploaded_at.as_deref(), "uploaded_at")?,
        updated_after: parse_time(p.updated_at.as_deref(), "updated_at")?,
        search: p.search.unwrap_or_default(),
        ordering: p.ordering.unwrap_or_default(),
        page_size: 0,
        page_token: String::new(),
        page: 0,
        if_none_match: String::new(),
    };
    let page_size = parse_i64(p.page_size.as_deref(), "page_size")?;
    let page = parse_i64(p.page.as_deref(), "page")?;
    match page_size {
        Some(size) => one_page(&gw, &fwd, &uri, read, request, size, page.unwrap_or(1)).await,
        None if page.is_some() => Err(bad("page", "page needs page_size.")),
        None => whole_list(&gw, &fwd, read, request).await,
    }
}

/// DRF's `{count, next, previous, results}` for page `page` of `size`.
async fn one_page(
    gw: &Gateway,
    fwd: &Forward,
    uri: &Uri,
    read: Conditional,
    mut request: pb::ListVideosRequest,
    size: i64,
    page: i64,
) -> ApiResult<Response> {
    if page < 1 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Invalid page.",
        ));
    }
    // The service applies its page-size rules (default, maximum, no negatives).
    request.page_size = i32::try_from(size).unwrap_or(if size < 0 { -1 } else { i32::MAX });
    request.page = i32::try_from(page).unwrap_or(i32::MAX);
    request.if_none_match = read.if_none_match();
    let r = gw
        .video()
        .list_videos(fwd.request(request))
        .await?
        .into_inner();
    if r.not_modified {
        return Ok(read.respond(Answer::<()>::NotModified(r.etag)));
    }
    if r.videos.is_empty() && page > 1 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Invalid page.",
        ));
    }
    let dto = VideoPageDto {
        count: r.total_size,
        next: (!r.next_page_token.is_empty()).then(|| page_url(&gw.public_base, uri, page + 1)),
        previous: (page > 1).then(|| page_url(&gw.public_base, uri, page - 1)),
        results: r.videos.into_iter().map(VideoDto::from).collect(),
    };
    Ok(read.respond(Answer::Fresh(r.etag, dto)))
}

/// The legacy API's whole list: the cursor followed to the end. Only a one-page answer is
/// conditional (its etag covers all of it).
async fn whole_list(
    gw: &Gateway,
    fwd: &Forward,
    read: Conditional,
    mut request: pb::ListVideosRequest,
) -> ApiResult<Response> {
    request.page_size = 100;
    let first = gw
        .video()
        .list_videos(fwd.request(pb::ListVideosRequest {
            if_none_match: read.if_none_match(),
            ..request.clone()
        }))
        .await?
        .into_inner();
    if first.not_modified {
        return Ok(read.respond(Answer::<()>::NotModified(first.etag)));
    }
    if first.next_page_token.is_empty() {
        let all: Vec<VideoDto> = first.videos.into_iter().map(VideoDto::from).collect();
        return Ok(read.respond(Answer::Fresh(first.etag, all)));
    }
    let all = more_pages(first.videos, first.next_page_token, |token| {
        let mut client = gw.video();
        let request = fwd.continued(pb::ListVideosRequest {
            page_token: token,
            ..request.clone()
        });
        async move {
            let r = client.list_videos(request).await?.into_inner();
            Ok((r.videos, r.next_page_token))
        }
    })
    .await?;
    Ok(read.respond(Answer::Fresh(String::new(), all)))
}

/// One video.
#[utoipa::path(
    get, path = "/api/videos/{id}/", tag = "videos",
    params(("id" = i64, Path, description = "Video id"), ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 when it is still current")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The video", body = VideoDto, headers(("ETag" = String, description = "Validator of this answer (absent when the cache is off)"))),
        (status = 304, description = "Not modified: the If-None-Match tag is still current"),
        (status = 400, description = "Non-integer id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
        (status = 429, description = "Throttled", body = ErrorBody),
    )
)]
pub(crate) async fn get_video(
    State(gw): State<Gateway>,
    fwd: Forward,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = video_id(&id)?;
    let read = Conditional::new(&gw.renders, &headers, &uri);
    let r = gw
        .video()
        .get_video(fwd.request(pb::GetVideoRequest {
            id,
            if_none_match: read.if_none_match(),
        }))
        .await?
        .into_inner();
    let video = r.video;
    Ok(read.respond(Answer::of(r.not_modified, r.etag, || {
        VideoDto::from(video.unwrap_or_default())
    })))
}

/// The five newest videos, optionally without one.
#[utoipa::path(
    get, path = "/api/videos/recent_videos/", tag = "videos", params(RecentParams, ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 when it is still current")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Up to five videos, newest first", body = Vec<VideoDto>, headers(("ETag" = String, description = "Validator of this answer (absent when the cache is off)"))),
        (status = 304, description = "Not modified: the If-None-Match tag is still current"),
        (status = 400, description = "Non-integer to_exclude_id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 429, description = "Throttled", body = ErrorBody),
    )
)]
pub(crate) async fn recent_videos(
    State(gw): State<Gateway>,
    fwd: Forward,
    headers: HeaderMap,
    uri: Uri,
    params: Result<Query<RecentParams>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(p) = params.map_err(|e| bad("query", &e.body_text()))?;
    let exclude = parse_i64(p.to_exclude_id.as_deref(), "to_exclude_id")?.unwrap_or(0);
    let read = Conditional::new(&gw.renders, &headers, &uri);
    let r = gw
        .video()
        .list_recent_videos(fwd.request(pb::ListRecentVideosRequest {
            to_exclude_id: exclude,
            if_none_match: read.if_none_match(),
        }))
        .await?
        .into_inner();
    let videos = r.videos;
    Ok(read.respond(Answer::of(r.not_modified, r.etag, || {
        videos.into_iter().map(VideoDto::from).collect::<Vec<_>>()
    })))
}

/// Every genre with its videos, newest first.
#[utoipa::path(
    get, path = "/api/videos/categorized_videos/", tag = "videos",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 when it is still current")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Videos per genre", body = CategorizedDto, headers(("ETag" = String, description = "Validator of this answer (absent when the cache is off)"))),
        (status = 304, description = "Not modified: the If-None-Match tag is still current"),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 429, description = "Throttled", body = ErrorBody),
    )
)]
pub(crate) async fn categorized_videos(
    State(gw): State<Gateway>,
    fwd: Forward,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let read = Conditional::new(&gw.renders, &headers, &uri);
    let r = gw
        .video()
        .list_categorized_videos(fwd.request(pb::ListCategorizedVideosRequest {
            if_none_match: read.if_none_match(),
        }))
        .await?
        .into_inner();
    if r.not_modified {
        return Ok(read.respond(Answer::<()>::NotModified(r.etag)));
    }
    let mut out = CategorizedDto {
        drama: Vec::new(),
        documentary: Vec::new(),
        technic: Vec::new(),
        horror: Vec::new(),
        action: Vec::new(),
    };
    for group in r.categories {
        let videos: Vec<VideoDto> = group.videos.into_iter().map(VideoDto::from).collect();
        match genre_name(group.genre).as_deref() {
            Some("drama") => out.drama = videos,
            Some("documentary") => out.documentary = videos,
            Some("technic") => out.technic = videos,
            Some("horror") => out.horror = videos,
            Some("action") => out.action = videos,
            _ => {}
        }
    }
    Ok(read.respond(Answer::Fresh(r.etag, out)))
}
