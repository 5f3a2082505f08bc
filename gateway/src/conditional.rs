//! Conditional reads. The catalog answers every cacheable read with an `etag`, and a request
//! naming the current one (`if_none_match`) is answered "not modified", without content. The
//! gateway uses that twice: it answers HTTP `If-None-Match` with 304, and it keeps each caller's
//! last rendered JSON per URL, so an unchanged answer is sent again without being fetched and
//! rendered again. The service still authenticates, throttles and validates every request; only
//! the copy of the bytes is saved.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::ApiError;

/// Most memory the kept answers may use.
const CAPACITY_BYTES: u64 = 64 << 20;
/// A kept answer nobody asked for this long is dropped.
const IDLE: Duration = Duration::from_secs(15 * 60);

/// Rendered answers, per caller and URL.
#[derive(Clone)]
pub(crate) struct Renders(moka::sync::Cache<String, Arc<Rendered>>);

pub(crate) struct Rendered {
    etag: String,
    body: Bytes,
}

impl Renders {
    pub(crate) fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|key: &String, value: &Arc<Rendered>| {
                    u32::try_from(key.len() + value.body.len()).unwrap_or(u32::MAX)
                })
                .time_to_idle(IDLE)
                .build(),
        )
    }
}

/// What the service answered to a conditional read.
pub(crate) enum Answer<T> {
    /// The answer named by the etag sent is still current.
    NotModified(String),
    /// A new answer, and its etag (empty: not cacheable).
    Fresh(String, T),
}

impl<T> Answer<T> {
    /// Builds the answer from a response's `not_modified` and `etag` fields.
    pub(crate) fn of(not_modified: bool, etag: String, value: impl FnOnce() -> T) -> Self {
        if not_modified {
            Self::NotModified(etag)
        } else {
            Self::Fresh(etag, value())
        }
    }
}

/// Which tag the gateway sent as `if_none_match`.
enum Sent {
    Nothing,
    Client(String),
    Kept(Arc<Rendered>),
}

/// One conditional REST read.
pub(crate) struct Conditional {
    renders: Renders,
    key: Option<String>,
    sent: Sent,
}

impl Conditional {
    /// Prepares a read of `uri` by this request's caller: the client's own `If-None-Match`
    /// wins; else the etag of the answer kept for this caller and URL, if any.
    pub(crate) fn new(renders: &Renders, headers: &HeaderMap, uri: &Uri) -> Self {
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let authorization = text(header::AUTHORIZATION);
        // Anonymous reads fail anyway; keep nothing for them. Host and scheme shape the
        // absolute URLs in an answer (pagination links).
        let key = (!authorization.is_empty()).then(|| {
            format!(
                "{authorization}\n{}\n{}\n{uri}",
                text(header::HOST),
                headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default(),
            )
        });
        let sent = if let Some(tag) = client_tag(text(header::IF_NONE_MATCH)) {
            Sent::Client(tag)
        } else if let Some(kept) = key.as_ref().and_then(|k| renders.0.get(k)) {
            Sent::Kept(kept)
        } else {
            Sent::Nothing
        };
        Self {
            renders: renders.clone(),
            key,
            sent,
        }
    }

    /// The `if_none_match` to send to the service.
    pub(crate) fn if_none_match(&self) -> String {
        match &self.sent {
            Sent::Nothing => String::new(),
            Sent::Client(tag) => tag.clone(),
            Sent::Kept(kept) => kept.etag.clone(),
        }
    }

    /// The HTTP response to the service's answer.
    pub(crate) fn respond<T: Serialize>(self, answer: Answer<T>) -> Response {
        match (answer, self.sent) {
            (Answer::NotModified(etag), Sent::Client(_)) => {
                with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag)
            }
            (Answer::NotModified(_), Sent::Kept(kept)) => json(kept.body.clone(), &kept.etag),
            (Answer::NotModified(_), Sent::Nothing) => {
                // The service names nothing as unchanged unless it was asked.
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "error",
                    "Unexpected not-modified answer.",
                )
                .into_response()
            }
            (Answer::Fresh(etag, value), _) => {
                let body = match serde_json::to_vec(&value) {
                    Ok(body) => Bytes::from(body),
                    Err(e) => {
                        tracing::error!(error = %e, "rendering a response failed");
                        return ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "error",
                            "Internal server error.",
                        )
                        .into_response();
                    }
                };
                if !etag.is_empty()
                    && let Some(key) = self.key
                {
                    let rendered = Rendered {
                        etag: etag.clone(),
                        body: body.clone(),
                    };
                    self.renders.0.insert(key, Arc::new(rendered));
                }
                json(body, &etag)
            }
        }
    }
}

/// The first entity tag of an `If-None-Match` header, without `W/` and quotes.
fn client_tag(header: &str) -> Option<String> {
    let first = header.split(',').next()?.trim();
    let tag = first
        .strip_prefix("W/")
        .unwrap_or(first)
        .trim_matches('"')
        .trim();
    (!tag.is_empty() && tag != "*").then(|| tag.to_owned())
}

fn json(body: Bytes, etag: &str) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if !etag.is_empty() {
        response = with_etag(response, etag);
    }
    response
}

/// Adds `ETag` and the caching rules of a private answer that must be revalidated.
fn with_etag(mut response: Response, etag: &str) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("W/\"{etag}\"")) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Authorization"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tags_are_read_weak_or_strong() {
        assert_eq!(client_tag("W/\"abc\""), Some("abc".to_owned()));
        assert_eq!(client_tag("\"abc\", \"def\""), Some("abc".to_owned()));
        assert_eq!(client_tag("*"), None);
        assert_eq!(client_tag(""), None);
    }

    #[test]
    fn kept_answers_are_sent_again_when_unchanged() {
        let renders = Renders::new();
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Token t"));
        let uri = Uri::from_static("/api/videos/");
        let first = Conditional::new(&renders, &headers, &uri);
        assert_eq!(first.if_none_match(), "");
        let response = first.respond(Answer::Fresh("e1".to_owned(), vec![1, 2]));
        assert_eq!(response.status(), StatusCode::OK);
        let second = Conditional::new(&renders, &headers, &uri);
        assert_eq!(second.if_none_match(), "e1");
        let response = second.respond(Answer::<Vec<i32>>::NotModified("e1".to_owned()));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::ETAG], "W/\"e1\"");
        // Another caller holds nothing.
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Token u"));
        assert_eq!(
            Conditional::new(&renders, &headers, &uri).if_none_match(),
            ""
        );
    }

    #[test]
    fn a_client_tag_gets_304() {
        let renders = Renders::new();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"e1\""));
        let uri = Uri::from_static("/api/videos/");
        let read = Conditional::new(&renders, &headers, &uri);
        assert_eq!(read.if_none_match(), "e1");
        let response = read.respond(Answer::<()>::NotModified("e1".to_owned()));
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    }
}
