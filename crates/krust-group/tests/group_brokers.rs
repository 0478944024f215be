//! Membership against real coordinators: Tansu (session.timeout.ms 6000,
//! since it holds JoinGroup for half of it), the librdkafka mock cluster and
//! (join / leave only) noida-db.
//! Three members split a 6-partition topic two each; one leaves and the
//! other two get three each; a member killed without LeaveGroup is dropped
//! after the session timeout. Ownership is tracked from the events: no
//! partition is ever assigned to a member while another owns it.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Member, SESSION, Tracker, balanced, config, wait_for};
use krust_group::assignor::{Assignor, CooperativeStickyAssignor};
use krust_testkit::{Broker, MockCluster, Tansu};

const TOPIC: &str = "krust-group";
/// Every test finishes well within this, or fails.
const BOUND: Duration = Duration::from_secs(200);

/// One rebalance round in librdkafka 2.0.2's mock coordinator
/// (`rd_kafka_mock_cgrp_rebalance` in src/rdkafka_mock_cgrp.c): a leave, or a
/// JoinGroup while the group is Up or Syncing, puts the group in Joining for
/// a fixed `session.timeout - 1000 ms`; members that rejoin sooner do not
/// cut it short.
const MOCK_ROUND: Duration = SESSION.saturating_sub(Duration::from_secs(1));

/// How long the two survivors may take to settle after a LeaveGroup. The
/// mock ends Syncing as soon as the leader's SyncGroup has brought every
/// member's assignment (`rd_kafka_mock_cgrp_sync_check`: assignment count ==
/// member count) and then answers a follower whose SyncGroup arrives after
/// the leader's with an error (state Up: INVALID_REQUEST, null MemberState),
/// so that follower must rejoin, which starts another round. Our leader
/// often wins that race (it assigns as soon as its JoinGroup reply arrives,
/// which the mock sends before the followers'), so some runs need several
/// rounds: seen up to five (25.7 s). Eighteen rounds fit, and the whole test
/// stays inside `BOUND` (90 s to form the group + this). Tansu and noida-db
/// settle in one round.
const AFTER_LEAVE: Duration = Duration::from_secs(MOCK_ROUND.as_secs() * 18 + 5);

fn tansu() -> Box<dyn Broker> {
    let t = Tansu::start();
    t.create_topic(TOPIC, 6).expect("create topic");
    Box::new(t)
}

fn mock() -> Box<dyn Broker> {
    Box::new(MockCluster::start(1, &[(TOPIC, 6)]))
}

async fn join_then_leave(broker: Box<dyn Broker>, group: &str) {
    let b = broker.bootstrap();
    let tracker = Tracker::default();
    let started = Instant::now();
    let mut members = Vec::new();
    for name in ["a", "b", "c"] {
        members.push(Member::start(name, &b, config(group, TOPIC), tracker.clone()).await);
    }
    let refs: Vec<&Member> = members.iter().collect();
    let t = wait_for(
        &refs,
        Duration::from_secs(90),
        "three members, two each",
        balanced(2, 6),
    )
    .await;
    eprintln!(
        "{:?}: three members stable with two partitions each after {t:?}",
        broker.kind()
    );
    let leaving = members.pop().expect("three");
    let left_at = Instant::now();
    assert!(leaving.close().await, "close finished within its bound");
    let refs: Vec<&Member> = members.iter().collect();
    let t = wait_for(
        &refs,
        AFTER_LEAVE,
        "two members, three each",
        balanced(3, 6),
    )
    .await;
    eprintln!(
        "{:?}: after a LeaveGroup, two members with three each after {t:?} ({:?} since close)",
        broker.kind(),
        left_at.elapsed()
    );
    let o = tracker.lock().unwrap();
    assert!(o.violations.is_empty(), "{:#?}", o.violations);
    assert!(o.fatal.is_empty(), "{:#?}", o.fatal);
    assert!(started.elapsed() < BOUND);
}

async fn killed_member_dropped_after_session(broker: Box<dyn Broker>, group: &str) {
    let b = broker.bootstrap();
    let tracker = Tracker::default();
    let a = Member::start("a", &b, config(group, TOPIC), tracker.clone()).await;
    let k = Member::start("k", &b, config(group, TOPIC), tracker.clone()).await;
    wait_for(
        &[&a, &k],
        Duration::from_secs(60),
        "two members, three each",
        balanced(3, 6),
    )
    .await;
    k.kill(&tracker);
    let t = wait_for(
        &[&a],
        Duration::from_secs(40),
        "survivor owns all six",
        balanced(6, 6),
    )
    .await;
    eprintln!(
        "{:?}: killed member's partitions reassigned after {t:?}",
        broker.kind()
    );
    // The coordinator heard from the killed member at most one heartbeat
    // interval before the kill, so it cannot expire it much sooner.
    assert!(
        t >= SESSION - Duration::from_secs(1),
        "dropped after {t:?}, before the session timeout"
    );
    {
        let o = tracker.lock().unwrap();
        assert!(o.violations.is_empty(), "{:#?}", o.violations);
        assert!(o.fatal.is_empty(), "{:#?}", o.fatal);
    }
    assert!(a.close().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_three_members_then_one_leaves() {
    tokio::time::timeout(BOUND, join_then_leave(tansu(), "g-join-leave"))
        .await
        .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_three_members_then_one_leaves() {
    tokio::time::timeout(BOUND, join_then_leave(mock(), "g-join-leave"))
        .await
        .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_killed_member_is_dropped_after_the_session_timeout() {
    tokio::time::timeout(
        BOUND,
        killed_member_dropped_after_session(tansu(), "g-kill"),
    )
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_killed_member_is_dropped_after_the_session_timeout() {
    tokio::time::timeout(BOUND, killed_member_dropped_after_session(mock(), "g-kill"))
        .await
        .expect("bounded");
}

/// KIP-429 against a real coordinator: a third member joins two that hold
/// three partitions each under cooperative-sticky; each of the two gives up
/// exactly the one partition that moves (never all of them), and the group
/// settles at two each after the follow-up rebalance.
async fn cooperative_third_member(broker: Box<dyn Broker>, group: &str) {
    let b = broker.bootstrap();
    let tracker = Tracker::default();
    let sticky = || -> Vec<Arc<dyn Assignor>> { vec![Arc::new(CooperativeStickyAssignor)] };
    let a = Member::start_with("a", &b, config(group, TOPIC), sticky(), tracker.clone()).await;
    let c = Member::start_with("c", &b, config(group, TOPIC), sticky(), tracker.clone()).await;
    wait_for(
        &[&a, &c],
        Duration::from_secs(60),
        "two members, three each",
        balanced(3, 6),
    )
    .await;
    let before = (a.owned(), c.owned());
    tracker.lock().unwrap().revoked.clear();
    let started = Instant::now();
    let d = Member::start_with("d", &b, config(group, TOPIC), sticky(), tracker.clone()).await;
    let t = wait_for(
        &[&a, &c, &d],
        Duration::from_secs(60),
        "three members, two each",
        balanced(2, 6),
    )
    .await;
    eprintln!(
        "{:?}: cooperative hand-over to a third member took {t:?} ({:?} with its start)",
        broker.kind(),
        started.elapsed()
    );
    assert!(
        a.owned().is_subset(&before.0),
        "a kept what it did not give up"
    );
    assert!(
        c.owned().is_subset(&before.1),
        "c kept what it did not give up"
    );
    {
        let o = tracker.lock().unwrap();
        assert!(o.violations.is_empty(), "{:#?}", o.violations);
        assert!(o.fatal.is_empty(), "{:#?}", o.fatal);
        for (m, ps) in &o.revoked {
            assert_eq!(ps.len(), 1, "{m} revoked {ps:?}: only the moved partition");
        }
    }
    for m in [a, c, d] {
        assert!(m.close().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_cooperative_sticky_hands_over_only_moved_partitions() {
    tokio::time::timeout(BOUND, cooperative_third_member(tansu(), "g-coop"))
        .await
        .expect("bounded");
}

// Not run on the librdkafka 2.0.2 mock: its coordinator completes a sync as
// soon as the leader's SyncGroup arrives and discards the assignments, so a
// follower whose SyncGroup comes later gets INVALID_REQUEST and must rejoin
// (rdkafka_mock_cgrp.c at v2.0.2), each rejoin costing a fixed 5 s "Joining"
// round. KIP-429's two rebalances multiply that race until a run can spend
// 60 s at generation 13 with every member still joining. A real coordinator
// answers late followers, so the hand-over is checked on Tansu (above); the
// eager join/leave paths still run on the mock with waits derived from its
// rule.

/// KIP-345: a static member closes without LeaveGroup, so the coordinator
/// keeps its partitions for it (no rebalance: the other member's partitions
/// and generation stay put) until it comes back with the same
/// `group.instance.id` within the session timeout.
async fn static_member_restarts_without_a_rebalance(broker: Box<dyn Broker>, group: &str) {
    let b = broker.bootstrap();
    let tracker = Tracker::default();
    let mut stat = config(group, TOPIC);
    stat.group_instance_id = Some("static-a".into());
    let a = Member::start("a", &b, stat.clone(), tracker.clone()).await;
    let d = Member::start("d", &b, config(group, TOPIC), tracker.clone()).await;
    wait_for(
        &[&a, &d],
        Duration::from_secs(60),
        "two members, three each",
        balanced(3, 6),
    )
    .await;
    let (a_owned, d_snap) = (a.owned(), d.snap());
    assert!(a.close().await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        d.snap(),
        d_snap,
        "no rebalance while the static member is away"
    );
    let a = Member::start("a", &b, stat, tracker.clone()).await;
    wait_for(
        &[&a, &d],
        Duration::from_secs(30),
        "static member back",
        balanced(3, 6),
    )
    .await;
    assert_eq!(
        a.owned(),
        a_owned,
        "the static member gets its partitions back"
    );
    assert_eq!(d.owned(), d_snap.owned);
    {
        let o = tracker.lock().unwrap();
        assert!(o.violations.is_empty(), "{:#?}", o.violations);
        assert!(o.fatal.is_empty(), "{:#?}", o.fatal);
    }
    assert!(a.close().await);
    assert!(d.close().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_static_member_restarts_without_a_rebalance() {
    tokio::time::timeout(
        BOUND,
        static_member_restarts_without_a_rebalance(tansu(), "g-static"),
    )
    .await
    .expect("bounded");
}

// Not run on the librdkafka 2.0.2 mock: its JoinGroup handler reads
// GroupInstanceId and drops it (rd_kafka_mock_cgrp_member_add takes no
// instance id before later releases), so a restarted static member is a new
// dynamic member there and its partitions depend on the member-id order. A
// CI run caught exactly that (the member came back with 3..5).

/// noida-db runs the eager join / leave and static-member scenarios, not the
/// cooperative hand-over: under cooperative-sticky its coordinator was seen
/// handing the leader stale owned partitions and then fencing both members
/// right after a generation completed (not yet understood; the same test
/// passes on Tansu).
fn noida() -> Box<dyn Broker> {
    let n = krust_testkit::NoidaDb::start();
    Broker::create_topic(&n, TOPIC, 6).expect("create topic");
    Box::new(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noida_three_members_then_one_leaves() {
    tokio::time::timeout(BOUND, join_then_leave(noida(), "g-join-leave"))
        .await
        .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noida_static_member_restarts_without_a_rebalance() {
    tokio::time::timeout(
        BOUND,
        static_member_restarts_without_a_rebalance(noida(), "g-static"),
    )
    .await
    .expect("bounded");
}
