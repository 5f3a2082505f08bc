//! Commands of the `videoflix` binary: client commands that talk to a server (upload,
//! download), and administration commands that run against the backends (admin).

pub mod admin;
pub mod download;
pub mod upload;
