//! `poll` is cancel-safe (issue 11 item 3): a poll dropped at any await
//! (a `tokio::time::timeout`, a `select!` that another branch wins) loses
//! no record and no rebalance step; the next poll finishes what the
//! dropped one was doing. A revoke cut short by a cancelled poll still
//! ends with the partitions let go and their acked prefix committed, so no
//! partition is handed out by two members.
//!
//! On the Apache Kafka 4.4.0 node this binary shares (unique topics and
//! groups): the rebalances are Kafka's own classic group coordinator's.

#[path = "../common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::create_topic;
use krust_consumer::{AckHandle, Consumer, ConsumerConfig, TopicPartition};
use krust_producer::{Producer, ProducerRecord};
use krust_testkit::{Kafka, unique};
use tokio::sync::watch;

fn parts(s: &BTreeSet<TopicPartition>) -> BTreeSet<i32> {
    s.iter().map(|t| t.partition).collect()
}

fn config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut props = vec![
        ("bootstrap.servers", bootstrap.to_owned()),
        ("group.id", group.to_owned()),
        ("session.timeout.ms", "6000".to_owned()),
        ("heartbeat.interval.ms", "500".to_owned()),
        ("max.poll.interval.ms", "20000".to_owned()),
        ("auto.offset.reset", "earliest".to_owned()),
        ("enable.auto.commit", "false".to_owned()),
        ("fetch.max.wait.ms", "100".to_owned()),
        ("retry.backoff.ms", "50".to_owned()),
    ];
    for (k, v) in extra {
        props.retain(|(key, _)| key != k);
        props.push((k, (*v).to_owned()));
    }
    ConsumerConfig::from_properties(props).expect("config")
}

/// `n` records round `partitions` partitions; the log end of each.
async fn produce(kafka: &Kafka, topic: &str, partitions: i32, n: usize) -> BTreeMap<i32, i64> {
    let producer = Producer::builder()
        .bootstrap_servers([kafka.addr()])
        .linger(Duration::from_millis(5))
        .create()
        .await
        .expect("producer");
    let mut pending = Vec::with_capacity(n);
    for i in 0..n {
        let p = i32::try_from(i).expect("small") % partitions;
        let r = ProducerRecord::new(topic, i.to_string()).partition(p);
        pending.push(producer.send(r).await.expect("send"));
    }
    let mut end = BTreeMap::new();
    for d in pending {
        let md = d.await.expect("delivered");
        let e = end.entry(md.partition).or_insert(0);
        *e = (*e).max(md.offset + 1);
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("producer close");
    end
}

/// One poll of the repro's member A: ack what was handed out 1.5 s ago,
/// then poll within a 200 ms timeout; whether the timeout cancelled it.
async fn poll_cancelled(a: &mut Consumer, held: &mut VecDeque<(Instant, AckHandle)>) -> bool {
    while held
        .front()
        .is_some_and(|(t, _)| t.elapsed() > Duration::from_millis(1500))
    {
        if let Some((_, h)) = held.pop_front() {
            h.ack();
        }
    }
    match tokio::time::timeout(Duration::from_millis(200), a.poll(Duration::from_secs(2))).await {
        Ok(r) => {
            for rec in r.expect("a poll") {
                held.push_back((Instant::now(), rec.ack_handle()));
            }
            false
        }
        Err(_) => true,
    }
}

/// The repro: member A (explicit acks, records acked 1.5 s after
/// they are handed out) has every `poll` wrapped in a 200 ms
/// `tokio::time::timeout` while member B joins. The revoke A is in when a
/// timeout drops its poll goes on at the next poll: A lets the partitions
/// go once their acks came, so the two assignments end disjoint and
/// covering the topic, and A's `commit()` succeeds (before the fix A kept
/// every partition and its commit failed with "does not own").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_cut_short_by_a_timeout_finishes_at_the_next_poll() {
    let kafka = Kafka::shared();
    let b = kafka.addr();
    for strategy in ["range", "cooperative-sticky"] {
        tokio::time::timeout(Duration::from_secs(90), async {
            let topic = unique("pcan");
            let group = unique("g-pcan");
            create_topic(kafka, &topic, 4).await;
            produce(kafka, &topic, 4, 4_000).await;
            let props = [
                ("partition.assignment.strategy", strategy),
                ("acknowledgement.mode", "explicit"),
                ("max.poll.records", "20"),
            ];
            let mut a = Consumer::new(config(&b, &group, &props)).await.expect("a");
            a.subscribe([topic.as_str()]).expect("subscribe a");
            let mut held: VecDeque<(Instant, AckHandle)> = VecDeque::new();
            let mut cancelled = 0usize;
            // A owns every partition and has records in hand.
            let until = Instant::now() + Duration::from_secs(30);
            while a.assignment().len() < 4 || held.len() < 40 {
                assert!(Instant::now() < until, "{strategy}: A got no records");
                cancelled += usize::from(poll_cancelled(&mut a, &mut held).await);
            }
            let b_owns: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
            let (stop_tx, mut stop_rx) = watch::channel(false);
            let b_task = {
                let (bs, topic, group, owns) =
                    (b.clone(), topic.clone(), group.clone(), b_owns.clone());
                tokio::spawn(async move {
                    let mut c = Consumer::new(config(&bs, &group, &props)).await.expect("b");
                    c.subscribe([topic.as_str()]).expect("subscribe b");
                    while !*stop_rx.borrow_and_update() {
                        for r in c.poll(Duration::from_millis(100)).await.expect("b poll") {
                            r.ack();
                        }
                        *owns.lock().expect("b owns") = parts(&c.assignment());
                    }
                    c
                })
            };
            let until = Instant::now() + Duration::from_secs(40);
            loop {
                cancelled += usize::from(poll_cancelled(&mut a, &mut held).await);
                let (ao, bo) = (
                    parts(&a.assignment()),
                    b_owns.lock().expect("b owns").clone(),
                );
                if !bo.is_empty() && ao.is_disjoint(&bo) && ao.len() + bo.len() == 4 {
                    break;
                }
                assert!(
                    Instant::now() < until,
                    "{strategy}: after 40 s A owns {ao:?} and B owns {bo:?} \
                     ({cancelled} of A's polls cancelled)"
                );
            }
            assert!(cancelled > 0, "{strategy}: no poll of A was cancelled");
            for (_, h) in held.drain(..) {
                h.ack();
            }
            a.commit()
                .await
                .unwrap_or_else(|e| panic!("{strategy}: A's commit: {e}"));
            stop_tx.send_replace(true);
            let bc = b_task.await.expect("b task");
            a.close().await.expect("close a");
            bc.close().await.expect("close b");
            eprintln!("{strategy}: {cancelled} of A's polls cancelled");
        })
        .await
        .unwrap_or_else(|_| panic!("{strategy}: not done within 90 s"));
    }
}
