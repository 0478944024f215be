//! Turning one partition of a Fetch response into consumer records.
//!
//! Batches come from [`Batches`] (RecordBatch v2 and legacy message sets,
//! CRC checked when `check.crcs` is on, a truncated trailing batch ending
//! the data). Records below the fetch offset are skipped (a batch, or a
//! compressed legacy wrapper, can start before it). Under read_committed
//! (KIP-98) the records of aborted transactions are hidden the way the Java
//! client's `CompletedFetch` does it: the response's aborted transactions
//! are taken in first-offset order; once a batch reaches one's first offset
//! its producer counts as aborted; that producer's transactional batches
//! are skipped until its ABORT marker. Control batches are never handed
//! out. `next_offset` moves past everything consumed, skipped batches
//! included.
//!
//! A batch that fails its CRC or does not decode ends the data: the records
//! before it are returned with `next_offset` at the broken batch, and a
//! fetch starting at a broken batch is [`PartitionFetchError::Corrupt`]
//! naming its offset (as the Java client raises the error only once the
//! records before it were consumed).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use krust_codec::generated::fetch_response::{AbortedTransaction, PartitionData};
use krust_codec::records::{Batch, Batches, ControlMarker, TimestampType};
use krust_codec::{DecodeError, ErrorCode};

use super::{FetchConfig, FetchedData, IsolationLevel, PartitionFetchError};
use crate::record::ConsumerRecord;

/// Decode one partition of a Fetch response, fetched from `fetch_offset`.
pub(crate) fn decode_partition(
    topic: &Arc<str>,
    fetch_offset: i64,
    p: PartitionData,
    cfg: &FetchConfig,
) -> Result<FetchedData, PartitionFetchError> {
    let code = ErrorCode::from(p.error_code);
    if !code.is_ok() {
        return Err(PartitionFetchError::Broker(code));
    }
    let records = p.records.unwrap_or_default();
    let bytes = records.len();
    let aborted = match cfg.isolation {
        IsolationLevel::ReadCommitted => p.aborted_transactions.unwrap_or_default(),
        IsolationLevel::ReadUncommitted => Vec::new(),
    };
    let (records, next_offset) = decode_records(
        topic,
        p.partition_index,
        fetch_offset,
        records,
        aborted,
        cfg,
    )?;
    Ok(FetchedData {
        records,
        next_offset,
        high_watermark: p.high_watermark,
        last_stable_offset: (p.last_stable_offset >= 0).then_some(p.last_stable_offset),
        log_start_offset: (p.log_start_offset >= 0).then_some(p.log_start_offset),
        bytes,
    })
}

/// The records at or after `fetch_offset` and the next fetch offset.
pub(crate) fn decode_records(
    topic: &Arc<str>,
    partition: i32,
    fetch_offset: i64,
    data: Bytes,
    mut aborted: Vec<AbortedTransaction>,
    cfg: &FetchConfig,
) -> Result<(Vec<ConsumerRecord>, i64), PartitionFetchError> {
    aborted.sort_by_key(|a| a.first_offset);
    let mut aborted = VecDeque::from(aborted);
    let read_committed = cfg.isolation == IsolationLevel::ReadCommitted;
    let mut aborted_producers: HashSet<i64> = HashSet::new();
    let mut batches = Batches::with_options(data, cfg.decode_options());
    // Sized once for all the records the batches declare: grown batch by
    // batch, the records were moved again at every doubling, and the
    // doublings' memory added to what a fetch response costs.
    let mut out = Vec::with_capacity(batches.declared_records());
    let mut next = fetch_offset;
    loop {
        // Where the next batch starts, to name it if it is broken.
        let at = batch_start(batches.remaining()).unwrap_or(next);
        let corrupt = |e: DecodeError| PartitionFetchError::Corrupt {
            offset: at,
            message: e.to_string(),
        };
        let batch = match batches.next() {
            None => break,
            Some(Ok(b)) => b,
            Some(Err(e)) => return broken(out, next, fetch_offset, corrupt(e)),
        };
        if read_committed && batch.producer_id() >= 0 {
            let last = batch.last_offset();
            while aborted.front().is_some_and(|a| a.first_offset <= last) {
                if let Some(a) = aborted.pop_front() {
                    aborted_producers.insert(a.producer_id);
                }
            }
            match is_abort_marker(&batch) {
                Err(e) => return broken(out, next, fetch_offset, corrupt(e)),
                Ok(true) => {
                    aborted_producers.remove(&batch.producer_id());
                }
                Ok(false) => {
                    if batch.is_transactional() && aborted_producers.contains(&batch.producer_id())
                    {
                        next = next.max(batch.next_offset());
                        continue;
                    }
                }
            }
        }
        if batch.is_control() || batch.next_offset() <= fetch_offset {
            next = next.max(batch.next_offset());
            continue;
        }
        let (timestamp_type, leader_epoch) = match &batch {
            Batch::V2(b) => (
                b.timestamp_type(),
                Some(b.partition_leader_epoch()).filter(|e| *e >= 0),
            ),
            Batch::Legacy(m) => (
                m.timestamp_type().unwrap_or(TimestampType::CreateTime),
                None,
            ),
        };
        let before = out.len();
        let decoded = batch.records().and_then(|records| {
            for r in records {
                let r = r?;
                if r.offset >= fetch_offset {
                    out.push(ConsumerRecord::new(
                        topic.clone(),
                        partition,
                        r.offset,
                        r.timestamp,
                        timestamp_type,
                        leader_epoch,
                        r.data,
                    ));
                }
            }
            Ok(())
        });
        if let Err(e) = decoded {
            out.truncate(before);
            return broken(out, next, fetch_offset, corrupt(e));
        }
        next = next.max(batch.next_offset());
    }
    Ok((out, next))
}

/// A broken batch: what came before it, or the error when nothing did.
fn broken(
    out: Vec<ConsumerRecord>,
    next: i64,
    fetch_offset: i64,
    error: PartitionFetchError,
) -> Result<(Vec<ConsumerRecord>, i64), PartitionFetchError> {
    if next > fetch_offset {
        Ok((out, next))
    } else {
        Err(error)
    }
}

/// Whether a control batch holds an ABORT marker (its first record).
fn is_abort_marker(batch: &Batch) -> Result<bool, DecodeError> {
    if !batch.is_control() {
        return Ok(false);
    }
    match batch.records()?.next() {
        None => Ok(false),
        Some(r) => Ok(ControlMarker::from_record(&r?)?.is_abort()),
    }
}

/// The base offset a batch's bytes start with.
fn batch_start(bytes: &Bytes) -> Option<i64> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(i64::from_be_bytes(head))
}
