//! Broker fixtures for krust's integration tests and benches (dev-only).
//!
//! No JVM Kafka can be installed on our machines, so the suite runs against
//! three independent broker implementations that `scripts/setup.sh` installs
//! into `.deps/bin` (see "Real components for tests and benches" in
//! DESIGN.md), plus any broker named by `KAFKA_BOOTSTRAP`, plus an
//! `apache/kafka` container when the `docker` feature is on and a Docker
//! daemon answers:
//!
//! | fixture | what it is |
//! |---|---|
//! | [`Tansu`] | Tansu 0.6.0, in-memory storage |
//! | [`NoidaDb`] | the noida-db 0.2.3 Kafka emulator, data in a temp dir, [`NoidaDb::restart`] |
//! | [`MockCluster`] | librdkafka 2.0.2's mock cluster, several brokers, fault injection |
//! | [`External`] | `KAFKA_BOOTSTRAP` |
//! | `DockerKafka` | `apache/kafka` via testcontainers (feature `docker`) |
//!
//! Each local fixture listens on 127.0.0.1 only, on a port that was free,
//! and is stopped on drop, its whole process group with it; a broker also
//! stops by itself when the test process dies (see the `process` module), so
//! none is ever orphaned. A missing binary is a panic naming
//! `scripts/setup.sh`, never a silent skip.
//!
//! Brokers deviate from Kafka in known ways; a test asks for the brokers
//! that implement what it checks and keeps its assertions strict:
//!
//! ```no_run
//! use krust_testkit::{Capability, all_brokers};
//!
//! for broker in all_brokers(Capability::ListOffsetsByTimestamp) {
//!     println!("{} at {}", broker.kind(), broker.bootstrap());
//! }
//! ```
#![deny(missing_docs)]

mod broker;
#[cfg(feature = "docker")]
mod docker;
mod error;
mod external;
mod mock;
mod noida;
mod process;
mod python;
pub mod raw;
mod tansu;

pub use broker::{Broker, BrokerKind, Capability, all_brokers, local_brokers};
#[cfg(feature = "docker")]
pub use docker::{DockerKafka, docker_available};
pub use error::{Error, Result};
pub use external::External;
pub use mock::MockCluster;
pub use noida::NoidaDb;
pub use process::accepts;
pub use python::confluent_python;
pub use tansu::Tansu;
