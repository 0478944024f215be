//! The driver's own deadlines, on Apache Kafka 4.4.0 first (the node this
//! binary shares; `KAFKA_BOOTSTRAP` too when set):
//!
//! - the cooperative revoke budget: a Revoked event carries a deadline; an
//!   application that never acks does not hold the group past it, and the
//!   revoked partitions reach their new owner no sooner than it;
//! - `max.poll.interval.ms`: an application that stops polling leaves the
//!   group (a LeftGroup{PollTimeout} event and a LeaveGroup) one interval
//!   after its last poll, not sooner, not later; the other member takes
//!   over before the session timeout could have removed the leaver, in
//!   one generation; the next poll rejoins.
//!
//! Not on the librdkafka 2.0.2 mock: its fixed 5 s rebalance rounds hide
//! a LeaveGroup behind its own delay and its SyncGroup race multiplies a
//! KIP-429 hand-over's rounds (docs/ARCHITECTURE.md).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    HEARTBEAT, MOCK_ROUNDS, Member, SESSION, Seen, Tracker, balanced, brokers, config, on_each,
    pool, wait_for,
};
use krust_group::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use krust_group::driver::group;
use krust_group::membership::State;
use krust_group::{GroupEvent, LeaveReason};
use krust_testkit::{Broker, BrokerKind, Capability};

fn sticky() -> Vec<Arc<dyn Assignor>> {
    vec![Arc::new(CooperativeStickyAssignor)]
}

const BUDGET: Duration = Duration::from_secs(2);

async fn revoke_budget(broker: &dyn Broker, topic: &str, group_id: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let mut cfg = config(group_id, topic);
    cfg.revoke_budget = BUDGET;
    // A member whose application never acks a revoke.
    let (mut handle, task) = group(pool(&b).await, cfg, sticky());
    let task = tokio::spawn(task.run());
    loop {
        match handle.next_event().await.expect("event") {
            GroupEvent::Assigned { owned, .. } if owned.len() == 6 => break,
            _ => {}
        }
    }
    let before = handle.membership().generation;
    let tracker = Tracker::default();
    let other =
        Member::start_with("o", &b, config(group_id, topic), sticky(), tracker.clone()).await;
    let (deadline, got) = loop {
        if let GroupEvent::Revoked { deadline, .. } = handle.next_event().await.expect("event") {
            break (deadline, Instant::now());
        }
    };
    let budget = deadline.saturating_duration_since(got);
    assert!(
        budget > BUDGET - Duration::from_millis(500) && budget <= BUDGET,
        "{name}: the deadline is the revoke budget away: {budget:?}"
    );
    // No revoke_done: the driver proceeds at the deadline and the partitions
    // reach the other member in the follow-up rebalance.
    wait_for(
        &[&other],
        Duration::from_secs(30),
        "the other member got three",
        |s| s[0].owned.len() == 3,
    )
    .await;
    let handed = tracker
        .lock()
        .unwrap()
        .of("o", got)
        .iter()
        .find_map(|l| match &l.event {
            Seen::Assigned { partitions, .. } if !partitions.is_empty() => Some(l.at),
            _ => None,
        })
        .expect("the other member's assignment");
    eprintln!(
        "{name}: the revoked partitions reached the other member {:?} after the deadline",
        handed.saturating_duration_since(deadline)
    );
    assert!(
        handed >= deadline,
        "{name}: handed over {:?} before the deadline",
        deadline - handed
    );
    // Proceeding at the deadline means the follow-up JoinGroup goes out
    // then; a member that did not would hold the round until the
    // coordinator evicts it at the rebalance timeout (10 s).
    assert!(
        handed - deadline < Duration::from_secs(3),
        "{name}: handed over {:?} after the deadline",
        handed - deadline
    );
    let snap = handle.membership();
    assert_eq!(snap.owned.len(), 3);
    assert_eq!(
        snap.generation,
        before + 2,
        "{name}: KIP-429's two rebalances"
    );
    tracker.lock().unwrap().assert_clean();
    assert!(other.close().await);
    handle.close(Duration::from_secs(5)).await.expect("close");
    task.await.expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_revoke_not_acked_proceeds_at_the_deadline() {
    on_each(
        brokers(
            Capability::ClassicGroups,
            &[
                MOCK_ROUNDS,
                (
                    BrokerKind::NoidaDb,
                    "noida-db 0.2.3 fences both members after a cooperative generation",
                ),
                (
                    BrokerKind::Tansu,
                    "Tansu 0.6.0 takes five 3 s rounds for a KIP-429 hand-over (group_brokers.rs)",
                ),
            ],
        ),
        revoke_budget,
    )
    .await;
}

const POLL_INTERVAL: Duration = Duration::from_secs(3);

async fn poll_timeout(broker: &dyn Broker, topic: &str, group_id: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let tracker = Tracker::default();
    let steady = Member::start("s", &b, config(group_id, topic), tracker.clone()).await;
    wait_for(
        &[&steady],
        Duration::from_secs(30),
        "steady alone",
        balanced(6, 6),
    )
    .await;
    let mut cfg = config(group_id, topic);
    cfg.max_poll_interval = Some(POLL_INTERVAL);
    let (mut handle, task) = group(pool(&b).await, cfg, vec![Arc::new(RangeAssignor)]);
    let started = Instant::now();
    let task = tokio::spawn(task.run());
    // Poll until the member is in the group and well past one interval
    // since it started: a driver that counted from the start, or that
    // ignored polls, would leave while this still polls.
    let mut last_poll;
    loop {
        handle.poll();
        last_poll = Instant::now();
        while let Some(e) = handle.try_next_event() {
            assert!(
                !matches!(e, GroupEvent::LeftGroup { .. } | GroupEvent::Revoked { .. }),
                "{name}: {e:?} while the application polls"
            );
        }
        let snap = handle.membership();
        if snap.state == State::Stable
            && snap.owned.len() == 3
            && started.elapsed() > POLL_INTERVAL + Duration::from_secs(1)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: joined: {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let before = steady.snap().generation;
    // No poll from now on: the member leaves one interval after the last.
    let revoked = match handle.next_event().await.expect("event") {
        GroupEvent::Revoked { .. } => {
            handle.revoke_done();
            Instant::now()
        }
        e => panic!("{name}: {e:?} before the poll timeout"),
    };
    let left = match handle.next_event().await.expect("event") {
        GroupEvent::LeftGroup { reason } => {
            assert_eq!(reason, LeaveReason::PollTimeout);
            Instant::now()
        }
        e => panic!("{name}: {e:?} instead of LeftGroup"),
    };
    let waited = revoked - last_poll;
    eprintln!("{name}: left {waited:?} after the last poll");
    assert!(
        waited >= POLL_INTERVAL,
        "{name}: left {waited:?} after the last poll, before max.poll.interval.ms"
    );
    assert!(
        waited < POLL_INTERVAL + Duration::from_secs(1),
        "{name}: left {waited:?} after the last poll"
    );
    assert!(
        left - revoked < Duration::from_secs(1),
        "{name}: LeaveGroup answered"
    );
    // The partitions go back to the group in one rebalance. Without a
    // LeaveGroup the coordinator would wait for the leaver's session,
    // which its last heartbeat (at most one interval before the leave
    // began) keeps alive until well after this.
    wait_for(
        &[&steady],
        SESSION,
        "steady member owns all",
        balanced(6, 6),
    )
    .await;
    let taken = Instant::now() - revoked;
    eprintln!("{name}: the steady member took over {taken:?} after the leave began");
    assert!(
        taken < SESSION - HEARTBEAT - Duration::from_millis(500),
        "{name}: took over {taken:?} after the leave: the session ran out, no LeaveGroup"
    );
    assert_eq!(
        steady.snap().generation,
        before + 1,
        "{name}: one rebalance"
    );
    // The next poll rejoins (and the application keeps polling).
    let rejoin = Instant::now();
    loop {
        handle.poll();
        while handle.try_next_event().is_some() {}
        let m = handle.membership();
        if m.state == State::Stable && m.owned.len() == 3 && steady.owned().len() == 3 {
            break;
        }
        assert!(
            rejoin.elapsed() < Duration::from_secs(30),
            "{name}: rejoined: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracker.lock().unwrap().assert_clean();
    assert!(steady.close().await);
    handle.close(Duration::from_secs(5)).await.expect("close");
    task.await.expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_poll_within_max_poll_interval_leaves_the_group() {
    on_each(
        brokers(Capability::ClassicGroups, &[MOCK_ROUNDS]),
        poll_timeout,
    )
    .await;
}
