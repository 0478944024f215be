//! Fetching records from one broker: the Fetch request (protocol page
//! "Fetch API", versions 4–17), incremental fetch sessions (KIP-227), topic
//! ids in Fetch v13+ (KIP-516), leader epochs (KIP-320), rack-aware fetching
//! (KIP-392, `client.rack`) and read_committed isolation (KIP-98).
//!
//! [`FetchSession`] is the sans-io session state; [`fetch`] is the thin
//! async driver that sends one request and decodes the answer into
//! [`Fetched`] partitions (see `decode`).
//!
//! Fetches go over the [`Pool`]'s Fetch lane of each broker, a connection
//! no other request uses: Kafka answers the requests of a connection
//! strictly one after the other, a Fetch is a long poll (up to
//! `fetch.max.wait.ms`), and the coordinator holds a JoinGroup until the
//! whole group has rejoined (seconds). Sharing one connection, the
//! partitions a member keeps through a cooperative rebalance stopped for
//! the whole second round behind its JoinGroup, and heartbeats and commits
//! waited behind fetches. (Java gives the coordinator a connection of its
//! own; franz-go gives fetches one.)

mod decode;
mod session;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use krust_codec::records::DecodeOptions;
use krust_codec::{ApiKey, ErrorCode, Uuid};
use krust_group::TopicPartition;
use krust_net::{Error, Lane, Pool};
use tracing::Instrument;

use crate::metrics::FetchLatency;
use crate::record::ConsumerRecord;

pub(crate) use decode::decode_partition;
pub(crate) use session::{FetchSession, SessionReply};

/// The lowest Fetch version used: v4 brings isolation levels and the last
/// stable offset, which read_committed needs.
pub(crate) const MIN_VERSION: i16 = 4;
/// The highest Fetch version used.
pub(crate) const MAX_VERSION: i16 = 17;
/// The highest Fetch version that names topics (v13+ uses topic ids).
pub(crate) const MAX_VERSION_WITH_NAMES: i16 = 12;

/// Which records of transactional producers a consumer sees
/// (`isolation.level`, KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record up to the high watermark, including records of
    /// transactions that are still open or were aborted (the default).
    #[default]
    ReadUncommitted,
    /// Only records up to the last stable offset, without the records of
    /// aborted transactions; transaction markers are never handed out.
    ReadCommitted,
}

impl IsolationLevel {
    /// The `isolation_level` byte of Fetch and ListOffsets requests.
    pub fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Fetch settings, named after the Java client's properties.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FetchConfig {
    /// `fetch.min.bytes`: the broker waits for this much data.
    pub min_bytes: i32,
    /// `fetch.max.bytes`: the most data one response carries (the broker
    /// still returns a first batch larger than this, KIP-74).
    pub max_bytes: i32,
    /// `fetch.max.wait.ms`: how long the broker waits for `min_bytes`.
    pub max_wait: Duration,
    /// `max.partition.fetch.bytes`: the most data per partition.
    pub partition_max_bytes: i32,
    /// `isolation.level`.
    pub isolation: IsolationLevel,
    /// `client.rack`: lets the broker pick a nearby replica (KIP-392).
    pub rack_id: Option<String>,
    /// `check.crcs`: verify each batch's CRC.
    pub check_crcs: bool,
    /// Limits applied while decoding (decompressed size per batch).
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

impl FetchConfig {
    /// `max_wait` in ms as the wire wants it.
    pub fn max_wait_ms(&self) -> i32 {
        i32::try_from(self.max_wait.as_millis()).unwrap_or(i32::MAX)
    }

    /// The decode options with `check_crcs` applied.
    pub fn decode_options(&self) -> DecodeOptions {
        self.decode.with_verify_crc(self.check_crcs)
    }
}

/// One partition the consumer wants from a broker now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchTarget {
    /// The partition.
    pub tp: TopicPartition,
    /// The position: the offset of the next record to fetch.
    pub offset: i64,
    /// The leader epoch the metadata gave (KIP-320), if known.
    pub leader_epoch: Option<i32>,
}

/// What one partition of a Fetch response gave.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// The partition.
    pub tp: TopicPartition,
    /// The offset the fetch started at (the target's offset).
    pub fetch_offset: i64,
    /// Records, or why there are none.
    pub outcome: Result<FetchedData, PartitionFetchError>,
}

/// The records of one partition and what the broker said about its log.
#[derive(Debug, Clone)]
pub(crate) struct FetchedData {
    /// Records at or after the fetch offset, in offset order (aborted and
    /// control records removed).
    pub records: Vec<ConsumerRecord>,
    /// Where the next fetch starts: past the last complete batch consumed
    /// (control batches and aborted data included), never below the fetch
    /// offset.
    pub next_offset: i64,
    /// The high watermark.
    pub high_watermark: i64,
    /// The last stable offset (v4+, `None` when the broker sent -1).
    pub last_stable_offset: Option<i64>,
    /// The log start offset (v5+, `None` when the broker sent -1).
    pub log_start_offset: Option<i64>,
    /// Size of the `records` bytes received, for memory accounting.
    pub bytes: usize,
}

/// Why a partition of a Fetch response gave no records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PartitionFetchError {
    /// The broker's partition-level error code (OFFSET_OUT_OF_RANGE,
    /// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, ...).
    #[error("fetch failed with {0}")]
    Broker(ErrorCode),
    /// The batch at `offset` failed its CRC or could not be decoded; the
    /// consumer cannot move past it by itself (seek past it to continue).
    #[error("corrupt record batch at offset {offset}: {message}")]
    Corrupt {
        /// The offset the broken batch starts at.
        offset: i64,
        /// What is wrong with it.
        message: String,
    },
}

/// Send one Fetch for `targets` to the session's broker and decode the
/// answer. It goes over the broker's Fetch lane of `pool` (see the module
/// doc), made first when there is none or it closed.
///
/// Connection errors and top-level broker errors (other than the session
/// errors, which only reset the session and give no partitions) are
/// returned as errors and reset the session, so that the next request is a
/// full one. Under an incremental session a target missing from the answer
/// has no new data and is not in the result. `latency` is told how long
/// the broker took to answer.
pub(crate) async fn fetch(
    pool: &Pool,
    session: &mut FetchSession,
    targets: &[FetchTarget],
    cfg: &FetchConfig,
    latency: &FetchLatency,
) -> Result<Vec<Fetched>, Error> {
    let conn = match pool.broker_lane(session.broker(), Lane::Fetch).await {
        Ok(c) => c,
        Err(e) => {
            session.reset();
            return Err(e);
        }
    };
    let negotiated = match conn.negotiate(ApiKey::Fetch, (MIN_VERSION, MAX_VERSION)) {
        Ok(v) => v,
        Err(e) => {
            session.reset();
            return Err(e);
        }
    };
    let meta = pool.cached_metadata();
    let topic_id = |name: &str| meta.topic(name).map_or(Uuid::ZERO, |t| t.id);
    // Topic ids only when every topic has one: a request cannot mix.
    let version = if negotiated > MAX_VERSION_WITH_NAMES
        && targets.iter().all(|t| topic_id(&t.tp.topic) != Uuid::ZERO)
    {
        negotiated
    } else {
        negotiated.min(MAX_VERSION_WITH_NAMES)
    };
    let req = session.build(version, targets, cfg, topic_id);
    let span = tracing::debug_span!(
        "fetch",
        broker = session.broker(),
        addr = conn.addr(),
        version,
        partitions = targets.len(),
        sent = req.topics.iter().map(|t| t.partitions.len()).sum::<usize>(),
        forgotten = req
            .forgotten_topics_data
            .iter()
            .map(|t| t.partitions.len())
            .sum::<usize>(),
        session_id = req.session_id,
        epoch = req.session_epoch,
    );
    async move {
        // The broker holds a Fetch up to max_wait when it has nothing to
        // return, so the Fetch alone gets that on top of the request
        // timeout (docs/ARCHITECTURE.md, Connections): the pool's timeout
        // is the plain `request.timeout.ms` every other request waits.
        let timeout = pool.config().connection.request_timeout + cfg.max_wait;
        let sent = latency.start();
        let resp = match conn.send_at_with_timeout(&req, version, timeout).await {
            Ok(r) => {
                latency.answered(sent);
                r
            }
            Err(e) => {
                session.reset();
                tracing::debug!(error = %e, "fetch failed");
                return Err(e);
            }
        };
        // send_at already noted the throttle time with the connection
        // (KIP-219); the next request to this broker waits it out.
        let code = ErrorCode::from(resp.error_code);
        match session.handle(&resp) {
            SessionReply::Ok => {}
            SessionReply::SessionError => {
                tracing::debug!(%code, "fetch session reset by the broker");
                return Ok(Vec::new());
            }
            SessionReply::Error => {
                return Err(Error::broker(ApiKey::Fetch, code, None).from_broker(conn.addr()));
            }
        }
        let wanted: HashMap<(&str, i32), &FetchTarget> = targets
            .iter()
            .map(|t| ((t.tp.topic.as_str(), t.tp.partition), t))
            .collect();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for topic in resp.responses {
            let Some(name) = session.topic_name(&topic.topic, topic.topic_id) else {
                tracing::debug!(topic_id = %topic.topic_id, "fetch answer for an unknown topic");
                continue;
            };
            let name: Arc<str> = Arc::from(name);
            for p in topic.partitions {
                let Some(target) = wanted.get(&(&*name, p.partition_index)) else {
                    continue;
                };
                let outcome = decode_partition(&name, target.offset, p, cfg);
                if let Ok(d) = &outcome {
                    bytes = bytes.saturating_add(d.bytes);
                }
                out.push(Fetched {
                    tp: target.tp.clone(),
                    fetch_offset: target.offset,
                    outcome,
                });
            }
        }
        tracing::debug!(partitions = out.len(), bytes, "fetched");
        Ok(out)
    }
    .instrument(span)
    .await
}
