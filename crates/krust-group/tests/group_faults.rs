//! Faults on the 3-broker librdkafka mock cluster while two members hold a
//! 6-partition topic: the coordinator moved (during the join and during
//! steady heartbeats), NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS /
//! REBALANCE_IN_PROGRESS injected on JoinGroup (11) and Heartbeat (12), and
//! the coordinator broker down then up. Each time the group re-forms with
//! three partitions each, and ownership tracked from the events never has
//! a partition assigned to one member while another owns it. The mock is
//! the only fixture with several brokers and fault injection (docs/ARCHITECTURE.md).

mod common;

use std::time::{Duration, Instant};

use common::{Member, Tracker, balanced, config, pool, wait_for};
use krust_codec::ErrorCode;
use krust_group::driver::MemberSnapshot;
use krust_net::CoordinatorType;
use krust_testkit::{Broker, MockCluster};

const TOPIC: &str = "krust-group-faults";
const BOUND: Duration = Duration::from_secs(150);
const JOIN_GROUP: i16 = 11;
const HEARTBEAT: i16 = 12;
const FORM: Duration = Duration::from_secs(60);

fn cluster() -> MockCluster {
    MockCluster::start(3, &[(TOPIC, 6)])
}

async fn two(mock: &MockCluster, group: &str, tracker: &Tracker) -> (Member, Member) {
    let b = mock.bootstrap();
    let a = Member::start("a", &b, config(group, TOPIC), tracker.clone()).await;
    let c = Member::start("c", &b, config(group, TOPIC), tracker.clone()).await;
    let t = wait_for(&[&a, &c], FORM, "group formed", balanced(3, 6)).await;
    eprintln!("{group}: formed after {t:?}");
    (a, c)
}

fn newer(than: i32) -> impl Fn(&[MemberSnapshot]) -> bool {
    let ok = balanced(3, 6);
    move |s| ok(s) && s.iter().all(|m| m.generation > than)
}

async fn finish(tracker: &Tracker, members: Vec<Member>) {
    {
        let o = tracker.lock().unwrap();
        assert!(o.violations.is_empty(), "{:#?}", o.violations);
        assert!(o.fatal.is_empty(), "{:#?}", o.fatal);
    }
    for m in members {
        assert!(m.close().await, "close within its bound");
    }
}

async fn coordinator(mock: &MockCluster, group: &str) -> i32 {
    pool(&mock.bootstrap())
        .await
        .coordinator_id(CoordinatorType::Group, group)
        .await
        .expect("coordinator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_moved_during_join_and_heartbeats() {
    tokio::time::timeout(BOUND, async {
        let mock = cluster();
        let group = "g-moved";
        let tracker = Tracker::default();
        mock.set_coordinator(group, 1).unwrap();
        let b = mock.bootstrap();
        let a = Member::start("a", &b, config(group, TOPIC), tracker.clone()).await;
        // Move it while the first join is under way.
        mock.set_coordinator(group, 2).unwrap();
        let c = Member::start("c", &b, config(group, TOPIC), tracker.clone()).await;
        wait_for(
            &[&a, &c],
            FORM,
            "formed after a move mid-join",
            balanced(3, 6),
        )
        .await;
        // And while heartbeating: heartbeats get NOT_COORDINATOR, the members
        // look it up again and carry on.
        let owned = (a.owned(), c.owned());
        let generation = a.snap().generation;
        mock.set_coordinator(group, 3).unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let t = wait_for(&[&a, &c], FORM, "stable after a move", balanced(3, 6)).await;
        eprintln!("stable {t:?} after the steady-state move");
        assert_eq!(coordinator(&mock, group).await, 3);
        assert_eq!(a.snap().generation, generation, "no rebalance for a move");
        assert_eq!(
            (a.owned(), c.owned()),
            owned,
            "a coordinator move alone moves no partition"
        );
        finish(&tracker, vec![a, c]).await;
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_injected_on_join_and_heartbeat() {
    tokio::time::timeout(BOUND, async {
        let mock = cluster();
        let group = "g-injected";
        let tracker = Tracker::default();
        let codes = |cs: &[ErrorCode]| cs.iter().map(|c| c.code()).collect::<Vec<_>>();
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
        let (a, c) = two(&mock, group, &tracker).await;
        let before = a.snap().generation;
        let started = Instant::now();
        mock.push_errors(
            HEARTBEAT,
            &codes(&[
                ErrorCode::NOT_COORDINATOR,
                ErrorCode::REBALANCE_IN_PROGRESS,
                ErrorCode::NONE,
                ErrorCode::REBALANCE_IN_PROGRESS,
            ]),
        )
        .unwrap();
        let t = wait_for(
            &[&a, &c],
            FORM,
            "re-formed after injected REBALANCE_IN_PROGRESS",
            newer(before),
        )
        .await;
        eprintln!(
            "re-formed {t:?} after heartbeat errors ({:?} since injection)",
            started.elapsed()
        );
        finish(&tracker, vec![a, c]).await;
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_broker_down_then_up() {
    tokio::time::timeout(BOUND, async {
        let mock = cluster();
        let group = "g-down";
        let tracker = Tracker::default();
        mock.set_coordinator(group, 2).unwrap();
        let (a, c) = two(&mock, group, &tracker).await;
        let id = coordinator(&mock, group).await;
        assert_eq!(id, 2);
        mock.broker_down(id).unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        mock.broker_up(id).unwrap();
        let t = wait_for(
            &[&a, &c],
            FORM,
            "re-formed after the coordinator came back",
            balanced(3, 6),
        )
        .await;
        eprintln!("stable {t:?} after the coordinator came back");
        // Down for longer than the session timeout: no heartbeat succeeds,
        // so both members declare their partitions lost (before the
        // coordinator can hand them out) and rejoin once it is back.
        let before = a.snap().generation;
        mock.broker_down(id).unwrap();
        tokio::time::sleep(common::SESSION + Duration::from_secs(2)).await;
        assert!(
            a.owned().is_empty() && c.owned().is_empty(),
            "lost after the session timeout"
        );
        mock.broker_up(id).unwrap();
        let t = wait_for(
            &[&a, &c],
            FORM,
            "re-formed after a long outage",
            newer(before),
        )
        .await;
        eprintln!("re-formed {t:?} after a coordinator outage longer than the session");
        assert!(tracker.lock().unwrap().lost >= 2);
        finish(&tracker, vec![a, c]).await;
    })
    .await
    .expect("bounded");
}
