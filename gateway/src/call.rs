//! Turning a REST request into an in-process gRPC call: the caller's credentials and address
//! travel as gRPC metadata and connection info, exactly as they would over the network.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{HeaderValue, header, request::Parts},
};
use serde::de::DeserializeOwned;
use tonic::transport::server::TcpConnectInfo;

use crate::{ApiError, Gateway, pb};

/// Credentials and client address of a REST request, to be forwarded.
pub(crate) struct Forward {
    authorization: Option<HeaderValue>,
    forwarded_for: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    peer: Option<SocketAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Forward {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            authorization: parts.headers.get(header::AUTHORIZATION).cloned(),
            // Every line, in order (a proxy may add a line of its own), as one value.
            forwarded_for: joined(parts.headers.get_all("x-forwarded-for")),
            request_id: parts.headers.get("x-request-id").cloned(),
            peer: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr),
        })
    }
}

fn joined(lines: axum::http::header::GetAll<'_, HeaderValue>) -> Option<HeaderValue> {
    let parts: Vec<&str> = lines.iter().filter_map(|v| v.to_str().ok()).collect();
    if parts.is_empty() {
        return None;
    }
    HeaderValue::from_str(&parts.join(", ")).ok()
}

impl Forward {
    /// A gRPC request carrying `message` and this caller's context.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if let Some(value) = self
            .authorization
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            metadata.insert("authorization", value);
        }
        if let Some(value) = self
            .forwarded_for
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            metadata.insert("x-forwarded-for", value);
        }
        // The server's request id travels into the gRPC call: its logs carry the same id.
        if let Some(value) = self
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            metadata.insert("x-request-id", value);
        }
        request.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: self.peer,
        });
        request
    }
}

/// Marks an in-process call that continues a REST request already charged to the throttle (the
/// next page of a whole-list answer): one client request is charged once. Only in-process
/// callers can set request extensions; nothing a network client sends becomes one.
#[derive(Clone, Copy, Debug)]
pub struct AlreadyThrottled;

impl Forward {
    /// A gRPC request continuing this REST request (see [`AlreadyThrottled`]).
    pub(crate) fn continued<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = self.request(message);
        request.extensions_mut().insert(AlreadyThrottled);
        request
    }

    /// A page of a whole-list walk after `page_token`: charged only when it is the first
    /// (no token).
    pub(crate) fn page<T>(&self, message: T, page_token: &str) -> tonic::Request<T> {
        if !page_token.is_empty() {
            self.continued(message)
        } else {
            self.request(message)
        }
    }
}

impl Gateway {
    pub(crate) fn auth(&self) -> pb::auth_service_client::AuthServiceClient<crate::GrpcService> {
        pb::auth_service_client::AuthServiceClient::new(self.grpc.clone())
    }
}

impl Gateway {
    pub(crate) fn video(&self) -> pb::video_service_client::VideoServiceClient<crate::GrpcService> {
        pb::video_service_client::VideoServiceClient::new(self.grpc.clone())
    }
}

/// A JSON body whose rejection uses the API's error shape.
pub(crate) struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // A body is one JSON object (serde would also read a struct from an array).
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(ApiError::from)?;
        if !value.is_object() {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "request",
                "Invalid request body: expected a JSON object.",
            ));
        }
        serde_json::from_value(value).map(Self).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "request",
                format!("Invalid request body: {e}"),
            )
        })
    }
}
