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
//! - Tansu: as the demo runs it. B joins while the crashed A is still a
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

#[allow(dead_code)]
#[path = "../examples/offset_demo/scenario.rs"]
mod scenario;

use std::time::Duration;

use krust_testkit::{Broker, BrokerKind, MockCluster, NoidaDb, Tansu};
use scenario::{BoxError, Setup};

const TOPIC: &str = "my-topic";
const GROUP: &str = "my-group";
/// The whole scenario, joins included, finishes within this or fails.
const BOUND: Duration = Duration::from_secs(180);

async fn offset_scenario(
    kind: BrokerKind,
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

fn create(broker: &dyn Broker) -> Setup {
    let kind = broker.kind();
    broker
        .create_topic(TOPIC, 3)
        .unwrap_or_else(|e| panic!("{kind}: create {TOPIC}: {e}"));
    Setup::new(&broker.bootstrap(), TOPIC, GROUP)
}

#[tokio::test]
async fn tansu_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let tansu = Tansu::start();
    let setup = create(&tansu);
    offset_scenario(tansu.kind(), setup, || Ok(())).await;
}

#[tokio::test]
async fn noida_db_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let mut noida = NoidaDb::start();
    let setup = create(&noida);
    let kind = noida.kind();
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
    offset_scenario(mock.kind(), setup, || Ok(())).await;
}
