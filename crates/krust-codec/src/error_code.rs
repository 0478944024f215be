//! Kafka error codes (filled in next).
