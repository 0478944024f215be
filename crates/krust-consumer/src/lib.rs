//! # krust-consumer
//!
//! The high-level consumer: partitions managed by a consumer group
//! ([`krust_group`]) or assigned by hand, a fetcher that prefetches per
//! broker within bounded memory using fetch sessions (KIP-227), and Kafka's
//! offset semantics implemented natively: a committed offset is the next
//! record to consume; by default a record's offset is committed only after
//! the application has had it; per-record acknowledgements commit only the
//! contiguous acked prefix of each partition, so no gap is ever committed.
//!
//! ```no_run
//! # async fn run() -> Result<(), krust_consumer::ConsumerError> {
//! use std::time::Duration;
//! use krust_consumer::{Consumer, ConsumerConfig};
//!
//! let config = ConsumerConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("group.id", "my-group"),
//!     ("enable.auto.commit", "false"),
//!     ("auto.offset.reset", "earliest"),
//! ])?;
//! let mut consumer = Consumer::new(config).await?;
//! consumer.subscribe(["my-topic"])?;
//! loop {
//!     for record in consumer.poll(Duration::from_secs(1)).await? {
//!         println!("{}-{}@{}", record.topic, record.partition, record.offset);
//!     }
//!     consumer.commit().await?; // after processing: at-least-once
//! }
//! # }
//! ```
//!
//! # Metrics
//!
//! With the cargo feature `metrics` (off by default; the `krust` crate
//! forwards its own `metrics` feature to it) the consumer records its lag
//! (records and seconds, per partition, and the max), the records and bytes
//! it hands out per topic, fetch latency per broker, commit latency and
//! failures (by Kafka error name), rebalances (count, time, partitions
//! assigned, revoked and lost) and the time since the last `poll`, through
//! the [`metrics`](https://docs.rs/metrics/0.24) facade. krust brings no
//! exporter: the application installs a recorder (for example
//! `metrics-exporter-prometheus`) before it creates its consumers. Each
//! name, its labels and what it means are in the module
//! `krust_consumer::metrics` (there with the feature only) and in
//! docs/ARCHITECTURE.md, "Consumer metrics". Without the feature nothing of
//! it is compiled in.
#![deny(missing_docs)]

mod acks;
mod buffer;
mod commits;
pub mod config;
mod consumer;
pub mod error;
pub(crate) mod fetch;
mod fetcher;
mod group;
pub mod list_offsets;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
#[path = "metrics/off.rs"]
mod metrics;
mod offsets;
mod parts;
pub mod rebalance;
pub mod record;
mod revoking;
mod stream;

pub use config::{AckMode, AutoOffsetReset, ConsumerConfig, ConsumerConfigBuilder, GroupProtocol};
pub use consumer::{Consumer, PartitionLag};
pub use error::{ConfigError, ConsumerError, Truncation};
pub use fetch::IsolationLevel;
pub use krust_group::{GroupError, LeaveReason, OffsetAndMetadata, TopicPartition};
pub use list_offsets::{ListedOffset, OffsetSpec, list_offsets};
pub use rebalance::{RebalanceListener, Revoke};
pub use record::{AckHandle, ConsumerRecord};
