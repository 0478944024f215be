//! The offset scenario shared by `examples/offset_demo.rs` and
//! `tests/offset_scenario.rs`: produce, consume with a commit after every
//! record, crash, resume from the committed offsets in a second consumer of
//! the same group, and check that every record was consumed exactly once.
//!
//! Kafka's rule (DESIGN.md, "Offset semantics"): a committed offset is the
//! offset of the *next* record to consume, so after processing the record at
//! offset `o` a consumer commits `o + 1`. A consumer that crashes loses
//! nothing it committed; records it had read but not committed are delivered
//! again (at-least-once). Consumer A here commits after every record, so its
//! last read is committed and nothing needs redelivering: across A and B
//! every record must be seen exactly once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use krust::consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, OffsetAndMetadata, PartitionLag, TopicPartition,
};
use krust::producer::{Producer, ProducerConfig, ProducerRecord};

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
            value: r.value.as_deref().map_or_else(
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
        // Tansu holds JoinGroup for session.timeout.ms / 2: keep it short.
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
        // Also the rebalance timeout sent in JoinGroup (as in Java).
        ("max.poll.interval.ms", "10000"),
    ];
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

    // 3. Consumer B: same group; starts from the committed offsets.
    println!("3. consumer B joins the same group; it starts from the committed offsets ...");
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
                "consumer B did not reach the log end within {:?} (positions {}; read {})",
                s.phase_timeout,
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

/// Nothing lost, nothing duplicated, B resumed exactly at A's commits, and
/// the group ends committed at the log end with no lag.
pub fn check(s: &Setup, o: &Outcome) -> Vec<String> {
    let mut fails = Vec::new();
    let produced: usize = o.produced.values().map(Vec::len).sum();
    if produced != s.messages {
        fails.push(format!(
            "{produced} delivery reports for {} messages",
            s.messages
        ));
    }
    let mut times: BTreeMap<(i32, i64), Vec<(&str, &str)>> = BTreeMap::new();
    for (who, list) in [("A", &o.a_read), ("B", &o.b_read)] {
        for r in list {
            times
                .entry((r.partition, r.offset))
                .or_default()
                .push((who, &r.value));
        }
    }
    for (p, list) in &o.produced {
        for (offset, value) in list {
            match times.remove(&(*p, *offset)).as_deref() {
                None | Some([]) => fails.push(format!(
                    "lost: {value} (partition {p} offset {offset}) was never consumed"
                )),
                Some([(_, v)]) if v != value => fails.push(format!(
                    "partition {p} offset {offset}: consumed {v}, produced {value}"
                )),
                Some([_]) => {}
                Some(many) => {
                    let who: Vec<&str> = many.iter().map(|(w, _)| *w).collect();
                    fails.push(format!(
                        "duplicated: {value} (partition {p} offset {offset}) consumed {} times (by {})",
                        many.len(),
                        who.join(", ")
                    ));
                }
            }
        }
    }
    for ((p, offset), who) in times {
        fails.push(format!(
            "partition {p} offset {offset} consumed by {who:?} but never produced"
        ));
    }
    if o.a_read.len() != s.a_reads {
        fails.push(format!(
            "A processed {} messages, expected {}",
            o.a_read.len(),
            s.a_reads
        ));
    }
    for p in 0..s.partitions {
        let last_a = o
            .a_read
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset + 1)
            .max();
        let after_a = o.committed_after_a.get(&p).copied().flatten();
        if last_a != after_a {
            fails.push(format!(
                "partition {p}: committed after A's crash is {after_a:?}, but A's last processed record + 1 is {last_a:?}"
            ));
        }
        let first_b = o
            .b_read
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .min();
        let resume = after_a.unwrap_or(0);
        if let Some(first) = first_b
            && first != resume
        {
            fails.push(format!(
                "partition {p}: B started at offset {first}, not at the committed offset {resume}"
            ));
        }
        let end = o.log_end.get(&p).copied().unwrap_or(0);
        let after_b = o.committed_after_b.get(&p).copied().flatten();
        if after_b.unwrap_or(0) != end {
            fails.push(format!(
                "partition {p}: committed after B is {after_b:?}, log end is {end}"
            ));
        }
        match o.b_lag.get(&p).and_then(|l| l.lag) {
            Some(0) => {}
            lag => fails.push(format!(
                "partition {p}: B's lag() at the end is {lag:?}, expected Some(0)"
            )),
        }
    }
    fails
}

fn reads(list: &[Seen], p: i32) -> String {
    let s: Vec<String> = list
        .iter()
        .filter(|r| r.partition == p)
        .map(|r| format!("{}={}", r.offset, r.value))
        .collect();
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.join(" ")
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// The per-partition table and the explanation, for people.
pub fn render(s: &Setup, o: &Outcome) -> String {
    let mut t = String::new();
    let width = |list: &[Seen]| {
        (0..s.partitions)
            .map(|p| reads(list, p).len())
            .max()
            .unwrap_or(0)
            .max(16)
    };
    let (wa, wb) = (width(&o.a_read), width(&o.b_read));
    let _ = writeln!(
        t,
        "\ntopic {}, group {}: per partition (offset=value)\n",
        s.topic, s.group
    );
    let _ = writeln!(
        t,
        "{:<9} {:>7}  {:<wa$}  {:>9} {:>4}  {:<wb$}  {:>9} {:>4}",
        "", "log", "", "committed", "lag", "", "committed", "lag"
    );
    let _ = writeln!(
        t,
        "{:<9} {:>7}  {:<wa$}  {:>9} {:>4}  {:<wb$}  {:>9} {:>4}",
        "partition", "end", "read by A (then crash)", "after A", "", "read by B", "after B", ""
    );
    for p in 0..s.partitions {
        let end = o.log_end.get(&p).copied().unwrap_or(0);
        let after_a = o.committed_after_a.get(&p).copied().flatten();
        let lag_a = end - after_a.unwrap_or(0);
        let after_b = o.committed_after_b.get(&p).copied().flatten();
        let lag_b = o.b_lag.get(&p).and_then(|l| l.lag);
        let _ = writeln!(
            t,
            "{:<9} {:>7}  {:<wa$}  {:>9} {:>4}  {:<wb$}  {:>9} {:>4}",
            p,
            end,
            reads(&o.a_read, p),
            opt(after_a),
            lag_a,
            reads(&o.b_read, p),
            opt(after_b),
            opt(lag_b),
        );
    }
    let _ = writeln!(
        t,
        "\nlag after A = log end - committed (what the group still has to read);\n\
         lag after B = B's high watermark - position, from Consumer::lag().\n\
         A committed offset+1 right after processing each record, so its last read was\n\
         committed when it crashed and B resumed exactly there. Had A crashed between\n\
         processing and committing, B would have been handed that record again\n\
         (at-least-once); committing after every record is what makes the two reads\n\
         add up to exactly once here."
    );
    t
}

/// The last line: what was checked, or why it failed.
pub fn verdict(s: &Setup, o: &Outcome) -> String {
    if o.passed() {
        format!(
            "check passed: {} produced, {} consumed once ({} by A, {} by B), committed = log end on every partition",
            s.messages,
            o.a_read.len() + o.b_read.len(),
            o.a_read.len(),
            o.b_read.len()
        )
    } else {
        format!("check FAILED:\n  {}", o.failures.join("\n  "))
    }
}
