//! The group admin calls on an Apache Kafka 4.4.0 node that has just
//! started: the first call to name a group makes the broker create
//! `__consumer_offsets`, and until its partitions are loaded the
//! coordinator answers NOT_COORDINATOR (Kafka 4's coordinator) or
//! COORDINATOR_LOAD_IN_PROGRESS. Each call looks the coordinator up again
//! and retries within its deadline instead of failing with the first
//! answer. A fresh node per call, so each meets the loading partitions.

use std::time::Duration;

use krust::admin::Admin;
use krust::net::{PoolConfig, RetryPolicy};
use krust_testkit::{Kafka, unique};

async fn fresh() -> (Kafka, Admin) {
    let kafka = tokio::task::spawn_blocking(Kafka::start)
        .await
        .expect("start Kafka");
    let config = PoolConfig {
        bootstrap: vec![kafka.addr()],
        retry: RetryPolicy {
            deadline: Duration::from_secs(30),
            ..RetryPolicy::default()
        },
        ..PoolConfig::default()
    };
    let admin = Admin::connect(config).await.expect("bootstrap");
    (kafka, admin)
}

#[tokio::test]
async fn group_calls_wait_for_the_offsets_topic_to_load() {
    let (_kafka, admin) = fresh().await;
    let g = unique("loading-describe");
    let described = admin.describe_groups(&[&g]).await.expect("describe");
    let e = described[0].1.as_ref().expect_err("no such group");
    assert_eq!(
        e.code(),
        Some(krust::codec::ErrorCode::GROUP_ID_NOT_FOUND),
        "the answer once loaded, not the loading: {e}"
    );

    let (_kafka, admin) = fresh().await;
    let g = unique("loading-offsets");
    let offsets = admin.list_group_offsets(&[&g]).await.expect("list offsets");
    assert!(offsets[0].1.as_ref().expect("no offsets").is_empty());

    let (_kafka, admin) = fresh().await;
    let g = unique("loading-lag");
    let lag = admin.groups_lag(&[&g]).await.expect("lag");
    let lag = lag[0].1.as_ref().expect("a group without offsets");
    assert!(lag.description.is_none() && lag.partitions.is_empty());

    let (_kafka, admin) = fresh().await;
    let g = unique("loading-delete");
    let deleted = admin.delete_groups(&[&g]).await.expect("delete");
    let e = deleted[0].1.as_ref().expect_err("no such group");
    assert_eq!(
        e.code(),
        Some(krust::codec::ErrorCode::GROUP_ID_NOT_FOUND),
        "{e}"
    );
}
