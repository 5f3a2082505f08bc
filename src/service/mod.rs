//! Use cases, independent of the transport: both gRPC and (through gRPC) REST call these.

mod accounts;
mod admin;
pub(crate) mod admission;
mod catalog;
mod pipeline;
mod playback;
mod session_cache;
mod status;

pub use accounts::{
    Accounts, Caller, ClientInfo, GUEST_LOGIN_EMAIL, IssuedTokens, Login, LoginOutcome,
};
pub use admin::{Admin, ExportFile, MAX_USERS_PAGE, UserPatch};
pub use admission::Prefetch;
pub use catalog::{
    Catalog, DEFAULT_PAGE_SIZE, ListPage, ListRequest, MAX_PAGE_SIZE, Paging, VideoLimits,
    VideoPatch, VideoView,
};
pub use pipeline::{Incoming, Pipeline, PipelineConfig};
pub use playback::{Download, Playback, Wanted};
pub use session_cache::SessionCache;
pub use status::{StatusEvent, StatusHub};
