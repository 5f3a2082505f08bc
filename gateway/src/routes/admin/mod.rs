//! Admin routes under `/api/admin/…` (superusers): accounts, jobs, exports, imports — each
//! one call of `videoflix.v1.AdminService`.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio_stream::StreamExt as _;

use crate::{
    ApiError, ErrorBody, Gateway,
    call::{ApiJson, Forward},
    pb,
};

mod dto;

use dto::{
    AdminUserDto, CountsDto, ExportBody, ExportDocument, ExportDto, ImportDto, ImportErrorDto,
    ImportParams, JobDto, JobPatchBody, JobRunDto, RunDto, RunParams, UserPageDto, UserParams,
    UserPatchBody,
};

type ApiResult<T> = Result<T, ApiError>;

impl Gateway {
    fn admin(&self) -> pb::admin_service_client::AdminServiceClient<crate::GrpcService> {
        pb::admin_service_client::AdminServiceClient::new(self.grpc.clone())
    }
}

fn counts(c: Option<pb::ImportCounts>) -> Option<CountsDto> {
    c.map(|c| CountsDto {
        created: c.created,
        updated: c.updated,
        unchanged: c.unchanged,
    })
}

fn flag(raw: Option<&str>, field: &str) -> ApiResult<Option<bool>> {
    match raw {
        None => Ok(None),
        Some("true" | "True" | "1") => Ok(Some(true)),
        Some("false" | "False" | "0") => Ok(Some(false)),
        Some(_) => Err(ApiError::field(field, "Must be true or false.")),
    }
}

fn number(raw: Option<&str>, field: &str, max: i32) -> ApiResult<i32> {
    match raw {
        None => Ok(0),
        Some(s) => s
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::field(field, &format!("Must be an integer from 1 to {max}."))),
    }
}

fn user_id(raw: &str) -> ApiResult<i64> {
    let id = raw
        .parse::<i64>()
        .map_err(|_| ApiError::field("id", "A valid integer id is required."))?;
    if id <= 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "User not found.",
        ));
    }
    Ok(id)
}

fn query<T>(params: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::field("query", &e.body_text()))
}

/// List accounts.
#[utoipa::path(
    get, path = "/api/admin/users/", tag = "admin", params(UserParams),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One page of accounts, in id order", body = UserPageDto),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    )
)]
pub(crate) async fn list_users(
    State(gw): State<Gateway>,
    fwd: Forward,
    params: Result<Query<UserParams>, QueryRejection>,
) -> ApiResult<Json<UserPageDto>> {
    let p = query(params)?;
    let r = gw
        .admin()
        .list_users(fwd.request(pb::ListUsersRequest {
            search: p.search.unwrap_or_default(),
            is_active: flag(p.is_active.as_deref(), "is_active")?,
            is_superuser: flag(p.is_superuser.as_deref(), "is_superuser")?,
            is_guest: flag(p.is_guest.as_deref(), "is_guest")?,
            page_size: number(p.page_size.as_deref(), "page_size", 100)?,
            page_token: p.page_token.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    Ok(Json(UserPageDto {
        results: r.users.into_iter().map(AdminUserDto::from).collect(),
        next_page_token: Some(r.next_page_token).filter(|t| !t.is_empty()),
    }))
}

/// One account.
#[utoipa::path(
    get, path = "/api/admin/users/{id}/", tag = "admin",
    params(("id" = i64, Path, description = "User id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = AdminUserDto),
        (status = 400, description = "Non-integer id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub(crate) async fn get_user(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
) -> ApiResult<Json<AdminUserDto>> {
    let id = user_id(&id)?;
    let r = gw
        .admin()
        .get_user(fwd.request(pb::GetUserRequest { id }))
        .await?
        .into_inner();
    Ok(Json(r.user.unwrap_or_default().into()))
}

/// Activate or deactivate an account, make or remove a superuser (never the last one).
#[utoipa::path(
    patch, path = "/api/admin/users/{id}/", tag = "admin", request_body = UserPatchBody,
    params(("id" = i64, Path, description = "User id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The changed account", body = AdminUserDto),
        (status = 400, description = "Invalid body, or the last active superuser", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub(crate) async fn update_user(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatchBody>,
) -> ApiResult<Json<AdminUserDto>> {
    let id = user_id(&id)?;
    let r = gw
        .admin()
        .update_user(fwd.request(pb::UpdateUserRequest {
            id,
            is_active: body.is_active,
            is_superuser: body.is_superuser,
        }))
        .await?
        .into_inner();
    Ok(Json(r.user.unwrap_or_default().into()))
}

/// Delete an account (its videos stay; never the last superuser).
#[utoipa::path(
    delete, path = "/api/admin/users/{id}/", tag = "admin",
    params(("id" = i64, Path, description = "User id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Non-integer id, or the last superuser", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub(crate) async fn delete_user(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = user_id(&id)?;
    gw.admin()
        .delete_user(fwd.request(pb::DeleteUserRequest { id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every job with its schedule, next due time and last run.
#[utoipa::path(
    get, path = "/api/admin/jobs/", tag = "admin",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The jobs", body = Vec<JobDto>),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    )
)]
pub(crate) async fn list_jobs(
    State(gw): State<Gateway>,
    fwd: Forward,
) -> ApiResult<Json<Vec<JobDto>>> {
    let r = gw
        .admin()
        .list_jobs(fwd.request(pb::ListJobsRequest {}))
        .await?
        .into_inner();
    Ok(Json(r.jobs.into_iter().map(JobDto::from).collect()))
}

/// Change a job's schedule or turn it on or off (every process follows at once).
#[utoipa::path(
    patch, path = "/api/admin/jobs/{name}/", tag = "admin", request_body = JobPatchBody,
    params(("name" = String, Path, description = "Job name")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The changed job", body = JobDto),
        (status = 400, description = "Invalid body, schedule or job name", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    )
)]
pub(crate) async fn update_job(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<JobPatchBody>,
) -> ApiResult<Json<JobDto>> {
    let r = gw
        .admin()
        .update_job(fwd.request(pb::UpdateJobRequest {
            name,
            schedule: body.schedule,
            enabled: body.enabled,
        }))
        .await?
        .into_inner();
    Ok(Json(r.job.unwrap_or_default().into()))
}

/// Run a job now, once, recorded.
#[utoipa::path(
    post, path = "/api/admin/jobs/{name}/run/", tag = "admin",
    params(("name" = String, Path, description = "Job name")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = RunDto),
        (status = 400, description = "No such job", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    )
)]
pub(crate) async fn run_job(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(name): Path<String>,
) -> ApiResult<Json<RunDto>> {
    let r = gw
        .admin()
        .run_job(fwd.request(pb::RunJobRequest { name }))
        .await?
        .into_inner();
    Ok(Json(RunDto {
        run: r.run.map(JobRunDto::from),
    }))
}

/// The newest job runs.
#[utoipa::path(
    get, path = "/api/admin/job-runs/", tag = "admin", params(RunParams),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Runs, newest first", body = Vec<JobRunDto>),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    )
)]
pub(crate) async fn list_job_runs(
    State(gw): State<Gateway>,
    fwd: Forward,
    params: Result<Query<RunParams>, QueryRejection>,
) -> ApiResult<Json<Vec<JobRunDto>>> {
    let p = query(params)?;
    let r = gw
        .admin()
        .list_job_runs(fwd.request(pb::ListJobRunsRequest {
            job: p.job.unwrap_or_default(),
            limit: number(p.limit.as_deref(), "limit", 1000)?,
        }))
        .await?
        .into_inner();
    Ok(Json(r.runs.into_iter().map(JobRunDto::from).collect()))
}

/// The export files, newest first.
#[utoipa::path(
    get, path = "/api/admin/exports/", tag = "admin",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Export files", body = Vec<ExportDto>),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    )
)]
pub(crate) async fn list_exports(
    State(gw): State<Gateway>,
    fwd: Forward,
) -> ApiResult<Json<Vec<ExportDto>>> {
    let r = gw
        .admin()
        .list_exports(fwd.request(pb::ListExportsRequest {}))
        .await?
        .into_inner();
    Ok(Json(r.exports.into_iter().map(ExportDto::from).collect()))
}

/// Write an export now.
#[utoipa::path(
    post, path = "/api/admin/exports/", tag = "admin", request_body = ExportBody,
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "The new export", body = ExportDto),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    )
)]
pub(crate) async fn create_export(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<ExportBody>,
) -> ApiResult<(StatusCode, Json<ExportDto>)> {
    let r = gw
        .admin()
        .create_export(fwd.request(pb::CreateExportRequest { full: body.full }))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(r.export.unwrap_or_default().into()),
    ))
}

/// Download an export file (streamed).
#[utoipa::path(
    get, path = "/api/admin/exports/{name}/", tag = "admin",
    params(("name" = String, Path, description = "A file name from the list")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The file", content_type = "application/json", body = ExportDocument),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such export", body = ErrorBody),
    )
)]
pub(crate) async fn download_export(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let mut stream = gw
        .admin()
        .download_export(fwd.request(pb::DownloadExportRequest { name: name.clone() }))
        .await?
        .into_inner();
    // The first message tells a missing file from a good one before the 200 goes out.
    let first = stream.message().await?;
    let rest = stream.map(|m| m.map(|c| Bytes::from(c.data)));
    let head = tokio_stream::iter(first.map(|c| Ok(Bytes::from(c.data))));
    let mut response = Body::from_stream(head.chain(rest)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Check an export file (the body, either format) and, unless `dry_run`, apply it in one
/// transaction. Bad records answer 200 with `ok: false` and the errors: nothing was written.
/// Bodies up to 2 MB; larger files with `videoflix import-video-data`.
#[utoipa::path(
    post, path = "/api/admin/import/", tag = "admin", params(ImportParams),
    request_body(content = ExportDocument, content_type = "application/json", description = "An export file: the video array or a full document"),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The preview or outcome", body = ImportDto),
        (status = 400, description = "Invalid parameter, or the body is not an export file", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 413, description = "Body larger than 2 MB", body = ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = ErrorBody),
    )
)]
pub(crate) async fn import(
    State(gw): State<Gateway>,
    fwd: Forward,
    headers: HeaderMap,
    params: Result<Query<ImportParams>, QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<ImportDto>> {
    let p = query(params)?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request",
            "Expected request with `Content-Type: application/json`",
        ));
    }
    let body = body.map_err(|e| {
        let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(
            status,
            "request",
            format!("Invalid request body: {}", e.body_text()),
        )
    })?;
    let dry_run = flag(p.dry_run.as_deref(), "dry_run")?.unwrap_or(false);
    let r = gw
        .admin()
        .import_video_data(fwd.request(pb::ImportVideoDataRequest {
            data: body.to_vec(),
            dry_run,
            user_map: Default::default(),
        }))
        .await?
        .into_inner();
    Ok(Json(ImportDto {
        ok: r.ok,
        applied: r.applied,
        videos: counts(r.videos),
        users: counts(r.users),
        favorites: counts(r.favorites),
        watch_progress: counts(r.watch_progress),
        errors: r
            .errors
            .into_iter()
            .map(|e| ImportErrorDto {
                section: e.section,
                index: e.index,
                id: Some(e.id).filter(|id| *id > 0),
                field: e.field,
                reason: e.reason,
            })
            .collect(),
    }))
}
