//! The record accumulator, sans-io: per-partition batches (RecordBatch v2
//! builders) that fill up to `batch.size`, wait up to `linger.ms` for more
//! records, and queue up sealed in sequence order for the sender. Memory is
//! bounded outside (`buffer.memory` permits travel with each record and are
//! released when its batch completes), so nothing here grows without bound.
//!
//! Shared by `send`, which appends in the caller's thread, and the
//! producer's task (`sender.rs`), which seals and drains, behind one lock
//! (`front.rs`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use krust_codec::EncodeError;
use krust_codec::records::{Compression, NewHeader, NewRecord, RecordBatchBuilder};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ProduceError;
use crate::fast_hash::FastMap;
use crate::delivery::{Completion, DeliveryFuture, Resolver};
use crate::record::ProducerRecord;

/// A topic-partition.
pub(crate) type TopicPartition = (Arc<str>, i32);

/// Producer id, epoch and base sequence of an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sequence {
    pub producer_id: i64,
    pub epoch: i16,
    pub base: i32,
}

/// One batch of one partition, from its first record to its completion.
pub(crate) struct Batch {
    pub tp: TopicPartition,
    /// The number (in `send` order, over all partitions) of its first
    /// record: `flush` waits for batches that start before its mark.
    pub first: u64,
    builder: RecordBatchBuilder,
    resolver: Resolver,
    _memory: Option<OwnedSemaphorePermit>,
    pub created: Instant,
    pub attempts: u32,
    pub retry_at: Option<Instant>,
    pub sequence: Option<Sequence>,
    built: Option<(Option<Sequence>, Bytes)>,
    pub last_error: Option<String>,
}

impl Batch {
    fn new(tp: TopicPartition, first: u64, batch_size: usize, compression: Compression) -> Batch {
        Batch {
            resolver: Resolver::new(tp.1),
            tp,
            first,
            builder: RecordBatchBuilder::with_capacity(batch_size).compression(compression),
            _memory: None,
            created: Instant::now(),
            attempts: 0,
            retry_at: None,
            sequence: None,
            built: None,
            last_error: None,
        }
    }

    /// A batch of `records` empty records, for unit tests of the
    /// bookkeeping around batches.
    #[cfg(test)]
    pub(crate) fn of_records(tp: TopicPartition, records: usize) -> Batch {
        let mut b = Batch::new(tp, 0, 1 << 20, Compression::None);
        for _ in 0..records {
            b.builder
                .append(&NewRecord::default())
                .expect("an empty record fits");
        }
        b
    }

    /// Records in the batch.
    pub fn record_count(&self) -> i32 {
        self.builder.record_count()
    }

    /// Uncompressed size so far.
    pub fn size(&self) -> usize {
        self.builder.size_in_bytes()
    }

    /// The encoded batch with the current producer fields; encoded (and
    /// compressed) once per sequence assignment, reused on retries.
    pub fn encoded(&mut self) -> Result<Bytes, EncodeError> {
        if let Some((seq, bytes)) = &self.built
            && *seq == self.sequence
        {
            return Ok(bytes.clone());
        }
        let mut b = self.builder.clone();
        if let Some(s) = self.sequence {
            b.set_producer(s.producer_id, s.epoch, s.base);
        }
        let bytes = b.build()?;
        self.built = Some((self.sequence, bytes.clone()));
        Ok(bytes)
    }

    /// Resolve every record: offsets from `base_offset` (-1: unknown).
    pub fn succeed(self, base_offset: i64, log_append_time: Option<i64>) {
        self.resolver.succeed(base_offset, log_append_time);
    }

    /// The outcome the records' futures wait on, for failing them while
    /// the batch is in flight (`expiry.rs`).
    pub fn completion(&self) -> Arc<Completion> {
        self.resolver.completion()
    }

    /// Fail every record with `error`.
    pub fn fail(self, error: ProduceError) {
        self.resolver.fail(error);
    }

    /// Whether `delivery.timeout.ms` has passed since creation.
    pub fn expired(&self, now: Instant, delivery_timeout: Duration) -> bool {
        now.saturating_duration_since(self.created) >= delivery_timeout
    }

    /// The delivery-timeout error of this batch.
    pub fn timeout_error(&self) -> ProduceError {
        ProduceError::DeliveryTimeout {
            topic: self.tp.0.to_string(),
            partition: self.tp.1,
            elapsed: self.created.elapsed(),
            attempts: self.attempts,
            last: self.last_error.clone(),
        }
    }
}

/// The batches of one partition.
#[derive(Default)]
pub(crate) struct PartitionQueue {
    open: Option<Batch>,
    /// Sealed batches waiting to be sent, in sequence order (retries of
    /// sequenced batches first, then new ones).
    pub sealed: VecDeque<Batch>,
}

/// Every partition's batches.
pub(crate) struct Accumulator {
    pub partitions: FastMap<TopicPartition, PartitionQueue>,
    batch_size: usize,
    linger: Duration,
    compression: Compression,
}

impl Accumulator {
    pub fn new(batch_size: usize, linger: Duration, compression: Compression) -> Self {
        Accumulator {
            partitions: FastMap::default(),
            batch_size,
            linger,
            compression,
        }
    }

    /// Whether appending `record` to `tp` would start a new batch: none is
    /// open, or the open one has no room for it. That is the moment a sticky
    /// partitioner moves on (KIP-480's `onNewBatch`); asking only "is one
    /// open" kept unkeyed records on one partition for as long as full
    /// batches were replaced by new ones there.
    pub fn would_start_batch(
        &self,
        tp: &TopicPartition,
        record: &ProducerRecord,
        timestamp: i64,
    ) -> bool {
        let Some(open) = self.partitions.get(tp).and_then(|q| q.open.as_ref()) else {
            return true;
        };
        let headers = new_headers(record);
        let new = new_record(record, timestamp, &headers);
        !open
            .builder
            .record_size(&new)
            .is_ok_and(|n| open.size() + n <= self.batch_size)
    }

    /// Append record number `number` to its partition's open batch,
    /// sealing the batch first when the record would take it past
    /// `batch.size`. Returns the record's future, and whether the producer's
    /// task should look at the queue now: a batch was opened (its linger
    /// starts) or sealed (it can go).
    pub fn append(
        &mut self,
        tp: &TopicPartition,
        number: u64,
        record: &ProducerRecord,
        timestamp: i64,
        permit: OwnedSemaphorePermit,
    ) -> (DeliveryFuture, bool) {
        let headers = new_headers(record);
        let new = new_record(record, timestamp, &headers);
        let (batch_size, compression) = (self.batch_size, self.compression);
        if !self.partitions.contains_key(tp) {
            self.partitions.insert(tp.clone(), PartitionQueue::default());
        }
        let Some(q) = self.partitions.get_mut(tp) else {
            unreachable!("inserted above")
        };
        let mut wake = false;
        if let Some(open) = &q.open {
            let fits = open
                .builder
                .record_size(&new)
                .is_ok_and(|n| open.size() + n <= batch_size);
            if !fits && let Some(full) = q.open.take() {
                q.sealed.push_back(full);
                wake = true;
            }
        }
        let batch = match &mut q.open {
            Some(b) => b,
            None => {
                wake = true;
                q.open
                    .insert(Batch::new(tp.clone(), number, batch_size, compression))
            }
        };
        let index = u32::try_from(batch.record_count()).unwrap_or(u32::MAX);
        if let Err(e) = batch.builder.append(&new) {
            if batch.record_count() == 0 {
                q.open = None;
            }
            return (DeliveryFuture::failed(ProduceError::Encode(e)), wake);
        }
        let future = batch.resolver.future(index, timestamp);
        match &mut batch._memory {
            Some(m) => m.merge(permit),
            None => batch._memory = Some(permit),
        }
        if batch.size() >= batch_size
            && let Some(full) = q.open.take()
        {
            q.sealed.push_back(full);
            wake = true;
        }
        (future, wake)
    }

    /// Seal open batches whose linger has passed (all of them when
    /// `flushing`).
    pub fn seal_lingered(&mut self, now: Instant, flushing: bool) {
        for q in self.partitions.values_mut() {
            if let Some(open) = &q.open
                && (flushing || now >= open.created + self.linger)
                && let Some(b) = q.open.take()
            {
                q.sealed.push_back(b);
            }
        }
    }

    /// When the next open batch's linger ends.
    pub fn next_linger_deadline(&self) -> Option<Instant> {
        self.partitions
            .values()
            .filter_map(|q| q.open.as_ref().map(|b| b.created + self.linger))
            .min()
    }

    /// Put a batch that failed back, in sequence order (Java's
    /// `insertInSequenceOrder`): before every batch with a higher sequence
    /// or none yet.
    pub fn reenqueue(&mut self, batch: Batch) {
        let q = self.partitions.entry(batch.tp.clone()).or_default();
        let pos = match batch.sequence {
            Some(s) => q
                .sealed
                .iter()
                .position(|b| b.sequence.is_none_or(|o| o.base > s.base))
                .unwrap_or(q.sealed.len()),
            None => q
                .sealed
                .iter()
                .position(|b| b.sequence.is_none())
                .unwrap_or(q.sealed.len()),
        };
        q.sealed.insert(pos, batch);
    }

    /// The number of the oldest record still waiting here.
    pub fn oldest(&self) -> Option<u64> {
        self.partitions
            .values()
            .flat_map(|q| q.open.iter().chain(q.sealed.iter()))
            .map(|b| b.first)
            .min()
    }

    /// Whether no record is waiting anywhere.
    pub fn is_empty(&self) -> bool {
        self.partitions
            .values()
            .all(|q| q.open.is_none() && q.sealed.is_empty())
    }

    /// Every batch, open and sealed (to fail them all).
    pub fn drain_all(&mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        for q in self.partitions.values_mut() {
            out.extend(q.sealed.drain(..));
            out.extend(q.open.take());
        }
        out
    }
}

fn new_headers(record: &ProducerRecord) -> Vec<NewHeader<'_>> {
    record
        .headers
        .iter()
        .map(|h| NewHeader {
            key: &h.key,
            value: h.value.as_deref(),
        })
        .collect()
}

fn new_record<'a>(
    record: &'a ProducerRecord,
    timestamp: i64,
    headers: &'a [NewHeader<'a>],
) -> NewRecord<'a> {
    NewRecord {
        timestamp,
        key: record.key.as_deref(),
        value: record.value.as_deref(),
        headers,
        ..NewRecord::default()
    }
}
