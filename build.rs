//! Compiles `proto/videoflix/v1/*.proto` with protox (no system `protoc`) into tonic server and
//! client code, and writes the encoded file-descriptor set that server reflection serves; and
//! rebuilds the crate when a migration changes.

use std::{env, fs, io, path::PathBuf};

use prost::Message;

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds the migrations; without this, an edited or added migration is
    // not noticed by an incremental build.
    println!("cargo:rerun-if-changed=migrations");
    let mut files: Vec<PathBuf> = fs::read_dir("proto/videoflix/v1")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .collect();
    files.sort();
    let fds = protox::compile(&files, ["proto"]).map_err(io::Error::other)?;
    let out = PathBuf::from(env::var("OUT_DIR").map_err(io::Error::other)?);
    fs::write(out.join("videoflix_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)
}
