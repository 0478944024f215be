//! krust itself as a peer: krust-producer and krust-consumer with the
//! settings every peer gets.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use krust_consumer::{Consumer, ConsumerConfig};
use krust_producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};

use super::child::{self, Args, Delivered, SESSION_TIMEOUT_MS, Seen, WINDOW, Window};

pub fn produce(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let value = Bytes::from(child::value(a.size));
    let window = Window::start();
    let delivered = rt.block_on(async {
        let config = ProducerConfig::from_properties([
            ("bootstrap.servers", a.bootstrap.clone()),
            ("acks", "all".to_owned()),
            ("linger.ms", "5".to_owned()),
            ("batch.size", "1000000".to_owned()),
        ])
        .map_err(|e| e.to_string())?;
        let producer = Producer::new(config).await.map_err(|e| e.to_string())?;
        let mut d = Delivered::default();
        let mut add = |r: Result<krust_producer::RecordMetadata, _>| match r {
            Ok(m) => d.ok(m.partition, m.offset),
            Err(e) => d.failed(e),
        };
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::with_capacity(WINDOW);
        // One shared name, as the producer's docs advise: no copy a record.
        let topic: std::sync::Arc<str> = a.topic.as_str().into();
        for _ in 0..a.records {
            let record = ProducerRecord::new(&topic, value.clone());
            pending.push_back(producer.send(record).await.map_err(|e| e.to_string())?);
            if pending.len() >= WINDOW {
                add(pending.pop_front().expect("non-empty").await);
            }
        }
        producer.flush().await.map_err(|e| e.to_string())?;
        for f in pending {
            add(f.await);
        }
        producer
            .close(Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(d)
    })?;
    let measured = window.stop();
    delivered.finish("krust", a.records, measured)
}

pub fn consume(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let mut seen = Seen::new(a.size);
    let window = Window::start();
    let consumer = rt.block_on(async {
        let session = SESSION_TIMEOUT_MS.to_string();
        let config = ConsumerConfig::from_properties([
            ("bootstrap.servers", a.bootstrap.as_str()),
            ("group.id", a.group.as_str()),
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", session.as_str()),
        ])
        .map_err(|e| e.to_string())?;
        let mut consumer = Consumer::new(config).await.map_err(|e| e.to_string())?;
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
            |r| (r.partition, r.offset, r.value().map_or(0, <[u8]>::len)),
        )
        .await?;
        Ok::<_, String>(consumer)
    })?;
    let measured = window.stop();
    // Outside the window: the commit on close and LeaveGroup.
    if let Err(e) = rt.block_on(consumer.close()) {
        eprintln!("krust: close: {e}");
    }
    seen.finish("krust", a.records, measured)
}
