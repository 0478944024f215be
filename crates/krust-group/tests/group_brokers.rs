//! Membership against real coordinators, Apache Kafka 4.4.0 first (the node
//! this binary shares; `KAFKA_BOOTSTRAP` too when set), Kafka 3.9.2 (the
//! Scala group coordinator that 4.x replaced) for the join / leave and
//! static-member scenarios, and the emulators where they implement what is
//! checked. Topics and groups are unique per run: the Kafka node is shared.
//!
//! Each scenario counts generations rather than trusting wall time: a
//! group of members that arrive one after another takes at most one
//! generation per arrival, a LeaveGroup or an expired session exactly one
//! more, a KIP-429 hand-over exactly two, a static member's restart none.
//! Ownership is tracked from the events: no partition is ever assigned to
//! a member while another owns it.
//!
//! Not on the librdkafka 2.0.2 mock: its coordinator rebalances in fixed
//! `session.timeout.ms - 1 s` rounds and answers a follower whose
//! SyncGroup comes after the leader's with INVALID_REQUEST, so how many
//! generations a group takes there is chance (docs/ARCHITECTURE.md). It
//! stays where it adds coverage: injected errors (group_faults.rs) and
//! offsets (offsets.rs).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    HEARTBEAT, MOCK_ROUNDS, Member, OnRevoke, SESSION, Seen, Tracker, balanced, balanced_after,
    brokers, config, on_each, wait_for,
};
use krust_codec::ErrorCode;
use krust_group::TopicPartition;
use krust_group::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use krust_group::membership::State;
use krust_group::offsets::{self, OffsetAndMetadata};
use krust_testkit::{Broker, BrokerKind, Capability, Kafka, KafkaVersion};

/// How long a group of members may take to become stable (a wedged
/// coordinator, not a slow one, is what this catches).
const FORM: Duration = Duration::from_secs(40);

fn range() -> Vec<Arc<dyn Assignor>> {
    vec![Arc::new(RangeAssignor)]
}

fn sticky() -> Vec<Arc<dyn Assignor>> {
    vec![Arc::new(CooperativeStickyAssignor)]
}

/// The generation of the members (all equal once balanced).
fn generation(members: &[&Member]) -> i32 {
    members[0].snap().generation
}

/// Three members that start one after another split six partitions two
/// each within three generations; when one leaves (LeaveGroup) the other
/// two get three each in exactly one more generation, each revoking and
/// being assigned exactly once.
async fn join_then_leave(broker: &dyn Broker, topic: &str, group: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let tracker = Tracker::default();
    let mut members = Vec::new();
    for m in ["a", "b", "c"] {
        members.push(Member::start(m, &b, config(group, topic), tracker.clone()).await);
    }
    let refs: Vec<&Member> = members.iter().collect();
    let t = wait_for(&refs, FORM, "three members, two each", balanced(2, 6)).await;
    let formed = generation(&refs);
    let first = *tracker
        .lock()
        .unwrap()
        .generations()
        .first()
        .expect("an assignment");
    eprintln!("{name}: three members stable at generation {formed} (first {first}) after {t:?}");
    assert!(
        formed - first < 3,
        "{name}: three arrivals took generations {first}..={formed}"
    );
    let leaving = members.pop().expect("three");
    let left_at = Instant::now();
    assert!(leaving.close().await, "close finished within its bound");
    let refs: Vec<&Member> = members.iter().collect();
    let t = wait_for(
        &refs,
        FORM,
        "two members, three each",
        balanced_after(3, 6, formed),
    )
    .await;
    eprintln!("{name}: after a LeaveGroup, two members with three each after {t:?}");
    assert_eq!(
        generation(&refs),
        formed + 1,
        "{name}: one LeaveGroup, one generation"
    );
    let o = tracker.lock().unwrap().clone();
    o.assert_clean();
    for m in ["a", "b"] {
        let seen: Vec<&Seen> = o.of(m, left_at).iter().map(|l| &l.event).collect();
        assert!(
            matches!(
                seen[..],
                [Seen::Revoked(_), Seen::Assigned { generation, .. }] if *generation == formed + 1
            ),
            "{name}: {m} revokes once and is assigned once: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_then_one_leaves() {
    on_each(
        brokers(Capability::ClassicGroups, &[MOCK_ROUNDS]),
        join_then_leave,
    )
    .await;
}

/// The Scala group coordinator of Kafka 3.9 (4.0 replaced it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_3_9_three_members_then_one_leaves() {
    let kafka = Kafka::shared_version(KafkaVersion::V3_9);
    on_each(vec![Box::new(kafka)], join_then_leave).await;
}

/// A member killed without LeaveGroup keeps its partitions until its
/// session expires: the survivor gets them no sooner than
/// `session.timeout.ms` after the kill (less the heartbeat interval: the
/// coordinator last heard from it at most that long before), in exactly
/// one new generation.
async fn killed_member_dropped_after_session(broker: &dyn Broker, topic: &str, group: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let tracker = Tracker::default();
    let a = Member::start("a", &b, config(group, topic), tracker.clone()).await;
    let k = Member::start("k", &b, config(group, topic), tracker.clone()).await;
    wait_for(&[&a, &k], FORM, "two members, three each", balanced(3, 6)).await;
    let before = a.snap().generation;
    let killed = Instant::now();
    k.kill(&tracker);
    let t = wait_for(
        &[&a],
        SESSION + FORM,
        "survivor owns all six",
        balanced(6, 6),
    )
    .await;
    eprintln!("{name}: killed member's partitions reassigned after {t:?}");
    assert!(
        t >= SESSION - HEARTBEAT,
        "{name}: reassigned after {t:?}, before the session timeout"
    );
    // A survivor that did not rejoin at once would itself be evicted at the
    // rebalance timeout.
    assert!(
        t < SESSION + config(group, topic).rebalance_timeout,
        "{name}: reassigned after {t:?}: the survivor was slow to rejoin"
    );
    assert_eq!(
        a.snap().generation,
        before + 1,
        "{name}: one expired session, one generation"
    );
    let o = tracker.lock().unwrap().clone();
    o.assert_clean();
    let seen: Vec<&Seen> = o.of("a", killed).iter().map(|l| &l.event).collect();
    assert!(
        matches!(seen[..], [Seen::Revoked(_), Seen::Assigned { .. }]),
        "{name}: the survivor revokes once and is assigned once: {seen:?}"
    );
    assert!(a.close().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_is_dropped_after_the_session_timeout() {
    on_each(
        brokers(
            Capability::ClassicGroups,
            &[
                MOCK_ROUNDS,
                (
                    BrokerKind::NoidaDb,
                    "noida-db 0.2.3 never expires a member whose session ran out (offset_scenario.rs)",
                ),
            ],
        ),
        killed_member_dropped_after_session,
    )
    .await;
}

/// KIP-429: a third member joins two that hold three partitions each under
/// cooperative-sticky; each of the two gives up exactly the one partition
/// that moves (never all of them), in exactly two generations (the one
/// that revokes, the one that hands the revoked partitions over).
async fn cooperative_third_member(broker: &dyn Broker, topic: &str, group: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let tracker = Tracker::default();
    let a = Member::start_with("a", &b, config(group, topic), sticky(), tracker.clone()).await;
    let c = Member::start_with("c", &b, config(group, topic), sticky(), tracker.clone()).await;
    wait_for(&[&a, &c], FORM, "two members, three each", balanced(3, 6)).await;
    let before = (a.owned(), c.owned());
    let generation0 = a.snap().generation;
    let started = Instant::now();
    let d = Member::start_with("d", &b, config(group, topic), sticky(), tracker.clone()).await;
    let t = wait_for(
        &[&a, &c, &d],
        FORM,
        "three members, two each",
        balanced(2, 6),
    )
    .await;
    let settled = a.snap().generation;
    eprintln!(
        "{name}: cooperative hand-over to a third member took {t:?}, generations {generation0} -> {settled}"
    );
    assert_eq!(
        settled,
        generation0 + 2,
        "{name}: KIP-429 takes two rebalances"
    );
    assert!(
        a.owned().is_subset(&before.0),
        "a kept what it did not give up"
    );
    assert!(
        c.owned().is_subset(&before.1),
        "c kept what it did not give up"
    );
    let o = tracker.lock().unwrap().clone();
    o.assert_clean();
    for m in ["a", "c"] {
        let revoked: Vec<_> = o
            .of(m, started)
            .iter()
            .filter_map(|l| match &l.event {
                Seen::Revoked(ps) => Some(ps.clone()),
                _ => None,
            })
            .collect();
        assert!(
            matches!(&revoked[..], [ps] if ps.len() == 1),
            "{name}: {m} revoked {revoked:?}: only the moved partition, once"
        );
    }
    for m in [a, c, d] {
        assert!(m.close().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_hands_over_only_moved_partitions() {
    on_each(
        brokers(
            Capability::ClassicGroups,
            &[
                MOCK_ROUNDS,
                // Under cooperative-sticky its coordinator was seen handing
                // the leader stale owned partitions and then fencing both
                // members right after a generation completed.
                (
                    BrokerKind::NoidaDb,
                    "noida-db 0.2.3 fences both members after a cooperative generation",
                ),
                // The followers' SyncGroup of the revoking generation is
                // answered only after the leader's KIP-429 follow-up
                // JoinGroup opened the next round, each round held 3 s: the
                // hand-over took generations 0 -> 5 in 20 s (Kafka 4.4.0:
                // two generations in 1 s, the same members).
                (
                    BrokerKind::Tansu,
                    "Tansu 0.6.0 takes five 3 s rounds for a KIP-429 hand-over",
                ),
            ],
        ),
        cooperative_third_member,
    )
    .await;
}

/// KIP-345: a static member closes without LeaveGroup, so the coordinator
/// keeps its partitions for it until it comes back with the same
/// `group.instance.id` within the session timeout: no rebalance at all.
/// The generation stays, the other member sees no event, and the static
/// member is assigned its old partitions in the same generation.
async fn static_member_restart(broker: &dyn Broker, topic: &str, group: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let tracker = Tracker::default();
    let mut stat = config(group, topic);
    stat.group_instance_id = Some("static-a".into());
    let a = Member::start("a", &b, stat.clone(), tracker.clone()).await;
    let d = Member::start("d", &b, config(group, topic), tracker.clone()).await;
    wait_for(&[&a, &d], FORM, "two members, three each", balanced(3, 6)).await;
    let (a_owned, d_snap) = (a.owned(), d.snap());
    let since = Instant::now();
    assert!(a.close().await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        d.snap(),
        d_snap,
        "{name}: no rebalance while the static member is away"
    );
    let a = Member::start("a", &b, stat, tracker.clone()).await;
    wait_for(&[&a, &d], SESSION, "static member back", balanced(3, 6)).await;
    assert_eq!(
        a.owned(),
        a_owned,
        "{name}: the static member gets its partitions back"
    );
    assert_eq!(
        a.snap().generation,
        d_snap.generation,
        "{name}: the static member rejoins the same generation"
    );
    // Past the session timeout of the old instance: had the coordinator
    // counted the restart as a new member, it would rebalance by now.
    tokio::time::sleep(SESSION - (Instant::now() - since).min(SESSION) + HEARTBEAT).await;
    assert_eq!(
        d.snap(),
        d_snap,
        "{name}: the other member never rebalanced"
    );
    let o = tracker.lock().unwrap().clone();
    o.assert_clean();
    let d_seen: Vec<&Seen> = o.of("d", since).iter().map(|l| &l.event).collect();
    assert!(d_seen.is_empty(), "{name}: d saw {d_seen:?}");
    let a_assigned: Vec<&Seen> = o
        .of("a", since)
        .iter()
        .map(|l| &l.event)
        .filter(|e| matches!(e, Seen::Assigned { .. }))
        .collect();
    assert_eq!(
        a_assigned,
        [&Seen::Assigned {
            generation: d_snap.generation,
            partitions: a_owned.clone()
        }],
        "{name}: one assignment after the restart, of the old partitions in the old generation"
    );
    assert!(a.close().await);
    assert!(d.close().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restarts_without_a_rebalance() {
    on_each(
        brokers(
            Capability::ClassicGroups,
            &[
                // Its JoinGroup handler reads GroupInstanceId and drops it,
                // so a restarted static member is a new dynamic member.
                (
                    BrokerKind::MockCluster,
                    "the 2.0.2 mock drops group.instance.id",
                ),
                // Seen: the other member revoked everything and the group
                // moved to generation 1 when the static member came back.
                (
                    BrokerKind::Tansu,
                    "Tansu 0.6.0 rebalances when a static member rejoins",
                ),
            ],
        ),
        static_member_restart,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_3_9_static_member_restarts_without_a_rebalance() {
    let kafka = Kafka::shared_version(KafkaVersion::V3_9);
    on_each(vec![Box::new(kafka)], static_member_restart).await;
}

/// How long the members of the two rebalance-timeout scenarios give the
/// group to rejoin.
const REBALANCE: Duration = Duration::from_secs(3);
/// Their session timeout: well past the rebalance timeout, so that what
/// ends the rebalance is told apart from a session expiry.
const LONG_SESSION: Duration = Duration::from_secs(12);

/// A member whose application holds a revoke (`OnRevoke::Ignore`, a
/// budget longer than the test) does not rejoin: it is still revoking
/// when the rebalance begins and long after.
fn slow(group: &str, topic: &str, rebalance: Duration) -> krust_group::MembershipConfig {
    let mut c = config(group, topic);
    c.rebalance_timeout = rebalance;
    c.session_timeout = LONG_SESSION;
    c.revoke_budget = Duration::from_secs(60);
    c
}

fn quick(group: &str, topic: &str, rebalance: Duration) -> krust_group::MembershipConfig {
    let mut c = config(group, topic);
    c.rebalance_timeout = rebalance;
    c.session_timeout = LONG_SESSION;
    c
}

/// Wait until `m` is revoking (its application was told to give up its
/// partitions and has not acked); returns when.
async fn revoking(m: &Member, what: &str) -> Instant {
    wait_for(&[m], FORM, what, |s| s[0].state == State::Revoking).await;
    Instant::now()
}

/// The rebalance timeout (KIP-62): a member that does not rejoin within it
/// is evicted, and the others form a generation without it, at the
/// rebalance timeout and not at its session timeout. The coordinator
/// answers the evicted member's commit with UNKNOWN_MEMBER_ID.
async fn rebalance_timeout_evicts(broker: &dyn Broker, topic: &str, group: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let tracker = Tracker::default();
    let a = Member::start("a", &b, quick(group, topic, REBALANCE), tracker.clone()).await;
    let s = Member::start_opts(
        "s",
        &b,
        slow(group, topic, REBALANCE),
        range(),
        OnRevoke::Ignore,
        tracker.clone(),
    )
    .await;
    wait_for(&[&a, &s], FORM, "two members, three each", balanced(3, 6)).await;
    let before = a.snap().generation;
    let s_snap = s.snap();
    let started = Instant::now();
    let c = Member::start("c", &b, quick(group, topic, REBALANCE), tracker.clone()).await;
    let s_revoking = revoking(&s, "the slow member is told to revoke").await;
    wait_for(
        &[&a, &c],
        FORM,
        "a and c form a group without s",
        balanced_after(3, 6, before),
    )
    .await;
    let formed = Instant::now();
    eprintln!(
        "{name}: formed without the slow member {:?} after the third member started ({:?} after s began revoking)",
        formed - started,
        formed - s_revoking
    );
    assert_eq!(a.snap().generation, before + 1, "{name}: one rebalance");
    assert!(
        formed - started >= REBALANCE,
        "{name}: the group waited out the rebalance timeout"
    );
    // s heartbeats through its revoke (its session of 12 s could not have
    // run out anyway): what ended the rebalance is its timeout.
    assert!(
        formed < s_revoking + LONG_SESSION - Duration::from_secs(2),
        "{name}: evicted at the rebalance timeout, not by the session timeout"
    );
    // The next heartbeat tells s it was evicted: what it was revoking is
    // lost (nothing more may be committed for it), while its application
    // still has the revoke in hand.
    wait_for(&[&s], SESSION, "s learns it was evicted", |m| {
        m[0].revoking.is_empty() && m[0].owned.is_empty()
    })
    .await;
    assert_eq!(s.snap().state, State::Revoking, "s never rejoined");
    let lost: Vec<Seen> = tracker
        .lock()
        .unwrap()
        .of("s", started)
        .iter()
        .map(|l| l.event.clone())
        .collect();
    assert!(
        matches!(&lost[..], [Seen::Revoked(r), Seen::Lost(l)] if r == l && l.len() == 3),
        "{name}: s revokes its three, then loses them: {lost:?}"
    );
    // The coordinator no longer counts s as a member: it refuses a commit
    // made with the membership s had.
    let revoked: std::collections::BTreeMap<TopicPartition, OffsetAndMetadata> = s_snap
        .owned
        .iter()
        .map(|t| (t.clone(), OffsetAndMetadata::new(1)))
        .collect();
    assert_eq!(revoked.len(), 3, "{name}: s owned three");
    let e = offsets::commit(&common::pool(&b).await, &s_snap, &revoked, &common::retry())
        .await
        .expect_err("the evicted member's commit");
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_MEMBER_ID), "{name}: {e}");
    assert_eq!(s_snap.generation, before);
    tracker.lock().unwrap().assert_clean();
    s.kill(&tracker);
    assert!(a.close().await);
    assert!(c.close().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_not_rejoining_within_the_rebalance_timeout_is_evicted() {
    on_each(
        brokers(
            Capability::RebalanceTimeoutEviction,
            &[(
                BrokerKind::MockCluster,
                "the 2.0.2 mock's join round is session.timeout.ms - 1 s whatever the rebalance timeout",
            )],
        ),
        rebalance_timeout_evicts,
    )
    .await;
}

/// A member that leaves (LeaveGroup) while a rebalance waits for it does
/// not leave the group stuck: the rebalance completes at once without it,
/// in the one generation that was in progress, long before its session or
/// the rebalance timeout would have ended the wait.
async fn leave_during_rebalance(broker: &dyn Broker, topic: &str, group: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let tracker = Tracker::default();
    let long = Duration::from_secs(30);
    let a = Member::start("a", &b, quick(group, topic, long), tracker.clone()).await;
    let l = Member::start_opts(
        "l",
        &b,
        slow(group, topic, long),
        range(),
        OnRevoke::Ignore,
        tracker.clone(),
    )
    .await;
    wait_for(&[&a, &l], FORM, "two members, three each", balanced(3, 6)).await;
    let before = a.snap().generation;
    let c = Member::start("c", &b, quick(group, topic, long), tracker.clone()).await;
    let l_revoking = revoking(&l, "the leaving member is told to revoke").await;
    // The rebalance is under way: the others have sent their JoinGroup and
    // wait for l.
    wait_for(&[&a, &c], FORM, "a and c joining", |s| {
        s.iter().all(|m| m.state == State::Joining)
    })
    .await;
    let leave = Instant::now();
    assert!(l.close().await, "{name}: close within its bound");
    wait_for(
        &[&a, &c],
        FORM,
        "a and c form a group without l",
        balanced_after(3, 6, before),
    )
    .await;
    let formed = Instant::now();
    eprintln!(
        "{name}: formed {:?} after the leave during the rebalance",
        formed - leave
    );
    assert_eq!(
        a.snap().generation,
        before + 1,
        "{name}: the rebalance in progress completed, no other"
    );
    assert!(
        formed - leave < Duration::from_secs(3),
        "{name}: completed by the leave, {:?} after it",
        formed - leave
    );
    assert!(
        formed < l_revoking + LONG_SESSION - Duration::from_secs(2),
        "{name}: not by l's session timeout"
    );
    tracker.lock().unwrap().assert_clean();
    assert!(a.close().await);
    assert!(c.close().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_leaving_during_a_rebalance_does_not_leave_the_group_stuck() {
    on_each(
        brokers(
            Capability::LeaveDuringRebalance,
            &[
                MOCK_ROUNDS,
                // It completes the rebalance at once, as Kafka does, but
                // numbers it as two: generation 1 -> 3, no member ever
                // sees 2. A generation is a completed join (Kafka counts
                // one here), and this test counts them.
                (
                    BrokerKind::NoidaDb,
                    "noida-db 0.2.3 counts a LeaveGroup during a rebalance as a generation",
                ),
            ],
        ),
        leave_during_rebalance,
    )
    .await;
}
