//! Client-side commands of the `videoflix` binary (they talk to a server, not to its backends).

pub mod download;
pub mod upload;
