//! snappy through `snap`: raw snappy, or the xerial framing the Java client
//! writes (`\x82SNAPPY\0`, version, compatible version, then blocks each
//! prefixed by a big-endian i32 length).

use bytes::{BufMut, Bytes, BytesMut};

use super::over_limit;
use crate::error::{DecodeError, EncodeError};

const CODEC: &str = "snappy";
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
const XERIAL_HEADER_LEN: usize = 16;
/// xerial's default block size, which the Java client uses.
const XERIAL_BLOCK: usize = 32 * 1024;

fn error(detail: impl std::fmt::Display) -> DecodeError {
    DecodeError::Decompression {
        codec: CODEC,
        detail: detail.to_string(),
    }
}

pub(super) fn decompress(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    if input.len() >= XERIAL_HEADER_LEN && input.starts_with(XERIAL_MAGIC) {
        let mut rest = &input[XERIAL_HEADER_LEN..];
        while !rest.is_empty() {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| error("truncated xerial block length"))?;
            let len = usize::try_from(i32::from_be_bytes(*len))
                .map_err(|_| error("negative xerial block length"))?;
            if len > tail.len() {
                return Err(error("xerial block longer than the data"));
            }
            let (block, tail) = tail.split_at(len);
            raw_into(block, &mut out, limit)?;
            rest = tail;
        }
    } else {
        raw_into(input, &mut out, limit)?;
    }
    Ok(Bytes::from(out))
}

/// Decompress one raw snappy block, appending to `out`.
///
/// Raw snappy needs its output sized up front from the length it declares.
/// That length is only trusted within the format's own bound: a 3-byte copy
/// op makes at most 64 bytes, so a block can expand at most 64/3 times its
/// size. Anything declared above that is malformed, anything above the limit
/// a bomb: neither is allocated.
fn raw_into(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecodeError> {
    let declared = snap::raw::decompress_len(block).map_err(error)?;
    if declared > block.len().saturating_mul(22) {
        return Err(error(format!(
            "block of {} bytes declares {declared} bytes, more than snappy can expand to",
            block.len()
        )));
    }
    let start = out.len();
    let end = start
        .checked_add(declared)
        .filter(|end| *end <= limit)
        .ok_or_else(|| over_limit(CODEC, limit))?;
    out.resize(end, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(error)?;
    out.truncate(start + written);
    Ok(())
}

/// Compress in the xerial framing with 32 KiB blocks, as the Java client.
pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    out.put_slice(XERIAL_MAGIC);
    out.put_i32(1); // version
    out.put_i32(1); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_BLOCK) {
        let len_pos = out.len();
        out.put_i32(0);
        let start = out.len();
        out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
        let n = enc
            .compress(chunk, &mut out[start..])
            .map_err(|e| EncodeError::Compression {
                codec: CODEC,
                detail: e.to_string(),
            })?;
        out.truncate(start + n);
        // A compressed 32 KiB block is far below i32::MAX.
        let n = i32::try_from(n).map_err(|_| EncodeError::TooLong {
            what: "snappy block",
            length: n,
        })?;
        out[len_pos..start].copy_from_slice(&n.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_xerial_both_decode() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert!(!raw.starts_with(XERIAL_MAGIC));
        assert_eq!(
            &decompress(&Bytes::from(raw), 1 << 20).unwrap()[..],
            &data[..]
        );
        let mut x = BytesMut::new();
        compress(&data, &mut x).unwrap();
        assert!(x.starts_with(XERIAL_MAGIC));
        assert_eq!(&decompress(&x.freeze(), 1 << 20).unwrap()[..], &data[..]);
    }

    #[test]
    fn impossible_declared_length_is_not_allocated() {
        // Varint 0xffffffff... declares ~4 GiB from 6 bytes.
        let bomb = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
        assert!(decompress(&bomb, usize::MAX).is_err());
    }
}
