//! Size-delimited frames: every Kafka request and response is an i32 length
//! followed by that many bytes ("Common Request and Response Structure" in
//! the protocol guide).
//!
//! [`FrameDecoder`] parses incrementally: it returns `Ok(None)` until a whole
//! frame is buffered, checks the length against a configurable maximum
//! *before* reserving anything, and recognises the usual non-Kafka replies (an
//! HTTP server, a TLS endpoint) so a misconfigured port gives a clear error
//! instead of a gigabyte allocation.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Default largest frame accepted: 100 MiB, Kafka's `socket.request.max.bytes`.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is larger than the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The length on the wire.
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The length prefix is negative.
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// The peer is not speaking Kafka.
    #[error("peer is not a Kafka broker: {0}")]
    NotKafka(String),
}

/// What the first bytes of a frame look like when the peer is not Kafka.
fn sniff_foreign(head: &[u8]) -> Option<String> {
    if head.starts_with(b"HTTP") {
        let line: String = head
            .iter()
            .take_while(|b| **b != b'\r' && **b != b'\n')
            .take(64)
            .map(|b| {
                if b.is_ascii_graphic() || *b == b' ' {
                    *b as char
                } else {
                    '?'
                }
            })
            .collect();
        return Some(format!("it answered with HTTP ({line:?})"));
    }
    match head {
        [0x15, 0x03, ..] => Some("it answered with a TLS alert (is the port TLS-only?)".into()),
        [0x16, 0x03, ..] => Some("it answered with a TLS handshake (is the port TLS-only?)".into()),
        _ => None,
    }
}

/// Incremental frame parser.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder that refuses frames larger than `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        FrameDecoder { max_frame_size }
    }

    /// The largest frame this decoder accepts.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Take one complete frame body off the front of `buf`, or `Ok(None)` if
    /// more bytes are needed. On `Ok(None)` the caller should read more into
    /// `buf`; this method may reserve room for part of the rest of the
    /// frame, never more than the frame's declared size nor more than the
    /// bytes already in `buf` (a length prefix alone allocates nothing).
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < 4 {
            if let Some(why) = sniff_foreign(buf) {
                return Err(FrameError::NotKafka(why));
            }
            return Ok(None);
        }
        let declared = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if let Some(why) = sniff_foreign(&buf[..buf.len().min(64)]) {
            return Err(FrameError::NotKafka(why));
        }
        let size = usize::try_from(declared).map_err(|_| FrameError::NegativeLength(declared))?;
        if size > self.max_frame_size {
            return Err(FrameError::TooLarge {
                size: u64::from(declared.unsigned_abs()),
                max: self.max_frame_size,
            });
        }
        if buf.len() - 4 < size {
            // Room for the rest of the frame, but never more than what has
            // arrived: the declared length is only a claim, so a peer that
            // announces a huge frame and stalls costs a buffer in proportion
            // to the bytes it actually sent (and a large frame still grows
            // by doubling, not byte by byte).
            let missing = size + 4 - buf.len();
            buf.reserve(missing.min(buf.len()));
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(size).freeze()))
    }
}

/// Start a frame in `dst`: writes a placeholder length and returns where it
/// is, for [`finish_frame`].
pub fn begin_frame(dst: &mut BytesMut) -> usize {
    let start = dst.len();
    dst.put_i32(0);
    start
}

/// Patch the length of the frame begun at `start` now that its body is
/// written. Fails if the body is larger than an i32 can say.
pub fn finish_frame(dst: &mut BytesMut, start: usize) -> Result<(), crate::EncodeError> {
    let body = dst.len() - start - 4;
    let len = i32::try_from(body).map_err(|_| crate::EncodeError::TooLong {
        what: "frame",
        length: body,
    })?;
    dst[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partial_frames_wait_for_more() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::new();
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.put_slice(&[0, 0]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.put_slice(&[0, 3, b'a']);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.put_slice(b"bc\x00\x00\x00\x00");
        assert_eq!(
            d.decode(&mut buf).unwrap().unwrap(),
            Bytes::from_static(b"abc")
        );
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), Bytes::new());
        assert!(buf.is_empty());
    }

    #[test]
    fn http_reply_is_named() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]);
        let err = d.decode(&mut buf).unwrap_err();
        assert!(
            err.to_string().contains("HTTP/1.1 400 Bad Request"),
            "{err}"
        );
        let mut short = BytesMut::from(&b"HTT"[..]);
        assert_eq!(d.decode(&mut short).unwrap(), None);
    }

    #[test]
    fn oversized_and_negative_lengths_fail_before_allocating() {
        let d = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&[0x10, 0, 0, 0][..]);
        assert_eq!(
            d.decode(&mut buf).unwrap_err(),
            FrameError::TooLarge {
                size: 0x1000_0000,
                max: 1024
            }
        );
        assert!(buf.capacity() < 1024);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(
            d.decode(&mut buf).unwrap_err(),
            FrameError::NegativeLength(-2)
        );
    }

    /// A length prefix is a claim, not data: a peer that announces a 16 MiB
    /// frame and sends 100 bytes of it costs a buffer in proportion to the
    /// 100 bytes, not 16 MiB (found by the frame_stream fuzz target).
    #[test]
    fn a_declared_length_reserves_only_in_proportion_to_what_arrived() {
        let d = FrameDecoder::new(64 << 20);
        let mut buf = BytesMut::new();
        buf.put_i32(16 << 20);
        buf.put_slice(&[7; 96]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 4 * 100, "capacity {}", buf.capacity());
        // And the frame still comes out whole once it has all arrived,
        // however it was cut.
        let mut buf = BytesMut::new();
        buf.put_i32(200_000);
        for piece in [0u8; 200_000].chunks(7_000) {
            assert_eq!(d.decode(&mut buf).unwrap(), None);
            buf.put_slice(piece);
        }
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().len(), 200_000);
        assert!(buf.is_empty());
    }

    #[test]
    fn begin_and_finish_frame() {
        let mut dst = BytesMut::new();
        let start = begin_frame(&mut dst);
        dst.put_slice(b"hello");
        finish_frame(&mut dst, start).unwrap();
        assert_eq!(&dst[..], b"\x00\x00\x00\x05hello");
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_yields_the_same_frames(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..8),
            cut in 0usize..400,
        ) {
            let mut wire = BytesMut::new();
            for b in &bodies {
                let s = begin_frame(&mut wire);
                wire.put_slice(b);
                finish_frame(&mut wire, s).unwrap();
            }
            let wire = wire.freeze();
            let cut = cut.min(wire.len());
            let d = FrameDecoder::new(64);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in [&wire[..cut], &wire[cut..]] {
                buf.put_slice(chunk);
                while let Some(f) = d.decode(&mut buf).unwrap() {
                    out.push(f.to_vec());
                }
            }
            prop_assert_eq!(out, bodies);
        }
    }
}
