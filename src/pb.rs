//! Generated protobuf and tonic code (never edited by hand) and the descriptor set that
//! gRPC reflection serves.

#[allow(clippy::all, missing_docs)]
pub mod faultline {
    pub mod v1 {
        tonic::include_proto!("faultline.v1");
    }
}

pub use faultline::v1::*;

/// The encoded `FileDescriptorSet` of `proto/`, written by build.rs.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/faultline_descriptor.bin"));
