//! The offset demo's scenario (`examples/offset_demo/scenario.rs`) as a test
//! on each local broker: produce 10 messages to 3 partitions; consumer A
//! processes 4, committing offset+1 after each, and crashes (dropped without
//! close); consumer B of the same group resumes exactly at the committed
//! offsets and reads the rest. Every message is consumed exactly once, B
//! starts each partition at its committed offset, and the group ends
//! committed at the log end with no lag. The assertions are the same on
//! every broker; where a broker deviates from Kafka (docs/ARCHITECTURE.md), the path to
//! them differs, as each test says:
//!
//! - Apache Kafka 4.4.0 and 3.9.2 (the reference; 3.9.2 is the last line
//!   with the protocol versions KIP-896 removed from 4.x), each node shared
//!   by this binary, so topic and group names are unique: as the demo runs
//!   it. The coordinator removes the crashed A when B's JoinGroup finds it
//!   missing from the rebalance (or when its 6 s session expires).
//! - Tansu: as the demo runs it, a second implementation. B joins while the crashed A is still a
//!   member; the coordinator expires A after its session timeout (6 s).
//! - noida-db never expires a crashed member (neither on session nor on
//!   rebalance timeout: B, and a confluent-kafka consumer in B's place, wait
//!   forever with no assignment), so the test restarts noida-db after A's
//!   crash: it keeps the data and the committed offsets and forgets the
//!   members, as a real cluster would after A's session expired.
//! - librdkafka 2.0.2's mock: its ListOffsets v4/v5 replies carry
//!   LeaderEpoch in 8 bytes instead of 4 (v0–v3 decode; it advertises v5),
//!   so krust's `auto.offset.reset` lookup fails there ("12 trailing bytes
//!   after response" for 3 partitions; `crates/krust-consumer/tests/faults.rs`
//!   works around the same). The group therefore starts from committed
//!   offsets 0 (a standalone commit before A) instead of from the reset;
//!   the crash and the resume go through the mock's coordinator, which
//!   expires A as Kafka does. Topics are created with the fixture's
//!   `create_topic` (the mock has no CreateTopics).
//! - librdkafka 2.12.1's mock (the one rust-rdkafka's `mocking` module
//!   runs): as the demo runs it, `auto.offset.reset` included (its
//!   ListOffsets replies decode). Topics are created as on 2.0.2.

#[allow(dead_code)]
#[path = "../examples/offset_demo/scenario.rs"]
mod scenario;

use std::time::Duration;

use krust_testkit::{
    Broker, Kafka, KafkaVersion, MockCluster, MockVersion, NoidaDb, Tansu, unique,
};
use scenario::{BoxError, Setup};

const TOPIC: &str = "my-topic";
const GROUP: &str = "my-group";
/// The whole scenario, joins included, finishes within this or fails.
const BOUND: Duration = Duration::from_secs(180);

async fn offset_scenario(
    kind: String,
    setup: Setup,
    after_crash: impl FnOnce() -> Result<(), BoxError>,
) {
    let outcome = tokio::time::timeout(BOUND, scenario::run_with(&setup, after_crash))
        .await
        .unwrap_or_else(|_| panic!("{kind}: the scenario did not finish within {BOUND:?}"))
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    println!("{kind}:{}", scenario::render(&setup, &outcome));
    println!("{kind}: {}", scenario::verdict(&setup, &outcome));
    assert!(
        outcome.passed(),
        "{kind}: {}",
        scenario::verdict(&setup, &outcome)
    );
    assert_eq!(outcome.a_read.len(), 4, "{kind}: A's reads");
    assert_eq!(outcome.b_read.len(), 6, "{kind}: B's reads");
}

/// The demo's topic and group on a broker of this test alone.
fn create(broker: &dyn Broker) -> Setup {
    create_named(broker, TOPIC, GROUP)
}

/// Fresh names on a broker other tests of this binary share.
fn create_unique(broker: &dyn Broker) -> Setup {
    create_named(broker, &unique(TOPIC), &unique(GROUP))
}

fn create_named(broker: &dyn Broker, topic: &str, group: &str) -> Setup {
    let kind = broker.name();
    broker
        .create_topic(topic, 3)
        .unwrap_or_else(|e| panic!("{kind}: create {topic}: {e}"));
    Setup::new(&broker.bootstrap(), topic, group)
}

async fn on_kafka(version: KafkaVersion) {
    let kafka = Kafka::shared_version(version);
    assert_eq!(kafka.version(), version);
    let setup = create_unique(kafka);
    offset_scenario(kafka.name(), setup, || Ok(())).await;
}

#[tokio::test]
async fn kafka_4_4_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    on_kafka(KafkaVersion::V4_4).await;
}

/// The same with `group.protocol=consumer` (KIP-848): the broker assigns,
/// A commits at its member epoch, and B gets A's partitions once A's
/// session (6 s on the test node) expires.
#[tokio::test]
async fn kafka_4_4_consumer_protocol_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let kafka = Kafka::shared_version(KafkaVersion::V4_4);
    let setup = Setup {
        group_protocol: krust::consumer::GroupProtocol::Consumer,
        ..create_unique(kafka)
    };
    offset_scenario(
        format!("{} (group.protocol=consumer)", kafka.name()),
        setup,
        || Ok(()),
    )
    .await;
}

#[tokio::test]
async fn kafka_3_9_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    on_kafka(KafkaVersion::V3_9).await;
}

#[tokio::test]
async fn tansu_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let tansu = Tansu::start();
    let setup = create(&tansu);
    offset_scenario(tansu.name(), setup, || Ok(())).await;
}

#[tokio::test]
async fn noida_db_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let mut noida = NoidaDb::start();
    let setup = create(&noida);
    let kind = noida.name();
    offset_scenario(kind, setup, || {
        println!("   restarting noida-db (it never expires the crashed A; data and commits stay)");
        Ok(noida.restart()?)
    })
    .await;
}

#[tokio::test]
async fn librdkafka_mock_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let mock = MockCluster::start(1, &[]);
    let mut setup = create(&mock);
    setup.seed_committed_zero = true;
    offset_scenario(mock.name(), setup, || Ok(())).await;
}

#[tokio::test]
async fn librdkafka_2_12_mock_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let mock = MockCluster::start_version(MockVersion::V2_12, 1, &[]);
    let setup = create(&mock);
    offset_scenario(mock.name(), setup, || Ok(())).await;
}
