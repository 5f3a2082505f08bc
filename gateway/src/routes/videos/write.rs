//! Catalog writes (superusers): create from metadata or an uploaded file, replace, change,
//! delete.

use axum::{
    Json,
    extract::{FromRequest, Multipart, Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

use crate::{
    ApiError, ErrorBody, Gateway,
    call::{ApiJson, Forward},
    dto::{UploadForm, VideoDto, VideoPatchBody, VideoWriteBody},
    pb,
};

use super::{ApiResult, bad, genre_value, language_value, video_id};

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
        genre: genre_value(Some(&get("genre"))),
        language: language_value(Some(&get("language"))),
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
        (status = 507, description = "The media disk is full: nothing was stored (`type`: storage)", body = ErrorBody),
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

async fn update(
    gw: &Gateway,
    fwd: &Forward,
    headers: &HeaderMap,
    id: &str,
    body: &Map<String, Value>,
    partial: bool,
) -> ApiResult<Response> {
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
            etag: if_match(headers),
        }))
        .await?
        .into_inner();
    let mut response = Json(VideoDto::from(r.video.unwrap_or_default())).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", r.etag)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// The entity tag of `If-Match` as the service reads it (`*` and none: no condition). Weak
/// tags (`W/"…"`) name our GET answers too: the service compares the video's version in them.
fn if_match(headers: &HeaderMap) -> String {
    let Some(value) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return String::new();
    };
    let value = value.trim();
    if value == "*" {
        return String::new();
    }
    let tag = value.strip_prefix("W/").unwrap_or(value);
    // A tag that is no version of ours (or none at all) matches nothing: 412.
    let tag: String = tag.trim_matches('"').chars().take(200).collect();
    if tag.is_empty() { "-".to_owned() } else { tag }
}

/// Replace a video's metadata (superusers); missing fields become empty.
#[utoipa::path(
    put, path = "/api/videos/{id}/", tag = "videos", request_body = VideoWriteBody,
    params(("id" = i64, Path, description = "Video id"), ("If-Match" = Option<String>, Header, description = "The ETag of the video as read (GET, or an earlier PUT/PATCH): refused with 412 when the video changed since")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = VideoDto, headers(("ETag" = String, description = "The video's version now, for the If-Match of a following change"))),
        (status = 412, description = "If-Match names another version: the video changed since it was read", body = ErrorBody),
        (status = 400, description = "Invalid field or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    )
)]
pub(crate) async fn put_video(
    State(gw): State<Gateway>,
    fwd: Forward,
    headers: HeaderMap,
    Path(id): Path<String>,
    VideoForm(body): VideoForm,
) -> ApiResult<Response> {
    update(&gw, &fwd, &headers, &id, &body, false).await
}

/// Change some of a video's metadata (superusers).
#[utoipa::path(
    patch, path = "/api/videos/{id}/", tag = "videos", request_body = VideoPatchBody,
    params(("id" = i64, Path, description = "Video id"), ("If-Match" = Option<String>, Header, description = "The ETag of the video as read (GET, or an earlier PUT/PATCH): refused with 412 when the video changed since")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = VideoDto, headers(("ETag" = String, description = "The video's version now, for the If-Match of a following change"))),
        (status = 412, description = "If-Match names another version: the video changed since it was read", body = ErrorBody),
        (status = 400, description = "Invalid field or id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    )
)]
pub(crate) async fn patch_video(
    State(gw): State<Gateway>,
    fwd: Forward,
    headers: HeaderMap,
    Path(id): Path<String>,
    VideoForm(body): VideoForm,
) -> ApiResult<Response> {
    update(&gw, &fwd, &headers, &id, &body, true).await
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
