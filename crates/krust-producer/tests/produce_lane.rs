//! Produce requests travel on a connection of their own (`Lane::Produce`):
//! a broker holds a Produce with `acks=all` until the in-sync replicas have
//! its records, and answers a connection's requests strictly in order, so
//! a Produce sent on the pool's Normal connection delays every Metadata or
//! ListOffsets to that broker behind it.
//!
//! On an Apache Kafka 4.4.0 node of its own behind a small TCP proxy (the
//! node advertises the proxy's port, so every connection the producer opens
//! goes through it). The proxy reads the frames of each connection, notes
//! the correlation ids of Produce requests, and holds a Produce reply (and,
//! as a broker would, everything after it on that connection) until the
//! test lets it go: the hold is a state, not a duration, so nothing here
//! depends on timing but the bound on a Metadata that must be answered
//! while the Produce is held.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use krust_codec::generated::MetadataRequest;
use krust_producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use krust_testkit::{Kafka, unique};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const BOUND: Duration = Duration::from_secs(60);
/// How long a Metadata on the pool's Normal connection may take while a
/// Produce reply is held: a broker on this machine answers it in
/// milliseconds, and before the fix it never came before the release.
const PROMPT: Duration = Duration::from_secs(10);
const PRODUCE: i16 = 0;

/// What the proxy shares with the test.
struct Gate {
    /// Whether Produce replies are held now.
    hold: watch::Sender<bool>,
    /// Produce replies held so far.
    held: AtomicUsize,
}

/// Read one whole frame (length prefix included) from `r`; `None` at end.
async fn frame(r: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.ok()?;
    let n = usize::try_from(i32::from_be_bytes(len)).ok()?;
    let mut buf = vec![0u8; 4 + n];
    buf[..4].copy_from_slice(&len);
    r.read_exact(&mut buf[4..]).await.ok()?;
    Some(buf)
}

fn i16_at(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Forward every connection to `upstream`, frame by frame; a reply to a
/// Produce request of that connection waits while the gate holds.
async fn proxy(listener: TcpListener, upstream: String, gate: Arc<Gate>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let (upstream, gate) = (upstream.clone(), gate.clone());
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let produces: Arc<Mutex<HashSet<i32>>> = Arc::default();
            let p = produces.clone();
            tokio::spawn(async move {
                // Request header: length, api key, api version, correlation id.
                while let Some(f) = frame(&mut cr).await {
                    if i16_at(&f, 4) == Some(PRODUCE)
                        && let Some(id) = i32_at(&f, 8)
                    {
                        p.lock().expect("produces").insert(id);
                    }
                    if sw.write_all(&f).await.is_err() {
                        return;
                    }
                }
            });
            let mut hold = gate.hold.subscribe();
            // Response header: length, correlation id.
            while let Some(f) = frame(&mut sr).await {
                let produce =
                    i32_at(&f, 4).is_some_and(|id| produces.lock().expect("produces").remove(&id));
                if produce && *hold.borrow_and_update() {
                    gate.held.fetch_add(1, Ordering::Relaxed);
                    if hold.wait_for(|h| !*h).await.is_err() {
                        return;
                    }
                }
                if cw.write_all(&f).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// While the broker's reply to an `acks=all` Produce is held, a Metadata
/// request on the producer's pool's connection to that broker (the one
/// `Pool::broker` gives: Metadata, ListOffsets, admin requests) is
/// answered, and so is a send to a second topic that needs its metadata
/// first; once the replies go, every record is delivered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_produce_does_not_delay_other_requests_to_its_broker() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let front = listener.local_addr().expect("proxy addr").to_string();
    let kafka = Kafka::builder()
        .config("advertised.listeners", &format!("PLAINTEXT://{front}"))
        .start();
    let id = kafka.as_cluster().node_ids()[0];
    let (first, second) = (unique("krust-lane-a"), unique("krust-lane-b"));
    for t in [&first, &second] {
        kafka.as_cluster().create_topic(t, 1).expect("create topic");
    }
    let (hold, _) = watch::channel(false);
    let gate = Arc::new(Gate {
        hold,
        held: AtomicUsize::new(0),
    });
    tokio::spawn(proxy(listener, kafka.addr(), gate.clone()));
    tokio::time::timeout(BOUND, async {
        let config = ProducerConfig::builder()
            .bootstrap_servers([front.clone()])
            .acks(Acks::All)
            .enable_idempotence(true)
            .linger(Duration::ZERO)
            // The held Produce must not time out: its reply comes when the
            // test lets it go.
            .request_timeout(Duration::from_secs(40))
            .delivery_timeout(Duration::from_secs(50))
            .build()
            .expect("config");
        let producer = Producer::new(config).await.expect("producer");
        gate.hold.send_replace(true);
        let a0 = producer
            .send(ProducerRecord::new(&first, "a0"))
            .await
            .expect("send a0");
        let since = Instant::now();
        while gate.held.load(Ordering::Relaxed) == 0 {
            assert!(since.elapsed() < PROMPT, "the Produce reply was never held");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let a1 = producer
            .send(ProducerRecord::new(&first, "a1"))
            .await
            .expect("send a1");
        let conn = producer.pool().broker(id).await.expect("connection");
        let asked = MetadataRequest {
            topics: Some(Vec::new()),
            ..Default::default()
        };
        let md = tokio::time::timeout(PROMPT, conn.send(&asked))
            .await
            .unwrap_or_else(|_| {
                panic!("a Metadata to broker {id} waited behind the held Produce for {PROMPT:?}")
            })
            .expect("metadata");
        assert!(
            md.brokers.iter().any(|b| b.node_id == id),
            "the broker lists itself: {md:?}"
        );
        // A send to another topic looks its metadata up first.
        let b0 = tokio::time::timeout(PROMPT, producer.send(ProducerRecord::new(&second, "b0")))
            .await
            .expect("a send to a second topic waited behind the held Produce")
            .expect("send b0");
        assert!(
            gate.held.load(Ordering::Relaxed) >= 1 && *gate.hold.borrow(),
            "still held"
        );
        gate.hold.send_replace(false);
        let a0 = a0.await.expect("a0 delivered");
        let a1 = a1.await.expect("a1 delivered");
        let b0 = b0.await.expect("b0 delivered");
        assert_eq!(
            (a0.offset, a1.offset, b0.offset),
            (0, 1, 0),
            "each record once, in the order sent"
        );
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
    })
    .await
    .expect("bounded in time");
}
