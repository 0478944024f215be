//! Consumer metrics (cargo feature `metrics`), recorded through the
//! [`metrics`](https://docs.rs/metrics/0.24) facade: krust installs no
//! recorder and no exporter; the application installs one (e.g.
//! `metrics-exporter-prometheus`) before it creates its consumers, whose
//! handles are registered with the recorder installed at that time.
//!
//! The names are the Java client's (`records-lag-max`,
//! `records-consumed-total`, `rebalance-latency`, ...) in snake_case with a
//! `krust_consumer_` prefix; times are in seconds. Every metric carries
//! `client_id` (`client.id`) and, when `group.id` is set, `group`, in that
//! order; per-partition metrics add `topic` and `partition`, per-topic ones
//! `topic`, per-broker ones `broker` (the node id), commit failures
//! `error`. The constants below are every name there is; the same table
//! is in docs/ARCHITECTURE.md, "Consumer metrics".
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | [`RECORDS_LAG_MAX`] | gauge | | the largest [`RECORDS_LAG`] over the assigned partitions |
//! | [`RECORDS_LAG`] | gauge | topic, partition | high watermark (last stable offset under read_committed) minus position |
//! | [`RECORDS_LAG_SECONDS`] | gauge | topic, partition | how old the next record to hand out is |
//! | [`RECORDS_CONSUMED`] | counter | topic | records handed to the application |
//! | [`BYTES_CONSUMED`] | counter | topic | key and value bytes handed to the application |
//! | [`FETCH_LATENCY`] | histogram | broker | Fetch request to its response |
//! | [`COMMIT_LATENCY`] | histogram | | one commit, retries included |
//! | [`COMMIT_FAILURES`] | counter | error | commits that failed, by Kafka error name |
//! | [`REBALANCES`] | counter | | rebalances completed |
//! | [`REBALANCE_LATENCY`] | histogram | | start of a rebalance to the new generation |
//! | [`PARTITIONS_ASSIGNED`] | counter | | partitions the group assigned |
//! | [`PARTITIONS_REVOKED`] | counter | | partitions let go while owned |
//! | [`PARTITIONS_LOST`] | counter | | partitions lost without a revoke |
//! | [`LAST_POLL_SECONDS_AGO`] | gauge | | time since the application last called `poll` |
//!
//! When they are updated: the lag gauges at the end of every pass of
//! `poll` (from what the fetch responses said and the positions then), so
//! they stand still while the application does not poll, which
//! [`LAST_POLL_SECONDS_AGO`] shows. That one is set once a second by a
//! small timer task of the consumer (nothing else of the consumer runs
//! while the application does not poll), which ends when the consumer is
//! dropped. The per-partition gauges keep their last value once the
//! partition is no longer assigned: the facade cannot remove a metric
//! (exporters drop idle ones, e.g. with an idle timeout).
//!
//! Cost: the handles are built once (per consumer, per partition when it
//! is assigned, per broker on its first fetch); recording is an atomic
//! operation on a handle, per poll and partition, never per record, and no
//! label is built on the way (a commit failure's `error` is a static
//! name). Without the feature none of this is compiled.

mod rebalance;
mod record;

pub(crate) use record::{CommitMetrics, ConsumerMetrics, FetchLatency, FetchMetrics, PartMetrics};

/// Gauge, records: the largest lag in records ([`RECORDS_LAG`]) over the
/// partitions assigned whose high watermark is known (Java's
/// `records-lag-max`).
pub const RECORDS_LAG_MAX: &str = "krust_consumer_records_lag_max";

/// Gauge, records, per partition: the high watermark of the last fetch
/// response (the last stable offset under read_committed) minus the
/// position, as `Consumer::lag` gives it (Java's `records-lag`).
pub const RECORDS_LAG: &str = "krust_consumer_records_lag";

/// Gauge, seconds, per partition: lag in time. Behind the high watermark,
/// how old (now minus its timestamp) the next record to hand out is, when
/// it was prefetched (as `PartitionLag::behind`); when it was not, how old
/// the last record handed out is, which is older than the next one by the
/// gap between the two. 0 when caught up; not set while neither record is
/// known or the records carry no timestamp.
pub const RECORDS_LAG_SECONDS: &str = "krust_consumer_records_lag_seconds";

/// Counter, per topic: records handed to the application by `poll` (and
/// the stream; records a dropped stream gave back count once) (Java's
/// `records-consumed-total`).
pub const RECORDS_CONSUMED: &str = "krust_consumer_records_consumed_total";

/// Counter, bytes, per topic: the key and value bytes of the records
/// counted in [`RECORDS_CONSUMED`] (headers and record framing not
/// counted; Java's `bytes-consumed-total` counts the record's size in its
/// batch).
pub const BYTES_CONSUMED: &str = "krust_consumer_bytes_consumed_total";

/// Histogram, seconds, per broker: from sending a Fetch to its response
/// (the broker holds a Fetch up to `fetch.max.wait.ms` when it has nothing
/// to return; Java's `fetch-latency`). Failed requests are not sampled.
pub const FETCH_LATENCY: &str = "krust_consumer_fetch_latency_seconds";

/// Histogram, seconds: one commit (auto, `commit`, `commit_async`,
/// `commit_offsets`, a revoke's), from its start (after the commits before
/// it ended) to its end, retries included (Java's `commit-latency`).
/// Commits refused before sending, and revoke commits cut by their bound,
/// are not sampled.
pub const COMMIT_LATENCY: &str = "krust_consumer_commit_latency_seconds";

/// Counter, by `error`: commits that failed. `error` is the Kafka error
/// name the coordinator answered (`UNKNOWN_MEMBER_ID`,
/// `ILLEGAL_GENERATION`, ...) or, for a failure on this side, the name Java
/// gives it (`REQUEST_TIMED_OUT` for a timeout, `NETWORK_EXCEPTION` for a
/// lost connection, `REBALANCE_IN_PROGRESS` for a commit refused while the
/// member rejoins, `INVALID_GROUP_ID` without `group.id`); `NOT_OWNED` for
/// partitions this member does not own (refused locally, no Kafka code);
/// `UNKNOWN_SERVER_ERROR` for anything else.
pub const COMMIT_FAILURES: &str = "krust_consumer_commit_failures_total";

/// Counter: rebalances this member completed, i.e. times it became stable
/// in a new generation (classic: SyncGroup answered; KIP-848: a heartbeat
/// answered with a new member epoch), the first join included (Java's
/// `rebalance-total`).
pub const REBALANCES: &str = "krust_consumer_rebalance_total";

/// Histogram, seconds: from the start of a rebalance (a revoke begun, or
/// JoinGroup about to be sent) until the member is stable in the new
/// generation with its assignment (Java's `rebalance-latency`). A KIP-848
/// epoch that arrives without the member having left `Stable` counts in
/// [`REBALANCES`] with no sample here: nothing on this side saw it start.
pub const REBALANCE_LATENCY: &str = "krust_consumer_rebalance_latency_seconds";

/// Counter: partitions the group assigned to this member (each `assigned`
/// event's new partitions).
pub const PARTITIONS_ASSIGNED: &str = "krust_consumer_partitions_assigned_total";

/// Counter: partitions this member let go while it still owned them: the
/// group's revokes, a pattern subscription's change, `close`.
pub const PARTITIONS_REVOKED: &str = "krust_consumer_partitions_revoked_total";

/// Counter: partitions lost without a revoke (session expired, fenced):
/// nothing was committed for them.
pub const PARTITIONS_LOST: &str = "krust_consumer_partitions_lost_total";

/// Gauge, seconds: time since the application last called `poll` (the
/// stream calls it once per batch), measured from the call's start as
/// `max.poll.interval.ms` is (Java's `last-poll-seconds-ago`); before the
/// first poll, since the consumer was created. Set once a second, so it
/// grows while the application is stuck.
pub const LAST_POLL_SECONDS_AGO: &str = "krust_consumer_last_poll_seconds_ago";

/// Every name above.
pub const ALL: [&str; 14] = [
    RECORDS_LAG_MAX,
    RECORDS_LAG,
    RECORDS_LAG_SECONDS,
    RECORDS_CONSUMED,
    BYTES_CONSUMED,
    FETCH_LATENCY,
    COMMIT_LATENCY,
    COMMIT_FAILURES,
    REBALANCES,
    REBALANCE_LATENCY,
    PARTITIONS_ASSIGNED,
    PARTITIONS_REVOKED,
    PARTITIONS_LOST,
    LAST_POLL_SECONDS_AGO,
];

/// Tell the recorder installed now what each metric is (its unit and the
/// first line of its doc above); done by every new consumer.
fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        RECORDS_LAG_MAX,
        Unit::Count,
        "max records lag over assigned partitions"
    );
    describe_gauge!(RECORDS_LAG, Unit::Count, "high watermark minus position");
    describe_gauge!(
        RECORDS_LAG_SECONDS,
        Unit::Seconds,
        "age of the next record to hand out"
    );
    describe_counter!(
        RECORDS_CONSUMED,
        Unit::Count,
        "records handed to the application"
    );
    describe_counter!(
        BYTES_CONSUMED,
        Unit::Bytes,
        "key and value bytes handed out"
    );
    describe_histogram!(FETCH_LATENCY, Unit::Seconds, "Fetch request latency");
    describe_histogram!(
        COMMIT_LATENCY,
        Unit::Seconds,
        "commit latency, retries included"
    );
    describe_counter!(
        COMMIT_FAILURES,
        Unit::Count,
        "failed commits by Kafka error name"
    );
    describe_counter!(REBALANCES, Unit::Count, "rebalances completed");
    describe_histogram!(
        REBALANCE_LATENCY,
        Unit::Seconds,
        "rebalance start to new generation"
    );
    describe_counter!(PARTITIONS_ASSIGNED, Unit::Count, "partitions assigned");
    describe_counter!(PARTITIONS_REVOKED, Unit::Count, "partitions revoked");
    describe_counter!(PARTITIONS_LOST, Unit::Count, "partitions lost");
    describe_gauge!(
        LAST_POLL_SECONDS_AGO,
        Unit::Seconds,
        "seconds since the last poll"
    );
}

#[cfg(test)]
mod tests {
    use super::ALL;

    /// The table in docs/ARCHITECTURE.md names every metric, and only
    /// these.
    #[test]
    fn the_architecture_table_lists_every_name() {
        let doc = include_str!("../../../../docs/ARCHITECTURE.md");
        for name in ALL {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} missing from ARCHITECTURE.md"
            );
        }
        let listed = doc.matches("`krust_consumer_").count();
        assert_eq!(listed, ALL.len(), "ARCHITECTURE.md names other metrics");
        let mut sorted = ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL.len(), "a name used twice");
    }
}
