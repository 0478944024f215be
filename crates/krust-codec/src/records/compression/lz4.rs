//! LZ4 frame format through `lz4_flex`, as Kafka's `KafkaLZ4BlockOutputStream`
//! writes it (64 KiB independent blocks, no content checksum).
//!
//! Legacy magic-0 messages carry a wrong frame-header checksum (KAFKA-3160:
//! computed over the magic number too); [`decompress_legacy_v0`] repairs it
//! while streaming, as the Java client ignores it for magic 0.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::read_bounded;
use crate::error::{DecodeError, EncodeError};

const CODEC: &str = "lz4";

pub(super) fn decompress(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    read_bounded(FrameDecoder::new(&input[..]), CODEC, input.len(), limit)
}

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    let err = |detail: String| EncodeError::Compression {
        codec: CODEC,
        detail,
    };
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent);
    let mut enc = FrameEncoder::with_frame_info(info, out.writer());
    enc.write_all(input).map_err(|e| err(e.to_string()))?;
    enc.finish().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Decompress an lz4 frame written by a magic-0 producer, whose header
/// checksum covers the magic number by mistake: the checksum byte is
/// recomputed, the rest streams from `input` unchanged.
pub(crate) fn decompress_legacy_v0(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    // Magic (4), FLG, BD, optional content size (8), optional dict id (4), HC.
    let Some(&flg) = input.get(4) else {
        return decompress(input, limit);
    };
    let hc_pos = 6 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 };
    if input.len() <= hc_pos {
        return decompress(input, limit);
    }
    let mut header = [0u8; 19];
    header[..hc_pos].copy_from_slice(&input[..hc_pos]);
    let checksum = xxh32_short(&input[4..hc_pos]).to_le_bytes()[1];
    header[hc_pos] = checksum;
    let stream = (&header[..=hc_pos]).chain(&input[hc_pos + 1..]);
    read_bounded(FrameDecoder::new(stream), CODEC, input.len(), limit)
}

/// XXH32 with seed 0 of fewer than 16 bytes (a frame descriptor).
fn xxh32_short(data: &[u8]) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    debug_assert!(data.len() < 16);
    // `data` is at most 14 bytes long: the length fits a u32.
    let mut h = P5.wrapping_add(u32::try_from(data.len()).unwrap_or(0));
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        h = h
            .wrapping_add(v.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in chunks.remainder() {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checksum_matches_lz4_flex() {
        let mut out = BytesMut::new();
        compress(b"hello hello hello", &mut out).unwrap();
        // Magic, FLG, BD, HC: our checksum equals the one lz4_flex wrote.
        assert_eq!(xxh32_short(&out[4..6]).to_le_bytes()[1], out[6]);
    }

    #[test]
    fn broken_kafka_v0_checksum_is_repaired() {
        let mut out = BytesMut::new();
        compress(b"hello hello hello", &mut out).unwrap();
        out[6] = xxh32_short(&out[0..6]).to_le_bytes()[1];
        let out = out.freeze();
        assert!(decompress(&out, 100).is_err());
        assert_eq!(
            &decompress_legacy_v0(&out, 100).unwrap()[..],
            b"hello hello hello"
        );
    }
}
