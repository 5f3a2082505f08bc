//! REST routes, each registered through utoipa-axum so no route exists undocumented, and the
//! table of which gRPC method each REST operation calls (checked against the proto in tests).

mod admin;
mod auth;
mod videos;

use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{ApiError, Gateway};

/// One REST operation and the RPC behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path as documented (with its trailing slash).
    pub path: &'static str,
    /// Full gRPC method name, `package.Service/Method`.
    pub rpc: &'static str,
}

const fn op(method: &'static str, path: &'static str, rpc: &'static str) -> Operation {
    Operation { method, path, rpc }
}

/// Every REST operation with its RPC.
pub const OPERATIONS: &[Operation] = &[
    op("POST", "/register/", "videoflix.v1.AuthService/Register"),
    op(
        "POST",
        "/activate-account/",
        "videoflix.v1.AuthService/ActivateAccount",
    ),
    op(
        "POST",
        "/resend-activation/",
        "videoflix.v1.AuthService/ResendActivation",
    ),
    op("POST", "/login/", "videoflix.v1.AuthService/Login"),
    op(
        "POST",
        "/guest-login/",
        "videoflix.v1.AuthService/GuestLogin",
    ),
    op("POST", "/jwt/", "videoflix.v1.AuthService/Login"),
    op(
        "POST",
        "/jwt/refresh/",
        "videoflix.v1.AuthService/RefreshToken",
    ),
    op("DELETE", "/logout/", "videoflix.v1.AuthService/Logout"),
    op("POST", "/logout/", "videoflix.v1.AuthService/Logout"),
    op(
        "POST",
        "/reset-password/",
        "videoflix.v1.AuthService/RequestPasswordReset",
    ),
    op(
        "POST",
        "/new-password/",
        "videoflix.v1.AuthService/ConfirmPasswordReset",
    ),
    op("GET", "/api/me/", "videoflix.v1.AuthService/GetMe"),
    op("PATCH", "/api/me/", "videoflix.v1.AuthService/UpdateMe"),
    op(
        "GET",
        "/api/videos/",
        "videoflix.v1.VideoService/ListVideos",
    ),
    op(
        "POST",
        "/api/videos/",
        "videoflix.v1.VideoService/CreateVideo",
    ),
    op(
        "GET",
        "/api/videos/{id}/",
        "videoflix.v1.VideoService/GetVideo",
    ),
    op(
        "PUT",
        "/api/videos/{id}/",
        "videoflix.v1.VideoService/UpdateVideo",
    ),
    op(
        "PATCH",
        "/api/videos/{id}/",
        "videoflix.v1.VideoService/UpdateVideo",
    ),
    op(
        "DELETE",
        "/api/videos/{id}/",
        "videoflix.v1.VideoService/DeleteVideo",
    ),
    op(
        "GET",
        "/api/videos/recent_videos/",
        "videoflix.v1.VideoService/ListRecentVideos",
    ),
    op(
        "GET",
        "/api/videos/categorized_videos/",
        "videoflix.v1.VideoService/ListCategorizedVideos",
    ),
    op(
        "POST",
        "/api/videos/{id}/favorite/",
        "videoflix.v1.VideoService/AddFavorite",
    ),
    op(
        "DELETE",
        "/api/videos/{id}/favorite/",
        "videoflix.v1.VideoService/RemoveFavorite",
    ),
    op(
        "GET",
        "/api/favorites/",
        "videoflix.v1.VideoService/ListFavorites",
    ),
    op(
        "PUT",
        "/api/videos/{id}/progress/",
        "videoflix.v1.VideoService/UpdateWatchProgress",
    ),
    op(
        "GET",
        "/api/continue-watching/",
        "videoflix.v1.VideoService/ListContinueWatching",
    ),
    op(
        "GET",
        "/api/videos/{id}/status/",
        "videoflix.v1.VideoService/WatchTranscodeStatus",
    ),
    op(
        "GET",
        "/api/admin/users/",
        "videoflix.v1.AdminService/ListUsers",
    ),
    op(
        "GET",
        "/api/admin/users/{id}/",
        "videoflix.v1.AdminService/GetUser",
    ),
    op(
        "PATCH",
        "/api/admin/users/{id}/",
        "videoflix.v1.AdminService/UpdateUser",
    ),
    op(
        "DELETE",
        "/api/admin/users/{id}/",
        "videoflix.v1.AdminService/DeleteUser",
    ),
    op(
        "GET",
        "/api/admin/jobs/",
        "videoflix.v1.AdminService/ListJobs",
    ),
    op(
        "PATCH",
        "/api/admin/jobs/{name}/",
        "videoflix.v1.AdminService/UpdateJob",
    ),
    op(
        "POST",
        "/api/admin/jobs/{name}/run/",
        "videoflix.v1.AdminService/RunJob",
    ),
    op(
        "GET",
        "/api/admin/job-runs/",
        "videoflix.v1.AdminService/ListJobRuns",
    ),
    op(
        "GET",
        "/api/admin/exports/",
        "videoflix.v1.AdminService/ListExports",
    ),
    op(
        "POST",
        "/api/admin/exports/",
        "videoflix.v1.AdminService/CreateExport",
    ),
    op(
        "GET",
        "/api/admin/exports/{name}/",
        "videoflix.v1.AdminService/DownloadExport",
    ),
    op(
        "POST",
        "/api/admin/import/",
        "videoflix.v1.AdminService/ImportVideoData",
    ),
];

/// RPCs with no REST operation yet, and why.
pub const UNMAPPED_RPCS: &[(&str, &str)] = &[
    (
        "videoflix.v1.VideoService/UploadVideo",
        "REST uploads are POST /api/videos/ multipart forms with a video_file part",
    ),
    (
        "videoflix.v1.VideoService/StreamVideo",
        "REST clients fetch the signed media URLs (Range, HEAD, conditional requests)",
    ),
];

/// The documented routes.
pub(crate) fn router() -> OpenApiRouter<Gateway> {
    OpenApiRouter::with_openapi(crate::base_doc())
        .routes(routes!(auth::register))
        .routes(routes!(auth::activate_account))
        .routes(routes!(auth::resend_activation))
        .routes(routes!(auth::login))
        .routes(routes!(auth::guest_login))
        .routes(routes!(auth::jwt_create))
        .routes(routes!(auth::jwt_refresh))
        .routes(routes!(auth::logout, auth::logout_post))
        .routes(routes!(auth::reset_password))
        .routes(routes!(auth::new_password))
        .routes(routes!(auth::get_me, auth::update_me))
        .routes(routes!(
            videos::read::list_videos,
            videos::write::create_video
        ))
        .routes(routes!(
            videos::read::get_video,
            videos::write::put_video,
            videos::write::patch_video,
            videos::write::delete_video
        ))
        .routes(routes!(videos::read::recent_videos))
        .routes(routes!(videos::read::categorized_videos))
        .routes(routes!(
            videos::mine::add_favorite,
            videos::mine::remove_favorite
        ))
        .routes(routes!(videos::mine::list_favorites))
        .routes(routes!(videos::mine::put_progress))
        .routes(routes!(videos::mine::continue_watching))
        .routes(routes!(videos::mine::video_status))
        .routes(routes!(admin::list_users))
        .routes(routes!(
            admin::get_user,
            admin::update_user,
            admin::delete_user
        ))
        .routes(routes!(admin::list_jobs))
        .routes(routes!(admin::update_job))
        .routes(routes!(admin::run_job))
        .routes(routes!(admin::list_job_runs))
        .routes(routes!(admin::list_exports, admin::create_export))
        .routes(routes!(admin::download_export))
        .routes(routes!(admin::import))
}

/// Whether `request` is a multipart video upload (`POST /api/videos/`, normalised path).
pub(crate) fn is_upload(request: &axum::http::Request<axum::body::Body>) -> bool {
    request.method() == axum::http::Method::POST
        && request.uri().path() == "/api/videos/"
        && request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("multipart/form-data"))
}

/// JSON 404 for unknown paths.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
}

/// JSON 405 for known paths with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "request",
        "Method not allowed on this path.",
    )
}
