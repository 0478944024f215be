//! zstd: pure-Rust `ruzstd` by default; the C library with `zstd-c`.
//!
//! Before decoding, the frame header's window size is checked: a decoder
//! reserves its window up front, so a frame declaring a window much larger
//! than the output limit is refused instead of allocated.

use bytes::{Bytes, BytesMut};

use super::{over_limit, read_bounded};
use crate::error::{DecodeError, EncodeError};

const CODEC: &str = "zstd";
const MAGIC: u32 = 0xFD2F_B528;
/// Windows up to this size are accepted whatever the output limit (the Java
/// client writes 2^21-byte windows at its default level; small enough).
const MIN_WINDOW_ALLOWED: u64 = 8 << 20;

/// The window size a zstd frame header declares, if the input starts with a
/// zstd frame header (RFC 8878 section 3.1.1.1).
fn declared_window(input: &[u8]) -> Option<u64> {
    let magic = u32::from_le_bytes(input.get(..4)?.try_into().ok()?);
    if magic != MAGIC {
        return None;
    }
    let fhd = *input.get(4)?;
    let single_segment = fhd & 0x20 != 0;
    if !single_segment {
        let wd = *input.get(5)?;
        let exponent = u64::from(wd >> 3);
        let base = 1u64 << (10 + exponent);
        return Some(base + (base / 8) * u64::from(wd & 7));
    }
    // Single segment: the window is the content size.
    let dict_len = match fhd & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    };
    let start = 5 + dict_len;
    let fcs = match fhd >> 6 {
        0 => u64::from(*input.get(start)?),
        1 => {
            u64::from(u16::from_le_bytes(
                input.get(start..start + 2)?.try_into().ok()?,
            )) + 256
        }
        2 => u64::from(u32::from_le_bytes(
            input.get(start..start + 4)?.try_into().ok()?,
        )),
        _ => u64::from_le_bytes(input.get(start..start + 8)?.try_into().ok()?),
    };
    Some(fcs)
}

pub(super) fn decompress(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    if let Some(window) = declared_window(input) {
        let allowed = u64::try_from(limit)
            .unwrap_or(u64::MAX)
            .max(MIN_WINDOW_ALLOWED);
        if window > allowed {
            return Err(over_limit(CODEC, limit));
        }
    }
    decode(input, limit)
}

#[cfg(feature = "zstd-c")]
fn decode(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    let decoder = ::zstd::stream::read::Decoder::with_buffer(&input[..])
        .map_err(|e| super::io_error(CODEC, e))?;
    read_bounded(decoder, CODEC, input.len(), limit)
}

#[cfg(not(feature = "zstd-c"))]
fn decode(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    let decoder = ruzstd::decoding::StreamingDecoder::new(&input[..]).map_err(|e| {
        DecodeError::Decompression {
            codec: CODEC,
            detail: e.to_string(),
        }
    })?;
    read_bounded(decoder, CODEC, input.len(), limit)
}

#[cfg(feature = "zstd-c")]
pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    use bytes::BufMut;
    // Level 3 is the zstd default and the Java client's.
    ::zstd::stream::copy_encode(input, out.writer(), 3).map_err(|e| EncodeError::Compression {
        codec: CODEC,
        detail: e.to_string(),
    })
}

#[cfg(not(feature = "zstd-c"))]
pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    use bytes::BufMut;
    ruzstd::encoding::compress(
        input,
        out.writer(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_declared_window_is_refused_before_decoding() {
        // Magic, FHD (no single segment), window descriptor 2^41.
        let frame = Bytes::from_static(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8, 0, 0, 0]);
        assert_eq!(declared_window(&frame), Some(1 << 41));
        assert!(matches!(
            decompress(&frame, 1 << 20),
            Err(DecodeError::Decompression { .. })
        ));
    }
}
