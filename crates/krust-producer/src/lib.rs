//! # krust-producer
//!
//! The krust producer, designed after the Java client and librdkafka:
//! Java-compatible murmur2 partitioning with sticky partitioning for
//! unkeyed records (KIP-480), per-partition batching with `linger.ms` and
//! `batch.size`, bounded memory with backpressure (`buffer.memory`,
//! `max.block.ms`), one Produce request per broker carrying every ready
//! batch, `acks` 0/1/all, compression, the idempotent producer (KIP-98,
//! KIP-360) and delivery futures.
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod partitioner;
pub mod record;

pub use config::{Acks, ProducerConfig, ProducerConfigBuilder};
pub use error::{ConfigError, ProduceError};
pub use partitioner::{
    DefaultPartitioner, Partitioner, PartitionerChoice, murmur2, murmur2_partition,
};
pub use record::{DeliveryFuture, ProducerRecord, RecordHeader, RecordMetadata};
