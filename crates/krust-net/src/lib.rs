//! # krust-net
//!
//! The tokio layer of krust: one task per broker connection with pipelined
//! requests matched by correlation id, the ApiVersions handshake and version
//! negotiation, typed errors that name the broker and the API, the broker
//! pool with the cluster metadata cache and coordinator lookup, and the
//! retry policy, and security: TLS (rustls) and SASL.
#![deny(missing_docs)]

mod bootstrap;
pub mod connection;
pub mod coordinator;
pub mod error;
pub mod metadata;
mod outbox;
pub mod pool;
pub mod props;
pub mod retry;
pub mod security;
mod task;
pub mod throttle;
pub mod versions;

pub use connection::{Connection, ConnectionConfig, RawRequest};
pub use coordinator::CoordinatorType;
pub use error::{Error, ProtocolViolation, Result};
pub use metadata::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicInfo};
pub use pool::{Lane, Pool, PoolConfig};
pub use retry::{Backoff, DEADLINE_MARGIN, RetryPolicy};
pub use security::{Security, SecurityConfig, SecurityProtocol};
pub use throttle::ThrottleTime;
pub use versions::ApiVersions;
