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
#![deny(missing_docs)]

mod acks;
mod commits;
pub mod config;
mod consumer;
pub mod error;
pub(crate) mod fetch;
mod fetcher;
mod group;
pub mod list_offsets;
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
