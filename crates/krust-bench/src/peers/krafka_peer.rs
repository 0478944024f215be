//! krafka 0.28: `Kafka::builder(..).connect()` then its producer
//! (`enqueue` pipelines, the handle resolves to the acknowledgement) and
//! its consumer in a classic group (krafka's default protocol).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use krafka::consumer::AutoOffsetReset;
use krafka::producer::{Acks, DeliveryHandle};
use krafka::{Kafka, Record};

use super::child::{self, Args, Delivered, SESSION_TIMEOUT_MS, Seen, WINDOW, Window};

pub fn produce(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let value = Bytes::from(child::value(a.size));
    let window = Window::start();
    let delivered = rt.block_on(async {
        let kafka = Kafka::builder(a.bootstrap.as_str())
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let producer = kafka
            .producer()
            .acks(Acks::All)
            .linger(Duration::from_millis(5))
            .batch_size(1_000_000)
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let mut d = Delivered::default();
        let mut add = |r: Result<krafka::producer::RecordMetadata, _>| match r {
            Ok(m) => d.ok(m.partition, m.offset),
            Err(e) => d.failed(e),
        };
        let mut pending: VecDeque<DeliveryHandle> = VecDeque::with_capacity(WINDOW);
        for _ in 0..a.records {
            let record = Record::new(a.topic.as_str(), value.clone());
            pending.push_back(producer.enqueue(record).await.map_err(|e| e.to_string())?);
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
    delivered.finish("krafka", a.records, measured)
}

pub fn consume(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let mut seen = Seen::new(a.size);
    let window = Window::start();
    let consumer = rt.block_on(async {
        let kafka = Kafka::builder(a.bootstrap.as_str())
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let consumer = kafka
            .consumer(a.group.as_str())
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .enable_auto_commit(true)
            .session_timeout(Duration::from_millis(SESSION_TIMEOUT_MS))
            .build()
            .await
            .map_err(|e| e.to_string())?;
        consumer
            .subscribe([a.topic.as_str()])
            .await
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
    if let Err(e) = rt.block_on(consumer.close()) {
        eprintln!("krafka: close: {e}");
    }
    seen.finish("krafka", a.records, measured)
}
