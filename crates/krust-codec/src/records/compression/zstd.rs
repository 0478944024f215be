//! zstd: pure-Rust `ruzstd` by default; the C library with `zstd-c`.
//!
//! Before decoding, the frame header's window size is checked: a decoder
//! reserves its window up front, so a frame declaring a window much larger
//! than the output limit is refused instead of allocated.

use bytes::{Bytes, BytesMut};

use super::over_limit;
#[cfg(feature = "zstd-c")]
use super::read_bounded;
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
    check_window(input, limit)?;
    decode(input, limit)
}

/// Refuse a frame whose declared window is larger than the limit allows.
fn check_window(frame: &[u8], limit: usize) -> Result<(), DecodeError> {
    if let Some(window) = declared_window(frame) {
        let allowed = u64::try_from(limit)
            .unwrap_or(u64::MAX)
            .max(MIN_WINDOW_ALLOWED);
        if window > allowed {
            return Err(over_limit(CODEC, limit));
        }
    }
    Ok(())
}

#[cfg(feature = "zstd-c")]
fn decode(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    let decoder = ::zstd::stream::read::Decoder::with_buffer(&input[..])
        .map_err(|e| super::io_error(CODEC, e))?;
    read_bounded(decoder, CODEC, input.len(), limit)
}

/// Output decoded between two drains of ruzstd's buffer (one maximal block).
#[cfg(not(feature = "zstd-c"))]
const CHUNK: usize = 128 << 10;

/// Decode every frame of `input` (skippable frames are skipped) with
/// ruzstd's `FrameDecoder`, draining its buffer every [`CHUNK`] bytes.
///
/// Draining often keeps ruzstd's ring buffer at about window + chunk size,
/// in cache; reading the whole output through `StreamingDecoder::read` let
/// it grow to the size of the output (reallocated, copied and page-faulted
/// at every doubling) and halved the speed past 1 MiB. The output grows as
/// data comes out, never past `limit`, and each frame's window is checked
/// before ruzstd reserves it. A frame's content checksum is verified.
#[cfg(not(feature = "zstd-c"))]
fn decode(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

    let error = |e: FrameDecoderError| DecodeError::Decompression {
        codec: CODEC,
        detail: e.to_string(),
    };
    // Grown as output comes out (realloc of large blocks is cheap).
    let mut out: Vec<u8> = Vec::new();
    let mut decoder = FrameDecoder::new();
    let mut src: &[u8] = input;
    loop {
        check_window(src, limit)?;
        match decoder.reset(&mut src) {
            Ok(()) => {}
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                src = usize::try_from(length)
                    .ok()
                    .and_then(|length| src.get(length..))
                    .ok_or_else(|| error(FrameDecoderError::FailedToSkipFrame))?;
                if src.is_empty() {
                    break;
                }
                continue;
            }
            Err(e) => return Err(error(e)),
        }
        loop {
            let finished = decoder
                .decode_blocks(&mut src, BlockDecodingStrategy::UptoBytes(CHUNK))
                .map_err(error)?;
            let n = decoder.can_collect();
            if n > limit - out.len() {
                return Err(over_limit(CODEC, limit));
            }
            if n > out.capacity() - out.len() {
                // Double, within the limit (reserve_exact: Vec's own
                // amortized growth could go past it).
                let target = out
                    .capacity()
                    .saturating_mul(2)
                    .max(out.len() + n)
                    .min(limit);
                out.reserve_exact(target - out.len());
            }
            decoder
                .collect_to_writer(&mut out)
                .map_err(|e| super::io_error(CODEC, e))?;
            if finished {
                break;
            }
        }
        let stored = decoder.get_checksum_from_data();
        let computed = decoder.get_calculated_checksum();
        if let (Some(stored), Some(computed)) = (stored, computed) {
            if stored != computed {
                return Err(DecodeError::Decompression {
                    codec: CODEC,
                    detail: format!(
                        "content checksum mismatch (frame {stored:#010x}, data {computed:#010x})"
                    ),
                });
            }
        }
        if src.is_empty() {
            break;
        }
    }
    Ok(Bytes::from(out))
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

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(data, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn concatenated_and_skippable_frames_are_all_decoded_and_bounded() {
        let a: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let b = b"second frame".repeat(1000);
        let mut input = frame(&a);
        // A skippable frame (magic 0x184D2A50, 3 bytes of payload).
        input.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        input.extend_from_slice(&frame(&b));
        let input = Bytes::from(input);
        let total = a.len() + b.len();
        let out = decompress(&input, total).unwrap();
        assert_eq!(&out[..a.len()], &a[..]);
        assert_eq!(&out[a.len()..], &b[..]);
        assert!(decompress(&input, total - 1).is_err());
        let mut trailing = input.to_vec();
        trailing.extend_from_slice(b"garbage");
        assert!(decompress(&Bytes::from(trailing), total).is_err());
    }

    #[cfg(not(feature = "zstd-c"))]
    #[test]
    fn a_wrong_content_checksum_is_an_error() {
        let data = b"checksummed ".repeat(1000);
        let mut input = frame(&data);
        assert_ne!(input[4] & 0x04, 0, "ruzstd writes a checksum");
        let last = input.len() - 1;
        input[last] ^= 1;
        assert!(matches!(
            decompress(&Bytes::from(input), data.len()),
            Err(DecodeError::Decompression { .. })
        ));
    }
}
