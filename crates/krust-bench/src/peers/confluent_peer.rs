//! confluent-kafka 1.0 (Confluent's native Rust client, a translation of
//! the Java client 4.4.0): `KafkaProducer` on its byte-slice `send` path,
//! `KafkaConsumer` in a KIP-848 group, the only group protocol it has
//! (so Kafka ≥ 4.0 only).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use confluent_kafka::common::KafkaFuture;
use confluent_kafka::common::serialization::{ByteArrayDeserializer, ByteArraySerializer};
use confluent_kafka::consumer::{Consumer, ConsumerConfig, KafkaConsumer};
use confluent_kafka::producer::{
    KafkaProducer, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};

use super::child::{self, Args, Delivered, Seen, WINDOW, Window};

fn props(kvs: &[(&str, &str)]) -> HashMap<String, String> {
    kvs.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn produce(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let value = child::value(a.size);
    let window = Window::start();
    let delivered = rt.block_on(async {
        let config = ProducerConfig::new(&props(&[
            ("bootstrap.servers", &a.bootstrap),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.size", "1000000"),
        ]))
        .map_err(|e| e.to_string())?;
        let producer = KafkaProducer::<Vec<u8>, Vec<u8>>::new(
            config,
            ByteArraySerializer::new(),
            ByteArraySerializer::new(),
        )
        .map_err(|e| e.to_string())?;
        let mut d = Delivered::default();
        let mut pending: VecDeque<KafkaFuture<RecordMetadata>> = VecDeque::with_capacity(WINDOW);
        async fn settle(d: &mut Delivered, f: KafkaFuture<RecordMetadata>) {
            match f.get().await {
                Ok(m) => d.ok(m.partition(), m.offset()),
                Err(e) => d.failed(e),
            }
        }
        for _ in 0..a.records {
            let record = ProducerRecord::<&[u8], &[u8]>::new(a.topic.clone(), Some(&value[..]));
            pending.push_back(
                producer
                    .send(record, None)
                    .await
                    .map_err(|e| e.to_string())?,
            );
            if pending.len() >= WINDOW {
                settle(&mut d, pending.pop_front().expect("non-empty")).await;
            }
        }
        producer.flush().await.map_err(|e| e.to_string())?;
        for f in pending {
            settle(&mut d, f).await;
        }
        producer.close().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(d)
    })?;
    let measured = window.stop();
    delivered.finish("confluent-rust", a.records, measured)
}

pub fn consume(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let mut seen = Seen::new(a.size);
    let window = Window::start();
    let mut consumer = rt.block_on(async {
        let config = ConsumerConfig::new(&props(&[
            ("bootstrap.servers", &a.bootstrap),
            ("group.id", &a.group),
            ("group.protocol", "consumer"),
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", "earliest"),
        ]))
        .map_err(|e| e.to_string())?;
        let mut consumer = KafkaConsumer::<Vec<u8>, Vec<u8>>::new(
            config,
            ByteArrayDeserializer::new(),
            ByteArrayDeserializer::new(),
        )
        .map_err(|e| e.to_string())?;
        consumer
            .subscribe_with_topics(vec![a.topic.clone()])
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
            |r| (r.partition(), r.offset(), r.value().map_or(0, Vec::len)),
        )
        .await?;
        Ok::<_, String>(consumer)
    })?;
    let measured = window.stop();
    // Outside the window: the commit on close and leaving the group.
    if let Err(e) = rt.block_on(consumer.close()) {
        eprintln!("confluent-rust: close: {e}");
    }
    seen.finish("confluent-rust", a.records, measured)
}
