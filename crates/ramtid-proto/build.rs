//! Generates the gRPC code from `proto/ramtid/v1/*.proto` with the protoc that the
//! `protoc-bin-vendored` crate ships, so that a fresh machine needs no protoc install.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // Build scripts are single-threaded; prost-build reads the variable.
        std::env::set_var("PROTOC", protoc);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // Undecodable requests answer INVALID_ARGUMENT (see src/codec.rs).
        .codec_path("crate::codec::RamtidCodec")
        .file_descriptor_set_path(out.join("ramtid_v1_descriptor.bin"))
        .compile_protos(&["proto/ramtid/v1/ramtid.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
