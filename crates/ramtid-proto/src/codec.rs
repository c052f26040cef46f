//! The protobuf codec the generated services use: prost's, except that a message that
//! cannot be decoded is the caller's fault (INVALID_ARGUMENT), not the server's. tonic-prost
//! maps every decode error to INTERNAL, which tells a client that sent a truncated or
//! mistyped message to retry or report a server bug.
//!
//! Set in `build.rs` with `codec_path`. The generated clients (the load harness, `ramtid
//! health`) use it too: there a reply that cannot be decoded also comes back as
//! INVALID_ARGUMENT, with prost's description.

use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// [`ProstCodec`] with decode errors as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct RamtidCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for RamtidCodec<T, U> {
    fn default() -> Self {
        RamtidCodec(ProstCodec::default())
    }
}

impl<T, U> Codec for RamtidCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RamtidDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RamtidDecoder(self.0.decoder(), PhantomData)
    }
}

/// [`ProstDecoder`] whose errors are INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct RamtidDecoder<U>(ProstDecoder<U>, PhantomData<U>);

impl<U: prost::Message + Default> Decoder for RamtidDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|s| {
            let code = if s.code() == Code::Internal {
                Code::InvalidArgument
            } else {
                s.code()
            };
            Status::new(
                code,
                format!(
                    "the message cannot be decoded as {}: {}",
                    std::any::type_name::<U>()
                        .rsplit("::")
                        .next()
                        .unwrap_or("protobuf"),
                    bounded(s.message())
                ),
            )
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// prost's description names types and fields, not input; bounded all the same.
fn bounded(s: &str) -> String {
    match s.char_indices().nth(256) {
        None => s.to_string(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}
