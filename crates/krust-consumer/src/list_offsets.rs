//! ListOffsets for many partitions at once (protocol page "ListOffsets
//! API"; leader epochs KIP-320; the isolation level KIP-98): partitions are
//! grouped by leader, one request per leader is sent concurrently, and
//! partitions whose leader moved (NOT_LEADER_OR_FOLLOWER,
//! FENCED_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION, lost connections) are
//! sent again after a metadata refresh, within the retry deadline.
//!
//! Used by the consumer (`auto.offset.reset`, seek by timestamp, lag) and by
//! the facade's `Admin::list_offsets`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use krust_codec::generated::ListOffsetsRequest;
use krust_codec::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use krust_codec::generated::list_offsets_response::ListOffsetsPartitionResponse;
use krust_codec::{ApiKey, ErrorCode, KString, Message};
use krust_net::{Error, Pool, RetryPolicy};
use tokio::task::JoinSet;

use crate::fetch::IsolationLevel;

/// Which offset of a partition to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the next offset to be written); under
    /// [`IsolationLevel::ReadCommitted`] the last stable offset.
    Latest,
    /// The first offset whose record timestamp is at or after this (ms
    /// since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// The answer for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset; `None` when no record has a timestamp at or after the
    /// one asked for.
    pub offset: Option<i64>,
    /// The timestamp of the record found (for [`OffsetSpec::Timestamp`];
    /// brokers answer -1, i.e. `None`, for earliest and latest; ListOffsets
    /// v0 carries none).
    pub timestamp: Option<i64>,
    /// The leader epoch of the record found (ListOffsets v4+).
    pub leader_epoch: Option<i32>,
}

fn known(v: i64) -> Option<i64> {
    (v >= 0).then_some(v)
}

/// A request index and the leader epoch the metadata gave its partition.
type Part = (usize, i32);

/// Look up offsets of many partitions at once, returned in request order.
/// A partition may be asked several times (several timestamps).
///
/// Partitions are grouped by their leader and each leader gets one
/// ListOffsets request (one more per repeat of a partition), all sent
/// concurrently. With [`IsolationLevel::ReadCommitted`] the request needs
/// ListOffsets v2+ and [`OffsetSpec::Latest`] answers the last stable
/// offset. Retriable errors (a moved leader, an unknown partition, a lost
/// connection) invalidate the pool's metadata and the affected partitions
/// are asked again until `retry`'s deadline, after which
/// [`Error::RetriesExhausted`] carries the last cause; other broker errors
/// fail the call at once with an [`Error::Broker`] naming ListOffsets, the
/// code, the topic and the partition.
pub async fn list_offsets(
    pool: &Pool,
    requests: &[(&str, i32, OffsetSpec)],
    isolation: IsolationLevel,
    retry: &RetryPolicy,
) -> Result<Vec<ListedOffset>, Error> {
    let pending = Mutex::new((0..requests.len()).collect::<Vec<usize>>());
    let found: Mutex<Vec<Option<ListedOffset>>> = Mutex::new(vec![None; requests.len()]);
    let (pending_ref, found_ref) = (&pending, &found);
    let outcome = retry
        .run(
            ApiKey::ListOffsets,
            move |_| async move {
                let todo = lock(pending_ref).clone();
                let round = offsets_round(pool, requests, &todo, isolation).await;
                let mut found = lock(found_ref);
                for (i, offset) in round.found {
                    found[i] = Some(offset);
                }
                *lock(pending_ref) = round.retry;
                if let Some(e) = round.fatal {
                    return Ok(Err(e));
                }
                round.retriable.map_or(Ok(Ok(())), Err)
            },
            |e| {
                pool.note_error(e);
            },
        )
        .await?;
    outcome?;
    let found = std::mem::take(&mut *lock(&found));
    Ok(found.into_iter().flatten().collect())
}

/// One round: look up leaders, send one request per leader concurrently,
/// sort the answers into found, to retry and fatal.
async fn offsets_round(
    pool: &Pool,
    requests: &[(&str, i32, OffsetSpec)],
    todo: &[usize],
    isolation: IsolationLevel,
) -> Round {
    let mut round = Round::default();
    // Keyed by leader and, for a partition asked several times (e.g. two
    // timestamps), by occurrence: a request names each partition once, so
    // repeats go in further requests to the same leader.
    let mut by_leader: BTreeMap<(i32, usize), Vec<Part>> = BTreeMap::new();
    let mut seen: HashMap<(&str, i32), usize> = HashMap::new();
    for &i in todo {
        let (topic, partition, _) = requests[i];
        match pool.leader(topic, partition).await {
            Ok((leader, epoch)) => {
                let n = seen.entry((topic, partition)).or_default();
                by_leader.entry((leader, *n)).or_default().push((i, epoch));
                *n += 1;
            }
            Err(e) => round.failed(pool, e, [i]),
        }
    }
    // The isolation level is in the request from v2 on.
    let (_, newest) = ListOffsetsRequest::VALID_VERSIONS;
    let versions = match isolation {
        IsolationLevel::ReadUncommitted => ListOffsetsRequest::VALID_VERSIONS,
        IsolationLevel::ReadCommitted => (2, newest),
    };
    let mut set = JoinSet::new();
    for ((leader, _), parts) in by_leader {
        let conn = match pool.broker(leader).await {
            Ok(conn) => conn,
            Err(e) => {
                round.failed(pool, e, parts.iter().map(|p| p.0));
                continue;
            }
        };
        let req = request(requests, &parts);
        set.spawn(async move {
            let reply = async {
                let version = conn.negotiate(ApiKey::ListOffsets, versions)?;
                let req = ListOffsetsRequest {
                    // A consumer, not a follower replica.
                    replica_id: -1,
                    isolation_level: if version >= 2 { isolation.wire() } else { 0 },
                    topics: req,
                    timeout_ms: 30_000,
                    ..ListOffsetsRequest::default()
                };
                Ok::<_, Error>((version, conn.send_at(&req, version).await?))
            };
            (parts, conn.addr().to_owned(), reply.await)
        });
    }
    while let Some(joined) = set.join_next().await {
        let (parts, addr, reply) = match joined {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let (version, resp) = match reply {
            Ok(r) => r,
            Err(e) => {
                round.failed(pool, e, parts.iter().map(|p| p.0));
                continue;
            }
        };
        let mut answers: HashMap<(String, i32), ListOffsetsPartitionResponse> = HashMap::new();
        for t in resp.topics {
            for p in t.partitions {
                answers.insert((t.name.as_str().to_owned(), p.partition_index), p);
            }
        }
        for (i, _) in parts {
            let (topic, partition, _) = requests[i];
            let Some(p) = answers.remove(&(topic.to_owned(), partition)) else {
                let e = partition_error(topic, partition, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
                    .from_broker(&addr);
                round.failed(pool, e, [i]);
                continue;
            };
            let code = ErrorCode::from(p.error_code);
            if !code.is_ok() {
                let e = partition_error(topic, partition, code).from_broker(&addr);
                round.failed(pool, e, [i]);
                continue;
            }
            let offset = if version == 0 {
                p.old_style_offsets.first().copied().and_then(known)
            } else {
                known(p.offset)
            };
            round.found.push((
                i,
                ListedOffset {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    timestamp: known(p.timestamp),
                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                },
            ));
        }
    }
    round
}

/// The request topics for one leader's partitions.
fn request(requests: &[(&str, i32, OffsetSpec)], parts: &[Part]) -> Vec<ListOffsetsTopic> {
    let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for &(i, epoch) in parts {
        let (topic, partition, spec) = requests[i];
        topics.entry(topic).or_default().push(ListOffsetsPartition {
            partition_index: partition,
            // KIP-320: the broker fences a request from a stale leader view.
            current_leader_epoch: epoch,
            timestamp: spec.wire(),
            // v0 answers a list of offsets: ask for one.
            max_num_offsets: 1,
            ..Default::default()
        });
    }
    topics
        .into_iter()
        .map(|(name, partitions)| ListOffsetsTopic {
            name: KString::from(name),
            partitions,
            ..Default::default()
        })
        .collect()
}

fn partition_error(topic: &str, partition: i32, code: ErrorCode) -> Error {
    Error::Broker {
        api: ApiKey::ListOffsets,
        broker: None,
        code,
        topic: Some(topic.to_owned()),
        partition: Some(partition),
        message: None,
    }
}

/// What one round of requests gave.
#[derive(Default)]
struct Round {
    found: Vec<(usize, ListedOffset)>,
    retry: Vec<usize>,
    retriable: Option<Error>,
    fatal: Option<Error>,
}

impl Round {
    /// Partitions `parts` failed with `e`: note it with the pool (stale
    /// metadata is invalidated) and either keep them for the next round or
    /// fail the call.
    fn failed(&mut self, pool: &Pool, e: Error, parts: impl IntoIterator<Item = usize>) {
        if pool.note_error(&e) {
            self.retry.extend(parts);
            self.retriable = Some(e);
        } else if self.fatal.is_none() {
            self.fatal = Some(e);
        }
    }
}

/// Lock a std mutex; a panic elsewhere does not make the data unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
