//! # krust-net
//!
//! The tokio layer of krust: one task per broker connection with pipelined
//! requests matched by correlation id, the ApiVersions handshake and version
//! negotiation, and typed errors that name the broker and the API.
#![deny(missing_docs)]

pub mod connection;
pub mod error;
mod task;
pub mod throttle;
pub mod versions;

pub use connection::{Connection, ConnectionConfig, RawRequest};
pub use error::{Error, ProtocolViolation, Result};
pub use throttle::ThrottleTime;
pub use versions::ApiVersions;
