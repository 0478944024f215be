//! A group of krust consumers on a real 3-node Apache Kafka 4.4.0 cluster
//! (`KafkaCluster`: every node a broker and a controller voter, replication
//! factor 3, `min.insync.replicas` 2, brokers fenced 3 s after they stop
//! heart-beating) while its nodes fail for real: no emulator can elect a
//! new leader with a new leader epoch, move a group coordinator by loading
//! the group from `__consumer_offsets`, or hang with its sockets open.
//!
//! The members read a pre-filled 6-partition topic with
//! `enable.auto.commit=false` and `range`, committing after each batch
//! (`common::Driven`); each batch takes a while to "process" (`Pace`), so
//! the records are still flowing when the faults come, and once the
//! faults are over the pace drops to zero to finish.
//!
//! - `coordinator_killed_mid_join_and_mid_stream`: the group coordinator's
//!   node is SIGKILLed while a second member's JoinGroup is pending (the
//!   coordinator reports the group PreparingRebalance), restarted, and then
//!   the new coordinator's node is killed while both members stream.
//! - `leader_killed_mid_fetch_and_node_hung`: the node leading the most
//!   partitions (not the coordinator's) is killed while the members fetch
//!   from it, and restarted; then the coordinator's node (a partition
//!   leader too) is hung with SIGSTOP for longer than `request.timeout.ms`
//!   and resumed. The first fault is what pinned issue 11 item 1: Fetch
//!   carried the leader epoch of the last record instead of the metadata's,
//!   so after the election Kafka answered FENCED_LEADER_EPOCH forever and
//!   the moved partitions never progressed.
//!
//! - `rolling_restart_of_every_node`: each node in turn is shut down
//!   (controlled: it hands its leaderships over first), restarted, and
//!   waited for until every replica is in sync again, as an operator rolls
//!   a cluster; every leadership and the coordinator move at least once.
//!   This is issue 11 item 1's own test: with the last record's epoch on
//!   Fetch each move wedged the partitions it touched.
//!
//! After every fault each partition must progress again; at the end, as
//! Kafka specifies:
//! - nothing lost: every produced record was handed out;
//! - no duplicate outside the uncommitted window: a record handed out more
//!   than once had its commit fail at least that many times less one (a
//!   record is re-delivered only if it was handed out and not committed
//!   before the fault);
//! - the group's committed offsets are the log end offsets.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Driven, Pace, consumer_config, create_topic, log_ends, on_cluster, produce_batched,
    start_cluster, subscribed,
};
use krust_codec::KString;
use krust_codec::generated::DescribeGroupsRequest;
use krust_consumer::TopicPartition;
use krust_producer::ProducerRecord;
use krust_testkit::{KafkaCluster, raw, unique};

const PARTITIONS: i32 = 6;
/// Enough for seven marks of [`PROGRESS`] (the rolling restart's) plus
/// what is read while nodes stop and start at the idle pace.
const PER_PARTITION: usize = 2_500;
/// The members' `request.timeout.ms`; the hung node stays hung longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// What each batch (max.poll.records 20) takes to process while faults
/// come: at most 200 records a second per member.
const STREAMING: Duration = Duration::from_millis(100);
/// The pace while nothing is measured (a node restarting, a node hung):
/// a batch a second, so the topic is not drained while the cluster takes
/// its time (a restart took 23 s on a loaded machine, during which two
/// members at the streaming pace read 4,000 records and the next fault
/// found its partitions consumed).
const IDLE: Duration = Duration::from_secs(1);
/// How long a partition may take to progress again after a fault: the
/// broker is fenced after 3 s, a new leader or coordinator is elected, the
/// members rediscover it (backoff up to 500 ms) and rejoin if they must.
const RECOVERY: Duration = Duration::from_secs(40);
const BOUND: Duration = Duration::from_secs(240);
/// Three stops, restarts and resyncs (a restart took 23 s on a loaded
/// machine).
const ROLLING_BOUND: Duration = Duration::from_secs(480);
/// How many records past its mark a partition must be handed out to count
/// as progressing after a fault: several fetches' worth (a fetch brings one
/// ~1 KiB batch, a few dozen records), so records prefetched before the
/// fault cannot pass for progress.
const PROGRESS: i64 = 150;

/// One test's cluster, topic, group and members.
struct Run {
    cluster: Arc<KafkaCluster>,
    topic: String,
    group: String,
    ends: BTreeMap<i32, i64>,
    produced: BTreeSet<(i32, i64)>,
    pace: Pace,
    members: Vec<Driven>,
    started: Instant,
}

impl Run {
    /// Start a cluster, create the topic and fill it.
    async fn start(name: &str) -> Run {
        let started = Instant::now();
        let cluster = start_cluster(name).await;
        let topic = unique(name);
        let group = unique(&format!("g-{name}"));
        create_topic(&*cluster, &topic, PARTITIONS).await;
        let records: Vec<ProducerRecord> = (0..PER_PARTITION * 6)
            .map(|i| {
                ProducerRecord::new(&*topic, format!("value-{i}"))
                    .partition(i32::try_from(i).expect("small") % PARTITIONS)
            })
            .collect();
        // Batches of ~1 KiB and fetches of one batch per partition: the
        // members fetch all along, so a fault on the fetch path shows at
        // once instead of being hidden by a prefetched partition.
        let reports = produce_batched(&cluster.bootstrap(), records, 1024).await;
        let ends = log_ends(&reports);
        let produced: BTreeSet<(i32, i64)> =
            reports.iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(produced.len(), PER_PARTITION * 6);
        eprintln!(
            "{name}: topic filled, ends {ends:?}, at {:?}",
            started.elapsed()
        );
        Run {
            cluster,
            topic,
            group,
            ends,
            produced,
            pace: Pace::new(STREAMING),
            members: Vec::new(),
            started,
        }
    }

    /// Add a member to the group.
    async fn join(&mut self) {
        let request_timeout = REQUEST_TIMEOUT.as_millis().to_string();
        let cfg = consumer_config(
            &self.cluster.bootstrap(),
            &[
                ("group.id", self.group.as_str()),
                ("partition.assignment.strategy", "range"),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("max.poll.records", "20"),
                ("max.partition.fetch.bytes", "1024"),
                ("request.timeout.ms", request_timeout.as_str()),
            ],
        );
        let consumer = subscribed(cfg, &self.topic).await;
        self.members
            .push(Driven::paced(consumer, self.pace.clone()));
    }

    fn check_polls(&self) {
        for m in &self.members {
            m.check_poll();
        }
    }

    /// Per partition, the end of what was handed out (highest offset + 1).
    fn handed(&self) -> BTreeMap<i32, i64> {
        let mut h: BTreeMap<i32, i64> = BTreeMap::new();
        for m in &self.members {
            m.snapshot(|s| {
                for (p, o) in &s.records {
                    let e = h.entry(*p).or_default();
                    *e = (*e).max(o + 1);
                }
            });
        }
        h
    }

    /// What every member holds, for messages.
    fn state(&self) -> String {
        let mut out = format!("handed out up to {:?} of {:?};", self.handed(), self.ends);
        for (i, m) in self.members.iter().enumerate() {
            m.snapshot(|s| {
                out.push_str(&format!(
                    " member {i}: {} polls, {} records, assignment {:?}, committed {:?}, \
                     commit errors {:?}, events {:?};",
                    s.polls,
                    s.records.len(),
                    s.assignment,
                    s.committed,
                    s.commit_errors,
                    s.events
                ));
            });
        }
        out
    }

    /// Wait until every partition was handed out [`PROGRESS`] records past
    /// `mark` (or to its end), the members' assignments being disjoint and
    /// covering every partition.
    async fn progressed(&self, what: &str, mark: &BTreeMap<i32, i64>) {
        let t = Instant::now();
        loop {
            self.check_polls();
            let handed = self.handed();
            let moved = (0..PARTITIONS).all(|p| {
                let want = (mark.get(&p).copied().unwrap_or(0) + PROGRESS).min(self.ends[&p]);
                handed.get(&p).copied().unwrap_or(0) >= want
            });
            if moved && self.split() {
                eprintln!(
                    "{what}: every partition progressed after {:?} (at {:?})",
                    t.elapsed(),
                    self.started.elapsed()
                );
                return;
            }
            assert!(
                t.elapsed() < RECOVERY,
                "{what}: not every partition progressed {PROGRESS} records past {mark:?} within \
                 {RECOVERY:?}: {}",
                self.state()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the members' assignments are disjoint and cover the topic.
    fn split(&self) -> bool {
        let mut all = BTreeSet::new();
        let mut n = 0;
        for m in &self.members {
            m.snapshot(|s| {
                n += s.assignment.len();
                all.extend(s.assignment.iter().copied());
            });
        }
        n == all.len() && all == (0..PARTITIONS).collect()
    }

    /// Every partition still has records to hand out: a fault now is
    /// mid-stream.
    fn assert_streaming(&self, what: &str) {
        let handed = self.handed();
        for (p, end) in &self.ends {
            assert!(
                handed.get(p).copied().unwrap_or(0) < *end,
                "{what}: partition {p} was already consumed: the fault would not be mid-stream \
                 ({})",
                self.state()
            );
        }
    }

    /// Kill node `id`; returns once it is dead.
    async fn kill(&self, id: i32) {
        on_cluster(&self.cluster, move |c| c.kill(id))
            .await
            .expect("kill");
        eprintln!("killed node {id} at {:?}", self.started.elapsed());
    }

    /// Start node `id` again and wait until every node lists it, at the
    /// idle pace; then back to the streaming pace.
    async fn restart(&self, id: i32) {
        self.pace.set(IDLE);
        on_cluster(&self.cluster, move |c| c.restart(id))
            .await
            .expect("restart");
        eprintln!("node {id} back at {:?}", self.started.elapsed());
        self.pace.set(STREAMING);
    }

    /// A controlled shutdown of node `id`, at the idle pace; then back to
    /// the streaming pace.
    async fn stop(&self, id: i32) {
        self.pace.set(IDLE);
        on_cluster(&self.cluster, move |c| c.stop(id))
            .await
            .expect("stop");
        eprintln!("node {id} stopped at {:?}", self.started.elapsed());
        self.pace.set(STREAMING);
    }

    /// Wait until every replica of the topic and of the offsets topic is
    /// in sync, at the idle pace.
    async fn in_sync(&self) {
        self.pace.set(IDLE);
        let topic = self.topic.clone();
        on_cluster(&self.cluster, move |c| {
            c.wait_in_sync(&[&topic, "__consumer_offsets"], Duration::from_secs(60))
        })
        .await
        .expect("in sync");
        self.pace.set(STREAMING);
    }

    async fn coordinator(&self) -> i32 {
        let g = self.group.clone();
        on_cluster(&self.cluster, move |c| c.coordinator(&g))
            .await
            .expect("coordinator")
    }

    /// The leader of each partition, as the cluster sees it now.
    async fn leaders(&self) -> BTreeMap<i32, i32> {
        let t = self.topic.clone();
        on_cluster(&self.cluster, move |c| {
            (0..PARTITIONS)
                .map(|p| (p, c.leader(&t, p).expect("leader")))
                .collect()
        })
        .await
    }

    /// Drop the pace, wait until everything was handed out and the group
    /// committed the log end, then check the run.
    async fn finish(self) {
        self.pace.set(Duration::ZERO);
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(&*self.topic, p))
            .collect();
        let want: BTreeMap<i32, Option<i64>> =
            self.ends.iter().map(|(p, e)| (*p, Some(*e))).collect();
        let t = Instant::now();
        loop {
            self.check_polls();
            let mut got = BTreeSet::new();
            for m in &self.members {
                m.snapshot(|s| got.extend(s.records.iter().copied()));
            }
            if self.produced.is_subset(&got) && self.members[0].committed(tps.clone()).await == want
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "not consumed to the end and committed: {} of {} records handed out; {}",
                self.produced.intersection(&got).count(),
                self.produced.len(),
                self.state()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        let mut refused: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        for m in &self.members {
            m.snapshot(|s| {
                for r in &s.records {
                    *count.entry(*r).or_default() += 1;
                }
                for r in &s.uncommitted {
                    *refused.entry(*r).or_default() += 1;
                }
            });
        }
        let missing: Vec<_> = self
            .produced
            .iter()
            .filter(|r| !count.contains_key(r))
            .collect();
        assert!(missing.is_empty(), "lost: {missing:?}");
        let extra: Vec<_> = count
            .keys()
            .filter(|r| !self.produced.contains(r))
            .collect();
        assert!(extra.is_empty(), "handed out, never produced: {extra:?}");
        let outside: Vec<_> = count
            .iter()
            .filter(|(r, n)| **n > 1 + refused.get(*r).copied().unwrap_or(0))
            .collect();
        assert!(
            outside.is_empty(),
            "handed out again although committed ((partition, offset), times): {outside:?}; {}",
            self.state()
        );
        let twice = count.values().filter(|n| **n > 1).count();
        eprintln!(
            "{} records, {twice} handed out again after a failed commit; done at {:?}",
            count.len(),
            self.started.elapsed()
        );
        for m in self.members {
            m.close().await.expect("close");
        }
    }
}

/// The group's state as its coordinator reports it (DescribeGroups), or
/// why it cannot say.
fn group_state(cluster: &KafkaCluster, group: &str) -> Result<String, String> {
    let id = cluster.coordinator(group).map_err(|e| e.to_string())?;
    let addr = cluster.addr(id).map_err(|e| e.to_string())?;
    let mut conn = raw::Connection::connect_with_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    let version = conn
        .version_for::<DescribeGroupsRequest>()
        .map_err(|e| e.to_string())?;
    let request = DescribeGroupsRequest {
        groups: vec![KString::from(group)],
        ..Default::default()
    };
    let response = conn.send(version, &request).map_err(|e| e.to_string())?;
    let g = response.groups.first().ok_or("no group in the answer")?;
    Ok(g.group_state.as_str().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_killed_mid_join_and_mid_stream() {
    let mut run = Run::start("coord-faults").await;
    tokio::time::timeout(BOUND, async {
        let first = run.coordinator().await;
        run.join().await;
        run.progressed("member 0 alone", &BTreeMap::new()).await;

        // Mid-join: member 0 takes 5 s over its next batch, so it cannot
        // rejoin (eager `range` revokes in poll first) while member 1's
        // JoinGroup waits at the coordinator.
        run.pace.set(Duration::from_secs(5));
        let t = Instant::now();
        let long = |s: &common::Seen| {
            s.busy_until
                .is_some_and(|u| u > Instant::now() + Duration::from_secs(4))
        };
        while !run.members[0].snapshot(long) {
            assert!(
                t.elapsed() < Duration::from_secs(6),
                "member 0 did not start a long batch"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.join().await;
        let t = Instant::now();
        loop {
            let g = run.group.clone();
            let state = on_cluster(&run.cluster, move |c| group_state(c, &g)).await;
            if state.as_deref() == Ok("PreparingRebalance") {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(4),
                "member 1's join did not start a rebalance: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        run.assert_streaming("coordinator killed mid-join");
        run.kill(first).await;
        assert!(
            run.members[1].snapshot(|s| s.assignment.is_empty()),
            "member 1 was assigned before the kill: not mid-join"
        );
        run.pace.set(STREAMING);
        let mark = run.handed();
        run.progressed("after the coordinator was killed mid-join", &mark)
            .await;
        run.restart(first).await;

        // Mid-stream: the coordinator now is another node.
        let second = run.coordinator().await;
        assert_ne!(second, first, "the coordinator moved off the killed node");
        let mark = run.handed();
        run.progressed("both members streaming", &mark).await;
        run.assert_streaming("coordinator killed mid-stream");
        let mark = run.handed();
        run.kill(second).await;
        run.progressed("after the coordinator was killed mid-stream", &mark)
            .await;
        run.restart(second).await;
        run.finish().await;
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_mid_fetch_and_node_hung() {
    let mut run = Run::start("leader-faults").await;
    tokio::time::timeout(BOUND, async {
        run.join().await;
        run.join().await;
        run.progressed("two members streaming", &BTreeMap::new())
            .await;

        // The node leading the most partitions, other than the
        // coordinator's: only the fetch path is hit.
        let coordinator = run.coordinator().await;
        let leaders = run.leaders().await;
        let victim = (1..=3)
            .filter(|id| *id != coordinator)
            .max_by_key(|id| leaders.values().filter(|l| *l == id).count())
            .expect("a node");
        let moved: BTreeSet<i32> = leaders
            .iter()
            .filter(|(_, l)| **l == victim)
            .map(|(p, _)| *p)
            .collect();
        assert!(
            !moved.is_empty(),
            "node {victim} leads nothing: {leaders:?}"
        );
        eprintln!("leaders {leaders:?}, coordinator {coordinator}: killing {victim}");
        run.assert_streaming("leader killed mid-fetch");
        let mark = run.handed();
        run.kill(victim).await;
        run.progressed(
            &format!("after node {victim}, leader of {moved:?}, was killed"),
            &mark,
        )
        .await;
        let now = run.leaders().await;
        eprintln!("leaders now {now:?}");
        for p in &moved {
            assert_ne!(now[p], victim, "partition {p} has a new leader");
        }
        run.restart(victim).await;

        // Hung for longer than request.timeout.ms: the coordinator's node,
        // which leads partitions too.
        let hung = run.coordinator().await;
        let mark = run.handed();
        run.progressed("before the hang", &mark).await;
        run.assert_streaming("node hung");
        run.pace.set(IDLE);
        on_cluster(&run.cluster, move |c| c.pause(hung))
            .await
            .expect("pause");
        eprintln!("node {hung} hung at {:?}", run.started.elapsed());
        tokio::time::sleep(REQUEST_TIMEOUT + Duration::from_secs(3)).await;
        run.pace.set(STREAMING);
        let mark = run.handed();
        on_cluster(&run.cluster, move |c| c.resume(hung))
            .await
            .expect("resume");
        eprintln!("node {hung} resumed at {:?}", run.started.elapsed());
        run.progressed(&format!("after node {hung} was hung and resumed"), &mark)
            .await;
        run.finish().await;
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_restart_of_every_node() {
    let mut run = Run::start("rolling").await;
    tokio::time::timeout(ROLLING_BOUND, async {
        run.join().await;
        run.join().await;
        run.progressed("two members streaming", &BTreeMap::new())
            .await;
        let before = run.leaders().await;
        let first_coordinator = run.coordinator().await;
        let mut led: BTreeMap<i32, BTreeSet<i32>> = BTreeMap::new();
        let mut coordinators = BTreeSet::from([first_coordinator]);
        for id in run.cluster.node_ids().to_vec() {
            run.assert_streaming(&format!("rolling: node {id}"));
            let mark = run.handed();
            run.stop(id).await;
            for (p, l) in run.leaders().await {
                led.entry(p).or_default().insert(l);
            }
            coordinators.insert(run.coordinator().await);
            run.progressed(&format!("node {id} down"), &mark).await;
            run.restart(id).await;
            run.in_sync().await;
            let mark = run.handed();
            run.progressed(&format!("node {id} back"), &mark).await;
        }
        eprintln!(
            "leaders before {before:?}, while rolling {led:?}; coordinators {coordinators:?}"
        );
        for (p, l) in &before {
            assert!(
                led[p].iter().any(|x| x != l),
                "partition {p} never changed leader: {led:?}"
            );
        }
        assert!(coordinators.len() > 1, "the coordinator never moved");
        run.finish().await;
    })
    .await
    .expect("bounded in time");
}
