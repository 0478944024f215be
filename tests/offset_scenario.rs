//! The offset demo's scenario (`examples/offset_demo/scenario.rs`) as a test
//! on each local broker: produce 10 messages to 3 partitions; consumer A
//! processes 4, committing offset+1 after each, and crashes (dropped without
//! close); consumer B of the same group resumes exactly at the committed
//! offsets and reads the rest. Every message is consumed exactly once, and
//! the group ends committed at the log end with no lag.
//!
//! Topics are created with each fixture's `create_topic` (librdkafka 2.0.2's
//! mock has no CreateTopics). B joins while A is still a member of the group
//! (A never left), so the coordinator must expire A after its session
//! timeout (6 s) before B gets an assignment: the kill-and-resume path all
//! three coordinators implement.

#[path = "../examples/offset_demo/scenario.rs"]
mod scenario;

use std::time::Duration;

use krust_testkit::{Broker, MockCluster, NoidaDb, Tansu};
use scenario::Setup;

const TOPIC: &str = "my-topic";
const GROUP: &str = "my-group";
/// The whole scenario, joins included, finishes within this or fails.
const BOUND: Duration = Duration::from_secs(180);

async fn offset_scenario(broker: &dyn Broker) {
    let kind = broker.kind();
    broker
        .create_topic(TOPIC, 3)
        .unwrap_or_else(|e| panic!("{kind}: create {TOPIC}: {e}"));
    let setup = Setup::new(&broker.bootstrap(), TOPIC, GROUP);
    let outcome = tokio::time::timeout(BOUND, scenario::run(&setup))
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

#[tokio::test]
async fn tansu_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let tansu = Tansu::start();
    offset_scenario(&tansu).await;
}

#[tokio::test]
async fn noida_db_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let noida = NoidaDb::start();
    offset_scenario(&noida).await;
}

#[tokio::test]
async fn librdkafka_mock_resumes_after_a_crash_exactly_at_the_committed_offsets() {
    let mock = MockCluster::start(1, &[]);
    offset_scenario(&mock).await;
}
