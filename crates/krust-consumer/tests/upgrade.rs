//! The online upgrade of a classic group to the consumer protocol (KIP-848,
//! Kafka's `group.consumer.migration.policy`, `bidirectional` by default):
//! a group of three classic krust members is replaced member by member by
//! `group.protocol=consumer` members while records flow. The first
//! consumer member converts the group; the classic members left keep
//! their partitions and get the broker's assignment through their own
//! protocol; at the end nothing is lost, a record reached two members only
//! where a commit was refused, and the commits are at the log end.
//!
//! On the Apache Kafka 4.4.0 node this binary shares.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Driven, create_topic, group_config, wait_for};
use krust_consumer::{Consumer, TopicPartition};
use krust_producer::{Producer, ProducerRecord};
use krust_testkit::{Broker, CONSUMER_GROUP_COMMAND, Kafka, KafkaVersion, unique};

const PARTITIONS: i32 = 6;
const BOUND: Duration = Duration::from_secs(180);

async fn member(b: &str, group: &str, topic: &str, protocol: &str) -> Driven {
    let cfg = group_config(
        b,
        group,
        &[
            ("group.protocol", protocol),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("max.poll.records", "50"),
        ],
    );
    let mut c = Consumer::new(cfg).await.expect("consumer");
    c.subscribe([topic]).expect("subscribe");
    Driven::start(c, true, |_| {}, |_| {})
}

/// Every live member holds something, their shares disjoint and covering
/// the topic.
fn spread(members: &[Driven]) -> bool {
    let shares: Vec<BTreeSet<i32>> = members
        .iter()
        .map(|m| m.snapshot(|s| s.assignment.clone()))
        .collect();
    let all: BTreeSet<i32> = shares.iter().flatten().copied().collect();
    shares.iter().all(|s| !s.is_empty())
        && shares.iter().map(BTreeSet::len).sum::<usize>() == all.len()
        && all.len() == usize::try_from(PARTITIONS).expect("small")
}

/// The `TYPE` column of `kafka-consumer-groups.sh --list --type` for `group`.
async fn group_type(kafka: &'static Kafka, group: &str) -> String {
    let out = tokio::task::spawn_blocking(move || {
        kafka
            .tool(CONSUMER_GROUP_COMMAND, &["--list", "--type"])
            .unwrap_or_else(|e| panic!("kafka-consumer-groups --list --type: {e}"))
    })
    .await
    .expect("tool thread");
    let row = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&group))
        .unwrap_or_else(|| panic!("{group} not listed:\n{out}"));
    row.get(1).map(|t| (*t).to_owned()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_group_is_upgraded_member_by_member_while_records_flow() {
    let kafka = Kafka::shared_version(KafkaVersion::V4_4);
    tokio::time::timeout(BOUND, async {
        let b = kafka.bootstrap();
        let topic = unique("upgrade");
        let group = unique("g-upgrade");
        create_topic(kafka, &topic, PARTITIONS).await;

        // Records all along: 20 every 10 ms round the partitions, until told.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (b, topic, stop) = (b.clone(), topic.clone(), stop.clone());
            tokio::spawn(async move {
                let p = Producer::builder()
                    .bootstrap_servers([b.as_str()])
                    .linger(Duration::from_millis(2))
                    .create()
                    .await
                    .expect("producer");
                let mut pending = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..20 {
                        let part = i32::try_from(i).expect("small") % PARTITIONS;
                        let r = ProducerRecord::new(&*topic, i.to_string()).partition(part);
                        pending.push(p.send(r).await.expect("send"));
                        i += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let mut produced = BTreeSet::new();
                for d in pending {
                    let m = d.await.expect("delivered");
                    produced.insert((m.partition, m.offset));
                }
                p.close(Duration::from_secs(10)).await.expect("close");
                produced
            })
        };

        let mut live = Vec::new();
        for _ in 0..3 {
            live.push(member(&b, &group, &topic, "classic").await);
        }
        let check = |live: &[Driven]| live.iter().for_each(Driven::check_poll);
        wait_for(
            "three classic members spread",
            Duration::from_secs(40),
            || {
                check(&live);
                spread(&live)
            },
            || format!("{:?}", shares(&live)),
        )
        .await;
        assert_eq!(group_type(kafka, &group).await, "Classic");

        // What every member saw, kept past its close.
        let mut seen: Vec<common::Shared> = live.iter().map(|m| m.seen.clone()).collect();
        for round in 1..=3 {
            // The oldest classic member goes; a consumer member comes.
            let old = live.remove(0);
            old.close().await.expect("close a classic member");
            live.push(member(&b, &group, &topic, "consumer").await);
            seen.extend(live.last().map(|m| m.seen.clone()));
            wait_for(
                &format!("round {round}: spread again"),
                Duration::from_secs(60),
                || {
                    check(&live);
                    spread(&live)
                },
                || format!("{:?}", shares(&live)),
            )
            .await;
            // Every member, classic or not, goes on consuming in the
            // mixed group.
            let before: Vec<usize> = live
                .iter()
                .map(|m| m.snapshot(|s| s.records.len()))
                .collect();
            wait_for(
                &format!("round {round}: every member consumes"),
                Duration::from_secs(30),
                || {
                    check(&live);
                    live.iter()
                        .zip(&before)
                        .all(|(m, n)| m.snapshot(|s| s.records.len()) > *n)
                },
                || format!("{:?}", shares(&live)),
            )
            .await;
            eprintln!(
                "round {round}: {} classic and {round} consumer members hold {:?}",
                3 - round,
                shares(&live)
            );
            if round == 1 {
                assert_eq!(
                    group_type(kafka, &group).await,
                    "Consumer",
                    "the first consumer member converts the group"
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let produced = writer.await.expect("writer");
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, o) in &produced {
            let e = ends.entry(*p).or_default();
            *e = (*e).max(o + 1);
        }
        wait_for(
            "the consumer members commit the log end",
            Duration::from_secs(40),
            || {
                check(&live);
                let mut committed = BTreeMap::new();
                for m in &live {
                    committed.extend(m.snapshot(|s| s.committed.clone()));
                }
                ends.iter().all(|(p, e)| committed.get(p) == Some(e))
            },
            || format!("{:?}", shares(&live)),
        )
        .await;

        let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        let mut refused: BTreeSet<(i32, i64)> = BTreeSet::new();
        for m in live {
            m.close().await.expect("close");
        }
        for m in &seen {
            let s = m.lock().expect("seen");
            for r in &s.records {
                *count.entry(*r).or_default() += 1;
            }
            refused.extend(&s.uncommitted);
        }
        let lost: Vec<_> = produced.iter().filter(|r| !count.contains_key(r)).collect();
        assert!(lost.is_empty(), "never consumed: {lost:?}");
        let twice: Vec<_> = count
            .iter()
            .filter(|(r, n)| **n > 1 && !refused.contains(r))
            .collect();
        assert!(
            twice.is_empty(),
            "consumed twice though committed: {twice:?}"
        );
        eprintln!(
            "{} records, each consumed; {} twice after a refused commit",
            produced.len(),
            count.values().filter(|n| **n > 1).count()
        );
        let reader = Consumer::new(group_config(&b, &group, &[]))
            .await
            .expect("reader");
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(&*topic, p))
            .collect();
        let committed = reader.committed(&tps).await.expect("committed");
        for (p, e) in &ends {
            let got = committed[&TopicPartition::new(&*topic, *p)]
                .as_ref()
                .map(|o| o.offset);
            assert_eq!(got, Some(*e), "partition {p}");
        }
    })
    .await
    .expect("bounded");
}

fn shares(live: &[Driven]) -> Vec<BTreeSet<i32>> {
    live.iter()
        .map(|m| m.snapshot(|s| s.assignment.clone()))
        .collect()
}
