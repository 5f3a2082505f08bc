//! Catalog routes: `/api/videos/…`, favorites, progress and continue-watching.

use axum::{
    Json,
    extract::{FromRequest, Multipart, Path, Query, Request, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;

use crate::{
    ApiError, ErrorBody, Gateway,
    call::{ApiJson, Forward},
    conditional::{Answer, Conditional},
    dto::{
        CategorizedDto, GenreName, LanguageName, ProgressBody, ProgressDto, StatusDto, UploadForm,
        VideoDto, VideoPageDto, VideoPatchBody, VideoWriteBody, genre_name, language_name, rfc3339,
    },
    pb,
};

type ApiResult<T> = Result<T, ApiError>;

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
    /// Case-insensitive text in title or description.
    search: Option<String>,
    /// Sort order (default `-uploaded_at`).
    #[param(inline, value_type = Option<OrderingName>)]
    ordering: Option<String>,
    /// Page size: answer `{count, next, previous, results}` instead of an array.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
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

fn bad(field: &str, message: &str) -> ApiError {
    ApiError::field(field, message)
}

/// An integer parameter, exactly (present but empty, or padded, is not an integer).
fn parse_i64(raw: Option<&str>, field: &str) -> ApiResult<Option<i64>> {
    match raw {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(field, "A valid integer is required.")),
    }
}

fn parse_bool(raw: Option<&str>, field: &str) -> ApiResult<bool> {
    match raw {
        None | Some("" | "false" | "False" | "0" | "no") => Ok(false),
        Some("true" | "True" | "1" | "yes") => Ok(true),
        Some(_) => Err(bad(field, "Must be true or false.")),
    }
}

fn parse_time(raw: Option<&str>, field: &str) -> ApiResult<Option<prost_types::Timestamp>> {
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let parsed = chrono::DateTime::parse_from_rfc3339(s)
        .map(|dt| dt.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| bad(field, "Enter a valid date/time (RFC 3339 or YYYY-MM-DD)."))?;
    Ok(Some(prost_types::Timestamp {
        seconds: parsed.timestamp(),
        nanos: i32::try_from(parsed.timestamp_subsec_nanos()).unwrap_or(0),
    }))
}

/// A genre's exact wire name (as the original's choice field: `drama`, not `Drama`); empty is
/// none.
fn parse_genre(raw: Option<&str>) -> ApiResult<i32> {
    let Some(s) = raw.filter(|s| !s.is_empty()) else {
        return Ok(pb::Genre::Unspecified as i32);
    };
    pb::Genre::from_str_name(&format!("GENRE_{}", s.to_uppercase()))
        .filter(|g| *g != pb::Genre::Unspecified && genre_name(*g as i32).as_deref() == Some(s))
        .map(|g| g as i32)
        .ok_or_else(|| {
            bad(
                "genre",
                &format!(
                    "\"{s}\" is not a valid choice. Choose one of: documentary, action, horror, \
                     drama, technic."
                ),
            )
        })
}

/// A language's exact wire name; empty is none.
fn parse_language(raw: Option<&str>) -> ApiResult<i32> {
    let Some(s) = raw.filter(|s| !s.is_empty()) else {
        return Ok(pb::Language::Unspecified as i32);
    };
    pb::Language::from_str_name(&format!("LANGUAGE_{}", s.to_uppercase()))
        .filter(|l| {
            *l != pb::Language::Unspecified && language_name(*l as i32).as_deref() == Some(s)
        })
        .map(|l| l as i32)
        .ok_or_else(|| {
            bad(
                "language",
                &format!("\"{s}\" is not a valid choice. Choose one of: french, english, german."),
            )
        })
}

fn video_id(raw: &str) -> ApiResult<i64> {
    let id = raw
        .trim()
        .parse::<i64>()
        .map_err(|_| bad("id", "A valid integer id is required."))?;
    if id <= 0 {
        // An integer, just not one any video has.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "video not found.",
        ));
    }
    Ok(id)
}

/// Absolute URL of this request under `base` (PUBLIC_URL) with `page` replaced (DRF's
/// `next`/`previous`). The client's `Host` header is never used: `Host: evil.example` must not
/// make the links point elsewhere.
fn page_url(base: &str, uri: &Uri, page: i64) -> String {
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                .filter(|(k, _)| *k != "page" && !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    pairs.push(("page".to_owned(), page.to_string()));
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{base}{}?{}", uri.path(), query.join("&"))
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
    let mut request = pb::ListVideosRequest {
        genre: parse_genre(p.genre.as_deref())?,
        language: parse_language(p.language.as_deref())?,
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
    if request.uploaded_by < 0 {
        return Err(bad("uploaded_by", "A valid integer is required."));
    }
    let page_size = parse_i64(p.page_size.as_deref(), "page_size")?;
    let page = parse_i64(p.page.as_deref(), "page")?;
    match page_size {
        Some(size) => {
            if !(1..=100).contains(&size) {
                return Err(bad("page_size", "The page size must be between 1 and 100."));
            }
            let page = page.unwrap_or(1);
            if page < 1 {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "Invalid page.",
                ));
            }
            request.page_size = i32::try_from(size).unwrap_or(100);
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
            let last_page = (r.total_size + size - 1) / size;
            let dto = VideoPageDto {
                count: r.total_size,
                next: (page < last_page).then(|| page_url(&gw.public_base, &uri, page + 1)),
                previous: (page > 1).then(|| page_url(&gw.public_base, &uri, page - 1)),
                results: r.videos.into_iter().map(VideoDto::from).collect(),
            };
            Ok(read.respond(Answer::Fresh(r.etag, dto)))
        }
        None => {
            if page.is_some() {
                return Err(bad("page", "page needs page_size."));
            }
            // The legacy API answers the whole list: follow the cursor to the end. Only a
            // one-page answer is conditional (its etag covers all of it).
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
    }
}

/// Every page of a cursor-paged list, as one array. A video that moved behind the cursor
/// meanwhile (edited, with `updated_at` ordering) is kept once, where it was first seen.
async fn all_pages<F, Fut>(mut page: F) -> ApiResult<Vec<VideoDto>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<pb::Video>, String), tonic::Status>>,
{
    let (first, next) = page(String::new()).await?;
    more_pages(first, next, page).await
}

/// The first page and every page after `token`, as one array (see [`all_pages`]).
async fn more_pages<F, Fut>(
    first: Vec<pb::Video>,
    mut token: String,
    mut page: F,
) -> ApiResult<Vec<VideoDto>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<pb::Video>, String), tonic::Status>>,
{
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<VideoDto> = first
        .into_iter()
        .filter(|v| seen.insert(v.id))
        .map(VideoDto::from)
        .collect();
    while !token.is_empty() {
        let (videos, next) = page(token).await?;
        all.extend(
            videos
                .into_iter()
                .filter(|v| seen.insert(v.id))
                .map(VideoDto::from),
        );
        token = next;
    }
    Ok(all)
}

/// Fields of a write body: absent → None, null → "", string → itself.
fn text_fields(body: &Map<String, Value>) -> ApiResult<Vec<(&'static str, Option<String>)>> {
    const FIELDS: [&str; 5] = ["title", "description", "author", "genre", "language"];
    // A misspelt field must not be dropped silently.
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(bad(
            unknown,
            "Unknown field; writable: title, description, author, genre, language.",
        ));
    }
    FIELDS
        .into_iter()
        .map(|field| match body.get(field) {
            None => Ok((field, None)),
            Some(Value::Null) => Ok((field, Some(String::new()))),
            Some(Value::String(s)) => Ok((field, Some(s.clone()))),
            Some(_) => Err(bad(field, "Must be a string.")),
        })
        .collect()
}

/// A JSON or multipart body of video fields.
pub(crate) struct VideoForm(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for VideoForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("multipart/form-data"));
        if !is_multipart {
            let ApiJson(map) = ApiJson::<Map<String, Value>>::from_request(req, state).await?;
            return Ok(Self(map));
        }
        let mut multipart = Multipart::from_request(req, state)
            .await
            .map_err(|e| bad("request", &e.body_text()))?;
        let mut map = Map::new();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| bad("request", &e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            if field.file_name().is_some() || name == "video_file" {
                return Err(bad(
                    "video_file",
                    "A video file can only be uploaded when creating a video (POST /api/videos/).",
                ));
            }
            let text = field.text().await.map_err(|e| bad(&name, &e.body_text()))?;
            if ["title", "description", "author", "genre", "language"].contains(&name.as_str()) {
                map.insert(name, Value::String(text));
            }
        }
        Ok(Self(map))
    }
}

/// A genre or language name for a write: known names map to their enum value, anything else to
/// an invalid value that the service rejects (after checking the caller may write at all).
fn enum_or_invalid(parsed: ApiResult<i32>) -> i32 {
    parsed.unwrap_or(-1)
}

fn metadata(fields: &[(&'static str, Option<String>)]) -> ApiResult<pb::VideoMetadata> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(f, _)| *f == name)
            .and_then(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Ok(pb::VideoMetadata {
        title: get("title"),
        description: get("description"),
        author: get("author"),
        genre: enum_or_invalid(parse_genre(Some(&get("genre")))),
        language: enum_or_invalid(parse_language(Some(&get("language")))),
    })
}

/// Create a video (superusers): from metadata (JSON or form), or with its file as multipart
/// (metadata fields first, then `video_file`; streamed to disk, probed, then transcoded in the
/// background: the answer has status `pending`).
///
/// A rule beyond what the schema states: `video_file` must be a video FFmpeg can decode (a
/// playable video stream, not a playlist or a still image); anything else is a 400
/// `video_file`, checked by probing the uploaded bytes.
#[utoipa::path(
    post, path = "/api/videos/", tag = "videos",
    request_body(content((VideoWriteBody = "application/json"), (UploadForm = "multipart/form-data"))),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Created (with a file: status pending)", body = VideoDto),
        (status = 400, description = "Invalid field, or a file that is not a playable video", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 413, description = "File larger than UPLOAD_MAX_BYTES", body = ErrorBody),
        (status = 429, description = "Throttled", body = ErrorBody),
    )
)]
pub(crate) async fn create_video(
    State(gw): State<Gateway>,
    fwd: Forward,
    request: Request,
) -> ApiResult<(StatusCode, Json<VideoDto>)> {
    let body = if is_multipart(request.headers()) {
        let multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| bad("request", &e.body_text()))?;
        match upload(&gw, &fwd, multipart).await? {
            Uploaded::Video(video) => return Ok((StatusCode::CREATED, Json((*video).into()))),
            Uploaded::NoFile(fields) => fields,
        }
    } else {
        let ApiJson(map) = ApiJson::<Map<String, Value>>::from_request(request, &()).await?;
        map
    };
    let fields = text_fields(&body)?;
    let r = gw
        .video()
        .create_video(fwd.request(pb::CreateVideoRequest {
            metadata: Some(metadata(&fields)?),
        }))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(r.video.unwrap_or_default().into()),
    ))
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"))
}

/// Longest metadata field of an upload form, in bytes.
const MAX_FORM_FIELD: usize = 64 * 1024;
/// Most metadata of an upload form, in bytes and in fields.
const MAX_FORM_TOTAL: usize = 256 * 1024;
const MAX_FORM_FIELDS: usize = 32;

/// The text fields of an upload form, read with bounds (no body limit applies to uploads).
#[derive(Default)]
struct FormFields {
    map: Map<String, Value>,
    count: usize,
    total: usize,
}

impl FormFields {
    async fn read(&mut self, mut field: axum::extract::multipart::Field<'_>) -> ApiResult<()> {
        let name = field.name().unwrap_or_default().to_owned();
        self.count += 1;
        if self.count > MAX_FORM_FIELDS {
            return Err(bad("request", "Too many form fields."));
        }
        let mut text = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| bad(&name, &e.body_text()))?
        {
            self.total += chunk.len();
            if text.len() + chunk.len() > MAX_FORM_FIELD || self.total > MAX_FORM_TOTAL {
                return Err(bad(&name, "This field is too long."));
            }
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(text).map_err(|_| bad(&name, "Must be UTF-8 text."))?;
        if ["title", "description", "author", "genre", "language"].contains(&name.as_str()) {
            self.map.insert(name, Value::String(text));
        }
        Ok(())
    }
}

/// What a multipart create held.
enum Uploaded {
    /// A `video_file` part, uploaded (streamed) through UploadVideo.
    Video(Box<pb::Video>),
    /// Only metadata fields.
    NoFile(Map<String, Value>),
}

/// Streams a multipart create to UploadVideo: the call starts at once (so the service
/// authenticates and checks permissions before any of the body is read), metadata fields are
/// read (bounded), and the `video_file` part goes out chunk by chunk while the service writes it
/// to disk: the file is never whole in memory. Fields may come before the file (the metadata
/// then goes first) or after it (then last).
async fn upload(gw: &Gateway, fwd: &Forward, mut multipart: Multipart) -> ApiResult<Uploaded> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut client = gw.video();
    let call = client.upload_video(fwd.request(tokio_stream::wrappers::ReceiverStream::new(rx)));
    let feed = async move {
        let mut form = FormFields::default();
        let mut field = loop {
            let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| bad("request", &e.body_text()))?
            else {
                return Ok(Some(form.map));
            };
            if field.name() == Some("video_file") || field.file_name().is_some() {
                break field;
            }
            form.read(field).await?;
        };
        let file_name = field.file_name().unwrap_or_default().to_owned();
        let header = |map: &Map<String, Value>| -> ApiResult<pb::UploadVideoRequest> {
            Ok(pb::UploadVideoRequest {
                payload: Some(pb::upload_video_request::Payload::Header(
                    pb::UploadHeader {
                        metadata: Some(metadata(&text_fields(map)?)?),
                        file_name: file_name.clone(),
                        size_bytes: 0,
                    },
                )),
            })
        };
        // Metadata first when the form sent it first; else after the file (the service checks
        // it once the bytes are in).
        let leading = !form.map.is_empty();
        if leading && tx.send(header(&form.map)?).await.is_err() {
            return Ok(None);
        }
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| bad("video_file", &e.body_text()))?
        {
            let message = pb::UploadVideoRequest {
                payload: Some(pb::upload_video_request::Payload::Chunk(chunk.to_vec())),
            };
            if tx.send(message).await.is_err() {
                // The service answered already (an error); it is returned below.
                return Ok(None);
            }
        }
        drop(field);
        if !leading {
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| bad("request", &e.body_text()))?
            {
                if field.name() == Some("video_file") || field.file_name().is_some() {
                    return Err(bad("video_file", "Send one file."));
                }
                form.read(field).await?;
            }
            if tx.send(header(&form.map)?).await.is_err() {
                return Ok(None);
            }
        }
        Ok::<_, ApiError>(None)
    };
    tokio::pin!(call);
    tokio::pin!(feed);
    let mut fed = false;
    let response = loop {
        tokio::select! {
            response = &mut call => break response,
            // A broken upload cancels the call: the service drops the partial file. A form
            // without a file is a create from metadata.
            result = &mut feed, if !fed => match result? {
                Some(fields) => return Ok(Uploaded::NoFile(fields)),
                None => fed = true,
            }
        }
    };
    Ok(Uploaded::Video(Box::new(
        response?.into_inner().video.unwrap_or_default(),
    )))
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

async fn update(
    gw: &Gateway,
    fwd: &Forward,
    id: &str,
    body: &Map<String, Value>,
    partial: bool,
) -> ApiResult<Json<VideoDto>> {
    let id = video_id(id)?;
    let fields = text_fields(body)?;
    let paths: Vec<String> = fields
        .iter()
        .filter(|(_, v)| !partial || v.is_some())
        .map(|(f, _)| (*f).to_owned())
        .collect();
    // An empty mask asks the service to change nothing (it still checks the caller's rights
    // and that the video exists).
    let r = gw
        .video()
        .update_video(fwd.request(pb::UpdateVideoRequest {
            id,
            metadata: Some(metadata(&fields)?),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await?
        .into_inner();
    Ok(Json(r.video.unwrap_or_default().into()))
}

/// Replace a video's metadata (superusers); missing fields become empty.
#[utoipa::path(
    put, path = "/api/videos/{id}/", tag = "videos", request_body = VideoWriteBody,
    params(("id" = i64, Path, description = "Video id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = VideoDto),
        (status = 400, description = "Invalid field or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    )
)]
pub(crate) async fn put_video(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
    VideoForm(body): VideoForm,
) -> ApiResult<Json<VideoDto>> {
    update(&gw, &fwd, &id, &body, false).await
}

/// Change some of a video's metadata (superusers).
#[utoipa::path(
    patch, path = "/api/videos/{id}/", tag = "videos", request_body = VideoPatchBody,
    params(("id" = i64, Path, description = "Video id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = VideoDto),
        (status = 400, description = "Invalid field or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    )
)]
pub(crate) async fn patch_video(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
    VideoForm(body): VideoForm,
) -> ApiResult<Json<VideoDto>> {
    update(&gw, &fwd, &id, &body, true).await
}

/// Delete a video and its media (superusers).
#[utoipa::path(
    delete, path = "/api/videos/{id}/", tag = "videos",
    params(("id" = i64, Path, description = "Video id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Non-integer id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    )
)]
pub(crate) async fn delete_video(
    State(gw): State<Gateway>,
    fwd: Forward,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = video_id(&id)?;
    gw.video()
        .delete_video(fwd.request(pb::DeleteVideoRequest { id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
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
