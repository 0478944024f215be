//! kacrab 0.4 (features `producer`, `consumer`): its Java-style producer
//! (`send` appends synchronously and returns a `SendFuture`) and its
//! consumer in a classic group.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kacrab::consumer::Consumer;
use kacrab::producer::{Producer, ProducerRecord, SendFuture};

use super::child::{self, Args, Delivered, SESSION_TIMEOUT_MS, Seen, WINDOW, Window};

pub fn produce(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let value = Bytes::from(child::value(a.size));
    let topic: Arc<str> = Arc::from(a.topic.as_str());
    let window = Window::start();
    let delivered = rt.block_on(async {
        let producer = Producer::builder()
            .set("bootstrap.servers", a.bootstrap.as_str())
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let mut d = Delivered::default();
        let mut add = |r: Result<kacrab::producer::RecordMetadata, _>| match r {
            Ok(m) => d.ok(m.partition, m.offset),
            Err(e) => d.failed(e),
        };
        let mut pending: VecDeque<SendFuture> = VecDeque::with_capacity(WINDOW);
        for _ in 0..a.records {
            let record = ProducerRecord::topic_value(Arc::clone(&topic), value.clone());
            pending.push_back(producer.send(record).map_err(|e| e.to_string())?);
            if pending.len() >= WINDOW {
                add(pending.pop_front().expect("non-empty").await);
            }
        }
        producer.flush().await.map_err(|e| e.to_string())?;
        for f in pending {
            add(f.await);
        }
        producer.close().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(d)
    })?;
    let measured = window.stop();
    delivered.finish("kacrab", a.records, measured)
}

pub fn consume(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let mut seen = Seen::new(a.size);
    let window = Window::start();
    let consumer = rt.block_on(async {
        let session = SESSION_TIMEOUT_MS.to_string();
        let mut consumer = Consumer::from_map([
            ("bootstrap.servers", a.bootstrap.as_str()),
            ("group.id", a.group.as_str()),
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", session.as_str()),
        ])
        .await
        .map_err(|e| e.to_string())?;
        consumer
            .subscribe([a.topic.as_str()])
            .map_err(|e| e.to_string())?;
        seen.read_all(
            a.records,
            &window,
            async || {
                consumer
                    .poll(Duration::from_millis(500))
                    .await
                    .map_err(|e| e.to_string())
            },
            |r| {
                (
                    r.partition,
                    r.offset,
                    r.value.as_ref().map_or(0, Bytes::len),
                )
            },
        )
        .await?;
        Ok::<_, String>(consumer)
    })?;
    let measured = window.stop();
    // Outside the window: the commit on close and LeaveGroup.
    rt.block_on(consumer.close());
    seen.finish("kacrab", a.records, measured)
}
