//! Start every local test broker and keep them up until Enter (or end of
//! stdin), for poking at them by hand with kcat, the CLI or Python:
//!
//! ```sh
//! cargo run -p krust-testkit --example brokers            # one Kafka 4.4.0 node and the emulators
//! cargo run -p krust-testkit --example brokers -- cluster # also a 3-node Kafka cluster
//! ```

use std::io::BufRead;
use std::time::Instant;

use krust_testkit::{Broker, Kafka, KafkaCluster, KafkaVersion, MockCluster, NoidaDb, Tansu};

fn main() {
    let started = Instant::now();
    let mut brokers: Vec<Box<dyn Broker>> = vec![
        Box::new(Kafka::start()),
        Box::new(Kafka::start_version(KafkaVersion::V3_9)),
        Box::new(Tansu::start()),
        Box::new(NoidaDb::start()),
        Box::new(MockCluster::start(3, &[("test", 3)])),
    ];
    if std::env::args().any(|a| a == "cluster") {
        brokers.push(Box::new(KafkaCluster::start()));
    }
    for b in &brokers {
        println!("{:<28} {}", b.name(), b.bootstrap());
    }
    println!(
        "all up in {:?}; press Enter to stop them",
        started.elapsed()
    );
    let _ = std::io::stdin().lock().lines().next();
}
