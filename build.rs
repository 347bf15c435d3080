//! Compiles `proto/` in pure Rust (protox, no system `protoc`), generates the tonic
//! servers and clients, and writes the encoded descriptor set that gRPC reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from("proto");
    let mut files = Vec::new();
    for entry in fs::read_dir(proto_root.join("faultline/v1"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path.strip_prefix(&proto_root)?.to_path_buf());
        }
    }
    files.sort();
    println!("cargo:rerun-if-changed=proto");

    let fds = protox::compile(&files, [&proto_root])?;

    // compile_fds() ignores file_descriptor_set_path(), so the set for reflection is written here.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("faultline_descriptor.bin"),
        fds.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
