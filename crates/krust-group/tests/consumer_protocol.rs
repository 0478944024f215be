//! KIP-848 memberships (`group.protocol=consumer`) against Apache Kafka
//! 4.4.0's group coordinator: the broker assigns, members reconcile. Member
//! epochs are per member here (not one generation for the group), so a
//! group is settled when every member is stable with its share, the shares
//! disjoint and covering the topic.

mod common;

use std::time::Duration;

use common::{Member, Tracker, commit_as, config, wait_for};
use krust_group::membership::State;
use krust_group::{GroupProtocol, MemberSnapshot, MembershipConfig};
use krust_testkit::{Broker, Kafka, unique};

/// How long a group may take to settle (a wedged reconciliation, not a slow
/// one, is what this catches: the broker assigns at once in the testkit).
const SETTLE: Duration = Duration::from_secs(30);

fn consumer(group: &str, topic: &str) -> MembershipConfig {
    let mut c = config(group, topic);
    c.group_protocol = GroupProtocol::Consumer;
    c.remote_assignor = Some("uniform".into());
    c
}

/// Every member stable with `each` partitions, disjoint, `total` in all.
fn settled(each: usize, total: usize) -> impl Fn(&[MemberSnapshot]) -> bool {
    move |s| {
        let mut all = std::collections::BTreeSet::new();
        let disjoint = s
            .iter()
            .flat_map(|m| m.owned.iter())
            .all(|tp| all.insert(tp.clone()));
        disjoint
            && all.len() == total
            && s.iter()
                .all(|m| m.state == State::Stable && m.owned.len() == each && m.revoking.is_empty())
    }
}

/// One member takes all six partitions; a second joins and the first gives
/// up three (revoked, then released by its heartbeat); the first commits at
/// its member epoch (OffsetCommit v9, which the broker checks against the
/// member); when the second leaves, the first takes all six back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_the_partitions_and_take_them_back_when_one_leaves() {
    let kafka = Kafka::shared();
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
