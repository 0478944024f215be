//! The offset scenario shared by `examples/offset_demo.rs` and
//! `tests/offset_scenario.rs`: produce, consume with a commit after every
//! record, crash, resume from the committed offsets in a second consumer of
//! the same group, and check that every record was consumed exactly once.
//!
//! Kafka's rule (docs/ARCHITECTURE.md, "Offset semantics"): a committed offset is the
//! offset of the *next* record to consume, so after processing the record at
//! offset `o` a consumer commits `o + 1`. A consumer that crashes loses
//! nothing it committed; records it had read but not committed are delivered
//! again (at-least-once). Consumer A here commits after every record, so its
//! last read is committed and nothing needs redelivering: across A and B
//! every record must be seen exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use krust::consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, GroupProtocol, OffsetAndMetadata, PartitionLag,
    TopicPartition,
};
use krust::producer::{Producer, ProducerConfig, ProducerRecord};

#[path = "report.rs"]
mod report;
pub use report::{check, render, verdict};

/// Any error of a step, already carrying what was being done.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What to run.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `host:port[,host:port...]`.
    pub bootstrap: String,
    /// The topic; must exist, empty, with `partitions` partitions.
    pub topic: String,
    /// The consumer group; must have no committed offsets yet.
    pub group: String,
    /// The topic's partition count.
    pub partitions: i32,
    /// Messages to produce (`message-0` ...).
    pub messages: usize,
    /// How many of them consumer A processes before it crashes.
    pub a_reads: usize,
    /// Bound of each phase (joining and reading); the librdkafka mock
    /// rebalances in 5 s rounds, so keep this generous.
    pub phase_timeout: Duration,
    /// Commit offset 0 for every partition (outside any generation) before
    /// A starts, so that A starts from committed offsets instead of
    /// `auto.offset.reset` (no ListOffsets request).
    pub seed_committed_zero: bool,
    /// `group.protocol` of both consumers: classic, or KIP-848's consumer
    /// protocol (Kafka 4.0+).
    pub group_protocol: GroupProtocol,
}

impl Setup {
    /// The demo's defaults: 3 partitions, 10 messages, A reads 4.
    pub fn new(bootstrap: &str, topic: &str, group: &str) -> Setup {
        Setup {
            bootstrap: bootstrap.to_owned(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            partitions: 3,
            messages: 10,
            a_reads: 4,
            phase_timeout: Duration::from_secs(60),
            seed_committed_zero: false,
            group_protocol: GroupProtocol::Classic,
        }
    }
}

/// One consumed record, as the demo tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The value, as text.
    pub value: String,
}

impl Seen {
    fn of(r: &ConsumerRecord) -> Seen {
        Seen {
            partition: r.partition,
            offset: r.offset,
            value: r.value().map_or_else(
                || "(null)".to_owned(),
                |v| String::from_utf8_lossy(v).into_owned(),
            ),
        }
    }
}

/// Everything the run saw, per partition where it applies.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// What was produced: partition -> [(offset, value)].
    pub produced: BTreeMap<i32, Vec<(i64, String)>>,
    /// Log end offset per partition, from the delivery reports (the topic is
    /// fresh, so offsets start at 0).
    pub log_end: BTreeMap<i32, i64>,
    /// What A processed (and committed), in order.
    pub a_read: Vec<Seen>,
    /// A's own view just before it crashed.
    pub a_lag: BTreeMap<i32, PartitionLag>,
    /// The group's committed offsets after A crashed (read by B before it
    /// joins).
    pub committed_after_a: BTreeMap<i32, Option<i64>>,
    /// What B processed, in order.
    pub b_read: Vec<Seen>,
    /// B's view at the end.
    pub b_lag: BTreeMap<i32, PartitionLag>,
    /// The group's committed offsets after B.
    pub committed_after_b: BTreeMap<i32, Option<i64>>,
    /// Every check that failed (empty: passed).
    pub failures: Vec<String>,
}

impl Outcome {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn consumer_config(
    s: &Setup,
    client_id: &str,
    extra: &[(&str, &str)],
) -> Result<ConsumerConfig, BoxError> {
    let mut props = vec![
        ("bootstrap.servers", s.bootstrap.as_str()),
        ("group.id", s.group.as_str()),
        ("client.id", client_id),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        // Also the rebalance timeout (JoinGroup's, or the heartbeat's under
        // the consumer protocol), as in Java.
        ("max.poll.interval.ms", "10000"),
    ];
    match s.group_protocol {
        // Tansu holds JoinGroup for session.timeout.ms / 2: keep it short.
        GroupProtocol::Classic => props.extend([
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "1000"),
        ]),
        // The broker owns the session and the heartbeat interval.
        GroupProtocol::Consumer => props.push(("group.protocol", "consumer")),
    }
    props.extend_from_slice(extra);
    Ok(ConsumerConfig::from_properties(props)?)
}

fn tp(s: &Setup, partition: i32) -> TopicPartition {
    TopicPartition::new(s.topic.as_str(), partition)
}

/// Produce `message-0..` with keys `key-0..` (murmur2 spreads these ten over
/// all three partitions) and return partition -> [(offset, value)].
async fn produce(s: &Setup) -> Result<BTreeMap<i32, Vec<(i64, String)>>, BoxError> {
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", s.bootstrap.as_str()),
        ("acks", "all"),
    ])?;
    let producer = Producer::new(config)
        .await
        .map_err(|e| format!("producer: connecting to {}: {e}", s.bootstrap))?;
    let mut pending = Vec::new();
    for i in 0..s.messages {
        let value = format!("message-{i}");
        let record = ProducerRecord::new(s.topic.as_str(), value.clone().into_bytes())
            .key(format!("key-{i}").into_bytes());
        pending.push((value, producer.send(record).await?));
    }
    let mut produced: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (value, delivery) in pending {
        let meta = delivery
            .await
            .map_err(|e| format!("producing {value}: {e}"))?;
        produced
            .entry(meta.partition)
            .or_default()
            .push((meta.offset, value));
    }
    producer.close(Duration::from_secs(10)).await?;
    for list in produced.values_mut() {
        list.sort();
    }
    Ok(produced)
}

/// Run the whole scenario, printing each step; operational errors (a broker
/// that does not answer, a join that never completes) are `Err`, failed
/// checks are listed in [`Outcome::failures`].
pub async fn run(s: &Setup) -> Result<Outcome, BoxError> {
    run_with(s, || Ok(())).await
}

/// [`run`], calling `after_crash` between A's crash and B's start (a test
/// restarts the broker there).
pub async fn run_with(
    s: &Setup,
    after_crash: impl FnOnce() -> Result<(), BoxError>,
) -> Result<Outcome, BoxError> {
    let mut out = Outcome::default();
    let all: Vec<TopicPartition> = (0..s.partitions).map(|p| tp(s, p)).collect();

    // 1. Produce.
    println!(
        "1. producing {} messages (message-0..{}) with keys key-0..{} to {} ...",
        s.messages,
        s.messages - 1,
        s.messages - 1,
        s.topic
    );
    out.produced = produce(s).await?;
    for p in 0..s.partitions {
        let end = out
            .produced
            .get(&p)
            .and_then(|l| l.last())
            .map_or(0, |(o, _)| o + 1);
        out.log_end.insert(p, end);
    }
    let spread: Vec<String> = out
        .produced
        .iter()
        .map(|(p, l)| format!("partition {p}: {}", l.len()))
        .collect();
    println!("   done; {}", spread.join(", "));

    if s.seed_committed_zero {
        let mut seeder = Consumer::new(consumer_config(s, "offset-demo-seed", &[])?)
            .await
            .map_err(|e| format!("seeding consumer: {e}"))?;
        seeder.assign(all.iter().cloned())?;
        let zero = all
            .iter()
            .map(|t| (t.clone(), OffsetAndMetadata::new(0)))
            .collect();
        seeder
            .commit_offsets(zero)
            .await
            .map_err(|e| format!("seeding committed offsets 0: {e}"))?;
        seeder.close().await?;
        println!(
            "   committed offset 0 on every partition for {} (a standalone commit)",
            s.group
        );
    }

    // 2. Consumer A: one record per poll, commit offset+1 after each, crash.
    println!(
        "2. consumer A joins group {} and processes {} messages, committing offset+1 after each ...",
        s.group, s.a_reads
    );
    let started = Instant::now();
    let mut a = Consumer::new(consumer_config(
        s,
        "offset-demo-A",
        &[("max.poll.records", "1")],
    )?)
    .await
    .map_err(|e| format!("consumer A: {e}"))?;
    a.subscribe([s.topic.as_str()])?;
    while out.a_read.len() < s.a_reads {
        if started.elapsed() > s.phase_timeout {
            return Err(format!(
                "consumer A read {} of {} messages in {:?} (assignment {:?})",
                out.a_read.len(),
                s.a_reads,
                s.phase_timeout,
                a.assignment()
            )
            .into());
        }
        for r in a.poll(Duration::from_millis(500)).await? {
            if out.a_read.len() == s.a_reads {
                // max.poll.records=1 makes this unreachable; were it not,
                // this record is read but not processed nor committed.
                break;
            }
            let commit =
                BTreeMap::from([(tp(s, r.partition), OffsetAndMetadata::new(r.next_offset()))]);
            a.commit_offsets(commit).await.map_err(|e| {
                format!(
                    "consumer A: commit {}@{}: {e}",
                    r.partition,
                    r.next_offset()
                )
            })?;
            out.a_read.push(Seen::of(&r));
        }
    }
    out.a_lag = a.lag().into_iter().map(|(t, l)| (t.partition, l)).collect();
    println!(
        "   A processed {} messages in {:.1} s, then crashes (dropped without close: no commit, no LeaveGroup)",
        out.a_read.len(),
        started.elapsed().as_secs_f64()
    );
    drop(a);
    after_crash()?;

    // 3. Consumer B: same group; starts from the committed offsets.
    println!("3. consumer B joins the same group; it starts from the committed offsets ...");
    println!(
        "   (the group counts the crashed A as a member until its session times out,\n    \
         session.timeout.ms = 6 s, so B's join takes several seconds)"
    );
    let started = Instant::now();
    let mut b = Consumer::new(consumer_config(s, "offset-demo-B", &[])?)
        .await
        .map_err(|e| format!("consumer B: {e}"))?;
    out.committed_after_a = committed(&b, &all).await?;
    b.subscribe([s.topic.as_str()])?;
    loop {
        let done = all.iter().all(|t| {
            b.position(t)
                .is_some_and(|pos| pos >= out.log_end[&t.partition])
        });
        if done {
            break;
        }
        if started.elapsed() > s.phase_timeout {
            let positions: Vec<String> = all
                .iter()
                .map(|t| {
                    format!(
                        "{}: {:?} of {}",
                        t.partition,
                        b.position(t),
                        out.log_end[&t.partition]
                    )
                })
                .collect();
            return Err(format!(
                "consumer B did not reach the log end within {:?} (assignment {:?}; positions {}; read {})",
                s.phase_timeout,
                b.assignment().iter().map(|t| t.partition).collect::<Vec<_>>(),
                positions.join(", "),
                out.b_read.len()
            )
            .into());
        }
        for r in b.poll(Duration::from_millis(500)).await? {
            let commit =
                BTreeMap::from([(tp(s, r.partition), OffsetAndMetadata::new(r.next_offset()))]);
            b.commit_offsets(commit).await.map_err(|e| {
                format!(
                    "consumer B: commit {}@{}: {e}",
                    r.partition,
                    r.next_offset()
                )
            })?;
            out.b_read.push(Seen::of(&r));
        }
    }
    // One more short poll: a duplicate delivered late would show here.
    for r in b.poll(Duration::from_millis(300)).await? {
        out.b_read.push(Seen::of(&r));
    }
    out.b_lag = b.lag().into_iter().map(|(t, l)| (t.partition, l)).collect();
    out.committed_after_b = committed(&b, &all).await?;
    println!(
        "   B processed {} messages in {:.1} s and closes (LeaveGroup)",
        out.b_read.len(),
        started.elapsed().as_secs_f64()
    );
    b.close()
        .await
        .map_err(|e| format!("consumer B: close: {e}"))?;

    out.failures = check(s, &out);
    Ok(out)
}

async fn committed(
    c: &Consumer,
    all: &[TopicPartition],
) -> Result<BTreeMap<i32, Option<i64>>, BoxError> {
    let found = c
        .committed(all)
        .await
        .map_err(|e| format!("committed offsets of the group: {e}"))?;
    Ok(all
        .iter()
        .map(|t| {
            (
                t.partition,
                found.get(t).cloned().flatten().map(|o| o.offset),
            )
        })
        .collect())
}
