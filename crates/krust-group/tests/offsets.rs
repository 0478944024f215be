//! OffsetCommit / OffsetFetch through the coordinator, on every broker that
//! commits offsets (`all_brokers(CommitOffsets)`: Apache Kafka 4.4.0 first,
//! `KAFKA_BOOTSTRAP` when set, Tansu, noida-db and the librdkafka 2.0.2
//! mock, which speaks the old non-flexible versions of both APIs): a
//! member's commits are fetched back by a new member; a commit for a
//! partition the member does not own is refused before it is sent; a commit
//! carrying a generation the group moved past is refused by the
//! coordinator with ILLEGAL_GENERATION. Topics and groups are unique: the
//! Kafka node is shared by this binary.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Member, Tracker, balanced, brokers, config, on_each, pool, retry, wait_for};
use krust_codec::ErrorCode;
use krust_group::TopicPartition;
use krust_group::offsets::{self, OffsetAndMetadata, OffsetError};
use krust_testkit::{Broker, BrokerKind, Capability, unique};

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

async fn commits_fetched_back_by_a_new_member(broker: &dyn Broker, topic: &str, group: &str) {
    let b = broker.bootstrap();
    let tracker = Tracker::default();
    let a = Member::start("a", &b, config(group, topic), tracker.clone()).await;
    wait_for(&[&a], Duration::from_secs(60), "a owns all", balanced(6, 6)).await;
    let p = pool(&b).await;
    let offsets: BTreeMap<_, _> = (0..6)
        .map(|i| {
            let o = OffsetAndMetadata {
                offset: 100 + i64::from(i),
                leader_epoch: None,
                metadata: Some(format!("m{i}")),
            };
            (tp(topic, i), o)
        })
        .collect();
    let snap = a.snap();
    let started = Instant::now();
    offsets::commit(&p, &snap, &offsets, &retry())
        .await
        .expect("commit");
    eprintln!(
        "{}: commit of 6 partitions took {:?}",
        broker.name(),
        started.elapsed()
    );

    // Refused locally: a partition of another topic this member does not own.
    let mut foreign = BTreeMap::new();
    foreign.insert(
        TopicPartition::new("elsewhere", 0),
        OffsetAndMetadata::new(1),
    );
    let e = offsets::commit(&p, &snap, &foreign, &retry())
        .await
        .expect_err("not owned");
    assert!(
        matches!(&e, OffsetError::NotOwned { partitions, .. } if partitions == &[TopicPartition::new("elsewhere", 0)]),
        "{e}"
    );

    assert!(a.close().await);
    let n = Member::start("n", &b, config(group, topic), tracker.clone()).await;
    wait_for(
        &[&n],
        Duration::from_secs(60),
        "new member owns all",
        balanced(6, 6),
    )
    .await;
    let parts: Vec<_> = (0..6).map(|i| tp(topic, i)).collect();
    let got = offsets::fetch(&pool(&b).await, group, &parts, true, &retry())
        .await
        .expect("fetch");
    for (k, v) in &offsets {
        let g = got.get(k).cloned().flatten().expect("committed");
        assert_eq!(g.offset, v.offset, "{k}");
        // Tansu 0.6.0 keeps the offset but answers null metadata (a quirk
        // of that broker: the same request round-trips it on the mock).
        if broker.kind() != BrokerKind::Tansu {
            assert_eq!(g.metadata, v.metadata, "{k}");
        }
    }
    // A partition never committed reads as None.
    let none = offsets::fetch(
        &pool(&b).await,
        &unique("g-never"),
        &parts[..1],
        false,
        &retry(),
    )
    .await
    .expect("fetch");
    assert_eq!(none.get(&tp(topic, 0)), Some(&None));
    assert!(n.close().await);
}

async fn stale_generation_is_rejected(broker: &dyn Broker, topic: &str, group: &str) {
    let b = broker.bootstrap();
    let tracker = Tracker::default();
    let a = Member::start("a", &b, config(group, topic), tracker.clone()).await;
    wait_for(&[&a], Duration::from_secs(60), "a owns all", balanced(6, 6)).await;
    let stale = a.snap();
    let c = Member::start("c", &b, config(group, topic), tracker.clone()).await;
    wait_for(
        &[&a, &c],
        Duration::from_secs(60),
        "three each",
        balanced(3, 6),
    )
    .await;
    assert!(a.snap().generation > stale.generation);
    let p = pool(&b).await;
    let mut offsets = BTreeMap::new();
    offsets.insert(tp(topic, 0), OffsetAndMetadata::new(5));
    let e = offsets::commit(&p, &stale, &offsets, &retry())
        .await
        .expect_err("stale generation");
    assert_eq!(e.code(), Some(ErrorCode::ILLEGAL_GENERATION), "{e}");
    // The current generation commits what it owns.
    let now = a.snap();
    let mine: BTreeMap<_, _> = now
        .owned
        .iter()
        .map(|t| (t.clone(), OffsetAndMetadata::new(7)))
        .collect();
    offsets::commit(&p, &now, &mine, &retry())
        .await
        .expect("current generation commits");
    assert!(a.close().await);
    assert!(c.close().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_fetched_back_by_a_new_member() {
    on_each(
        brokers(Capability::CommitOffsets, &[]),
        commits_fetched_back_by_a_new_member,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_with_a_stale_generation_is_rejected() {
    on_each(
        brokers(Capability::CommitOffsets, &[]),
        stale_generation_is_rejected,
    )
    .await;
}
