//! # krust-producer
//!
//! The krust producer, designed after the Java client and librdkafka:
//! Java-compatible murmur2 partitioning with sticky partitioning for
//! unkeyed records (KIP-480), per-partition batching with `linger.ms` and
//! `batch.size`, bounded memory with backpressure (`buffer.memory`,
//! `max.block.ms`), one Produce request per broker carrying every ready
//! batch, `acks` 0/1/all, compression, the idempotent producer (KIP-98,
//! KIP-360) and delivery futures.
//!
//! ```no_run
//! # async fn demo() -> Result<(), krust_producer::ProduceError> {
//! use krust_producer::{Producer, ProducerConfig, ProducerRecord};
//!
//! let config = ProducerConfig::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("linger.ms", "5"),
//!     ("compression.type", "lz4"),
//! ])?;
//! let producer = Producer::new(config).await?;
//! let delivery = producer
//!     .send(ProducerRecord::new("events", "hello").key("user-1"))
//!     .await?;
//! let meta = delivery.await?;
//! println!("partition {} offset {}", meta.partition, meta.offset);
//! producer.close(std::time::Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod accumulator;
pub mod config;
mod delivery;
pub mod error;
mod expiry;
mod fast_hash;
mod front;
mod idempotence;
mod link;
pub mod partitioner;
mod producer;
pub mod record;
mod request;
mod response;
mod sender;

pub use config::{Acks, ProducerConfig, ProducerConfigBuilder};
pub use error::{ConfigError, ProduceError};
pub use krust_codec::records::Compression;
pub use partitioner::{
    DefaultPartitioner, Partitioner, PartitionerChoice, murmur2, murmur2_partition,
};
pub use producer::Producer;
pub use record::{DeliveryFuture, IntoTopic, ProducerRecord, RecordHeader, RecordMetadata};
