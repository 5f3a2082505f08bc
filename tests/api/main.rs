//! API stories: the real server, driven over REST and gRPC, on both backends.

// A test crate: its helpers panic with a message when an expectation fails, and cast freely
// between the sizes they compare.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless,
    unreachable_pub
)]

mod accounts_grpc;
mod accounts_rest;
mod accounts_sessions;
mod admin;
mod backup;
mod catalog;
mod catalog_cache;
mod catalog_lists;
mod catalog_search;
mod catalog_versions;
mod catalog_writes;
mod cli;
mod contract;
mod faults;
mod faults_disk;
mod faults_postgres;
mod helpers;
mod hls_check;
mod hostile;
mod hostile_readers;
mod jobs;
mod legacy;
mod media;
mod media_probe;
mod media_transcode;
mod observability;
mod pipeline;
mod pipeline_grpc;
mod pipeline_recovery;
mod pipeline_uploads;
mod platform;
mod playback;
mod processes;
mod round_trips;
mod store;
mod throttling;
mod web_app;
