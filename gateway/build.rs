//! Compiles the shared `proto/` contract into gRPC *client* code: the gateway talks to the
//! services only through the contract, never through the server crate's internals.

use std::{fs, io, path::PathBuf};

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=../proto");
    let mut files: Vec<PathBuf> = fs::read_dir("../proto/videoflix/v1")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .collect();
    files.sort();
    let fds = protox::compile(&files, ["../proto"]).map_err(io::Error::other)?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)
}
