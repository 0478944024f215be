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
//! - a revoke held longer than `session.timeout.ms`: the member heartbeats
//!   throughout, so it stays in the group (same member id, nothing lost)
//!   and the rebalance completes only after it acks (Kafka only: noida-db
//!   never expires a session, so it cannot tell).
//! - a JoinGroup held by the coordinator longer than the request timeout
//!   (but within the rebalance timeout) is waited for: it does not time out
//!   and take the coordinator's connection down (Kafka only: a timing of
//!   the coordinator's, not a behaviour the emulators add).
//! - a custom assignor that panics ends the membership with a typed error
//!   the application receives (`GroupEvent::Fatal`), at once: the task
//!   that ran it is not dropped silently with the machine waiting forever.
//!
//! Not on the librdkafka 2.0.2 mock: its fixed 5 s rebalance rounds hide
//! a LeaveGroup behind its own delay and its SyncGroup race multiplies a
//! KIP-429 hand-over's rounds (docs/ARCHITECTURE.md).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    HEARTBEAT, MOCK_ROUNDS, Member, OnRevoke, SESSION, Seen, Tracker, balanced, brokers, config,
    on_each, pool, pool_with, wait_for,
};
use krust_group::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use krust_group::driver::group;
use krust_group::membership::State;
use krust_group::{GroupError, GroupEvent, LeaveReason};
use krust_net::CoordinatorType;
use krust_testkit::{Broker, BrokerKind, Capability, Kafka};

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

/// How long the application holds a revoke: well past the session (6 s).
const HOLD: Duration = Duration::from_secs(10);

/// A member holds its revoke for [`HOLD`] while another joins. It must
/// keep heartbeating meanwhile (as Java's heartbeat thread does during
/// `onPartitionsRevoked`): without, the coordinator expires it after one
/// session and hands everything to the newcomer while it still commits.
async fn revoke_held_past_the_session(
    broker: &dyn Broker,
    topic: &str,
    group_id: &str,
    assignors: fn() -> Vec<Arc<dyn Assignor>>,
    generations: i32,
) {
    let b = broker.bootstrap();
    let name = broker.name();
    let cfg = || {
        let mut c = config(group_id, topic);
        // The coordinator waits this long for the revoking member's
        // JoinGroup (eager), and the budget outlasts the hold.
        c.rebalance_timeout = Duration::from_secs(30);
        c.revoke_budget = Duration::from_secs(30);
        c
    };
    let (mut handle, task) = group(pool(&b).await, cfg(), assignors());
    let task = tokio::spawn(task.run());
    loop {
        match handle.next_event().await.expect("event") {
            GroupEvent::Assigned { owned, .. } if owned.len() == 6 => break,
            GroupEvent::Assigned { .. } => {}
            e => panic!("{name}: {e:?} before the first assignment"),
        }
    }
    let me = handle.membership();
    let tracker = Tracker::default();
    let other = Member::start_with("o", &b, cfg(), assignors(), tracker.clone()).await;
    let revoked = loop {
        match handle.next_event().await.expect("event") {
            GroupEvent::Revoked { partitions, .. } => break partitions,
            GroupEvent::Assigned { .. } => {}
            e => panic!("{name}: {e:?} instead of a revoke"),
        }
    };
    let got = Instant::now();
    if let Ok(e) = tokio::time::timeout(HOLD, handle.next_event()).await {
        panic!(
            "{name}: {e:?} {:?} into a revoke held for {HOLD:?}",
            got.elapsed()
        );
    }
    let snap = handle.membership();
    assert_eq!(snap.member_id, me.member_id, "{name}: same member");
    assert_eq!(snap.revoking, revoked, "{name}: still revoking");
    assert_eq!(snap.state, State::Revoking, "{name}");
    let done = Instant::now();
    handle.revoke_done();
    // The rebalance completes now, with this member in it.
    let mut after = Vec::new();
    loop {
        if let Ok(e) = tokio::time::timeout(Duration::from_millis(100), handle.next_event()).await {
            after.push(e.expect("event"));
        }
        let (m, o) = (handle.membership(), other.snap());
        if m.state == State::Stable
            && o.state == State::Stable
            && m.generation == o.generation
            && m.owned.len() == 3
            && o.owned.len() == 3
        {
            break;
        }
        assert!(
            done.elapsed() < Duration::from_secs(30),
            "{name}: not balanced after the revoke: {m:?} {o:?}"
        );
    }
    assert!(
        after
            .iter()
            .all(|e| matches!(e, GroupEvent::Assigned { .. })),
        "{name}: after the revoke: {after:?}"
    );
    let snap = handle.membership();
    assert_eq!(
        snap.member_id, me.member_id,
        "{name}: the member was not replaced"
    );
    assert_eq!(snap.generation, me.generation + generations, "{name}");
    let t = tracker.lock().unwrap().clone();
    t.assert_clean();
    let handed = t
        .of("o", got)
        .iter()
        .find_map(|l| match &l.event {
            Seen::Assigned { partitions, .. } if !partitions.is_empty() => Some(l.at),
            _ => None,
        })
        .expect("the other member's assignment");
    assert!(
        handed >= done,
        "{name}: the newcomer got partitions {:?} before the revoke was acked",
        done - handed
    );
    assert!(other.close().await);
    handle.close(Duration::from_secs(5)).await.expect("close");
    task.await.expect("task");
}

/// Eager: the coordinator waits in PreparingRebalance for the member's
/// JoinGroup and answers its heartbeats REBALANCE_IN_PROGRESS; one
/// generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_revoke_held_past_the_session_keeps_the_member() {
    on_each(vec![Box::new(Kafka::shared())], async |b, t, g| {
        revoke_held_past_the_session(b, t, g, || vec![Arc::new(RangeAssignor)], 1).await
    })
    .await;
}

/// Cooperative: the revoke comes after the SyncGroup of the new generation
/// (the group is stable at the coordinator), then KIP-429's second
/// rebalance hands the partitions over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_revoke_held_past_the_session_keeps_the_member() {
    on_each(vec![Box::new(Kafka::shared())], async |b, t, g| {
        revoke_held_past_the_session(b, t, g, sticky, 2).await
    })
    .await;
}

/// The request timeout of the newcomer's pool, shorter than the time the
/// coordinator holds its JoinGroup ([`JOIN_HELD`]).
const SHORT_REQUEST: Duration = Duration::from_secs(2);
/// How long the member in the group holds its revoke, so the coordinator
/// holds the newcomer's JoinGroup that long (eager: until every member
/// rejoined). Within the session: this is not about heartbeats.
const JOIN_HELD: Duration = Duration::from_secs(5);

/// A JoinGroup waits for the rebalance (`rebalance.timeout.ms` + 5 s, as
/// Java), not the request timeout. A JoinGroup sent with the 2 s request
/// timeout would time out while the coordinator holds it, and a request
/// that times out closes its connection.
async fn join_held_past_the_request_timeout(broker: &dyn Broker, topic: &str, group_id: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let range = || -> Vec<Arc<dyn Assignor>> { vec![Arc::new(RangeAssignor)] };
    let (mut handle, task) = group(pool(&b).await, config(group_id, topic), range());
    let task = tokio::spawn(task.run());
    loop {
        match handle.next_event().await.expect("event") {
            GroupEvent::Assigned { owned, .. } if owned.len() == 6 => break,
            GroupEvent::Assigned { .. } => {}
            e => panic!("{name}: {e:?} before the first assignment"),
        }
    }
    let before = handle.membership().generation;
    let newcomer = pool_with(&b, SHORT_REQUEST).await;
    let conn = newcomer
        .coordinator(CoordinatorType::Group, group_id)
        .await
        .expect("the coordinator");
    let tracker = Tracker::default();
    let other = Member::start_in(
        "o",
        newcomer,
        config(group_id, topic),
        range(),
        OnRevoke::Ack,
        tracker.clone(),
    );
    match handle.next_event().await.expect("event") {
        GroupEvent::Revoked { .. } => {}
        e => panic!("{name}: {e:?} instead of a revoke"),
    }
    tokio::time::sleep(JOIN_HELD).await;
    handle.revoke_done();
    loop {
        while handle.try_next_event().is_some() {}
        let (m, o) = (handle.membership(), other.snap());
        if m.state == State::Stable
            && o.state == State::Stable
            && m.generation == o.generation
            && o.owned.len() == 3
        {
            break;
        }
        assert!(
            !conn.is_closed(),
            "{name}: the coordinator connection closed while the JoinGroup was held"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !conn.is_closed(),
        "{name}: the coordinator connection closed: the held JoinGroup timed out"
    );
    assert_eq!(
        other.snap().generation,
        before + 1,
        "{name}: the newcomer joined in one rebalance"
    );
    let t = tracker.lock().unwrap().clone();
    t.assert_clean();
    assert_eq!(
        t.log.len(),
        1,
        "{name}: the newcomer's only event is its assignment: {:?}",
        t.log
    );
    assert!(other.close().await);
    handle.close(Duration::from_secs(5)).await.expect("close");
    task.await.expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_group_held_past_the_request_timeout_is_waited_for() {
    on_each(
        vec![Box::new(Kafka::shared())],
        join_held_past_the_request_timeout,
    )
    .await;
}

/// An assignor whose `assign` panics, as a buggy custom assignor might.
struct Panicking;

impl Assignor for Panicking {
    fn name(&self) -> &str {
        "panicking"
    }
    fn assign(
        &self,
        _: &krust_group::assignor::ClusterView,
        _: &[krust_group::assignor::MemberSubscription],
    ) -> Result<krust_group::assignor::GroupAssignment, krust_group::assignor::AssignError> {
        panic!("custom assignor bug");
    }
}

/// How soon the application must hear of the panic: well before the
/// machine's own last-resort deadline for an assignment (rebalance timeout
/// + session timeout, 16 s here), which would end it with another error.
const PANIC_TOLD: Duration = Duration::from_secs(8);

/// The leader's assignor panics: the membership ends with
/// `GroupError::Panicked` naming the assignor and its message, the task
/// stops, and nothing was assigned.
async fn assignor_panics(broker: &dyn Broker, topic: &str, group_id: &str) {
    let name = broker.name();
    let (mut handle, task) = group(
        pool(&broker.bootstrap()).await,
        config(group_id, topic),
        vec![Arc::new(Panicking)],
    );
    let task = tokio::spawn(task.run());
    let e = match tokio::time::timeout(PANIC_TOLD, handle.next_event()).await {
        Ok(Some(GroupEvent::Fatal(e))) => e,
        Ok(other) => panic!("{name}: {other:?} instead of the assignor's panic"),
        Err(_) => panic!(
            "{name}: no event within {PANIC_TOLD:?} of a panicking assignor: {:?}",
            handle.membership()
        ),
    };
    match &e {
        GroupError::Panicked { task, message, .. } => {
            assert!(task.contains("panicking"), "{name}: {e}");
            assert_eq!(message, "custom assignor bug", "{name}: {e}");
        }
        other => panic!("{name}: {other:?}"),
    }
    assert!(e.to_string().contains("custom assignor bug"), "{name}: {e}");
    assert_eq!(handle.membership().state, State::Fatal, "{name}");
    assert!(handle.membership().owned.is_empty(), "{name}");
    assert!(
        handle.next_event().await.is_none(),
        "{name}: the task stops"
    );
    task.await.expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_assignor_ends_the_membership_with_a_typed_error() {
    on_each(vec![Box::new(Kafka::shared())], assignor_panics).await;
}
