//! `poll` is cancel-safe (issue 11 item 3): a poll dropped at any await
//! (a `tokio::time::timeout`, a `select!` that another branch wins) loses
//! no record and no rebalance step; the next poll finishes what the
//! dropped one was doing. A revoke cut short by a cancelled poll still
//! ends with the partitions let go and their acked prefix committed, so no
//! partition is handed out by two members.
//!
//! On the Apache Kafka 4.4.0 node this binary shares (unique topics and
//! groups): the rebalances are Kafka's own classic group coordinator's.
//! The stress tests print their seed; `KRUST_STRESS_SEED=N` replays one.

#[path = "../common/mod.rs"]
mod common;
mod ledger;
mod pattern;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_topic, group_config, log_ends};
use krust_consumer::{AckHandle, Consumer, ConsumerConfig, TopicPartition};
use krust_producer::ProducerRecord;
use krust_testkit::{Kafka, unique};
use ledger::{Ledger, Listener, Rng, Shared, parts, seed};
use tokio::sync::watch;

/// `group_config` with quick polls and backoffs, and room for the slow
/// members of the stress test.
fn config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut props = vec![
        ("max.poll.interval.ms", "20000"),
        ("fetch.max.wait.ms", "100"),
        ("retry.backoff.ms", "50"),
    ];
    props.extend_from_slice(extra);
    group_config(bootstrap, group, &props)
}

/// `n` records round `partitions` partitions; the log end of each.
async fn produce(kafka: &Kafka, topic: &str, partitions: i32, n: usize) -> BTreeMap<i32, i64> {
    let records = (0..n)
        .map(|i| {
            let p = i32::try_from(i).expect("small") % partitions;
            ProducerRecord::new(topic, i.to_string()).partition(p)
        })
        .collect();
    log_ends(&common::produce(&kafka.addr(), records).await)
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

/// What the driver tells a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Run,
    /// Close now (leave the group).
    Leave,
    /// Everything was delivered: finish the partitions held, then close.
    Finish,
}

/// One member: polls with random cancellation until told to leave.
#[allow(clippy::too_many_arguments)]
async fn member(
    id: usize,
    bootstrap: String,
    group: String,
    topic: String,
    strategy: &'static str,
    explicit: bool,
    mut rng: Rng,
    ledger: Shared,
    end: BTreeMap<i32, i64>,
    mut orders: watch::Receiver<Order>,
) -> (usize, usize, usize) {
    let mode = if explicit { "explicit" } else { "implicit" };
    let max_records = (10 + rng.below(140)).to_string();
    // `uniform` is KIP-848's: the broker's assignor, group.protocol=consumer.
    let (protocol, choice) = match strategy {
        "uniform" => ("consumer", "group.remote.assignor"),
        _ => ("classic", "partition.assignment.strategy"),
    };
    let props = [
        ("group.protocol", protocol),
        (choice, strategy),
        ("acknowledgement.mode", mode),
        (
            "enable.auto.commit",
            if explicit { "false" } else { "true" },
        ),
        ("auto.commit.interval.ms", "200"),
        ("max.poll.records", max_records.as_str()),
    ];
    let mut c = Consumer::new(config(&bootstrap, &group, &props))
        .await
        .expect("consumer");
    c.set_rebalance_listener(Listener {
        member: id,
        ledger: ledger.clone(),
    });
    c.subscribe([topic.as_str()]).expect("subscribe");
    let mut held: Vec<(Instant, AckHandle)> = Vec::new();
    let (mut polls, mut cancelled, mut mid_revoke) = (0usize, 0usize, 0usize);
    loop {
        let order = *orders.borrow_and_update();
        let now = Instant::now();
        held.retain(|(due, h)| {
            if *due <= now {
                h.ack();
            }
            *due > now
        });
        if order == Order::Leave {
            break;
        }
        if order == Order::Finish && held.is_empty() {
            let at_end = c.assignment().iter().all(|tp| {
                let e = end.get(&tp.partition).copied();
                c.position(tp).is_some() && c.position(tp) == e
            });
            if at_end {
                break;
            }
        }
        polls += 1;
        let wait = Duration::from_millis(1 + rng.below(100));
        let got = match rng.below(10) {
            0 => Some(c.poll(wait).await),
            1..=5 => tokio::time::timeout(rng.millis(40), c.poll(wait))
                .await
                .ok(),
            _ => {
                let sleep = rng.millis(40);
                tokio::select! {
                    r = c.poll(wait) => Some(r),
                    () = tokio::time::sleep(sleep) => None,
                }
            }
        };
        let Some(batch) = got else {
            cancelled += 1;
            // A partition the listener let go of that the consumer still
            // holds: the poll was dropped while the revoke's commit was in
            // flight.
            let l = ledger.lock().expect("ledger");
            if c.assignment()
                .iter()
                .any(|tp| l.owner.get(&tp.partition) != Some(&id))
            {
                mid_revoke += 1;
            }
            continue;
        };
        let batch = batch.unwrap_or_else(|e| panic!("member {id}: poll: {e}"));
        {
            let mut l = ledger.lock().expect("ledger");
            for r in &batch {
                l.handed_out(id, r);
            }
        }
        // Processing takes a while (0.5 ms a record), so the records span
        // the joins and leaves instead of being gone before the first.
        let busy = Duration::from_micros(500 * u64::try_from(batch.len()).unwrap_or(0));
        if explicit {
            for r in batch {
                match rng.below(4) {
                    0 => held.push((Instant::now() + rng.millis(100), r.ack_handle())),
                    _ => r.ack(),
                }
            }
        }
        tokio::time::sleep(busy).await;
    }
    for (_, h) in held.drain(..) {
        h.ack();
    }
    c.close()
        .await
        .unwrap_or_else(|e| panic!("member {id}: close: {e}"));
    (polls, cancelled, mid_revoke)
}

/// The acceptance stress test of issue 11: three members at a time (one
/// more joining, one leaving, twice over), explicit and implicit acks
/// among them, every `poll` cancelled at random by a short
/// `tokio::time::timeout` or a `select!` against a sleep, over 50,000
/// records. Nothing is lost; no partition is assigned to a member while
/// another owns it, nor handed out by a member that does not own it; each
/// new owner starts exactly at the offset the previous one committed on
/// revoke (so a record reaches two members only within the uncommitted
/// window); and the group's commits end at the log end.
async fn stress(strategy: &'static str) {
    let seed = seed();
    eprintln!("{strategy}: KRUST_STRESS_SEED={seed}");
    let mut rng = Rng(seed);
    let kafka = Kafka::shared();
    let b = kafka.addr();
    let topic = unique("stress");
    let group = unique("g-stress");
    create_topic(kafka, &topic, 6).await;
    const TOTAL: usize = 50_000;
    let end = produce(kafka, &topic, 6, TOTAL).await;
    let ledger: Shared = Arc::new(Mutex::new(Ledger::new(&end)));
    let started = Instant::now();
    let bound = Duration::from_secs(100);
    let mut members = BTreeMap::new();
    let mut next_id = 0usize;
    let mut spawn = |rng: &mut Rng, members: &mut BTreeMap<_, _>| {
        let id = next_id;
        next_id += 1;
        let (tx, rx) = watch::channel(Order::Run);
        let task = tokio::spawn(member(
            id,
            b.clone(),
            group.clone(),
            topic.clone(),
            strategy,
            id % 2 == 0,
            Rng(rng.next() | 1),
            ledger.clone(),
            end.clone(),
            rx,
        ));
        members.insert(id, (tx, task));
    };
    let state = |l: &Ledger| {
        format!(
            "seed {seed}: {} of {TOTAL} missing, owners {:?}, runs {:?}, violations {:?}",
            l.missing(),
            l.owner,
            l.run,
            l.violations
        )
    };
    // Join, join, join, leave, join, leave, join (three members at a time
    // from the third on), at these times whatever was consumed by then.
    let steps = [0u64, 2_500, 5_000, 8_000, 11_000, 14_000, 17_000];
    let mut step = 0;
    let mut leaves = 0;
    loop {
        let done = {
            let l = ledger.lock().expect("ledger");
            assert!(l.violations.is_empty(), "{strategy}: {}", state(&l));
            assert!(
                started.elapsed() < bound,
                "{strategy}: not done within {bound:?}: {}",
                state(&l)
            );
            l.complete()
        };
        // The last member to join gets 2 s with the others before all finish.
        let settled = started.elapsed() >= Duration::from_millis(steps[steps.len() - 1] + 2_000);
        if done && step == steps.len() && settled {
            break;
        }
        if step < steps.len() && started.elapsed() >= Duration::from_millis(steps[step]) {
            if step == 3 || step == 5 {
                let oldest = *members.keys().next().expect("a member");
                let (tx, task): (watch::Sender<Order>, tokio::task::JoinHandle<_>) =
                    members.remove(&oldest).expect("member");
                tx.send_replace(Order::Leave);
                let (polls, cancelled, mid_revoke) =
                    tokio::time::timeout(Duration::from_secs(30), task)
                        .await
                        .unwrap_or_else(|_| {
                            panic!("{strategy}: seed {seed}: member {oldest} did not leave")
                        })
                        .expect("member task");
                eprintln!(
                    "{strategy}: member {oldest} left: {cancelled} of {polls} polls cancelled, {mid_revoke} in a revoke's commit"
                );
                leaves += 1;
            } else {
                spawn(&mut rng, &mut members);
            }
            step += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (id, (tx, task)) in std::mem::take(&mut members) {
        tx.send_replace(Order::Finish);
        let (polls, cancelled, mid_revoke) = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{strategy}: member {id} did not finish: {}",
                    state(&ledger.lock().expect("ledger"))
                )
            })
            .expect("member task");
        eprintln!(
            "{strategy}: member {id} finished: {cancelled} of {polls} polls cancelled, {mid_revoke} in a revoke's commit"
        );
    }
    {
        let l = ledger.lock().expect("ledger");
        assert!(l.violations.is_empty(), "{strategy}: {}", state(&l));
        assert!(l.complete(), "{strategy}: {}", state(&l));
        assert_eq!(leaves, 2, "{strategy}: seed {seed}");
        assert!(
            l.assigned_events >= 5,
            "{strategy}: seed {seed}: only {} assignments",
            l.assigned_events
        );
        eprintln!(
            "{strategy}: {} duplicates within the uncommitted window, {} assignments, {:?}",
            l.duplicates,
            l.assigned_events,
            started.elapsed()
        );
    }
    let reader = Consumer::new(config(&b, &group, &[]))
        .await
        .expect("reader");
    let tps: Vec<TopicPartition> = end
        .keys()
        .map(|p| TopicPartition::new(&*topic, *p))
        .collect();
    let committed = reader.committed(&tps).await.expect("committed");
    for (p, e) in &end {
        let got = committed[&TopicPartition::new(&*topic, *p)]
            .as_ref()
            .map(|o| o.offset);
        assert_eq!(
            got,
            Some(*e),
            "{strategy}: seed {seed}: partition {p} committed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_polls_under_rebalances_cooperative_sticky() {
    stress("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_polls_under_rebalances_eager() {
    stress("range").await;
}

/// The same under `group.protocol=consumer` (KIP-848): the broker's
/// uniform assignor, revokes and assignments one heartbeat at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_polls_under_rebalances_consumer_protocol() {
    stress("uniform").await;
}
