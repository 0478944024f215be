//! What an application hands to the producer and what it gets back: the
//! record, its delivery metadata, and the `'static + Send` future that
//! resolves once the broker has (or has not) taken the record.

use std::sync::Arc;

use bytes::Bytes;

pub use crate::delivery::DeliveryFuture;

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// The header key.
    pub key: String,
    /// The value, `None` for null.
    pub value: Option<Bytes>,
}

/// A topic name for a [`ProducerRecord`]: `&str`, `&String` and `String`
/// are copied into a new `Arc<str>`; an `Arc<str>` (or a reference to one)
/// is shared without a copy, which is what a loop sending many records to
/// one topic should pass.
pub trait IntoTopic {
    /// The shared name.
    fn into_topic(self) -> Arc<str>;
}

impl IntoTopic for &str {
    fn into_topic(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl IntoTopic for &String {
    fn into_topic(self) -> Arc<str> {
        Arc::from(self.as_str())
    }
}

impl IntoTopic for String {
    fn into_topic(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl IntoTopic for Arc<str> {
    fn into_topic(self) -> Arc<str> {
        self
    }
}

impl IntoTopic for &Arc<str> {
    fn into_topic(self) -> Arc<str> {
        Arc::clone(self)
    }
}

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerRecord {
    /// The topic. Shared, so that records for one topic need no copy of
    /// its name each: build them from one `Arc<str>` (`&str` and `String`
    /// convert too, at the cost of one allocation a record).
    pub topic: Arc<str>,
    /// An explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key (murmur2 of it picks the partition), `None` for null.
    pub key: Option<Bytes>,
    /// The value, `None` for null (a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<RecordHeader>,
    /// Create time in ms since the epoch; `None` takes the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with a value.
    pub fn new(topic: impl IntoTopic, value: impl Into<Bytes>) -> Self {
        // Every field spelled out: `..Default::default()` would build (and
        // drop) a default topic name, two atomic operations a record.
        ProducerRecord {
            topic: topic.into_topic(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// With a key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// With an explicit partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// With one more header.
    pub fn header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push(RecordHeader {
            key: key.into(),
            value,
        });
        self
    }

    /// With a create timestamp (ms since the epoch).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The offset; -1 when unknown (`acks=0`, or a duplicate the broker
    /// recognised without remembering its offset).
    pub offset: i64,
    /// The record's timestamp: the broker's log-append time when the topic
    /// uses it, else the create time.
    pub timestamp: i64,
}
