//! rust-rdkafka 0.39 (librdkafka 2.12.1, built from source by rdkafka-sys):
//! `BaseProducer` polled by the sending thread, with a delivery callback
//! that tallies the reports; `BaseConsumer` in a classic group.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, util::Timeout};

use super::child::{self, Args, Delivered, SESSION_TIMEOUT_MS, Seen, Window};

/// Collects the delivery reports (called on the thread that polls).
#[derive(Default)]
struct Reports(Mutex<Delivered>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut d = self.0.lock().expect("reports");
        match result {
            Ok(m) => d.ok(m.partition(), m.offset()),
            Err((e, _)) => d.failed(e),
        }
    }
}

pub fn produce(a: &Args) -> Result<(f64, f64), String> {
    let value = child::value(a.size);
    let window = Window::start();
    let producer: BaseProducer<Reports> = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create_with_context(Reports::default())
        .map_err(|e| e.to_string())?;
    for i in 0..a.records {
        let mut record = BaseRecord::<(), [u8]>::to(&a.topic).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // The local queue (queue.buffering.max.messages) is full:
                // serve delivery reports until there is room.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("send: {e}")),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Timeout::After(Duration::from_secs(60)))
        .map_err(|e| format!("flush: {e}"))?;
    let measured = window.stop();
    let d = producer.context().0.lock().expect("reports");
    d.finish("rdkafka", a.records, measured)
}

pub fn consume(a: &Args) -> Result<(f64, f64), String> {
    let mut seen = Seen::new(a.size);
    let window = Window::start();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("group.id", &a.group)
        .set("enable.auto.commit", "true")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
        .create()
        .map_err(|e| e.to_string())?;
    consumer
        .subscribe(&[a.topic.as_str()])
        .map_err(|e| e.to_string())?;
    while seen.wants(a.records, &window)? {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => seen.add(
                m.partition(),
                m.offset(),
                m.payload().map_or(0, <[u8]>::len),
            ),
            Some(Err(e)) => return Err(format!("poll: {e}")),
            None => {}
        }
    }
    let measured = window.stop();
    // Outside the window: the final commit and LeaveGroup.
    drop(consumer);
    seen.finish("rdkafka", a.records, measured)
}
