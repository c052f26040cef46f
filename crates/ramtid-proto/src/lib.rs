//! ramtid's wire: the generated code for `proto/ramtid/v1/ramtid.proto` ([`pb`]) and the
//! conversions between wire and domain types ([`convert`]), written once for the server,
//! the history and the command line's clients.

pub mod codec;
pub mod convert;

/// Code generated from `proto/ramtid/v1/ramtid.proto`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("ramtid.v1");

    /// The encoded file descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("ramtid_v1_descriptor");
}
