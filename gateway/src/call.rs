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
    peer: Option<SocketAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Forward {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            authorization: parts.headers.get(header::AUTHORIZATION).cloned(),
            forwarded_for: parts.headers.get("x-forwarded-for").cloned(),
            peer: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr),
        })
    }
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
        request.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: self.peer,
        });
        request
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
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(value)| Self(value))
            .map_err(ApiError::from)
    }
}
