//! KIP-320 truncation detection on a real 3-node Apache Kafka 4.4.0
//! cluster: an unclean leader election truncates a partition's log below
//! what two consumers have read, new records are written at the lost
//! offsets, and each consumer must notice before it fetches on.
//!
//! The partition has two replicas, nodes 1 (the leader) and 2, with
//! `min.insync.replicas=1` and unclean elections allowed. Records 0–99
//! reach both; node 2 hangs (SIGSTOP) until the controller fences it and
//! drops it from the ISR; records 100–199 reach node 1 alone and both
//! consumers read them (position 200). Node 1 is killed, node 2 resumed
//! and elected leader uncleanly (kafka-leader-election.sh): its log ends at
//! 100, in a new leader epoch. 150 new records take offsets 100–249.
//!
//! - With `auto.offset.reset=earliest` the consumer must go back to the
//!   divergence and hand out exactly the 150 new records, from offset 100.
//!   Fetching on from its position (no validation) it got only the last 50
//!   (offsets 200–249) and lost 100 records; had it fetched before the new
//!   records came, OFFSET_OUT_OF_RANGE would have reset it to the start
//!   and re-delivered 0–99.
//! - With `auto.offset.reset=none` `poll` must fail with
//!   `ConsumerError::LogTruncation` naming the partition, the position
//!   (200) and the divergent offset (100), as Java's
//!   LogTruncationException does.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{consumer_config, on_cluster, produce, start_cluster};
use krust_consumer::{Consumer, ConsumerError, TopicPartition, Truncation};
use krust_producer::ProducerRecord;
use krust_testkit::kafka::{LEADER_ELECTION_COMMAND, TOPIC_COMMAND};
use krust_testkit::{KafkaCluster, unique};

const BOUND: Duration = Duration::from_secs(240);

/// What a consumer polling in its own task saw.
#[derive(Default)]
struct Seen {
    records: Vec<(i64, String)>,
    errors: Vec<ConsumerError>,
}

/// A consumer assigned the partition from offset 0, polling in a task
/// until dropped.
struct Reader {
    /// "earliest reader" or "none reader", for messages.
    name: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    async fn start(bootstrap: &str, tp: &TopicPartition, reset: &str) -> Reader {
        let cfg = consumer_config(
            bootstrap,
            &[("auto.offset.reset", reset), ("request.timeout.ms", "3000")],
        );
        let mut c = Consumer::new(cfg).await.expect("consumer");
        c.assign([tp.clone()]).expect("assign");
        c.seek(tp, 0).expect("seek");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                match c.poll(Duration::from_millis(200)).await {
                    Ok(records) => {
                        let mut s = s.lock().expect("lock");
                        for r in records {
                            let v =
                                String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned();
                            s.records.push((r.offset, v));
                        }
                    }
                    Err(e) => {
                        s.lock().expect("lock").errors.push(e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Reader {
            name: format!("{reset} reader"),
            seen,
            task,
        }
    }

    fn snapshot<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().expect("lock"))
    }

    /// Wait until the reader handed out records up to `end` (exclusive).
    async fn reached(&self, what: &str, end: i64) {
        let name = format!("{}, {what}", self.name);
        let t = Instant::now();
        while self.snapshot(|s| s.records.last().map(|r| r.0 + 1)) != Some(end) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{name}: not at {end} after 60 s: last {:?}, errors {:?}",
                self.snapshot(|s| s.records.last().cloned()),
                self.snapshot(|s| s.errors.iter().map(ToString::to_string).collect::<Vec<_>>())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Partition 0's (leader, ISR) as a serving node sees it.
fn leader_and_isr(cluster: &KafkaCluster, topic: &str) -> Result<(i32, Vec<i32>), String> {
    let ps = cluster.partitions(topic).map_err(|e| e.to_string())?;
    let p = ps.first().ok_or("no partition in the answer")?;
    Ok((p.leader, p.isr.clone()))
}

/// Block until `cond` holds for the partition's (leader, ISR), up to 60 s.
fn wait_partition(
    cluster: &KafkaCluster,
    topic: &str,
    what: &str,
    cond: impl Fn(i32, &[i32]) -> bool,
) {
    let t = Instant::now();
    loop {
        let now = leader_and_isr(cluster, topic);
        if let Ok((leader, isr)) = &now
            && cond(*leader, isr)
        {
            eprintln!(
                "{what}: leader {leader}, isr {isr:?} after {:?}",
                t.elapsed()
            );
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{what}: not within 60 s: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until every reader handed out records up to `end`.
async fn all_reached(readers: &[&Reader], what: &str, end: i64) {
    for r in readers {
        r.reached(what, end).await;
    }
}

/// Records `prefix-i` for each `i` of `range`, to partition 0.
fn records(topic: &str, prefix: &str, range: std::ops::Range<usize>) -> Vec<ProducerRecord> {
    range
        .map(|i| ProducerRecord::new(topic, format!("{prefix}-{i}")).partition(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unclean_election_below_the_position_is_detected_before_fetching_on() {
    let started = Instant::now();
    let cluster = start_cluster("truncation").await;
    tokio::time::timeout(BOUND, async {
        let topic = unique("krust-truncation");
        let t = topic.clone();
        on_cluster(&cluster, move |c| {
            c.tool(
                TOPIC_COMMAND,
                &[
                    "--create",
                    "--topic",
                    &t,
                    "--replica-assignment",
                    "1:2",
                    "--config",
                    "min.insync.replicas=1",
                    "--config",
                    "unclean.leader.election.enable=true",
                ],
            )
            .expect("create the topic");
            wait_partition(c, &t, "topic created", |l, isr| l == 1 && isr.len() == 2);
        })
        .await;
        let tp = TopicPartition::new(&*topic, 0);
        let bootstrap = cluster.bootstrap();

        let first = produce(&bootstrap, records(&topic, "old", 0..100)).await;
        assert_eq!(first.last().map(|r| r.offset), Some(99));
        let earliest = Reader::start(&bootstrap, &tp, "earliest").await;
        let none = Reader::start(&bootstrap, &tp, "none").await;
        all_reached(&[&earliest, &none], "replicated records", 100).await;

        // Node 2 hangs until it is fenced and out of the ISR; the next
        // records reach node 1 alone.
        let t = topic.clone();
        on_cluster(&cluster, move |c| {
            c.pause(2).expect("pause node 2");
            wait_partition(c, &t, "node 2 out of the ISR", |l, isr| {
                l == 1 && isr == [1]
            });
        })
        .await;
        let second = produce(&bootstrap, records(&topic, "old", 100..200)).await;
        assert_eq!(second.last().map(|r| r.offset), Some(199));
        all_reached(&[&earliest, &none], "unreplicated records", 200).await;

        // Node 1 dies with records 100-199; node 2 comes back and is
        // elected without them.
        on_cluster(&cluster, |c| {
            c.kill(1).expect("kill node 1");
            c.resume(2).expect("resume node 2");
        })
        .await;
        let t = topic.clone();
        on_cluster(&cluster, move |c| {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if leader_and_isr(c, &t).is_ok_and(|(l, _)| l == 2) {
                    break;
                }
                let elected = c.tool(
                    LEADER_ELECTION_COMMAND,
                    &[
                        "--election-type",
                        "unclean",
                        "--topic",
                        &t,
                        "--partition",
                        "0",
                    ],
                );
                eprintln!("unclean election: {elected:?}");
                assert!(Instant::now() < deadline, "node 2 not elected in 60 s");
                std::thread::sleep(Duration::from_millis(500));
            }
            wait_partition(c, &t, "node 2 elected uncleanly", |l, _| l == 2);
        })
        .await;
        let third = produce(&cluster.bootstrap(), records(&topic, "new", 0..150)).await;
        let offsets: Vec<i64> = third.iter().map(|r| r.offset).collect();
        assert_eq!(
            offsets,
            (100..250).collect::<Vec<i64>>(),
            "the new records take the lost offsets"
        );

        earliest.reached("new records", 250).await;
        let after: Vec<(i64, String)> =
            earliest.snapshot(|s| s.records.iter().skip(200).cloned().collect());
        let want: Vec<(i64, String)> = (0..150).map(|i| (100 + i, format!("new-{i}"))).collect();
        assert_eq!(
            after, want,
            "after the truncation: exactly the new records, from the divergent offset"
        );

        let t = Instant::now();
        let truncation = loop {
            let found = none.snapshot(|s| {
                s.errors.iter().find_map(|e| match e {
                    ConsumerError::LogTruncation { truncations } => Some(truncations.clone()),
                    _ => None,
                })
            });
            if let Some(found) = found {
                break found;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the none reader reported no truncation: errors {:?}, records up to {:?}",
                none.snapshot(|s| s.errors.iter().map(ToString::to_string).collect::<Vec<_>>()),
                none.snapshot(|s| s.records.last().cloned())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            truncation,
            vec![Truncation {
                partition: tp.clone(),
                position: 200,
                divergent_offset: Some(100),
            }]
        );
        assert_eq!(
            none.snapshot(|s| s.records.len()),
            200,
            "nothing handed out past the truncation"
        );
        eprintln!("done at {:?}", started.elapsed());
    })
    .await
    .expect("bounded in time");
}
