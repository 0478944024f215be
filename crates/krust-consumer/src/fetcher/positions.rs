//! Where each new partition starts: its committed offset (OffsetFetch to
//! the group coordinator), else, and after OFFSET_OUT_OF_RANGE or a
//! truncation of unknown extent, `auto.offset.reset` (ListOffsets). Both
//! lookups run as tasks of the fetcher, as a Fetch does, and `poll` never
//! waits for them: during an outage each one takes up to
//! `default.api.timeout.ms`, and awaited in `poll` it made every `poll`
//! last that long whatever its timeout. One lookup of each kind is in
//! flight at a time; an answer applies only to a partition that still
//! waits for it (not moved by a seek, not revoked and assigned again).

use std::collections::BTreeMap;

use krust_group::{OffsetAndMetadata, OffsetError, TopicPartition, offsets};
use krust_net::{Pool, RetryPolicy};

use crate::config::AutoOffsetReset;
use crate::error::ConsumerError;
use crate::fetch::IsolationLevel;
use crate::list_offsets::{OffsetSpec, list_offsets};
use crate::parts::PartState;

/// Whether a committed-offsets lookup (OffsetFetch) failed only because
/// the cluster could not be reached in time
/// ([`krust_net::Error::is_transient`]): the positions are looked up
/// again, as Java's poll keeps trying to update its fetch positions.
fn outage(e: &OffsetError) -> bool {
    match e {
        OffsetError::Request { source, .. } => source.is_transient(),
        e => e.code().is_some_and(|c| c.is_retriable()),
    }
}

/// ListOffsets for `partitions`: each one's offset and the leader epoch
/// of the record before it, `None` when there is no such offset (no
/// record at or after a timestamp).
pub(crate) async fn lookup(
    pool: &Pool,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
    isolation: IsolationLevel,
    retry: &RetryPolicy,
) -> Result<BTreeMap<TopicPartition, Option<(i64, Option<i32>)>>, krust_net::Error> {
    let asked: Vec<(&str, i32, OffsetSpec)> = partitions
        .iter()
        .map(|tp| (tp.topic.as_str(), tp.partition, spec))
        .collect();
    let found = list_offsets(pool, &asked, isolation, retry).await?;
    Ok(found
        .into_iter()
        .map(|l| {
            let found = l.offset.map(|o| (o, l.leader_epoch));
            (TopicPartition::new(l.topic, l.partition), found)
        })
        .collect())
}

/// The committed offsets a lookup found.
pub(crate) type Committed = BTreeMap<TopicPartition, Option<OffsetAndMetadata>>;
/// The offsets an offset reset found.
pub(crate) type Reset = BTreeMap<TopicPartition, Option<(i64, Option<i32>)>>;

/// A partition a lookup is for: its name and which `PartState` asked.
pub(crate) type Wanted = (TopicPartition, u64);

/// Whether `p` still waits for the lookup `w` was part of.
fn waits(p: &PartState, w: &Wanted, reset: bool) -> bool {
    p.incarnation == w.1 && p.position.is_none() && p.reset == reset
}

/// The committed offsets of `asked` in `group`.
pub(crate) async fn committed(
    pool: &Pool,
    group: &str,
    asked: &[TopicPartition],
    isolation: IsolationLevel,
    retry: &RetryPolicy,
) -> Result<Committed, OffsetError> {
    let stable = isolation == IsolationLevel::ReadCommitted;
    offsets::fetch(pool, group, asked, stable, retry).await
}

/// Apply a committed-offsets lookup: a partition with a committed offset
/// starts there (validated first when the offset has a leader epoch), one
/// without goes to `auto.offset.reset`. An outage only means asking again.
pub(crate) fn apply_committed(
    parts: &mut BTreeMap<TopicPartition, PartState>,
    asked: &[Wanted],
    result: Result<Committed, OffsetError>,
) -> Result<(), ConsumerError> {
    let found = match result {
        Ok(f) => f,
        Err(e) if outage(&e) => {
            tracing::debug!(error = %e, "committed offsets not available yet");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for w in asked {
        let Some(p) = parts.get_mut(&w.0).filter(|p| waits(p, w, false)) else {
            continue;
        };
        match found.get(&w.0).cloned().flatten() {
            Some(o) if o.offset >= 0 => {
                p.position = Some(o.offset);
                p.consumed = Some(o.offset);
                p.committed = Some(o.offset);
                p.leader_epoch = o.leader_epoch;
                // KIP-320, as Java's seekUnvalidated: the log may have been
                // truncated below a committed offset (an unclean election
                // since the commit), which only the leader can tell for
                // that epoch.
                p.validate = o.leader_epoch.is_some();
                p.checked_leader = None;
            }
            _ => p.reset = true,
        }
    }
    Ok(())
}

/// What `auto.offset.reset` looks up, or the error it is when `none`.
pub(crate) fn reset_spec(
    policy: AutoOffsetReset,
    partitions: &[TopicPartition],
) -> Result<OffsetSpec, ConsumerError> {
    match policy {
        AutoOffsetReset::Earliest => Ok(OffsetSpec::Earliest),
        AutoOffsetReset::Latest => Ok(OffsetSpec::Latest),
        AutoOffsetReset::None => Err(ConsumerError::NoOffset {
            partitions: partitions.to_vec(),
        }),
    }
}

/// Apply an offset reset's lookup. Whether the error asks for a metadata
/// refresh is returned for the fetcher to act on.
pub(crate) fn apply_reset(
    parts: &mut BTreeMap<TopicPartition, PartState>,
    asked: &[Wanted],
    result: Result<Reset, krust_net::Error>,
    progress: &std::sync::Arc<tokio::sync::Notify>,
) -> Result<bool, ConsumerError> {
    let found = match result {
        Ok(f) => f,
        Err(e) if e.invalidates_metadata() || e.is_transient() => {
            tracing::debug!(error = %e, "offset reset lookup failed; retrying");
            return Ok(true);
        }
        Err(e) => return Err(e.into()),
    };
    for w in asked {
        if let (Some(p), Some(Some((o, epoch)))) = (
            parts.get_mut(&w.0).filter(|p| waits(p, w, true)),
            found.get(&w.0).copied(),
        ) {
            p.seek(o, epoch, progress);
        }
    }
    Ok(false)
}
