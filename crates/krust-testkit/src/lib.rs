//! Broker fixtures for krust's integration tests and benches (dev-only).
//!
//! Apache Kafka itself is the reference: `scripts/setup.sh` installs the
//! jars of Kafka 4.4.0 and 3.9.2 with Maven into `.deps/kafka`, and every
//! integration suite runs against it first. Beside it, three independent
//! broker implementations (installed into `.deps/bin`; librdkafka's mock in
//! two versions, 2.0.2 and 2.12.1) cover what Kafka
//! cannot be made to do on cue, plus any broker named by `KAFKA_BOOTSTRAP`,
//! plus an `apache/kafka` container when the `docker` feature is on and a
//! Docker daemon answers (see "Test brokers" in the README):
//!
//! | fixture | what it is |
//! |---|---|
//! | [`Kafka`] | one Apache Kafka KRaft node (4.4.0, or 3.9.2), [`Kafka::shared`] by a test binary |
//! | [`KafkaCluster`] | three (or n) Kafka nodes: kill, hang, resume, restart a node |
//! | [`Tansu`] | Tansu 0.6.0, in-memory storage |
//! | [`NoidaDb`] | the noida-db 0.2.3 Kafka emulator, data in a temp dir, [`NoidaDb::restart`] |
//! | [`MockCluster`] | librdkafka's mock cluster ([`MockVersion`]: 2.0.2, or 2.12.1 as rust-rdkafka's `mocking` runs it), several brokers, fault injection |
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
mod java_peer;
pub mod kafka;
mod mock;
mod names;
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
pub use java_peer::java_peer;
pub use kafka::{
    CONSUMER_GROUP_COMMAND, Kafka, KafkaBuilder, KafkaCluster, KafkaClusterBuilder, KafkaVersion,
    Pki, SASL_USER, SecureKafka, TOPIC_COMMAND,
};
pub use mock::{MockCluster, MockVersion};
pub use names::unique;
pub use noida::NoidaDb;
pub use process::accepts;
pub use python::confluent_python;
pub use tansu::Tansu;
