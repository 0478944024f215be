//! Produce replies held past `request.timeout.ms` while 100,000 idempotent
//! records are produced: the timed-out requests were appended by the
//! broker, so their retries (same producer id, epoch and sequence) must be
//! recognised as duplicates. Afterwards: no record lost, none twice, order
//! per partition kept, and every reported offset is where the record is.
//!
//! On an Apache Kafka 4.4.0 node of its own behind a delaying proxy: a
//! small TCP proxy in front of it holds every reply that arrives within a
//! window for longer than the request timeout, so every timed-out request
//! has been appended before its retry arrives. The node advertises the
//! proxy's port (`advertised.listeners`), so every connection the producer
//! opens goes through it. (Not the librdkafka mock's `rtt`: the mock, 2.0.2
//! and still 2.12.1, checks sequences only for transactional producers, so
//! it appends an idempotent retry a second time, which Kafka never does.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{PARTITIONS, check, pool, read_all, record};
use krust_producer::{Producer, ProducerConfig};
use krust_testkit::{Kafka, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RECORDS: usize = 100_000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long replies are held: past the request timeout.
const HOLD: Duration = Duration::from_millis(2500);
/// How long replies are held for, from the first send on.
const WINDOW: Duration = Duration::from_secs(4);
const BOUND: Duration = Duration::from_secs(90);

/// When replies are held (from the instant, for `WINDOW`), and how many
/// reads of reply bytes were held.
#[derive(Default)]
struct Window {
    from: Mutex<Option<Instant>>,
    held: AtomicUsize,
}

/// Forward every connection to `upstream`; requests pass at once, reply
/// bytes read within the window are released `HOLD` later, in order.
async fn proxy(listener: TcpListener, upstream: String, window: Arc<Window>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let (upstream, window) = (upstream.clone(), window.clone());
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
            tokio::spawn(async move {
                while let Some((at, bytes)) = rx.recv().await {
                    tokio::time::sleep_until(at.into()).await;
                    if cw.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match sr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let now = Instant::now();
                let held = window
                    .from
                    .lock()
                    .expect("window")
                    .is_some_and(|from| now >= from && now < from + WINDOW);
                let at = if held {
                    window.held.fetch_add(1, Ordering::Relaxed);
                    now + HOLD
                } else {
                    now
                };
                if tx.send((at, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_delayed_past_the_request_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let front = listener.local_addr().expect("proxy addr").to_string();
    let kafka = Kafka::builder()
        .config("advertised.listeners", &format!("PLAINTEXT://{front}"))
        .start();
    let topic = unique("krust-producer-slow-replies");
    kafka
        .as_cluster()
        .create_topic(&topic, PARTITIONS)
        .expect("create the topic");
    let window: Arc<Window> = Arc::default();
    tokio::spawn(proxy(listener, kafka.addr(), window.clone()));
    let started = Instant::now();
    tokio::time::timeout(BOUND, async {
        let config = ProducerConfig::builder()
            .bootstrap_servers([front.clone()])
            .enable_idempotence(true)
            .request_timeout(REQUEST_TIMEOUT)
            .delivery_timeout(Duration::from_secs(60))
            .retry_backoff(Duration::from_millis(20))
            .retry_backoff_max(Duration::from_millis(200))
            .build()
            .expect("config");
        let producer = Producer::new(config).await.expect("producer");
        assert!(producer.producer_id().is_some(), "idempotence is on");
        let mut futures = Vec::with_capacity(RECORDS);
        for i in 0..RECORDS {
            futures.push(producer.send(record(&topic, i)).await.expect("send"));
            if i == 1_000 {
                *window.from.lock().expect("window") = Some(Instant::now());
            }
            if i % 10_000 == 0 {
                // Spread the sends over the window.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let mut reports = Vec::with_capacity(RECORDS);
        for (i, f) in futures.into_iter().enumerate() {
            reports.push(f.await.unwrap_or_else(|e| panic!("record {i}: {e}")));
        }
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
        let held = window.held.load(Ordering::Relaxed);
        assert!(held > 0, "no reply was held: the fault never happened");
        let unknown = reports.iter().filter(|r| r.offset < 0).count();
        let reader = pool(&front).await;
        let read = read_all(&reader, &topic, RECORDS, Duration::from_secs(30)).await;
        check(&read, &topic, RECORDS, &reports);
        eprintln!("{held} reads of replies held; {unknown} records acknowledged as duplicates without an offset");
    })
    .await
    .expect("bounded in time");
    eprintln!(
        "{RECORDS} records through replies held {HOLD:?} (timeout {REQUEST_TIMEOUT:?}) in {:?}",
        started.elapsed()
    );
}
