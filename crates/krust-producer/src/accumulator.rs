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
use krust_codec::records::{
    Compression, NewHeader, NewRecord, RecordBatchBuilder, restamp_producer,
};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::delivery::{Completion, DeliveryFuture, Resolver};
use crate::error::ProduceError;
use crate::fast_hash::FastMap;
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
    /// The records, until the batch is first encoded.
    builder: Option<RecordBatchBuilder>,
    /// Records and uncompressed size, kept when the builder is consumed.
    built_count: (i32, usize),
    resolver: Resolver,
    memory: Memory,
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
            builder: Some(RecordBatchBuilder::with_capacity(batch_size).compression(compression)),
            built_count: (0, 0),
            memory: Memory {
                semaphore: None,
                held: 0,
            },
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
            b.open_builder()
                .append(&NewRecord::default())
                .expect("an empty record fits");
        }
        b
    }

    /// Records in the batch.
    pub fn record_count(&self) -> i32 {
        self.builder
            .as_ref()
            .map_or(self.built_count.0, RecordBatchBuilder::record_count)
    }

    /// Uncompressed size so far.
    pub fn size(&self) -> usize {
        self.builder
            .as_ref()
            .map_or(self.built_count.1, RecordBatchBuilder::size_in_bytes)
    }

    /// The encoded batch with the current producer fields. The records are
    /// encoded (and compressed) once, in place; a retry under the same
    /// sequence reuses the bytes, and under a new one (a new epoch) gets a
    /// copy with the producer fields and the CRC written again.
    pub fn encoded(&mut self) -> Result<Bytes, EncodeError> {
        let (id, epoch, base) = self
            .sequence
            .map_or((-1, -1, -1), |s| (s.producer_id, s.epoch, s.base));
        let bytes = match (&self.built, self.builder.take()) {
            (Some((seq, bytes)), _) if *seq == self.sequence => return Ok(bytes.clone()),
            (Some((_, bytes)), _) => restamp_producer(bytes, id, epoch, base)?,
            (None, Some(mut b)) => {
                self.built_count = (b.record_count(), b.size_in_bytes());
                b.set_producer(id, epoch, base);
                b.build()?
            }
            (None, None) => {
                return Err(EncodeError::InvalidValue {
                    what: "record batch",
                    detail: "its records failed to encode before".to_owned(),
                });
            }
        };
        self.built = Some((self.sequence, bytes.clone()));
        Ok(bytes)
    }

    /// The builder of a batch still open for records.
    fn open_builder(&mut self) -> &mut RecordBatchBuilder {
        self.builder.get_or_insert_with(RecordBatchBuilder::new)
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

/// The part of `buffer.memory` a batch's records hold, given back when the
/// batch is dropped (completed, failed or abandoned).
struct Memory {
    semaphore: Option<Arc<Semaphore>>,
    held: usize,
}

impl Drop for Memory {
    fn drop(&mut self) {
        if let Some(s) = &self.semaphore {
            s.add_permits(self.held);
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
    /// Every partition's queue, in the order first used; never removed, so
    /// an index stays valid.
    pub partitions: Vec<(TopicPartition, PartitionQueue)>,
    /// Where each partition's queue is in `partitions`.
    index: FastMap<TopicPartition, usize>,
    /// The partition the last record went to and its index, its topic
    /// recognised by the `Arc` (records for one topic share one): a run of
    /// records to one partition costs no hashing of the topic's name.
    last: Option<(Arc<str>, i32, usize)>,
    /// `buffer.memory`: each batch gives back what its records took.
    memory: Arc<Semaphore>,
    batch_size: usize,
    linger: Duration,
    compression: Compression,
}

impl Accumulator {
    pub fn new(
        batch_size: usize,
        linger: Duration,
        compression: Compression,
        memory: Arc<Semaphore>,
    ) -> Self {
        Accumulator {
            memory,
            partitions: Vec::new(),
            index: FastMap::default(),
            last: None,
            batch_size,
            linger,
            compression,
        }
    }

    /// Append record number `number` to its partition's open batch,
    /// sealing the batch first when the record would take it past
    /// `batch.size`. With `sticky`, a record that would start a new batch
    /// is not appended: it comes back (`Err`) for the partitioner to move
    /// on first (KIP-480's `onNewBatch`; asking only "is a batch open" kept
    /// unkeyed records on one partition for as long as full batches were
    /// replaced by new ones there). Otherwise returns the record's future,
    /// and whether the producer's task should look at the queue now: a
    /// batch was opened (its linger starts) or sealed (it can go).
    pub fn append<'a>(
        &mut self,
        (topic, partition): (&Arc<str>, i32),
        number: u64,
        record: &ProducerRecord,
        timestamp: i64,
        permit: SemaphorePermit<'a>,
        sticky: bool,
    ) -> Result<(DeliveryFuture, bool), SemaphorePermit<'a>> {
        let headers = new_headers(record);
        let new = new_record(record, timestamp, &headers);
        let (batch_size, compression) = (self.batch_size, self.compression);
        let i = match self.find(topic, partition) {
            Some(i) => i,
            None if sticky => return Err(permit),
            None => self.insert((Arc::clone(topic), partition)),
        };
        let (tp, q) = &mut self.partitions[i];
        let mut wake = false;
        if let Some(open) = &q.open {
            let fits = open.builder.as_ref().is_some_and(|b| {
                b.record_size(&new)
                    .is_ok_and(|n| open.size() + n <= batch_size)
            });
            if !fits {
                if sticky {
                    return Err(permit);
                }
                q.sealed.extend(q.open.take());
                wake = true;
            }
        } else if sticky {
            return Err(permit);
        }
        let batch = match &mut q.open {
            Some(b) => b,
            None => {
                wake = true;
                let mut b = Batch::new(tp.clone(), number, batch_size, compression);
                b.memory.semaphore = Some(Arc::clone(&self.memory));
                q.open.insert(b)
            }
        };
        let index = u32::try_from(batch.record_count()).unwrap_or(u32::MAX);
        if let Err(e) = batch.open_builder().append(&new) {
            if batch.record_count() == 0 {
                q.open = None;
            }
            return Ok((DeliveryFuture::failed(ProduceError::Encode(e)), wake));
        }
        let future = batch.resolver.future(index, timestamp);
        batch.memory.held += permit.num_permits();
        permit.forget();
        if batch.size() >= batch_size {
            q.sealed.extend(q.open.take());
            wake = true;
        }
        Ok((future, wake))
    }

    /// The index of `(topic, partition)`'s queue, if it has one.
    fn find(&mut self, topic: &Arc<str>, partition: i32) -> Option<usize> {
        if let Some((t, p, i)) = &self.last
            && *p == partition
            && Arc::ptr_eq(t, topic)
        {
            return Some(*i);
        }
        let i = *self.index.get(&(Arc::clone(topic), partition))?;
        self.last = Some((Arc::clone(topic), partition, i));
        Some(i)
    }

    /// The index of `tp`'s queue, made empty if it has none.
    fn insert(&mut self, tp: TopicPartition) -> usize {
        if let Some(&i) = self.index.get(&tp) {
            return i;
        }
        let i = self.partitions.len();
        self.index.insert(tp.clone(), i);
        self.partitions.push((tp, PartitionQueue::default()));
        i
    }

    /// Every partition's queue.
    pub fn queues(&self) -> impl Iterator<Item = &PartitionQueue> {
        self.partitions.iter().map(|(_, q)| q)
    }

    /// Every partition's queue, to change.
    pub fn queues_mut(&mut self) -> impl Iterator<Item = &mut PartitionQueue> {
        self.partitions.iter_mut().map(|(_, q)| q)
    }

    /// Seal open batches whose linger has passed (all of them when
    /// `flushing`).
    pub fn seal_lingered(&mut self, now: Instant, flushing: bool) {
        let linger = self.linger;
        for q in self.queues_mut() {
            if let Some(open) = &q.open
                && (flushing || now >= open.created + linger)
                && let Some(b) = q.open.take()
            {
                q.sealed.push_back(b);
            }
        }
    }

    /// When the next open batch's linger ends.
    pub fn next_linger_deadline(&self) -> Option<Instant> {
        self.queues()
            .filter_map(|q| q.open.as_ref().map(|b| b.created + self.linger))
            .min()
    }

    /// Put a batch that failed back, in sequence order (Java's
    /// `insertInSequenceOrder`): before every batch with a higher sequence
    /// or none yet.
    pub fn reenqueue(&mut self, batch: Batch) {
        let i = self.insert(batch.tp.clone());
        let q = &mut self.partitions[i].1;
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
        self.queues()
            .flat_map(|q| q.open.iter().chain(q.sealed.iter()))
            .map(|b| b.first)
            .min()
    }

    /// Whether no record is waiting anywhere.
    pub fn is_empty(&self) -> bool {
        self.queues()
            .all(|q| q.open.is_none() && q.sealed.is_empty())
    }

    /// Every batch, open and sealed (to fail them all).
    pub fn drain_all(&mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        for q in self.queues_mut() {
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

#[cfg(test)]
mod tests {
    use krust_codec::records::RecordBatch;

    use super::*;

    #[test]
    fn a_batch_is_encoded_once_and_restamped_under_a_new_sequence() {
        let mut b = Batch::of_records((Arc::from("t"), 0), 3);
        b.sequence = Some(Sequence {
            producer_id: 7,
            epoch: 0,
            base: 12,
        });
        let first = b.encoded().expect("encodes");
        assert_eq!((b.record_count(), b.size()), (3, first.len()));
        assert_eq!(b.encoded().expect("again"), first, "reused as it is");
        b.sequence = Some(Sequence {
            producer_id: 7,
            epoch: 1,
            base: 0,
        });
        let again = RecordBatch::parse(b.encoded().expect("restamped")).expect("parses");
        again.verify_crc().expect("a CRC over the new fields");
        assert_eq!(
            (
                again.producer_id(),
                again.producer_epoch(),
                again.base_sequence()
            ),
            (7, 1, 0)
        );
        let old = RecordBatch::parse(first).expect("parses");
        assert_eq!(again.records().unwrap().count(), 3);
        assert_eq!(
            again.as_bytes()[61..],
            old.as_bytes()[61..],
            "the records are not encoded again"
        );
        b.sequence = None;
        let plain = RecordBatch::parse(b.encoded().expect("restamped")).expect("parses");
        assert_eq!((plain.producer_id(), plain.base_sequence()), (-1, -1));
    }
}
