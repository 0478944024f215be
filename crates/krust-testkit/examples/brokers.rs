//! Start every local test broker and keep them up until Enter (or end of
//! stdin), for poking at them by hand with kcat, the CLI or Python:
//!
//! ```sh
//! cargo run -p krust-testkit --example brokers
//! ```

use std::io::BufRead;
use std::time::Instant;

use krust_testkit::{Broker, MockCluster, NoidaDb, Tansu};

fn main() {
    let started = Instant::now();
    let brokers: Vec<Box<dyn Broker>> = vec![
        Box::new(Tansu::start()),
        Box::new(NoidaDb::start()),
        Box::new(MockCluster::start(3, &[("test", 3)])),
    ];
    for b in &brokers {
        println!("{:<16} {}", b.kind().name(), b.bootstrap());
    }
    println!(
        "all up in {:?}; press Enter to stop them",
        started.elapsed()
    );
    let _ = std::io::stdin().lock().lines().next();
}
