//! What every fixture offers ([`Broker`]), what each broker implements
//! faithfully ([`Capability`], from the quirks table in docs/ARCHITECTURE.md), and the
//! helpers that start every broker able to run a given test.

use std::fmt;

use krust_codec::KString;
use krust_codec::generated::CreateTopicsRequest;
use krust_codec::generated::create_topics_request::CreatableTopic;

use crate::{Error, External, MockCluster, MockVersion, NoidaDb, Result, Tansu, raw};

/// Which implementation a fixture runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BrokerKind {
    /// Tansu 0.6.0.
    Tansu,
    /// The noida-db 0.2.3 emulator.
    NoidaDb,
    /// librdkafka 2.0.2's mock cluster ([`crate::MockVersion::V2_0`]).
    MockCluster,
    /// librdkafka 2.12.1's mock cluster, the one rust-rdkafka's `mocking`
    /// module runs ([`crate::MockVersion::V2_12`]).
    MockCluster212,
    /// Whatever `KAFKA_BOOTSTRAP` names (assumed to be a real Kafka).
    External,
    /// An `apache/kafka` container.
    DockerKafka,
    /// One Apache Kafka KRaft node ([`crate::Kafka`]).
    Kafka,
    /// Several Apache Kafka nodes ([`crate::KafkaCluster`]).
    KafkaCluster,
}

impl BrokerKind {
    /// A short name for test output: `tansu`, `noida-db`, `librdkafka-mock`
    /// (2.0.2), `librdkafka-mock-2.12`, `external`, `docker-kafka`, `kafka`,
    /// `kafka-cluster`.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Tansu => "tansu",
            BrokerKind::NoidaDb => "noida-db",
            BrokerKind::MockCluster => "librdkafka-mock",
            BrokerKind::MockCluster212 => "librdkafka-mock-2.12",
            BrokerKind::External => "external",
            BrokerKind::DockerKafka => "docker-kafka",
            BrokerKind::Kafka => "kafka",
            BrokerKind::KafkaCluster => "kafka-cluster",
        }
    }

    /// Whether this is Apache Kafka itself (or assumed to be: `External`).
    pub fn is_real_kafka(self) -> bool {
        matches!(
            self,
            BrokerKind::External
                | BrokerKind::DockerKafka
                | BrokerKind::Kafka
                | BrokerKind::KafkaCluster
        )
    }

    /// Whether this implementation does what Kafka specifies for `cap`.
    pub fn supports(self, cap: Capability) -> bool {
        use BrokerKind::*;
        use Capability::*;
        let real_kafka = self.is_real_kafka();
        let mock = matches!(self, MockCluster | MockCluster212);
        match cap {
            Produce | Fetch | CommitOffsets => true,
            // 2.12.1's coordinator is 2.0.2's design: every rebalance a
            // fixed round (session.timeout.ms - 1 s, whatever the rebalance
            // timeout) that a LeaveGroup does not cut short, no static
            // membership (a restarted static member is a new generation),
            // no KIP-394. Every group suite skips the 2.0.2 mock for these
            // by its kind; run there, 2.12.1 fails the same tests (seen:
            // krust-group's group_brokers, driver_budgets,
            // interop_confluent). So it is offered for no group capability;
            // tests that want its groups anyway (the seed scenario, the
            // consumer fault tests) name it.
            ClassicGroups | LeaveDuringRebalance | RebalanceTimeoutEviction
                if self == MockCluster212 =>
            {
                false
            }
            ClassicGroups => true,
            // Both mocks answer ApiVersions v3 with UNSUPPORTED_VERSION
            // (they offer v0-v2); 2.12's flexible versions of the other
            // APIs decode (Metadata v12 with a byte more, which clients
            // ignore; the group APIs as the fixture narrows them).
            ApiVersionsV3 => !mock,
            FlexibleVersions => self != MockCluster,
            // The mocks have no admin APIs: CreateTopics and friends time out.
            CreateTopics | ListGroups => !mock,
            // Tansu returns empty member data.
            DescribeGroupMembers => matches!(self, NoidaDb) || real_kafka,
            // Tansu crashes the request; the mock lacks it.
            DeleteRecords | CreatePartitions | OffsetDelete => {
                matches!(self, NoidaDb) || real_kafka
            }
            // Tansu is wrong for multi-record batches.
            ListOffsetsLatest => self != Tansu,
            // Tansu answers 0, the mocks -1.
            ListOffsetsByTimestamp => matches!(self, NoidaDb) || real_kafka,
            // Tansu leaves the group stuck when a member leaves mid-rebalance.
            LeaveDuringRebalance => self != Tansu,
            // noida-db does not evict members that fail to rejoin.
            RebalanceTimeoutEviction => mock || real_kafka,
            // Error codes and delays on cue: only the mocks do that.
            FaultInjection => mock,
            MultipleBrokers => mock || self == KafkaCluster,
            // Kafka keeps its log dirs across `restart`; noida-db its data dir.
            RestartKeepsData => matches!(self, NoidaDb | Kafka | KafkaCluster),
            // noida-db found by the read_committed tests; Tansu writes the
            // markers but its Fetch lists no aborted transactions.
            Transactions => matches!(self, NoidaDb) || real_kafka,
        }
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something a test needs the broker to implement as Kafka specifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Produce requests.
    Produce,
    /// Fetch requests.
    Fetch,
    /// The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup).
    ClassicGroups,
    /// OffsetCommit / OffsetFetch.
    CommitOffsets,
    /// ApiVersions v3 answered without UNSUPPORTED_VERSION.
    ApiVersionsV3,
    /// Flexible (tagged-field) versions of the common APIs.
    FlexibleVersions,
    /// CreateTopics (and DeleteTopics).
    CreateTopics,
    /// ListGroups.
    ListGroups,
    /// DescribeGroups with member metadata and assignments.
    DescribeGroupMembers,
    /// DeleteRecords.
    DeleteRecords,
    /// CreatePartitions.
    CreatePartitions,
    /// OffsetDelete.
    OffsetDelete,
    /// ListOffsets(latest) right after multi-record batches.
    ListOffsetsLatest,
    /// ListOffsets by timestamp.
    ListOffsetsByTimestamp,
    /// A member leaving while a rebalance is in progress.
    LeaveDuringRebalance,
    /// A member that does not rejoin within the rebalance timeout is evicted.
    RebalanceTimeoutEviction,
    /// Broker down/up, leader and coordinator moves, injected errors, delay.
    FaultInjection,
    /// More than one broker.
    MultipleBrokers,
    /// Data and committed offsets survive a broker restart.
    RestartKeepsData,
    /// Transactions as a read_committed consumer needs them: commit and
    /// abort markers, and Fetch listing the aborted transactions.
    Transactions,
}

/// What every fixture offers, so that one test body runs against each.
pub trait Broker: Send + Sync {
    /// The bootstrap list, `host:port[,host:port...]`.
    fn bootstrap(&self) -> String;

    /// Which implementation this is.
    fn kind(&self) -> BrokerKind;

    /// A name for test output (the kind's, with the version where there
    /// are several, e.g. `kafka-4.4.0`).
    fn name(&self) -> String {
        self.kind().name().to_string()
    }

    /// Whether this broker implements `cap` as Kafka specifies it.
    fn supports(&self, cap: Capability) -> bool {
        self.kind().supports(cap)
    }

    /// Create a topic with `partitions` partitions (replication factor 1),
    /// waiting until the broker has done it.
    fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        create_topic_raw(&self.bootstrap(), name, partitions, 1)
    }
}

/// A fixture shared by a whole test binary (e.g. [`crate::Kafka::shared`])
/// is a broker too.
impl<B: Broker + ?Sized> Broker for &'static B {
    fn bootstrap(&self) -> String {
        (**self).bootstrap()
    }

    fn kind(&self) -> BrokerKind {
        (**self).kind()
    }

    fn name(&self) -> String {
        (**self).name()
    }

    fn supports(&self, cap: Capability) -> bool {
        (**self).supports(cap)
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        (**self).create_topic(name, partitions)
    }
}

/// Create a topic with a raw CreateTopics request at the highest version both
/// sides know.
pub(crate) fn create_topic_raw(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication_factor: i16,
) -> Result<()> {
    let addr = bootstrap.split(',').next().unwrap_or_default();
    let mut conn = raw::Connection::connect(addr)?;
    let version = conn.version_for::<CreateTopicsRequest>()?;
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: KString::from(name),
            num_partitions: partitions,
            replication_factor,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let response = conn.send(version, &request)?;
    match response.topics.first() {
        Some(t) if t.error_code == 0 => Ok(()),
        Some(t) => Err(Error::new(format!(
            "CreateTopics {name} on {addr}: error {} {:?}",
            t.error_code, t.error_message
        ))),
        None => Err(Error::new(format!(
            "CreateTopics {name} on {addr}: empty answer"
        ))),
    }
}

/// Every local fixture that supports `cap`: the Kafka 4.4.0 node this test
/// binary shares, first (and its shared 3-node cluster when `cap` is
/// [`Capability::MultipleBrokers`]), then a fresh Tansu, noida-db and
/// 3-broker mock cluster of librdkafka 2.0.2 and of 2.12.1, each as `cap`
/// allows. Panics, naming `scripts/setup.sh`, if one cannot
/// start. Tests that use it make their topics and groups unique
/// ([`crate::unique`]): the Kafka node is shared.
pub fn local_brokers(cap: Capability) -> Vec<Box<dyn Broker>> {
    let mut brokers: Vec<Box<dyn Broker>> = Vec::new();
    if cap == Capability::MultipleBrokers {
        brokers.push(Box::new(crate::KafkaCluster::shared()));
    } else if BrokerKind::Kafka.supports(cap) {
        brokers.push(Box::new(crate::Kafka::shared()));
    }
    if BrokerKind::Tansu.supports(cap) {
        brokers.push(Box::new(Tansu::start()));
    }
    if BrokerKind::NoidaDb.supports(cap) {
        brokers.push(Box::new(NoidaDb::start()));
    }
    for version in MockVersion::ALL {
        if version.kind().supports(cap) {
            brokers.push(Box::new(MockCluster::start_version(version, 3, &[])));
        }
    }
    brokers
}

/// [`local_brokers`], plus `KAFKA_BOOTSTRAP` when set, plus an
/// `apache/kafka` container when the `docker` feature is on and a Docker
/// daemon answers: every broker able to run a test that needs `cap`.
pub fn all_brokers(cap: Capability) -> Vec<Box<dyn Broker>> {
    let mut brokers = local_brokers(cap);
    if let Some(external) = External::from_env().filter(|e| e.supports(cap)) {
        brokers.push(Box::new(external));
    }
    #[cfg(feature = "docker")]
    if BrokerKind::DockerKafka.supports(cap) && crate::docker_available() {
        brokers.push(Box::new(crate::DockerKafka::start()));
    }
    brokers
}
