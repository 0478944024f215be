//! The records the consumer hands out, each with an acknowledgement handle
//! that is `'static + Send` (it borrows nothing from the consumer), so a
//! record can be processed and acked on another task.

use std::sync::Arc;

use bytes::Bytes;
use krust_codec::records::{HeadersRef, RecordData, TimestampType};

use crate::acks::AckCell;

/// One record of a partition, as fetched.
#[derive(Debug, Clone)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp in ms since the epoch (-1 when the broker
    /// kept none).
    pub timestamp: i64,
    /// Whether `timestamp` is the producer's create time or the broker's
    /// log-append time.
    pub timestamp_type: TimestampType,
    /// The leader epoch of the batch (None for old message formats).
    pub leader_epoch: Option<i32>,
    data: RecordData,
    pub(crate) ack: Option<Ack>,
}

impl ConsumerRecord {
    /// A record as decoded, before the consumer hands it out.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        timestamp: i64,
        timestamp_type: TimestampType,
        leader_epoch: Option<i32>,
        data: RecordData,
    ) -> Self {
        ConsumerRecord {
            topic,
            partition,
            offset,
            timestamp,
            timestamp_type,
            leader_epoch,
            data,
            ack: None,
        }
    }

    /// The key (`None`: a null key).
    pub fn key(&self) -> Option<&[u8]> {
        self.data.key()
    }

    /// The value (`None`: a tombstone).
    pub fn value(&self) -> Option<&[u8]> {
        self.data.value()
    }

    /// The headers, decoded on iteration.
    pub fn headers(&self) -> HeadersRef<'_> {
        self.data.headers()
    }

    /// The key as [`Bytes`] that share the fetched bytes (not copied), to
    /// keep after the record is dropped.
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.data.key_bytes()
    }

    /// The value as [`Bytes`] that share the fetched bytes (not copied).
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.data.value_bytes()
    }

    /// The key, value and headers: one slice of the fetched bytes, which is
    /// all a record holds of them.
    pub fn data(&self) -> &RecordData {
        &self.data
    }

    /// Acknowledge this record: the application is done with it. With
    /// `acknowledgement.mode=explicit`, a partition's committable offset
    /// is the end of its contiguous acked prefix; acking twice, or after
    /// the partition was revoked or seeked, does nothing. With the default
    /// implicit mode every record handed out before the previous poll
    /// counts as processed and this call is not needed.
    pub fn ack(&self) {
        if let Some(a) = &self.ack {
            a.cell.ack(a.offset);
        }
    }

    /// A handle that acks this record later, from anywhere.
    pub fn ack_handle(&self) -> AckHandle {
        AckHandle {
            ack: self.ack.clone(),
        }
    }

    /// The offset to commit once this record is processed (`offset + 1`).
    pub fn next_offset(&self) -> i64 {
        self.offset + 1
    }
}

/// Acknowledges one record; `'static + Send + Sync`, cheap to clone.
#[derive(Debug, Clone)]
pub struct AckHandle {
    ack: Option<Ack>,
}

impl AckHandle {
    /// Acknowledge the record (see [`ConsumerRecord::ack`]).
    pub fn ack(&self) {
        if let Some(a) = &self.ack {
            a.cell.ack(a.offset);
        }
    }
}

/// One record's ack handle. The cell counts the live ones, so that a
/// revoke knows when no ack can come any more (records dropped unacked).
#[derive(Debug)]
pub(crate) struct Ack {
    pub(crate) cell: Arc<AckCell>,
    pub(crate) offset: i64,
}

impl Ack {
    pub(crate) fn new(cell: Arc<AckCell>, offset: i64) -> Ack {
        cell.handle_created();
        Ack { cell, offset }
    }
}

impl Clone for Ack {
    fn clone(&self) -> Ack {
        Ack::new(Arc::clone(&self.cell), self.offset)
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        self.cell.handle_dropped();
    }
}

#[cfg(test)]
impl ConsumerRecord {
    /// A test's record: partition 0 of topic "t" at `offset`, created at
    /// 1000 + `offset` ms, holding `data`.
    pub(crate) fn test_at(offset: i64, data: RecordData) -> Self {
        ConsumerRecord::new(
            Arc::from("t"),
            0,
            offset,
            1_000 + offset,
            TimestampType::CreateTime,
            None,
            data,
        )
    }
}
