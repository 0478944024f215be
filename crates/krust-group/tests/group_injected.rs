//! Error codes on cue, on the 3-broker librdkafka 2.0.2 mock (started
//! explicitly: it is the broker that answers error codes on cue,
//! `Capability::FaultInjection`): NOT_COORDINATOR /
//! COORDINATOR_LOAD_IN_PROGRESS / REBALANCE_IN_PROGRESS /
//! COORDINATOR_NOT_AVAILABLE pushed on JoinGroup (11) and Heartbeat (12).
//! Real faults (nodes killed, hung, restarted) are in `group_faults.rs`, on
//! Apache Kafka.

mod common;

use std::time::{Duration, Instant};

use common::{Member, SESSION, Tracker, balanced, balanced_after, commit_as, config, wait_for};
use krust_codec::ErrorCode;
use krust_group::membership::State;
use krust_testkit::{Broker, MockCluster, unique};

const BOUND: Duration = Duration::from_secs(150);
const JOIN_GROUP: i16 = 11;
const HEARTBEAT_API: i16 = 12;

fn codes(cs: &[ErrorCode]) -> Vec<i16> {
    cs.iter().map(|c| c.code()).collect()
}

/// Error codes on cue, on the 3-broker librdkafka 2.0.2 mock.
///
/// JoinGroup answered NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
/// REBALANCE_IN_PROGRESS and COORDINATOR_NOT_AVAILABLE before the group
/// first forms: it forms, nothing fatal.
///
/// Heartbeats answered NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE forty
/// times in a row. The mock refreshes a member's session only for a
/// heartbeat it answers without error, so a client that ignored those
/// codes and heartbeated again only at its interval (two members, two
/// heartbeats a second each: ten seconds of refused heartbeats) would be
/// expired by the mock's session timeout (6 s), and lose its partitions to
/// its own. One that looks the coordinator up again and heartbeats at once
/// gets through them in a moment: after more than a session, the same
/// generation, the same partitions, no event, and the coordinator accepts
/// each member's commit in that generation.
///
/// Then REBALANCE_IN_PROGRESS on a heartbeat: a newer generation forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_injected_on_join_and_heartbeat() {
    tokio::time::timeout(BOUND, async {
        let topic = unique("krust-faults");
        let mock = MockCluster::start(3, &[(topic.as_str(), 6)]);
        let group = unique("g-injected");
        let b = mock.bootstrap();
        let tracker = Tracker::default();
        mock.push_errors(
            JOIN_GROUP,
            &codes(&[
                ErrorCode::NOT_COORDINATOR,
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
                ErrorCode::REBALANCE_IN_PROGRESS,
                ErrorCode::COORDINATOR_NOT_AVAILABLE,
            ]),
        )
        .unwrap();
        let a = Member::start("a", &b, config(&group, &topic), tracker.clone()).await;
        let m = Member::start("m", &b, config(&group, &topic), tracker.clone()).await;
        // The mock's rounds and SyncGroup race decide how long this takes
        // (docs/ARCHITECTURE.md), not what it ends in.
        wait_for(&[&a, &m], Duration::from_secs(60), "formed", balanced(3, 6)).await;

        let snaps = [a.snap(), m.snap()];
        let since = Instant::now();
        let burst: Vec<ErrorCode> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    ErrorCode::NOT_COORDINATOR
                } else {
                    ErrorCode::COORDINATOR_NOT_AVAILABLE
                }
            })
            .collect();
        mock.push_errors(HEARTBEAT_API, &codes(&burst)).unwrap();
        tokio::time::sleep(SESSION + Duration::from_secs(2)).await;
        for (x, s) in [&a, &m].iter().zip(&snaps) {
            let now = x.snap();
            assert_eq!(now.state, State::Stable, "{} is stable", x.name);
            assert_eq!(
                now.generation, s.generation,
                "{} kept its generation",
                x.name
            );
            assert_eq!(now.owned, s.owned, "{} kept its partitions", x.name);
        }
        {
            let o = tracker.lock().unwrap();
            o.assert_clean();
            let seen: Vec<_> = o
                .since(since)
                .iter()
                .map(|l| (&l.member, &l.event))
                .collect();
            assert!(seen.is_empty(), "events during the burst: {seen:?}");
        }
        for x in [&a, &m] {
            commit_as(&b, &x.snap(), 1)
                .await
                .unwrap_or_else(|e| panic!("the mock refused {}'s commit: {e}", x.name));
        }

        let before = a.snap().generation;
        mock.push_errors(
            HEARTBEAT_API,
            &codes(&[
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
                ErrorCode::REBALANCE_IN_PROGRESS,
                ErrorCode::NONE,
                ErrorCode::REBALANCE_IN_PROGRESS,
            ]),
        )
        .unwrap();
        let t = wait_for(
            &[&a, &m],
            Duration::from_secs(60),
            "re-formed after injected REBALANCE_IN_PROGRESS",
            balanced_after(3, 6, before),
        )
        .await;
        eprintln!("re-formed {t:?} after heartbeat errors");
        tracker.lock().unwrap().assert_clean();
        for x in [a, m] {
            assert!(x.close().await, "close within its bound");
        }
    })
    .await
    .expect("bounded");
}
