//! The driver's own deadlines: the cooperative revoke budget (a Revoked
//! event carries a deadline; an application that never acks does not hold
//! the group past it), on Tansu, and `max.poll.interval.ms` (no poll: a
//! LeftGroup{PollTimeout} event and a LeaveGroup, so the other member takes
//! over well before the session timeout), on the librdkafka mock.
//!
//! The revoke budget is not checked on the 2.0.2 mock: a KIP-429 hand-over
//! needs two rebalances there, and its SyncGroup race (a follower whose
//! SyncGroup comes after the leader's gets INVALID_REQUEST and rejoins,
//! each round 5 s; see group_brokers.rs) once kept this test at generation
//! 8 past its 30 s wait in CI. Tansu answers late followers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Member, Tracker, config, pool, wait_for};
use krust_group::assignor::{Assignor, CooperativeStickyAssignor};
use krust_group::driver::group;
use krust_group::{GroupEvent, LeaveReason};
use krust_testkit::{Broker, MockCluster, Tansu};

const TOPIC: &str = "krust-group-budgets";
const BOUND: Duration = Duration::from_secs(90);

fn sticky() -> Vec<Arc<dyn Assignor>> {
    vec![Arc::new(CooperativeStickyAssignor)]
}

async fn revoke_budget() {
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 6).expect("create topic");
    let b = tansu.bootstrap();
    let mut cfg = config("g-budget", TOPIC);
    cfg.revoke_budget = Duration::from_secs(2);
    // A member whose application never acks a revoke.
    let (mut handle, task) = group(pool(&b).await, cfg, sticky());
    let task = tokio::spawn(task.run());
    loop {
        match handle.next_event().await.expect("event") {
            GroupEvent::Assigned { owned, .. } if owned.len() == 6 => break,
            _ => {}
        }
    }
    let tracker = Tracker::default();
    let other = Member::start_with("o", &b, config("g-budget", TOPIC), sticky(), tracker).await;
    let (deadline, got) = loop {
        if let GroupEvent::Revoked { deadline, .. } = handle.next_event().await.expect("event") {
            break (deadline, Instant::now());
        }
    };
    let budget = deadline.saturating_duration_since(got);
    assert!(
        budget > Duration::from_millis(1500) && budget <= Duration::from_secs(2),
        "the deadline is the revoke budget away: {budget:?}"
    );
    // No revoke_done: the driver proceeds at the deadline and the partitions
    // reach the other member in the follow-up rebalance.
    wait_for(
        &[&other],
        Duration::from_secs(60),
        "the other member got three",
        |s| s[0].owned.len() == 3,
    )
    .await;
    let took = got.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "the hand-over waited for the budget: {took:?}"
    );
    assert_eq!(handle.membership().owned.len(), 3);
    assert!(other.close().await);
    handle.close(Duration::from_secs(5)).await.expect("close");
    task.await.expect("task");
}

async fn poll_timeout() {
    let mock = MockCluster::start(1, &[(TOPIC, 6)]);
    let b = mock.bootstrap();
    let tracker = Tracker::default();
    let steady = Member::start("s", &b, config("g-poll", TOPIC), tracker.clone()).await;
    let mut cfg = config("g-poll", TOPIC);
    cfg.max_poll_interval = Some(Duration::from_secs(3));
    let (mut handle, task) = group(
        pool(&b).await,
        cfg,
        vec![Arc::new(krust_group::assignor::RangeAssignor)],
    );
    let task = tokio::spawn(task.run());
    let started = Instant::now();
    wait_for(&[&steady], Duration::from_secs(30), "group of two", |s| {
        s[0].owned.len() == 3
    })
    .await;
    // Never poll: the member leaves after max.poll.interval.ms.
    let left = loop {
        match handle.next_event().await.expect("event") {
            GroupEvent::Revoked { .. } => handle.revoke_done(),
            GroupEvent::LeftGroup { reason } => break reason,
            _ => {}
        }
    };
    assert_eq!(left, LeaveReason::PollTimeout);
    let at = started.elapsed();
    assert!(
        at >= Duration::from_secs(3),
        "left after the interval: {at:?}"
    );
    // The partitions go back to the group: the steady member ends up with
    // all six. (The mock holds the rejoin for its own rebalance delay, so
    // this does not by itself tell the LeaveGroup from the session timeout;
    // membership_machine.rs checks the LeaveGroup request.)
    wait_for(
        &[&steady],
        Duration::from_secs(30),
        "steady member owns all",
        |s| s[0].owned.len() == 6,
    )
    .await;
    assert!(steady.close().await);
    drop(handle);
    task.await.expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_revoke_not_acked_proceeds_at_the_deadline() {
    tokio::time::timeout(BOUND, revoke_budget())
        .await
        .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_poll_within_max_poll_interval_leaves_the_group() {
    tokio::time::timeout(BOUND, poll_timeout())
        .await
        .expect("bounded");
}
