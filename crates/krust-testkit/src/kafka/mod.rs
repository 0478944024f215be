//! Apache Kafka itself, from the jars `scripts/setup.sh` installs with
//! Maven into `.deps/kafka/VERSION/libs`: one KRaft node ([`Kafka`]) or a
//! cluster of them ([`KafkaCluster`]) whose nodes a test can crash, hang and
//! restart. See "Test brokers" in the README and `docs/ARCHITECTURE.md`.
//!
//! A node is a combined broker and controller (`process.roles=broker,controller`)
//! listening on two free 127.0.0.1 ports, its storage formatted with
//! `kafka.tools.StorageTool` on first start, with a bounded heap, started
//! under the lifeline wrapper of the `process` module (it dies with the test
//! process). It counts as started when every running node answers
//! ApiVersions and lists every running node in Metadata.
//!
//! A JVM takes seconds to start and half a GiB: tests of one binary share
//! one node ([`Kafka::shared`]) and make their topics and groups unique
//! ([`crate::unique`]).

mod cluster;
mod node;
mod probe;
mod secure;
mod tools;

pub use tools::{CONSUMER_GROUP_COMMAND, LEADER_ELECTION_COMMAND, TOPIC_COMMAND};

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

pub use cluster::{Hung, KafkaCluster, KafkaClusterBuilder};
pub(crate) use node::java;
pub use probe::PartitionState;
pub use secure::{Pki, SASL_USER, SecureKafka};

use crate::broker::{Broker, BrokerKind};
use crate::process::deps_bin;
use crate::{Error, Result};

/// The Apache Kafka releases `scripts/setup.sh` installs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KafkaVersion {
    /// Apache Kafka 4.4.0, the reference (KIP-848 groups by default,
    /// the protocol versions of KIP-896 removed).
    #[default]
    V4_4,
    /// Apache Kafka 3.9.2, the last line that still speaks the protocol
    /// versions Kafka 4.0 removed (KIP-896).
    V3_9,
}

impl KafkaVersion {
    /// Every installed version, newest first.
    pub const ALL: [KafkaVersion; 2] = [KafkaVersion::V4_4, KafkaVersion::V3_9];

    /// The release, `4.4.0` or `3.9.2` (as in `scripts/setup.sh`).
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaVersion::V4_4 => "4.4.0",
            KafkaVersion::V3_9 => "3.9.2",
        }
    }

    pub(crate) fn major(self) -> u32 {
        match self {
            KafkaVersion::V4_4 => 4,
            KafkaVersion::V3_9 => 3,
        }
    }

    /// The directory of this release's jars (its dependencies included),
    /// or an error naming the command that installs them.
    pub fn libs(self) -> Result<PathBuf> {
        let var = format!("KRUST_KAFKA_LIBS_{}", self.as_str().replace('.', "_"));
        let dir = match std::env::var_os(&var) {
            Some(d) => PathBuf::from(d),
            None => deps_bin()
                .with_file_name("kafka")
                .join(self.as_str())
                .join("libs"),
        };
        let jar = dir.join(format!("kafka_2.13-{}.jar", self.as_str()));
        if jar.is_file() {
            Ok(dir)
        } else {
            Err(Error::new(format!(
                "Apache Kafka {} is not installed (no {}); install it with `scripts/setup.sh` \
                 from the repository root (Maven fetches it from Maven Central), or set {var}",
                self.as_str(),
                jar.display()
            )))
        }
    }
}

impl fmt::Display for KafkaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Apache Kafka KRaft node on 127.0.0.1 (broker and controller in one
/// JVM), stopped on drop. Internal topics have replication factor 1.
#[derive(Debug)]
pub struct Kafka {
    cluster: KafkaCluster,
}

impl Kafka {
    /// Start a node of Kafka 4.4.0; panics (naming `scripts/setup.sh` when
    /// Kafka is not installed) if it cannot.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Start a node of `version`; panics like [`Kafka::start`].
    pub fn start_version(version: KafkaVersion) -> Self {
        Self::builder().version(version).start()
    }

    /// A builder for a node with other settings.
    pub fn builder() -> KafkaBuilder {
        KafkaBuilder {
            inner: KafkaCluster::builder().nodes(1),
        }
    }

    /// The Kafka 4.4.0 node this test binary shares: started on first use,
    /// stopped when the test process ends. Tests that share it create
    /// their own topics and groups ([`crate::unique`]).
    pub fn shared() -> &'static Kafka {
        Self::shared_version(KafkaVersion::V4_4)
    }

    /// [`Kafka::shared`] for another version.
    pub fn shared_version(version: KafkaVersion) -> &'static Kafka {
        static SHARED: [OnceLock<Kafka>; 2] = [OnceLock::new(), OnceLock::new()];
        let slot = match version {
            KafkaVersion::V4_4 => &SHARED[0],
            KafkaVersion::V3_9 => &SHARED[1],
        };
        slot.get_or_init(|| Kafka::start_version(version))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.cluster.bootstrap()
    }

    /// Which release runs.
    pub fn version(&self) -> KafkaVersion {
        self.cluster.version()
    }

    /// Crash the node (`SIGKILL`) and start it again on the same port and
    /// data; returns once it is ready.
    pub fn restart(&self) -> Result<()> {
        let id = self.cluster.node_ids()[0];
        self.cluster.kill(id)?;
        self.cluster.restart(id)
    }

    /// The address of the listener `name` ([`KafkaBuilder::listener`]).
    pub fn listener_addr(&self, name: &str) -> Result<String> {
        self.cluster.listener_addr(self.cluster.node_ids()[0], name)
    }

    /// The cluster of one this node is.
    pub fn as_cluster(&self) -> &KafkaCluster {
        &self.cluster
    }

    /// Run one of Kafka's command-line tools, e.g.
    /// `org.apache.kafka.tools.consumer.group.ConsumerGroupCommand`, with
    /// `--bootstrap-server` set to this node; see [`KafkaCluster::tool`].
    pub fn tool(&self, class: &str, args: &[&str]) -> Result<String> {
        self.cluster.tool(class, args)
    }
}

/// Settings for [`Kafka`]; the defaults are the reference broker of the
/// suite.
#[derive(Debug)]
pub struct KafkaBuilder {
    inner: KafkaClusterBuilder,
}

impl KafkaBuilder {
    /// The release (default 4.4.0).
    pub fn version(mut self, version: KafkaVersion) -> Self {
        self.inner = self.inner.version(version);
        self
    }

    /// A broker property (wins over the fixture's defaults).
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.inner = self.inner.config(key, value);
        self
    }

    /// Replace the extra JVM options; see
    /// [`KafkaClusterBuilder::jvm_options`].
    pub fn jvm_options(mut self, options: &[&str]) -> Self {
        self.inner = self.inner.jvm_options(options);
        self
    }

    /// A listener besides PLAINTEXT; see [`KafkaClusterBuilder::listener`].
    pub fn listener(mut self, name: &str, protocol: &str) -> Self {
        self.inner = self.inner.listener(name, protocol);
        self
    }

    /// An argument for the storage format; see
    /// [`KafkaClusterBuilder::format_arg`].
    pub fn format_arg(mut self, arg: &str) -> Self {
        self.inner = self.inner.format_arg(arg);
        self
    }

    /// Start the node; panics if it cannot.
    pub fn start(self) -> Kafka {
        self.try_start()
            .unwrap_or_else(|e| panic!("cannot start Apache Kafka: {e}"))
    }

    /// Start the node and wait until it is ready.
    pub fn try_start(self) -> Result<Kafka> {
        Ok(Kafka {
            cluster: self.inner.replication(1, 1).try_start()?,
        })
    }
}

impl Broker for Kafka {
    fn bootstrap(&self) -> String {
        self.addr()
    }

    fn kind(&self) -> BrokerKind {
        BrokerKind::Kafka
    }

    fn name(&self) -> String {
        format!("kafka-{}", self.version())
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.cluster.create_topic(name, partitions)
    }
}
