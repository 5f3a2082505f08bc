//! The one mapping from a gRPC [`tonic::Status`] to an HTTP response in the legacy frontend's
//! error shape: `{"type": ["email"], "message": ["…"], "fields": {"email": ["…"]}}`.
//!
//! Status codes follow Google's canonical mapping (google/rpc/code.proto), matched exhaustively
//! so a new gRPC code cannot compile until it has an HTTP status here.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::rejection::JsonRejection,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt;
use utoipa::ToSchema;

/// `google.rpc.ErrorInfo.reason` of a body or message over its limit: the server sets it, the
/// gateway answers 413 for it.
pub const REASON_PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";

/// `google.rpc.ErrorInfo.reason` of an update refused because the video changed since the
/// caller read it (ABORTED): REST answers it as 412 Precondition Failed (`If-Match`).
pub const REASON_ETAG_MISMATCH: &str = "ETAG_MISMATCH";

/// `google.rpc.ErrorInfo.reason` of a write refused because the server's media disk is full
/// (RESOURCE_EXHAUSTED): REST answers it as 507 Insufficient Storage.
pub const REASON_STORAGE_FULL: &str = "STORAGE_FULL";

/// Body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct ErrorBody {
    /// What kind of thing was wrong: `email`, `password`, `account`, `credentials`, `token`,
    /// `request`, `throttled`, `not_found`, `permission`, `server`, ….
    #[serde(rename = "type")]
    #[schema(example = json!(["email"]))]
    pub kind: Vec<String>,
    /// Human-readable messages, fit to show to the user.
    #[schema(example = json!(["Enter a valid email address."]))]
    pub message: Vec<String>,
    /// Messages per request field, when fields were invalid.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Vec<String>>,
}

/// An error answer of the REST API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with one kind and one message.
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                kind: vec![kind.to_owned()],
                message: vec![message.into()],
                fields: BTreeMap::new(),
            },
            retry_after: None,
        }
    }

    /// A 400 naming one invalid request field (its name is also the `type`).
    pub fn field(field: &str, message: &str) -> Self {
        let mut error = Self::new(StatusCode::BAD_REQUEST, field, message);
        error
            .body
            .fields
            .insert(field.to_owned(), vec![message.to_owned()]);
        error
    }

    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The status on the legacy account paths (`/register/`, `/login/`, …): the original
    /// answered every client error there with DRF's 400 and a `{type, message}` body — a wrong
    /// password, an e-mail already taken — and its frontend reads the body only of a 400 or 404.
    /// Throttling (429), a body that is not JSON (415) or too large (413) keep their status.
    pub(crate) fn legacy_account(mut self) -> Self {
        let keeps = [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::PAYLOAD_TOO_LARGE,
        ];
        if self.status.is_client_error() && !keeps.contains(&self.status) {
            self.status = StatusCode::BAD_REQUEST;
        }
        self
    }
}

/// HTTP status for a gRPC code (google.rpc.Code's documented HTTP mapping).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499 "Client Closed Request" has no constant in `http`.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// The JSON body alone (for errors inside a stream).
    pub fn into_body(self) -> ErrorBody {
        self.body
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let details = status.get_error_details();
        let kind = details
            .error_info()
            .and_then(|info| info.metadata.get("type").cloned())
            .unwrap_or_else(|| "server".to_owned());
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut messages = Vec::new();
        if let Some(bad) = details.bad_request() {
            for violation in &bad.field_violations {
                fields
                    .entry(violation.field.clone())
                    .or_default()
                    .push(violation.description.clone());
                messages.push(violation.description.clone());
            }
        }
        if messages.is_empty() {
            messages.push(status.message().to_owned());
        }
        let reason = details.error_info().map(|info| info.reason.clone());
        Self {
            status: match reason.as_deref() {
                Some(REASON_PAYLOAD_TOO_LARGE) => StatusCode::PAYLOAD_TOO_LARGE,
                Some(REASON_ETAG_MISMATCH) => StatusCode::PRECONDITION_FAILED,
                Some(REASON_STORAGE_FULL) => StatusCode::INSUFFICIENT_STORAGE,
                _ => http_status(status.code()),
            },
            body: ErrorBody {
                kind: vec![kind],
                message: messages,
                fields,
            },
            retry_after: details
                .retry_info()
                .and_then(|r| r.retry_delay)
                .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match &rejection {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ if crate::deadline::is_body_deadline(&rejection) => StatusCode::REQUEST_TIMEOUT,
            // Over the body limit.
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(
            status,
            "request",
            format!("Invalid request body: {}", rejection.body_text()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_error_code_is_a_4xx() {
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::OutOfRange,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::AlreadyExists,
            Code::Aborted,
            Code::ResourceExhausted,
        ] {
            assert!(http_status(code).is_client_error(), "{code:?}");
        }
    }

    #[test]
    fn legacy_account_paths_answer_client_errors_with_400_but_keep_throttling() {
        let wrong = ApiError::from(tonic::Status::unauthenticated("Wrong e-mail or password."));
        assert_eq!(wrong.legacy_account().status, StatusCode::BAD_REQUEST);
        let taken = ApiError::from(tonic::Status::already_exists("taken"));
        assert_eq!(taken.legacy_account().status, StatusCode::BAD_REQUEST);
        let throttled = ApiError::from(tonic::Status::resource_exhausted("slow down"));
        assert_eq!(
            throttled.legacy_account().status,
            StatusCode::TOO_MANY_REQUESTS
        );
        let down = ApiError::from(tonic::Status::unavailable("busy"));
        assert_eq!(
            down.legacy_account().status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn plain_statuses_keep_their_message() {
        let err = ApiError::from(tonic::Status::not_found("video not found."));
        assert_eq!(err.status, StatusCode::NOT_FOUND);
        assert_eq!(err.body.message, vec!["video not found."]);
        assert_eq!(err.body.kind, vec!["server"]);
    }
}
