//! LZ4 frame format, as Kafka's `KafkaLZ4BlockOutputStream` writes it (64 KiB
//! independent blocks, no content checksum). Written through `lz4_flex`'s
//! frame encoder; read by our own frame reader over `lz4_flex`'s block
//! decoder, so that memory follows the data: a frame header may declare
//! 4 MiB blocks, but a block is given room for what its compressed bytes
//! can expand to (LZ4 expands at most 255-fold), never for the declared
//! size, and the output never passes the caller's limit. (`lz4_flex`'s
//! streaming decoder allocates twice the declared block size up front: a
//! 16-byte input cost 8 MiB.)
//!
//! Legacy magic-0 messages carry a wrong frame-header checksum (KAFKA-3160:
//! computed over the magic number too); [`decompress_legacy_v0`] does not
//! check it, as the Java client ignores it for magic 0.
//!
//! Frame format: lz4's `lz4_Frame_format.md` (magic, FLG, BD, optional
//! content size and dictionary id, header checksum; blocks of a 4-byte size,
//! high bit set when stored uncompressed, and an optional block checksum; an
//! end mark; an optional content checksum). Frames may follow each other.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
use twox_hash::XxHash32;

use super::over_limit;
use crate::error::{DecodeError, EncodeError};

const CODEC: &str = "lz4";
const MAGIC: u32 = 0x184D_2204;
/// Skippable frames: magic 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE: u32 = 0x184D_2A50;
/// LZ4 expands at most 255-fold (each extra length byte adds 255 output
/// bytes); the room a compressed block is given.
const MAX_EXPANSION: usize = 255;
/// A linked block may refer back this far into what came before.
const WINDOW: usize = 64 << 10;

pub(super) fn decompress(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    read_frames(input, limit, true)
}

/// Decompress an lz4 frame written by a magic-0 producer, whose header
/// checksum covers the magic number by mistake: the header checksum is
/// not checked (everything else is).
pub(crate) fn decompress_legacy_v0(input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    read_frames(input, limit, false)
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

fn bad(detail: impl Into<String>) -> DecodeError {
    DecodeError::Decompression {
        codec: CODEC,
        detail: detail.into(),
    }
}

/// The input being read, with errors naming what was cut short.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(bad(format!(
                "frame cut short in its {what} ({n} bytes needed, {} left)",
                self.data.len()
            )));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A frame's descriptor: what its FLG and BD bytes announce.
struct Descriptor {
    independent: bool,
    block_checksum: bool,
    content_checksum: bool,
    content_size: Option<u64>,
    max_block: usize,
}

fn read_frames(input: &[u8], limit: usize, check_header: bool) -> Result<Bytes, DecodeError> {
    let mut inp = Input { data: input };
    let mut out: Vec<u8> = Vec::new();
    let mut frames = 0usize;
    while !inp.data.is_empty() || frames == 0 {
        let magic = inp.u32("magic number")?;
        if magic & 0xFFFF_FFF0 == SKIPPABLE {
            let len = inp.u32("skippable frame size")?;
            inp.take(
                usize::try_from(len).unwrap_or(usize::MAX),
                "skippable frame",
            )?;
            continue;
        }
        if magic != MAGIC {
            return Err(bad(format!("not an lz4 frame (magic {magic:#010x})")));
        }
        read_frame(&mut inp, &mut out, limit, check_header)?;
        frames += 1;
    }
    Ok(Bytes::from(out))
}

fn descriptor(inp: &mut Input<'_>, check_header: bool) -> Result<Descriptor, DecodeError> {
    let start = inp.data;
    let fb = inp.take(2, "descriptor")?;
    let (flg, bd) = (fb[0], fb[1]);
    if flg >> 6 != 0b01 {
        return Err(bad(format!("unsupported frame version {}", flg >> 6)));
    }
    if flg & 0b10 != 0 || bd & 0b1000_1111 != 0 {
        return Err(bad("reserved descriptor bits set"));
    }
    let content_size = if flg & 0x08 != 0 {
        let b = inp.take(8, "content size")?;
        Some(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    } else {
        None
    };
    if flg & 0x01 != 0 {
        return Err(bad("frames that need a dictionary are not supported"));
    }
    let described = start.len() - inp.data.len();
    let checksum = inp.take(1, "header checksum")?[0];
    let expected = XxHash32::oneshot(0, &start[..described]).to_le_bytes()[1];
    if check_header && checksum != expected {
        return Err(bad("frame header checksum mismatch"));
    }
    let max_block = match (bd >> 4) & 0x07 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        other => return Err(bad(format!("invalid block maximum size id {other}"))),
    };
    Ok(Descriptor {
        independent: flg & 0x20 != 0,
        block_checksum: flg & 0x10 != 0,
        content_checksum: flg & 0x04 != 0,
        content_size,
        max_block,
    })
}

/// Decompress one block onto the end of `out`, in at most `room_left`
/// bytes. The room starts at what typical data needs (four times the
/// block, at least 64 KiB) and doubles while the block needs more, up to
/// what it can expand to: a block that fails early never costs its
/// declared maximum.
fn decode_block(
    block: &[u8],
    d: &Descriptor,
    out: &mut Vec<u8>,
    frame_start: usize,
    room_left: usize,
) -> Result<(), DecodeError> {
    use lz4_flex::block::DecompressError;
    let at = out.len();
    let natural = d.max_block.min(block.len().saturating_mul(MAX_EXPANSION));
    let most = natural.min(room_left);
    let mut room = block.len().saturating_mul(4).max(64 << 10).min(most);
    loop {
        out.resize(at + room, 0);
        let written = if d.independent {
            lz4_flex::block::decompress_into(block, &mut out[at..])
        } else {
            let (before, after) = out.split_at_mut(at);
            let dict = &before[at.saturating_sub(WINDOW).max(frame_start)..];
            lz4_flex::block::decompress_into_with_dict(block, after, dict)
        };
        match written {
            Ok(n) => {
                out.truncate(at + n);
                return Ok(());
            }
            Err(DecompressError::OutputTooSmall { .. }) if room < most => {
                room = room.saturating_mul(2).min(most);
            }
            // Out of room only because of the limit: the data is larger.
            Err(DecompressError::OutputTooSmall { .. }) if most < natural => {
                out.truncate(at);
                return Err(over_limit(CODEC, at + room_left));
            }
            Err(e) => {
                out.truncate(at);
                return Err(bad(format!("corrupt block: {e}")));
            }
        }
    }
}

/// Read one frame (its magic already read), appending to `out`, which
/// never grows past `limit`.
fn read_frame(
    inp: &mut Input<'_>,
    out: &mut Vec<u8>,
    limit: usize,
    check_header: bool,
) -> Result<(), DecodeError> {
    let d = descriptor(inp, check_header)?;
    let frame_start = out.len();
    loop {
        let size = inp.u32("block size")?;
        if size == 0 {
            break;
        }
        let stored = size & 0x8000_0000 != 0;
        let len = usize::try_from(size & 0x7FFF_FFFF).unwrap_or(usize::MAX);
        if len > d.max_block {
            return Err(bad(format!(
                "block of {len} bytes over the frame's maximum of {}",
                d.max_block
            )));
        }
        let block = inp.take(len, "block")?;
        if d.block_checksum {
            let sum = inp.u32("block checksum")?;
            if sum != XxHash32::oneshot(0, block) {
                return Err(bad("block checksum mismatch"));
            }
        }
        if stored {
            if out.len() + block.len() > limit {
                return Err(over_limit(CODEC, limit));
            }
            out.extend_from_slice(block);
            continue;
        }
        let at = out.len();
        decode_block(block, &d, out, frame_start, limit - at)?;
    }
    let produced = &out[frame_start..];
    if let Some(size) = d.content_size
        && u64::try_from(produced.len()).ok() != Some(size)
    {
        return Err(bad(format!(
            "frame declares {size} bytes of content, {} came out",
            produced.len()
        )));
    }
    if d.content_checksum {
        let sum = inp.u32("content checksum")?;
        if sum != XxHash32::oneshot(0, produced) {
            return Err(bad("content checksum mismatch"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8], info: FrameInfo) -> Bytes {
        let mut out = BytesMut::new();
        let mut enc = FrameEncoder::with_frame_info(info, (&mut out).writer());
        enc.write_all(data).unwrap();
        enc.finish().unwrap();
        out.freeze()
    }

    fn sample() -> Vec<u8> {
        (0..80_000u32)
            .flat_map(|i| format!("rec {} of {}; ", i % 1013, i % 7).into_bytes())
            .collect()
    }

    #[test]
    fn every_frame_option_lz4_flex_writes_is_read() {
        let data = sample();
        for size in [
            BlockSize::Max64KB,
            BlockSize::Max256KB,
            BlockSize::Max1MB,
            BlockSize::Max4MB,
        ] {
            for mode in [BlockMode::Independent, BlockMode::Linked] {
                for (block_sum, content_sum, content_size) in
                    [(false, false, false), (true, true, true)]
                {
                    let mut info = FrameInfo::new()
                        .block_size(size)
                        .block_mode(mode)
                        .block_checksums(block_sum)
                        .content_checksum(content_sum);
                    if content_size {
                        info = info.content_size(Some(data.len() as u64));
                    }
                    let f = frame(&data, info);
                    let back = decompress(&f, data.len()).unwrap();
                    assert!(back[..] == data[..], "{size:?} {mode:?} {block_sum}");
                    assert!(decompress(&f, data.len() - 1).is_err());
                }
            }
        }
    }

    #[test]
    fn concatenated_frames_and_incompressible_blocks() {
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut two = BytesMut::new();
        two.extend_from_slice(&frame(&noise, FrameInfo::new()));
        two.extend_from_slice(&frame(b"tail", FrameInfo::new()));
        let back = decompress(&two.freeze(), 200_000).unwrap();
        assert_eq!(&back[..noise.len()], &noise[..]);
        assert_eq!(&back[noise.len()..], b"tail");
    }

    #[test]
    fn a_tiny_frame_declaring_big_blocks_costs_what_its_data_holds() {
        // Header of 4 MiB blocks, then a 6-byte block: the output is given
        // at most 255 times 6 bytes, never 4 MiB (lz4_flex's reader took 8).
        let f = frame(b"abcdef", FrameInfo::new().block_size(BlockSize::Max4MB));
        assert_eq!(&decompress(&f, 1 << 30).unwrap()[..], b"abcdef");
        let mut cut = f.to_vec();
        cut.truncate(cut.len() - 4);
        assert!(decompress(&Bytes::from(cut), 1 << 30).is_err());
    }

    #[test]
    fn damaged_frames_are_errors() {
        let good = frame(&sample()[..50_000], FrameInfo::new().block_checksums(true));
        for at in [0, 4, 5, 6, 7, 11, good.len() / 2, good.len() - 1] {
            let mut bad = good.to_vec();
            bad[at] ^= 0x55;
            assert!(decompress(&Bytes::from(bad), 1 << 20).is_err(), "byte {at}");
        }
        assert!(decompress(&Bytes::new(), 10).is_err());
    }

    #[test]
    fn broken_kafka_v0_checksum_is_accepted_for_magic_0_only() {
        let mut out = frame(b"hello hello hello", FrameInfo::new()).to_vec();
        // KAFKA-3160: the checksum over the magic number too.
        out[6] = XxHash32::oneshot(0, &out[0..6]).to_le_bytes()[1];
        let out = Bytes::from(out);
        assert!(decompress(&out, 100).is_err());
        assert_eq!(
            &decompress_legacy_v0(&out, 100).unwrap()[..],
            b"hello hello hello"
        );
    }
}
