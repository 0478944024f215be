//! Produce lines of stdin (or, with KRUST_SAMPLE set, 10 sample records) to a topic:
//! `cargo run -p krust-producer --example produce -- BOOTSTRAP TOPIC`.

use std::io::BufRead;
use std::time::Duration;

use krust_producer::{Producer, ProducerConfig, ProducerRecord};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(bootstrap), Some(topic)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: produce BOOTSTRAP TOPIC  (lines of stdin become records; key=text before a tab)"
        );
        std::process::exit(2);
    };
    let config = ProducerConfig::from_properties([("bootstrap.servers", bootstrap.as_str())])?;
    let producer = Producer::new(config).await?;
    let lines: Vec<String> = if sample_mode() {
        (0..10)
            .map(|i| format!("key-{i}\tsample record {i}"))
            .collect()
    } else {
        std::io::stdin().lock().lines().collect::<Result<_, _>>()?
    };
    let mut pending = Vec::new();
    for line in lines {
        let record = match line.split_once('\t') {
            Some((k, v)) => ProducerRecord::new(topic.clone(), v.to_owned()).key(k.to_owned()),
            None => ProducerRecord::new(topic.clone(), line),
        };
        pending.push(producer.send(record).await?);
    }
    for p in pending {
        let m = p.await?;
        println!(
            "partition {} offset {} timestamp {}",
            m.partition, m.offset, m.timestamp
        );
    }
    producer.close(Duration::from_secs(10)).await?;
    Ok(())
}

/// With `KRUST_SAMPLE` set, 10 sample records are sent instead of stdin.
fn sample_mode() -> bool {
    std::env::var_os("KRUST_SAMPLE").is_some()
}
