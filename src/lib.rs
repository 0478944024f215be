//! # krust
//!
//! A pure-Rust Apache Kafka client. This facade re-exports the layers of the
//! workspace; today that is the wire codec, [`codec`].
#![deny(missing_docs)]

pub use krust_codec as codec;

pub mod admin;
pub use krust_net as net;
