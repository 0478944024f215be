//! What one partition fetched and has not handed out yet.

use crate::record::ConsumerRecord;

/// The records of a partition's part of one fetch response, in offset
/// order, handed out from the front.
///
/// A `Vec`'s consuming iterator rather than a `VecDeque`: handing `n`
/// records to a poll is then one move of a run of exact length into the
/// poll's batch, where a deque's drain pushed them one by one; and the
/// records were decoded into that `Vec` at their final size (see
/// `fetch::decode`), so nothing is moved between decoding and handing out.
/// Its memory goes as soon as the last record is handed out, not when the
/// next response replaces it.
#[derive(Debug, Default)]
pub(crate) struct Buffer(std::vec::IntoIter<ConsumerRecord>);

impl Buffer {
    /// A buffer of `records`, in offset order.
    pub(crate) fn new(records: Vec<ConsumerRecord>) -> Self {
        Buffer(records.into_iter())
    }

    /// Whether nothing is left to hand out.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_slice().is_empty()
    }

    /// How many records are left.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The next record to hand out.
    pub(crate) fn front(&self) -> Option<&ConsumerRecord> {
        self.0.as_slice().first()
    }

    /// Drop every record left, and their memory.
    pub(crate) fn clear(&mut self) {
        *self = Buffer::default();
    }

    /// Move the first `n` records (all there are, if fewer) to the end of
    /// `out`.
    pub(crate) fn take_into(&mut self, n: usize, out: &mut Vec<ConsumerRecord>) {
        out.extend(self.0.by_ref().take(n));
        if self.is_empty() {
            self.clear();
        }
    }

    /// Put `records`, which came before the first record left, back in
    /// front of it.
    pub(crate) fn put_back(&mut self, mut records: Vec<ConsumerRecord>) {
        records.extend(std::mem::take(&mut self.0));
        self.0 = records.into_iter();
    }
}

#[cfg(test)]
mod tests {
    use krust_codec::records::RecordData;

    use super::*;

    fn records(offsets: std::ops::Range<i64>) -> Vec<ConsumerRecord> {
        offsets
            .map(|o| ConsumerRecord::test_at(o, RecordData::default()))
            .collect()
    }

    fn offsets(rs: &[ConsumerRecord]) -> Vec<i64> {
        rs.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn hands_out_from_the_front_in_runs() {
        let mut b = Buffer::new(records(0..5));
        assert_eq!(b.len(), 5);
        assert_eq!(b.front().map(|r| r.offset), Some(0));
        let mut out = records(100..101);
        b.take_into(2, &mut out);
        assert_eq!(offsets(&out), [100, 0, 1]);
        assert_eq!(b.front().map(|r| r.offset), Some(2));
        b.take_into(10, &mut out);
        assert_eq!(offsets(&out), [100, 0, 1, 2, 3, 4]);
        assert!(b.is_empty());
        assert_eq!(b.len(), 0);
        assert!(b.front().is_none());
        b.take_into(3, &mut out);
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn records_put_back_come_first_again() {
        let mut b = Buffer::new(records(0..6));
        let mut out = Vec::new();
        b.take_into(4, &mut out);
        let back = out.split_off(2);
        b.put_back(back);
        assert_eq!(b.len(), 4);
        let mut again = Vec::new();
        b.take_into(usize::MAX, &mut again);
        assert_eq!(offsets(&again), [2, 3, 4, 5]);
        let mut e = Buffer::default();
        e.put_back(records(7..9));
        assert_eq!(e.front().map(|r| r.offset), Some(7));
        e.clear();
        assert!(e.is_empty());
    }
}
