//! Consume a topic in a group, committing after processing:
//! `cargo run -p krust-consumer --example consume -- BOOTSTRAP GROUP TOPIC [COUNT]`.
//!
//! Records are processed on other tasks and acked there
//! (`acknowledgement.mode=explicit`): the consumer commits, every second,
//! only the contiguous acked prefix of each partition, so a crash never
//! skips a record that was not processed. A rebalance listener logs what
//! moves. Ctrl-C closes cleanly (final commit, LeaveGroup).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use krust_consumer::{Consumer, ConsumerConfig, RebalanceListener, Revoke, TopicPartition};

struct Log;

impl RebalanceListener for Log {
    fn on_assigned(&mut self, partitions: &BTreeSet<TopicPartition>) {
        eprintln!("assigned {partitions:?}");
    }
    fn on_revoked(&mut self, revoke: &mut Revoke) {
        eprintln!(
            "revoked {:?}: committing what was acked",
            revoke.partitions()
        );
        revoke.commit_all();
    }
    fn on_lost(&mut self, partitions: &BTreeSet<TopicPartition>) {
        eprintln!("lost {partitions:?}: nothing committed for them");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, group, topic, rest @ ..] = args.as_slice() else {
        return Err("usage: consume BOOTSTRAP GROUP TOPIC [COUNT]".into());
    };
    let count: usize = rest.first().map_or(Ok(usize::MAX), |c| c.parse())?;
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("acknowledgement.mode", "explicit"),
    ])?;
    let mut consumer = Consumer::new(config).await?;
    consumer.set_rebalance_listener(Log);
    consumer.subscribe([topic.as_str()])?;

    let mut seen = 0;
    let mut last_commit = Instant::now();
    // Polls run to completion (a poll cut off midway may have taken a
    // group event without finishing it); Ctrl-C only sets a flag.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    while seen < count && !stop.load(Ordering::Relaxed) {
        let batch = consumer.poll(Duration::from_millis(500)).await?;
        for record in batch {
            seen += 1;
            // Process elsewhere; the ack handle is 'static + Send.
            tokio::spawn(async move {
                let len = record.value().map_or(0, <[u8]>::len);
                println!(
                    "{}-{}@{}: {len} bytes",
                    record.topic, record.partition, record.offset
                );
                record.ack();
            });
        }
        if last_commit.elapsed() >= Duration::from_secs(1) {
            consumer.commit().await?;
            last_commit = Instant::now();
        }
    }
    consumer.commit().await?;
    for (tp, lag) in consumer.lag() {
        eprintln!("{tp}: position {:?}, lag {:?}", lag.position, lag.lag);
    }
    consumer.close().await?;
    Ok(())
}
