//! The bytes a connection task has yet to write, in order. Small frames are
//! copied together into one buffer, so a burst of them goes out in one
//! write; a large frame (a Produce request's records) is kept as the
//! `Bytes` it came in, never copied on its way to the socket.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// A frame at least this long is written from its own buffer.
const OWN_BUFFER: usize = 64 * 1024;

/// Frames waiting to be written, oldest first.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Older than `tail`: whole frames and runs of small ones, in order.
    chunks: VecDeque<Bytes>,
    /// The newest small frames, copied together.
    tail: BytesMut,
    /// Bytes in `chunks` and `tail`.
    len: usize,
}

impl Outbox {
    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queue `frame` after everything already queued.
    pub fn push(&mut self, frame: Bytes) {
        self.len += frame.len();
        if frame.len() < OWN_BUFFER {
            self.tail.extend_from_slice(&frame);
            return;
        }
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.chunks.push_back(frame);
    }

    /// The next bytes to write (empty when nothing waits).
    pub fn chunk(&self) -> &[u8] {
        match self.chunks.front() {
            Some(c) => c,
            None => &self.tail,
        }
    }

    /// `n` bytes of [`chunk`](Self::chunk) were written.
    pub fn advance(&mut self, n: usize) {
        self.len -= n;
        match self.chunks.front_mut() {
            Some(c) => {
                c.advance(n);
                if c.is_empty() {
                    self.chunks.pop_front();
                }
            }
            None => self.tail.advance(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write everything in pieces of at most `step` bytes.
    fn drain(out: &mut Outbox, step: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while !out.is_empty() {
            let n = out.chunk().len().min(step);
            assert!(n > 0, "a non-empty outbox has bytes to write");
            wire.extend_from_slice(&out.chunk()[..n]);
            out.advance(n);
        }
        assert_eq!(out.len(), 0);
        wire
    }

    #[test]
    fn frames_go_out_in_order_whatever_their_sizes_and_the_write_sizes() {
        let sizes = [10, OWN_BUFFER, 3, 5, OWN_BUFFER * 2 + 1, 1, 0, 7];
        for step in [1, 7, 4096, usize::MAX] {
            let mut out = Outbox::default();
            let mut expected = Vec::new();
            for (i, &size) in sizes.iter().enumerate() {
                let frame: Vec<u8> = (0..size).map(|j| (i * 31 + j) as u8).collect();
                expected.extend_from_slice(&frame);
                out.push(Bytes::from(frame));
                assert_eq!(out.len(), expected.len());
            }
            assert_eq!(drain(&mut out, step), expected, "written {step} at a time");
        }
    }

    #[test]
    fn a_large_frame_is_written_from_its_own_buffer() {
        let mut out = Outbox::default();
        let big = Bytes::from(vec![9u8; OWN_BUFFER]);
        out.push(Bytes::from_static(b"ab"));
        out.push(big.clone());
        assert_eq!(out.chunk(), b"ab");
        out.advance(2);
        assert_eq!(out.chunk().as_ptr(), big.as_ptr(), "not copied");
        out.push(Bytes::from_static(b"c"));
        out.advance(OWN_BUFFER);
        assert_eq!(out.chunk(), b"c");
    }
}
