//! Fetching records: fetch sessions (KIP-227) and decoding. (Interface
//! stand-in; the fetcher lands next.)
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use krust_codec::ErrorCode;
use krust_codec::records::DecodeOptions;
use krust_group::TopicPartition;
use krust_net::Pool;

use crate::record::ConsumerRecord;

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// Only committed transactional records, up to the last stable offset.
    ReadCommitted,
}

#[derive(Debug, Clone)]
pub(crate) struct FetchConfig {
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub max_wait: Duration,
    pub partition_max_bytes: i32,
    pub isolation: IsolationLevel,
    pub rack_id: Option<String>,
    pub check_crcs: bool,
    pub decode: DecodeOptions,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            min_bytes: 1,
            max_bytes: 52_428_800,
            max_wait: Duration::from_millis(500),
            partition_max_bytes: 1_048_576,
            isolation: IsolationLevel::ReadUncommitted,
            rack_id: None,
            check_crcs: true,
            decode: DecodeOptions::default(),
        }
    }
}

pub(crate) struct FetchTarget {
    pub tp: TopicPartition,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

pub(crate) struct FetchSession {
    broker: i32,
}

impl FetchSession {
    pub fn new(broker: i32) -> Self {
        FetchSession { broker }
    }
    pub fn broker(&self) -> i32 {
        self.broker
    }
}

pub(crate) struct Fetched {
    pub tp: TopicPartition,
    pub fetch_offset: i64,
    pub outcome: Result<FetchedData, PartitionFetchError>,
}

pub(crate) struct FetchedData {
    pub records: VecDeque<ConsumerRecord>,
    pub next_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: Option<i64>,
    pub log_start_offset: Option<i64>,
    pub bytes: usize,
}

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum PartitionFetchError {
    #[error("{0}")]
    Broker(ErrorCode),
    #[error("corrupt record at offset {offset}: {message}")]
    Corrupt { offset: i64, message: String },
}

pub(crate) async fn fetch(
    _pool: &Pool,
    _session: &mut FetchSession,
    _targets: &[FetchTarget],
    _cfg: &FetchConfig,
) -> Result<Vec<Fetched>, krust_net::Error> {
    Ok(Vec::new())
}
