//! The gRPC edge: generated code, one thin module per service (parse request → use case →
//! reply), the authentication layer in front of them, and request-context helpers (bearer
//! token, client address).

mod admin;
mod auth;
mod authn;
mod context;
mod video;

pub use admin::AdminGrpc;
pub use auth::AuthGrpc;
pub use authn::{Authenticated, Authn, Gate};
pub use video::VideoGrpc;

/// Code generated from `proto/videoflix/v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("videoflix.v1");
}

/// Encoded file-descriptor set of our protos, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("videoflix_descriptor");
