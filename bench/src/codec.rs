//! A gRPC codec that sends bytes encoded beforehand and decodes answers with prost, so the
//! load generator spends no CPU encoding messages during the timed phase. On the wire it is
//! exactly what the generated client sends.

use bytes::{BufMut, Bytes};
use tonic::{
    Status,
    codec::{Codec, EncodeBuf, Encoder},
};
use tonic_prost::ProstDecoder;

pub struct PreEncoded<U>(std::marker::PhantomData<U>);

impl<U> Default for PreEncoded<U> {
    fn default() -> Self {
        PreEncoded(std::marker::PhantomData)
    }
}

pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl<U: prost::Message + Default + Send + 'static> Codec for PreEncoded<U> {
    type Encode = Bytes;
    type Decode = U;
    type Encoder = BytesEncoder;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<U> {
        ProstDecoder::default()
    }
}

/// `/faultline.v1.CaptureService/Capture`
pub const CAPTURE: &str = "/faultline.v1.CaptureService/Capture";
/// `/faultline.v1.CaptureService/CaptureBatch`
pub const CAPTURE_BATCH: &str = "/faultline.v1.CaptureService/CaptureBatch";
