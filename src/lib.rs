//! Videoflix: a video-streaming backend. gRPC (tonic) with gRPC-web, reflection and health, and
//! the legacy REST API (the `videoflix-gateway` crate), all on one port.

pub mod backup;
pub mod cache;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod jobs;
pub mod kv;
pub mod mail;
pub mod media;
pub mod monitoring;
mod numeric;
pub mod queue;
pub mod ratelimit;
pub mod scheduler;
pub mod security;
pub mod serve;
pub mod service;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
