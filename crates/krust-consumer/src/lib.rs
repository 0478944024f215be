//! # krust-consumer
//!
//! The high-level consumer: partitions managed by a consumer group
//! ([`krust_group`]) or assigned by hand, a fetcher that prefetches per
//! broker within bounded memory using fetch sessions (KIP-227), and Kafka's
//! offset semantics implemented natively: a committed offset is the next
//! record to consume; by default a record's offset is committed only after
//! the application has had it; per-record acknowledgements commit only the
//! contiguous acked prefix of each partition, so no gap is ever committed.
#![deny(missing_docs)]

mod acks;
pub(crate) mod fetch;
pub mod list_offsets;
pub mod record;

pub use fetch::IsolationLevel;
pub use krust_group::{OffsetAndMetadata, TopicPartition};
pub use list_offsets::{ListedOffset, OffsetSpec, list_offsets};
pub use record::{AckHandle, ConsumerRecord};
