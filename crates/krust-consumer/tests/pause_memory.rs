//! What a paused partition holds. A record's key and value are zero-copy
//! slices of the fetch response they came in, so one buffered record keeps
//! its whole response alive (up to `fetch.max.bytes`, every partition in
//! it). A paused partition keeps nothing fetched: its buffer is dropped at
//! the pause and fetched again on resume, and nothing is lost or handed out
//! twice. Measured with a global allocator that counts live heap bytes,
//! which is why this test has a binary of its own (other tests allocating
//! beside it would blur the count).
//!
//! On the Apache Kafka 4.4.0 node this binary shares.

// A global allocator is an `unsafe trait`: this counting one, which only
// forwards to `System` and adds up sizes, is the test binary's only unsafe.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use common::{consumer_config, create_topic, produce};
use krust_consumer::{Consumer, TopicPartition};
use krust_producer::ProducerRecord;
use krust_testkit::{Kafka, unique};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds
// GlobalAlloc's contract; the bookkeeping is one atomic, allocating nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. System.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, with the caller's `new_size` contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: isize = 1 << 20;
/// Partitions of 40 records of 100 KiB each: 4 MiB, which is about what
/// one fetch returns (`fetch.max.bytes` 4.5 MiB).
const PARTITIONS: i32 = 4;
const RECORDS: i64 = 40;
const VALUE: usize = 100 * 1024;

fn live_mib(bytes: isize) -> f64 {
    bytes as f64 / MIB as f64
}

/// Each partition is paused once its first record is handed out, so each
/// held (before the fix) the rest of the response it came in: 4 MiB per
/// paused partition, 16.1 MiB live for 4 (12.1 for 3). What stays once
/// they are all paused does not grow with them: the fetch connection's
/// read buffer, which every later response reuses (8.1 MiB: its growth
/// rounds a 4.1 MiB frame up to 8), so the bound is below 3 responses.
/// Resumed, every record comes once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_partition_holds_no_fetch_response() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let kafka = Kafka::shared();
        let b = kafka.addr();
        let topic = unique("krust-pause-memory");
        create_topic(kafka, &topic, PARTITIONS).await;
        let value = |p: i32, i: i64| {
            let mut v = format!("{p}-{i:04}-").into_bytes();
            v.resize(VALUE, b'x');
            v
        };
        let records: Vec<ProducerRecord> = (0..PARTITIONS)
            .flat_map(|p| (0..RECORDS).map(move |i| (p, i)))
            .map(|(p, i)| ProducerRecord::new(topic.as_str(), value(p, i)).partition(p))
            .collect();
        produce(&b, records).await;
        let mut c = Consumer::new(consumer_config(
            &b,
            &[
                ("auto.offset.reset", "earliest"),
                ("max.poll.records", "1"),
                ("fetch.max.bytes", "4718592"),
                ("max.partition.fetch.bytes", "8388608"),
            ],
        ))
        .await
        .expect("consumer");
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        c.assign(tps.clone()).expect("assign");
        let mut seen: Vec<Vec<i64>> = vec![Vec::new(); PARTITIONS as usize];
        let before_fetching = LIVE.load(Ordering::Relaxed);
        let mut most = 0;
        let t = Instant::now();
        while c.paused().len() < PARTITIONS as usize {
            assert!(t.elapsed() < Duration::from_secs(60), "not all read: {seen:?}");
            for r in c.poll(Duration::from_millis(200)).await.expect("poll") {
                seen[r.partition as usize].push(r.offset);
                let tp = TopicPartition::new(topic.clone(), r.partition);
                c.pause(std::slice::from_ref(&tp)).expect("pause");
            }
            most = most.max(LIVE.load(Ordering::Relaxed) - before_fetching);
        }
        // Whatever is still in flight lands (and is dropped: paused).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let paused = LIVE.load(Ordering::Relaxed) - before_fetching;
        eprintln!(
            "{PARTITIONS} partitions paused: {:.1} MiB live above the start (at most {:.1} MiB on the way)",
            live_mib(paused),
            live_mib(most)
        );
        assert!(
            paused < 12 * MIB,
            "paused partitions keep their fetch responses alive: {:.1} MiB live",
            live_mib(paused)
        );
        c.resume(&tps).expect("resume");
        while seen.iter().any(|s| s.len() < RECORDS as usize) {
            assert!(t.elapsed() < Duration::from_secs(90), "stalled: {seen:?}");
            for r in c.poll(Duration::from_millis(200)).await.expect("poll") {
                seen[r.partition as usize].push(r.offset);
            }
        }
        for (p, s) in seen.iter().enumerate() {
            assert_eq!(
                *s,
                (0..RECORDS).collect::<Vec<_>>(),
                "partition {p}: once each, in order, across the pause"
            );
        }
    })
    .await
    .expect("bounded");
}
