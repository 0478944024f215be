//! Faults while members hold a 6-partition topic.
//!
//! On a real Apache Kafka 4.4.0 cluster (`KafkaCluster`: three nodes, each a
//! broker and a controller voter, replication factor 3, a crashed node
//! fenced after 3 s), with real faults: the coordinator's node killed while
//! a join is in progress and during steady heartbeats; the coordinator's
//! node down (killed) and up (restarted, then the coordinator moved back to
//! it by a preferred leader election, so the old coordinator answers
//! NOT_COORDINATOR); a partition leader's node killed; a member killed
//! without leaving, whose session expires; the coordinator's node hung
//! (SIGSTOP) for longer than the session. On a private single node: the
//! only broker down for longer than the pool's lookup deadline, then up.
//! Kafka keeps a group across a coordinator move, so each time the members
//! must follow it without a rebalance (same generation, same partitions,
//! no event), and the new coordinator must count them (it accepts their
//! commits in that generation after more than a session timeout); where no
//! heartbeat can succeed for a session, the members count their partitions
//! lost and form a newer generation. One cluster serves the tests of this
//! binary, one test at a time, and every node runs again when a test ends.
//!
//! Error codes injected on cue (the librdkafka mock) are in
//! `group_injected.rs`.
//!
//! Ownership tracked from the events never has a partition assigned to one
//! member while another owns it.

mod common;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::{
    HEARTBEAT, Member, OnRevoke, SESSION, Seen, Tracker, balanced, balanced_after, commit_as,
    config, settled, wait_for,
};
use krust_codec::ErrorCode;
use krust_group::MembershipConfig;
use krust_group::assignor::RangeAssignor;
use krust_group::membership::State;
use krust_testkit::{Broker, Kafka, KafkaCluster, unique};

const BOUND: Duration = Duration::from_secs(150);
const FORM: Duration = Duration::from_secs(40);

/// The session timeout of the members on the cluster. A crashed node is
/// fenced after `broker.session.timeout.ms` (3 s), then its partitions get
/// new leaders and the new coordinator loads the group: members that reach
/// it within their session keep their generation (Kafka does not rebalance
/// for a coordinator move). Twice the fencing time leaves room for the
/// lookup retries.
const FAULT_SESSION: Duration = Duration::from_secs(10);

/// The cluster this binary's fault tests share, one test at a time.
struct Faults {
    cluster: &'static KafkaCluster,
    _turn: MutexGuard<'static, ()>,
}

fn faults() -> Faults {
    common::trace_to_stderr();
    static TURN: Mutex<()> = Mutex::new(());
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let cluster = CLUSTER.get_or_init(KafkaCluster::start);
    eprintln!("{}: ready after {:?}", cluster.name(), started.elapsed());
    Faults {
        cluster,
        _turn: turn,
    }
}

impl Drop for Faults {
    /// The next test gets every node running, whatever this one did.
    fn drop(&mut self) {
        for &id in self.cluster.node_ids() {
            if !self.cluster.is_running(id) {
                if let Err(e) = self.cluster.restart(id) {
                    eprintln!("restarting node {id} after the test: {e}");
                }
            }
        }
    }
}

fn fault_config(group: &str, topic: &str) -> MembershipConfig {
    let mut c = config(group, topic);
    c.session_timeout = FAULT_SESSION;
    c
}

/// A fresh topic (replication factor 3) and group on the cluster.
fn names(cluster: &KafkaCluster) -> (String, String) {
    let topic = unique("krust-faults");
    cluster.create_topic(&topic, 6).expect("create topic");
    (topic, unique("g-faults"))
}

/// Wait (blocking: cluster calls block) until the group's coordinator is
/// a node other than `old`; returns it.
fn moved_from(cluster: &KafkaCluster, group: &str, old: i32) -> i32 {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let now = cluster.coordinator(group).expect("coordinator");
        if now != old {
            return now;
        }
        assert!(
            Instant::now() < until,
            "the coordinator of {group} stayed on {old}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Members in the same generation with the same partitions as before
/// `since`, no event in between, for longer than a session: then each
/// commits as itself, which the coordinator accepts only if it counts the
/// member in that generation (a member whose heartbeats stopped reaching
/// the coordinator would have been removed by now).
async fn held_through(
    bootstrap: &str,
    members: &[&Member],
    before: &[krust_group::driver::MemberSnapshot],
    since: Instant,
    tracker: &Tracker,
    what: &str,
) {
    let until = since + FAULT_SESSION + Duration::from_secs(2);
    tokio::time::sleep_until(until.into()).await;
    for (m, b) in members.iter().zip(before) {
        let now = m.snap();
        assert_eq!(now.state, State::Stable, "{what}: {} is stable", m.name);
        assert_eq!(
            now.generation, b.generation,
            "{what}: {} kept its generation",
            m.name
        );
        assert_eq!(now.owned, b.owned, "{what}: {} kept its partitions", m.name);
        assert_eq!(
            now.member_id, b.member_id,
            "{what}: {} kept its member id",
            m.name
        );
    }
    {
        let o = tracker.lock().unwrap();
        o.assert_clean();
        let seen: Vec<_> = o
            .since(since)
            .iter()
            .map(|l| (&l.member, &l.event))
            .collect();
        assert!(seen.is_empty(), "{what}: events {seen:?}");
    }
    for m in members {
        commit_as(bootstrap, &m.snap(), 1)
            .await
            .unwrap_or_else(|e| panic!("{what}: the coordinator refused {}'s commit: {e}", m.name));
    }
}

/// The coordinator's node is killed twice: while a join waits for a member
/// that is revoking (so the joining member's JoinGroup is in flight), and
/// later while the group is stable and heartbeating. The first time the
/// group forms on the new coordinator within two generations; the second
/// time nothing changes at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed_mid_join_and_during_heartbeats() {
    let f = faults();
    let c = f.cluster;
    tokio::time::timeout(BOUND, async {
        let (topic, group) = names(c);
        let b = c.bootstrap();
        let tracker = Tracker::default();
        // a's application holds a revoke for up to 3 s: a rebalance waits
        // for it that long.
        let mut slow = fault_config(&group, &topic);
        slow.revoke_budget = Duration::from_secs(3);
        let a = Member::start_opts(
            "a",
            &b,
            slow,
            vec![std::sync::Arc::new(RangeAssignor)],
            OnRevoke::Ignore,
            tracker.clone(),
        )
        .await;
        wait_for(&[&a], FORM, "a alone", balanced(6, 6)).await;
        let before = a.snap().generation;
        let m = Member::start("m", &b, fault_config(&group, &topic), tracker.clone()).await;
        wait_for(&[&a, &m], FORM, "m joining while a revokes", |s| {
            s[0].state == State::Revoking && s[1].state == State::Joining
        })
        .await;
        let old = c.coordinator(&group).expect("coordinator");
        let killed = Instant::now();
        c.kill(old).expect("kill");
        let new = moved_from(c, &group, old);
        eprintln!(
            "coordinator {old} killed mid-join; {new} took over after {:?}",
            killed.elapsed()
        );
        let t = wait_for(
            &[&a, &m],
            FORM,
            "formed after a move mid-join",
            balanced(3, 6),
        )
        .await;
        let formed = a.snap().generation;
        eprintln!("formed at generation {formed} (from {before}) {t:?} after the kill");
        {
            let o = tracker.lock().unwrap();
            o.assert_clean();
            let early: Vec<_> = o
                .log
                .iter()
                .filter(|l| l.member == "m" && l.at < killed)
                .collect();
            assert!(
                early.is_empty(),
                "m was assigned before the kill: {early:?}"
            );
        }
        // On the new coordinator: m's join, and a's rejoin if it comes
        // first, each at most one generation.
        assert!(
            (before + 1..=before + 2).contains(&formed),
            "generations {before} -> {formed} for one join interrupted by a move"
        );
        c.restart(old).expect("restart");

        // Steady heartbeats.
        let snaps = [a.snap(), m.snap()];
        let coordinator = c.coordinator(&group).expect("coordinator");
        let since = Instant::now();
        c.kill(coordinator).expect("kill");
        let next = moved_from(c, &group, coordinator);
        eprintln!(
            "coordinator {coordinator} killed while stable; {next} took over after {:?}",
            since.elapsed()
        );
        held_through(&b, &[&a, &m], &snaps, since, &tracker, "coordinator killed").await;
        for x in [a, m] {
            assert!(x.close().await, "close within its bound");
        }
    })
    .await
    .expect("bounded");
}

/// KIP-848 (`group.protocol=consumer`): the coordinator's node is killed
/// while two members are stable. They find the new coordinator (it loaded
/// the group from `__consumer_offsets`) within the broker's 6 s session
/// and keep their epochs and partitions, with no event, well past that
/// session; a third member joining there gets its share by revoke and
/// release as on the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_coordinator_killed() {
    let f = faults();
    let c = f.cluster;
    tokio::time::timeout(BOUND, async {
        let (topic, group) = names(c);
        let b = c.bootstrap();
        let tracker = Tracker::default();
        let kip848 = || {
            let mut cfg = config(&group, &topic);
            cfg.group_protocol = krust_group::GroupProtocol::Consumer;
            cfg.remote_assignor = Some("uniform".into());
            cfg
        };
        let a = Member::start("a", &b, kip848(), tracker.clone()).await;
        let m = Member::start("m", &b, kip848(), tracker.clone()).await;
        wait_for(&[&a, &m], FORM, "a and m", settled(3, 6)).await;
        let snaps = [a.snap(), m.snap()];
        let coordinator = c.coordinator(&group).expect("coordinator");
        let since = Instant::now();
        c.kill(coordinator).expect("kill");
        let next = moved_from(c, &group, coordinator);
        eprintln!(
            "coordinator {coordinator} killed while stable; {next} took over after {:?}",
            since.elapsed()
        );
        held_through(&b, &[&a, &m], &snaps, since, &tracker, "coordinator killed").await;
        let x = Member::start("x", &b, kip848(), tracker.clone()).await;
        wait_for(&[&a, &m, &x], FORM, "a, m and x", settled(2, 6)).await;
        tracker.lock().unwrap().assert_clean();
        for y in [a, m, x] {
            assert!(y.close().await, "close within its bound");
        }
    })
    .await
    .expect("bounded");
}

/// Preferred leaders for every partition (the coordinator of a group is
/// the leader of its `__consumer_offsets` partition); retried while a
/// preferred replica is not yet back in sync.
fn elect_preferred(cluster: &KafkaCluster) -> Result<String, krust_testkit::Error> {
    cluster.tool(
        "org.apache.kafka.tools.LeaderElectionCommand",
        &["--election-type", "PREFERRED", "--all-topic-partitions"],
    )
}

/// The coordinator's node goes down (killed: the group moves to another
/// node) and comes back up (restarted); a preferred leader election then
/// moves the coordinator back onto it, and the old coordinator answers
/// NOT_COORDINATOR. Both moves happen without a rebalance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_node_down_then_up() {
    let f = faults();
    let c = f.cluster;
    tokio::time::timeout(BOUND, async {
        let (topic, group) = names(c);
        let b = c.bootstrap();
        // Earlier faults may have left leaders off their preferred nodes.
        let _ = elect_preferred(c);
        let home = c.coordinator(&group).expect("coordinator");
        let tracker = Tracker::default();
        let a = Member::start("a", &b, fault_config(&group, &topic), tracker.clone()).await;
        let m = Member::start("m", &b, fault_config(&group, &topic), tracker.clone()).await;
        wait_for(&[&a, &m], FORM, "formed", balanced(3, 6)).await;
        let snaps = [a.snap(), m.snap()];
        let since = Instant::now();
        c.kill(home).expect("kill");
        let away = moved_from(c, &group, home);
        eprintln!(
            "node {home} down: coordinator {away} after {:?}",
            since.elapsed()
        );
        held_through(
            &b,
            &[&a, &m],
            &snaps,
            since,
            &tracker,
            "coordinator node down",
        )
        .await;

        c.restart(home).expect("restart");
        let since = Instant::now();
        let until = since + Duration::from_secs(60);
        while c.coordinator(&group).expect("coordinator") != home {
            assert!(
                Instant::now() < until,
                "coordinator never moved back to {home}"
            );
            if let Err(e) = elect_preferred(c) {
                eprintln!("preferred election: {e}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!(
            "node {home} up: coordinator again after {:?}",
            since.elapsed()
        );
        held_through(
            &b,
            &[&a, &m],
            &snaps,
            since,
            &tracker,
            "coordinator moved back",
        )
        .await;
        for x in [a, m] {
            assert!(x.close().await, "close within its bound");
        }
    })
    .await
    .expect("bounded");
}

/// A node that leads some of the topic's partitions (not the coordinator)
/// is killed: leaders move, the partition count does not, so the group
/// does not rebalance, even though the leader's metadata refresh (every
/// second here) runs through the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_leader_killed_moves_no_partition() {
    let f = faults();
    let c = f.cluster;
    tokio::time::timeout(BOUND, async {
        let (topic, group) = names(c);
        let b = c.bootstrap();
        let coordinator = c.coordinator(&group).expect("coordinator");
        let leaders: Vec<(i32, i32)> = (0..6)
            .map(|p| (p, c.leader(&topic, p).expect("leader")))
            .collect();
        let victim = *c
            .node_ids()
            .iter()
            .find(|&&n| n != coordinator && leaders.iter().any(|&(_, l)| l == n))
            .expect("a node that leads a partition and does not coordinate");
        let tracker = Tracker::default();
        let cfg = || {
            let mut cfg = fault_config(&group, &topic);
            cfg.metadata_max_age = Duration::from_secs(1);
            cfg
        };
        let a = Member::start("a", &b, cfg(), tracker.clone()).await;
        let m = Member::start("m", &b, cfg(), tracker.clone()).await;
        wait_for(&[&a, &m], FORM, "formed", balanced(3, 6)).await;
        let snaps = [a.snap(), m.snap()];
        let since = Instant::now();
        c.kill(victim).expect("kill");
        let led: Vec<i32> = leaders
            .iter()
            .filter(|&&(_, l)| l == victim)
            .map(|&(p, _)| p)
            .collect();
        let until = Instant::now() + Duration::from_secs(30);
        while led
            .iter()
            .any(|&p| c.leader(&topic, p).map_or(true, |l| l == victim || l < 0))
        {
            assert!(
                Instant::now() < until,
                "partitions {led:?} kept leader {victim}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "node {victim} (leader of {led:?}) killed: new leaders after {:?}",
            since.elapsed()
        );
        held_through(
            &b,
            &[&a, &m],
            &snaps,
            since,
            &tracker,
            "partition leader killed",
        )
        .await;
        assert_eq!(c.coordinator(&group).expect("coordinator"), coordinator);
        for x in [a, m] {
            assert!(x.close().await, "close within its bound");
        }
    })
    .await
    .expect("bounded");
}

/// A member whose driver is dropped without a LeaveGroup (its process
/// died) keeps its partitions until its session expires: the coordinator
/// still accepts its commits right after, the survivor gets them no sooner
/// than the session timeout (less one heartbeat interval: the coordinator
/// last heard from it at most that long before) and in exactly one new
/// generation, and afterwards the coordinator no longer knows the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_expires_after_its_session() {
    let f = faults();
    let c = f.cluster;
    tokio::time::timeout(BOUND, async {
        let (topic, group) = names(c);
        let b = c.bootstrap();
        let tracker = Tracker::default();
        let a = Member::start("a", &b, config(&group, &topic), tracker.clone()).await;
        let k = Member::start("k", &b, config(&group, &topic), tracker.clone()).await;
        wait_for(&[&a, &k], FORM, "formed", balanced(3, 6)).await;
        let before = a.snap().generation;
        let k_snap = k.snap();
        let killed = Instant::now();
        k.kill(&tracker);
        commit_as(&b, &k_snap, 2)
            .await
            .expect("the killed member is still in the group");
        let t = wait_for(
            &[&a],
            SESSION + FORM,
            "survivor owns all six",
            balanced_after(6, 6, before),
        )
        .await;
        eprintln!("killed member's partitions reassigned after {t:?}");
        assert!(
            t >= SESSION - HEARTBEAT,
            "reassigned after {t:?}, before the session timeout"
        );
        assert!(
            t < SESSION + config(&group, &topic).rebalance_timeout,
            "reassigned after {t:?}: the survivor was slow to rejoin"
        );
        assert_eq!(
            a.snap().generation,
            before + 1,
            "one expired session, one generation"
        );
        {
            let o = tracker.lock().unwrap();
            o.assert_clean();
            let seen: Vec<&Seen> = o.of("a", killed).iter().map(|l| &l.event).collect();
            assert!(
                matches!(seen[..], [Seen::Revoked(_), Seen::Assigned { .. }]),
                "the survivor revokes once and is assigned once: {seen:?}"
            );
        }
        let e = commit_as(&b, &k_snap, 3)
            .await
            .expect_err("the expired member's commit");
        assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_MEMBER_ID), "{e}");
        assert!(a.close().await);
    })
    .await
    .expect("bounded");
}

/// The only broker is down (killed) for longer than the session and than
/// the pool's lookup deadline (10 s), then up again (restarted on the same
/// port and data): no heartbeat succeeds, so both members count their
/// partitions lost at the session timeout (the coordinator may hand them
/// out once it is back), keep looking for the coordinator through the
/// outage instead of ending their membership, and form a newer generation
/// once it is back. A private node: the node this binary shares must not
/// go down under other tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_broker_down_longer_than_the_lookup_deadline_then_up() {
    // One test at a time beside the cluster tests: a fourth JVM on two
    // cores slows their failovers.
    let f = faults();
    tokio::time::timeout(BOUND, async {
        let kafka = Kafka::start();
        let node = kafka.as_cluster();
        let id = node.node_ids()[0];
        let topic = unique("krust-outage");
        kafka.create_topic(&topic, 6).expect("create topic");
        let group = unique("g-outage");
        let b = kafka.bootstrap();
        let tracker = Tracker::default();
        let a = Member::start("a", &b, config(&group, &topic), tracker.clone()).await;
        let m = Member::start("m", &b, config(&group, &topic), tracker.clone()).await;
        wait_for(&[&a, &m], FORM, "formed", balanced(3, 6)).await;
        let before = a.snap().generation;
        let down = Instant::now();
        node.kill(id).expect("kill");
        // Longer than the pool's retry deadline (common::retry, 10 s).
        let outage = common::retry().deadline + Duration::from_secs(5);
        tokio::time::sleep(outage).await;
        for x in [&a, &m] {
            let s = x.snap();
            assert!(s.owned.is_empty(), "{} lost its partitions: {s:?}", x.name);
            assert_ne!(
                s.state,
                State::Fatal,
                "{} still looks for its coordinator",
                x.name
            );
        }
        node.restart(id).expect("restart");
        let up = Instant::now();
        let t = wait_for(
            &[&a, &m],
            FORM,
            "formed after the outage",
            balanced_after(3, 6, before),
        )
        .await;
        eprintln!(
            "down {:?}, formed again {t:?} after the broker was back",
            up - down
        );
        let o = tracker.lock().unwrap().clone();
        o.assert_clean();
        for x in ["a", "m"] {
            let lost: Vec<_> = o
                .of(x, down)
                .iter()
                .filter(|l| matches!(l.event, Seen::Lost(_)))
                .map(|l| l.at - down)
                .collect();
            assert!(
                matches!(lost[..], [at] if at >= SESSION - HEARTBEAT && at < outage),
                "{x} lost its partitions once, at the session timeout: {lost:?}"
            );
        }
        for x in [a, m] {
            assert!(x.close().await, "close within its bound");
        }
    })
    .await
    .expect("bounded");
    drop(f);
}

/// The coordinator's node hangs (SIGSTOP: its sockets stay open, nothing
/// answers) for longer than the session. Kafka fences it after 3 s and
/// moves the coordinator. The members' heartbeats go unanswered, so at the
/// session timeout they count their partitions lost (nothing proves the
/// coordinator still counts them) and rejoin, and they must rejoin at the
/// new coordinator, not at the one that has not answered for a whole
/// session (requests to it would only fail at the request timeout, Java's
/// default 30 s here). They rejoin under their member ids, which the new
/// coordinator loaded with the group, so its rebalance ends once both have
/// rejoined, without waiting for sessions to run out there: the group
/// forms again within two sessions, while the old node still hangs. (With
/// new member ids it waited for the old ones to expire at the new
/// coordinator, a session after it loaded the group, and on a loaded
/// machine the two members were still syncing at two sessions.)
///
/// The members bootstrap from the two other nodes, so the hung node is
/// never their bootstrap connection; which connection a lookup travels on
/// once the hung node's requests pile up (`Pool::any_connection` picks the
/// least loaded, as Java's `leastLoadedNode`) is krust-net's and tested
/// there, not here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_hung_longer_than_the_session() {
    let f = faults();
    let c = f.cluster;
    tokio::time::timeout(BOUND, async {
        let (topic, group) = names(c);
        let home = c.coordinator(&group).expect("coordinator");
        let others: Vec<String> = c
            .node_ids()
            .iter()
            .filter(|&&n| n != home)
            .map(|&n| c.addr(n).expect("addr"))
            .collect();
        let b = others.join(",");
        let tracker = Tracker::default();
        let member = async |name: &str| {
            let pool = common::pool_with(&b, Duration::from_secs(30)).await;
            let cfg = fault_config(&group, &topic);
            let range = vec![std::sync::Arc::new(RangeAssignor) as _];
            Member::start_in(name, pool, cfg, range, OnRevoke::Ack, tracker.clone())
        };
        let a = member("a").await;
        let m = member("m").await;
        wait_for(&[&a, &m], FORM, "formed", balanced(3, 6)).await;
        let before = a.snap().generation;
        let since = Instant::now();
        let hung = c.hang(home).expect("pause");
        let t = wait_for(
            &[&a, &m],
            2 * FAULT_SESSION,
            "formed again while the old coordinator hangs",
            balanced_after(3, 6, before),
        )
        .await;
        eprintln!("node {home} hung: formed again after {t:?}");
        assert!(c.is_running(home), "node {home} still hung");
        drop(hung);
        let o = tracker.lock().unwrap().clone();
        o.assert_clean();
        for x in ["a", "m"] {
            let lost: Vec<_> = o
                .of(x, since)
                .iter()
                .filter(|l| matches!(l.event, Seen::Lost(_)))
                .map(|l| l.at - since)
                .collect();
            assert!(
                matches!(lost[..], [at] if at >= FAULT_SESSION - HEARTBEAT),
                "{x} lost its partitions once, at the session timeout: {lost:?}"
            );
        }
        for x in [a, m] {
            assert!(x.close().await, "close within its bound");
        }
    })
    .await
    .expect("bounded");
}
