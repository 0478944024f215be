//! KIP-848 memberships (`group.protocol=consumer`) against Apache Kafka
//! 4.4.0's group coordinator: the broker assigns, members reconcile. Member
//! epochs are per member here (not one generation for the group), so a
//! group is settled when every member is stable with its share, the shares
//! disjoint and covering the topic.

mod common;

use std::time::{Duration, Instant};

use common::{Member, Seen, Tracker, commit_as, config, settled, wait_for};
use krust_codec::generated::ConsumerGroupHeartbeatRequest;
use krust_group::{GroupProtocol, MembershipConfig};
use krust_net::CoordinatorType;
use krust_testkit::{Broker, Kafka, KafkaVersion, MockCluster, MockVersion, unique};

/// How long a group may take to settle (a wedged reconciliation, not a slow
/// one, is what this catches: the broker assigns at once in the testkit).
const SETTLE: Duration = Duration::from_secs(30);

/// The test node's `group.consumer.session.timeout.ms` and
/// `group.consumer.heartbeat.interval.ms` (krust-testkit).
const BROKER_SESSION: Duration = Duration::from_secs(6);
const BROKER_HEARTBEAT: Duration = Duration::from_millis(500);

fn consumer(group: &str, topic: &str) -> MembershipConfig {
    let mut c = config(group, topic);
    c.group_protocol = GroupProtocol::Consumer;
    c.remote_assignor = Some("uniform".into());
    c
}

/// One member takes all six partitions; a second joins and the first gives
/// up three (revoked, then released by its heartbeat); the first commits at
/// its member epoch (OffsetCommit v9, which the broker checks against the
/// member); when the second leaves, the first takes all six back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_the_partitions_and_take_them_back_when_one_leaves() {
    split_and_take_back(Kafka::shared()).await;
}

/// The same on librdkafka 2.12.1's mock cluster, whose KIP-848 coordinator
/// is the one rust-rdkafka's `mocking` module runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_the_librdkafka_2_12_mock() {
    let mock = MockCluster::start_version(MockVersion::V2_12, 1, &[]);
    split_and_take_back(&mock).await;
}

async fn split_and_take_back(kafka: &dyn Broker) {
    common::trace_to_stderr();
    let b = kafka.bootstrap();
    let topic = common::topic(kafka, "kip848-split", 6);
    let group = unique("kip848-split");
    let tracker = Tracker::default();

    let a = Member::start("a", &b, consumer(&group, &topic), tracker.clone()).await;
    wait_for(&[&a], SETTLE, "a alone", settled(6, 6)).await;
    let first = a.snap();
    assert_eq!(
        first.member_id.len(),
        22,
        "a client-made member id: {first:?}"
    );
    assert!(first.generation > 0, "a member epoch: {first:?}");

    let c = Member::start("c", &b, consumer(&group, &topic), tracker.clone()).await;
    wait_for(&[&a, &c], SETTLE, "a and c", settled(3, 6)).await;
    let a_now = a.snap();
    assert_eq!(a_now.member_id, first.member_id, "the id is kept");
    assert!(
        a_now.generation > first.generation,
        "{a_now:?} after {first:?}"
    );
    commit_as(&b, &a_now, 7)
        .await
        .unwrap_or_else(|e| panic!("a commits at its epoch {}: {e}", a_now.generation));

    assert!(c.close().await, "c closes within its bound");
    wait_for(&[&a], SETTLE, "a after c left", settled(6, 6)).await;
    assert!(a.close().await);
    tracker.lock().unwrap().assert_clean();
}

/// Three partitions each for `a` and `c`, settled.
async fn two_members(
    b: &str,
    group: &str,
    topic: &str,
    tracker: &Tracker,
    instance: [Option<&str>; 2],
) -> (Member, Member) {
    let cfg = |i: Option<&str>| {
        let mut c = consumer(group, topic);
        c.group_instance_id = i.map(str::to_owned);
        c
    };
    let a = Member::start("a", b, cfg(instance[0]), tracker.clone()).await;
    let c = Member::start("c", b, cfg(instance[1]), tracker.clone()).await;
    wait_for(&[&a, &c], SETTLE, "a and c", settled(3, 6)).await;
    (a, c)
}

/// The events of `member` since `since` that moved partitions.
fn moves(tracker: &Tracker, member: &str, since: Instant) -> Vec<Seen> {
    let t = tracker.lock().unwrap();
    t.of(member, since)
        .iter()
        .map(|l| l.event.clone())
        .filter(|e| !matches!(e, Seen::Left))
        .collect()
}

/// A member killed (no leave heartbeat) keeps its partitions until its
/// session (the broker's `group.consumer.session.timeout.ms`, 6 s on the
/// test node) runs out; then the broker gives them to the other, which
/// loses nothing of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_members_partitions_move_at_its_session_end() {
    let kafka = Kafka::shared();
    let b = kafka.bootstrap();
    let topic = common::topic(kafka, "kip848-kill", 6);
    let group = unique("kip848-kill");
    let tracker = Tracker::default();
    let (a, c) = two_members(&b, &group, &topic, &tracker, [None, None]).await;
    let mine = a.owned();
    let killed = Instant::now();
    c.kill(&tracker);
    let t = wait_for(&[&a], SETTLE, "a after c died", settled(6, 6)).await;
    eprintln!("c's partitions reached a {t:?} after the kill");
    assert!(
        t >= BROKER_SESSION - BROKER_HEARTBEAT,
        "moved after {t:?}, before c's session ended"
    );
    let seen = moves(&tracker, "a", killed);
    assert!(
        seen.iter().all(|e| match e {
            Seen::Assigned { partitions, .. } => partitions.is_disjoint(&mine),
            _ => false,
        }),
        "a only gained: {seen:?}"
    );
    assert!(a.close().await);
    tracker.lock().unwrap().assert_clean();
}

/// A static member (group.instance.id) that closes leaves with epoch -2:
/// the broker keeps its assignment for it, and the same instance started
/// again within the session gets the same partitions, while the other
/// member sees no rebalance at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarted_gets_its_partitions_back_without_a_rebalance() {
    let kafka = Kafka::shared();
    let b = kafka.bootstrap();
    let topic = common::topic(kafka, "kip848-static", 6);
    let group = unique("kip848-static");
    let tracker = Tracker::default();
    let (a, c) = two_members(&b, &group, &topic, &tracker, [Some("i-a"), Some("i-c")]).await;
    let (a_had, c_had) = (a.owned(), c.owned());
    let since = Instant::now();
    assert!(c.close().await, "c closes within its bound");
    let mut again = consumer(&group, &topic);
    again.group_instance_id = Some("i-c".into());
    let c2 = Member::start("c2", &b, again, tracker.clone()).await;
    wait_for(&[&a, &c2], SETTLE, "a and c again", settled(3, 6)).await;
    assert_eq!(
        c2.owned(),
        c_had,
        "the restarted instance has its partitions"
    );
    assert_eq!(a.owned(), a_had);
    assert_eq!(moves(&tracker, "a", since), vec![], "a saw no rebalance");
    assert!(a.close().await && c2.close().await);
    tracker.lock().unwrap().assert_clean();
}

/// A second process with the instance id of a live static member is
/// refused UNRELEASED_INSTANCE_ID (fatal, as in Java: the id is still
/// someone's), and the live member keeps its partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_with_a_live_instance_id_is_refused() {
    let kafka = Kafka::shared();
    let b = kafka.bootstrap();
    let topic = common::topic(kafka, "kip848-dup", 6);
    let group = unique("kip848-dup");
    let tracker = Tracker::default();
    let mut cfg = consumer(&group, &topic);
    cfg.group_instance_id = Some("i-dup".into());
    let a = Member::start("a", &b, cfg.clone(), tracker.clone()).await;
    wait_for(&[&a], SETTLE, "a alone", settled(6, 6)).await;
    let since = Instant::now();
    let dup = Member::start("dup", &b, cfg, tracker.clone()).await;
    let deadline = Instant::now() + SETTLE;
    let fatal = loop {
        if let Some(f) = tracker.lock().unwrap().fatal.first().cloned() {
            break f;
        }
        assert!(Instant::now() < deadline, "dup was not refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        fatal.starts_with("dup: ") && fatal.contains("UNRELEASED_INSTANCE_ID"),
        "{fatal}"
    );
    assert!(dup.owned().is_empty());
    tokio::time::sleep(BROKER_HEARTBEAT * 3).await;
    assert_eq!(a.owned().len(), 6, "a keeps its partitions");
    assert_eq!(moves(&tracker, "a", since), vec![], "a saw no rebalance");
    assert!(a.close().await);
}

/// The broker removes a member behind its back (here: a leave heartbeat in
/// its name, as an operator's tool or the end of a session it missed
/// would): its next heartbeat is refused, it counts its partitions lost
/// (Lost, not Revoked: nothing is committed for them), a commit at its old
/// epoch is refused, and it rejoins at epoch 0 with the same member id.
/// The broker gave its partitions away before the member heard, so the
/// tracker may see them owned twice for up to a heartbeat; that overlap is
/// the fencing itself, and it is the only one allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_member_loses_its_partitions_and_rejoins() {
    let kafka = Kafka::shared();
    let b = kafka.bootstrap();
    let topic = common::topic(kafka, "kip848-fence", 6);
    let group = unique("kip848-fence");
    let tracker = Tracker::default();
    let (a, c) = two_members(&b, &group, &topic, &tracker, [None, None]).await;
    let old = c.snap();
    let since = Instant::now();
    leave_as(&b, &group, &old.member_id).await;
    let deadline = Instant::now() + SETTLE;
    while !moves(&tracker, "c", since)
        .iter()
        .any(|e| matches!(e, Seen::Lost(p) if *p == old.owned))
    {
        assert!(
            Instant::now() < deadline,
            "c never lost {:?}: {:?}",
            old.owned,
            moves(&tracker, "c", since)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = commit_as(&b, &old, 1).await;
    assert!(
        refused.is_err(),
        "a commit at the fenced epoch: {refused:?}"
    );
    wait_for(&[&a, &c], SETTLE, "a and c again", settled(3, 6)).await;
    let now = c.snap();
    assert_eq!(now.member_id, old.member_id, "rejoined with the same id");
    assert!(
        !moves(&tracker, "c", since)
            .iter()
            .any(|e| matches!(e, Seen::Revoked(_))),
        "lost, not revoked"
    );
    let t = tracker.lock().unwrap().clone();
    assert!(t.fatal.is_empty(), "{:?}", t.fatal);
    for v in &t.violations {
        assert!(
            old.owned.iter().any(|tp| v.starts_with(&format!("{tp} "))),
            "an overlap outside the fenced partitions: {v}"
        );
    }
    assert!(a.close().await && c.close().await);
}

/// A `group.remote.assignor` the broker does not have ends the membership
/// with the broker's UNSUPPORTED_ASSIGNOR and its message (fatal, as in
/// Java: retrying cannot help).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_remote_assignor_is_the_brokers_error() {
    let kafka = Kafka::shared();
    let b = kafka.bootstrap();
    let topic = common::topic(kafka, "kip848-assignor", 2);
    let group = unique("kip848-assignor");
    let tracker = Tracker::default();
    let mut cfg = consumer(&group, &topic);
    cfg.remote_assignor = Some("sticky-ish".into());
    let m = Member::start("m", &b, cfg, tracker.clone()).await;
    let started = Instant::now();
    let fatal = loop {
        if let Some(f) = tracker.lock().unwrap().fatal.first().cloned() {
            break f;
        }
        assert!(started.elapsed() < SETTLE, "no error: {:?}", m.snap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        fatal.contains("UNSUPPORTED_ASSIGNOR") && fatal.contains("sticky-ish"),
        "{fatal}"
    );
    assert!(m.owned().is_empty());
}

/// `group.protocol=consumer` against brokers without KIP-848's stable
/// heartbeat ends at once with an error that names the broker, what it
/// offers and the way out (`group.protocol=classic`), nothing retried:
/// Kafka 3.9.2 and librdkafka 2.0.2's mock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_the_consumer_protocol_is_named() {
    let kafka = Kafka::shared_version(KafkaVersion::V3_9);
    let mock = MockCluster::start(1, &[]);
    for broker in [kafka as &dyn Broker, &mock] {
        let b = broker.bootstrap();
        let topic = common::topic(broker, "kip848-old", 2);
        let group = unique("kip848-old");
        let tracker = Tracker::default();
        let started = Instant::now();
        let m = Member::start("m", &b, consumer(&group, &topic), tracker.clone()).await;
        let fatal = loop {
            if let Some(f) = tracker.lock().unwrap().fatal.first().cloned() {
                break f;
            }
            assert!(
                started.elapsed() < SETTLE,
                "{}: no error: {:?}",
                broker.name(),
                m.snap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        eprintln!("{}: {fatal} ({:?})", broker.name(), started.elapsed());
        assert!(
            fatal.contains("ConsumerGroupHeartbeat")
                && fatal.contains("group.protocol=classic")
                && fatal.contains(&b),
            "{}: {fatal}",
            broker.name()
        );
        assert!(m.owned().is_empty());
    }
}

/// A leave heartbeat (epoch -1) in the name of `member_id`, from a pool of
/// the test's own.
async fn leave_as(bootstrap: &str, group: &str, member_id: &str) {
    let pool = common::pool(bootstrap).await;
    let conn = pool
        .coordinator(CoordinatorType::Group, group)
        .await
        .expect("coordinator");
    let req = ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member_id.into(),
        member_epoch: -1,
        ..Default::default()
    };
    let r = conn.send_at(&req, 1).await.expect("leave heartbeat");
    assert_eq!(r.error_code, 0, "{r:?}");
}
