//! gzip through `flate2` (zlib-rs backend). Concatenated members are read
//! as one stream, as Java's `GZIPInputStream` does.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::read_bounded;
use crate::error::{DecodeError, EncodeError};

pub(super) fn decompress(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    read_bounded(MultiGzDecoder::new(&input[..]), "gzip", input.len(), limit)
}

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    let err = |e: std::io::Error| EncodeError::Compression {
        codec: "gzip",
        detail: e.to_string(),
    };
    let mut enc = GzEncoder::new(out.writer(), flate2::Compression::default());
    enc.write_all(input).map_err(err)?;
    enc.finish().map_err(err)?;
    Ok(())
}
