//! API stories: the real server, driven over REST and gRPC, on both backends.

mod accounts_grpc;
mod accounts_rest;
mod admin;
mod backup;
mod catalog;
mod cli;
mod contract;
mod helpers;
mod hls_check;
mod hostile;
mod jobs;
mod legacy;
mod media;
mod pipeline;
mod platform;
mod playback;
mod store;
mod throttling;
