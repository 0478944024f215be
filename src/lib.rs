//! # krust
//!
//! A pure-Rust Apache Kafka client. This facade re-exports the layers of the
//! workspace:
//!
//! - [`codec`]: the sans-io wire codec (messages, record batches, errors);
//! - [`net`]: connections, the broker pool, cluster metadata, retries;
//! - [`consumer`]: the consumer (groups, fetch sessions, commits, acks, lag);
//! - [`group`]: the group protocol (membership, assignors, offsets);
//! - [`producer`]: the producer (batching, idempotence, delivery futures);
//! - [`admin`]: topic and offset administration.
#![deny(missing_docs)]

pub use krust_codec as codec;
pub use krust_consumer as consumer;
pub use krust_group as group;
pub use krust_net as net;
pub use krust_producer as producer;

pub mod admin;
pub mod lag;

pub use krust_consumer::{Consumer, ConsumerConfig, ConsumerRecord};
pub use krust_producer::{Producer, ProducerConfig, ProducerRecord};
