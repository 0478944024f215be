//! Admin calls against every broker that implements them (`all_brokers`,
//! so `KAFKA_BOOTSTRAP` too when set): Apache Kafka 4.4.0 first (one node
//! shared by this binary, so every topic name is unique), then Tansu and
//! noida-db (librdkafka's 2.0.2 mock has no admin APIs); ListOffsets by
//! timestamp against Kafka and noida-db only: Tansu answers offset 0 and the
//! mock -1 whatever the timestamp (see the quirks table in
//! docs/ARCHITECTURE.md). The group calls (list, describe, offsets, lag)
//! run on Kafka 4.4.0, which has both group protocols.

use std::time::{Duration, Instant};

use krust::admin::{Admin, NewTopic, OffsetSpec};
use krust::codec::generated::ProduceRequest;
use krust::codec::generated::produce_request::{PartitionProduceData, TopicProduceData};
use krust::codec::records::{NewRecord, RecordBatchBuilder};
use krust::codec::{ApiKey, ErrorCode};
use krust::net::{Error, PoolConfig, RetryPolicy};
use krust_testkit::{Broker, Capability, all_brokers, unique};

async fn admin(broker: &dyn Broker) -> Admin {
    let config = PoolConfig {
        bootstrap: broker.bootstrap().split(',').map(str::to_owned).collect(),
        bootstrap_timeout: Duration::from_secs(20),
        retry: RetryPolicy {
            deadline: Duration::from_secs(20),
            ..RetryPolicy::default()
        },
        ..PoolConfig::default()
    };
    let kind = broker.name();
    Admin::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{kind}: bootstrap: {e}"))
}

fn is_broker_error(e: &Error, api: ApiKey, code: ErrorCode, topic: &str) -> bool {
    matches!(e, Error::Broker { api: a, code: c, topic: Some(t), .. } if *a == api && *c == code && t == topic)
}

#[tokio::test]
async fn create_describe_list_delete_against_every_admin_broker() {
    let brokers = all_brokers(Capability::CreateTopics);
    assert!(brokers[0].kind().is_real_kafka(), "Kafka runs first");
    for broker in brokers {
        let kind = broker.name();
        let admin = admin(broker.as_ref()).await;
        let topic = unique("krust-admin-lifecycle");
        let topic = topic.as_str();

        let cluster = admin
            .describe_cluster()
            .await
            .unwrap_or_else(|e| panic!("{kind}: describe cluster: {e}"));
        assert!(!cluster.brokers.is_empty(), "{kind}: {cluster:?}");
        if broker.kind().is_real_kafka() {
            // Metadata v2+ carries the cluster id; KRaft names a broker as
            // the controller for admin requests.
            assert!(cluster.cluster_id.is_some(), "{kind}: {cluster:?}");
            let controller = cluster.controller.expect("a controller");
            assert!(
                cluster.brokers.iter().any(|b| b.id == controller),
                "{kind}: {cluster:?}"
            );
        }

        let created = admin
            .create_topics(
                &[NewTopic {
                    replication_factor: 1,
                    ..NewTopic::new(topic, 3)
                }],
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|e| panic!("{kind}: create: {e}"));
        assert_eq!(created.len(), 1, "{kind}");
        assert_eq!(created[0].0, topic);
        assert!(created[0].1.is_ok(), "{kind}: {:?}", created[0].1);

        let described = wait_for_leaders(&admin, &kind, topic).await;
        let t = &described[0];
        assert_eq!(t.name, topic);
        assert_eq!(t.partitions.len(), 3, "{kind}: {t:?}");
        for (i, p) in t.partitions.iter().enumerate() {
            assert_eq!(p.partition, i32::try_from(i).expect("small"), "{kind}");
            let leader = p.leader.expect("leader");
            assert!(
                cluster.brokers.iter().any(|b| b.id == leader),
                "{kind}: leader {leader} not a broker"
            );
        }

        // The listing of every topic has it, as describe has it.
        let listed = admin
            .list_topics()
            .await
            .unwrap_or_else(|e| panic!("{kind}: list topics: {e}"));
        let mine: Vec<_> = listed.iter().filter(|l| l.name == topic).collect();
        assert_eq!(mine.len(), 1, "{kind}: {listed:?}");
        assert_eq!(mine[0].partitions.len(), 3, "{kind}: {:?}", mine[0]);
        assert!(!mine[0].is_internal, "{kind}: {:?}", mine[0]);
        let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        assert!(names.is_sorted(), "{kind}: by name: {names:?}");

        // Nothing produced: earliest and latest are both 0, all three
        // partitions in one call.
        let mut asks = Vec::new();
        for p in 0..3 {
            asks.push((topic, p, OffsetSpec::Earliest));
        }
        let earliest = admin
            .list_offsets(&asks)
            .await
            .unwrap_or_else(|e| panic!("{kind}: earliest: {e}"));
        let latest_asks: Vec<_> = (0..3).map(|p| (topic, p, OffsetSpec::Latest)).collect();
        let latest = admin
            .list_offsets(&latest_asks)
            .await
            .unwrap_or_else(|e| panic!("{kind}: latest: {e}"));
        for (i, (e, l)) in earliest.iter().zip(&latest).enumerate() {
            assert_eq!(e.partition, i32::try_from(i).expect("small"));
            assert_eq!(e.offset, Some(0), "{kind}: earliest {e:?}");
            assert_eq!(l.offset, Some(0), "{kind}: latest {l:?}");
        }
        assert_eq!(earliest.len(), 3);
        assert_eq!(latest.len(), 3);

        let again = admin
            .create_topics(&[NewTopic::new(topic, 3)], Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{kind}: create again: {e}"));
        let err = again[0].1.as_ref().expect_err("already exists");
        assert!(
            is_broker_error(
                err,
                ApiKey::CreateTopics,
                ErrorCode::TOPIC_ALREADY_EXISTS,
                topic
            ),
            "{kind}: {err:?}"
        );

        let deleted = admin
            .delete_topics(&[topic], Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{kind}: delete: {e}"));
        assert!(deleted[0].1.is_ok(), "{kind}: {deleted:?}");

        let started = Instant::now();
        let err = loop {
            match admin.describe_topics(&[topic]).await {
                Err(e) => break e,
                Ok(d) if started.elapsed() > Duration::from_secs(15) => {
                    panic!("{kind}: still described after delete: {d:?}")
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        assert!(
            is_broker_error(
                &err,
                ApiKey::Metadata,
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                topic
            ),
            "{kind}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("UNKNOWN_TOPIC_OR_PARTITION") && msg.contains(topic),
            "{msg}"
        );
        let listed = admin
            .list_topics()
            .await
            .unwrap_or_else(|e| panic!("{kind}: list topics after delete: {e}"));
        assert!(
            listed.iter().all(|l| l.name != topic),
            "{kind}: still listed after delete: {listed:?}"
        );
    }
}

/// Kafka and noida-db: Tansu answers offset 0 and the 2.0.2 mock -1 to a
/// ListOffsets by timestamp, whatever the timestamp.
#[tokio::test]
async fn list_offsets_by_timestamp_against_kafka_and_noida_db() {
    let brokers = all_brokers(Capability::ListOffsetsByTimestamp);
    assert!(brokers[0].kind().is_real_kafka(), "Kafka runs first");
    for broker in brokers {
        list_offsets_by_timestamp(broker.as_ref()).await;
    }
}

async fn list_offsets_by_timestamp(broker: &dyn Broker) {
    let kind = broker.name();
    let admin = admin(broker).await;
    let topic = unique("krust-admin-by-timestamp");
    let topic = topic.as_str();
    let created = admin
        .create_topics(&[NewTopic::new(topic, 1)], Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{kind}: create: {e}"));
    assert!(created[0].1.is_ok(), "{kind}: {created:?}");
    wait_for_leaders(&admin, &kind, topic).await;

    // Three records 3, 2 and 1 s old in one batch, written with a raw
    // Produce request to the partition's leader. Recent, not 1970: Kafka
    // deletes a segment whose newest record is older than retention.ms
    // (7 days), active segment included.
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .expect("ms fit i64");
    let ts = [now - 3000, now - 2000, now - 1000];
    let mut batch = RecordBatchBuilder::new();
    for (i, t) in ts.into_iter().enumerate() {
        let value = format!("v{i}");
        batch
            .append(&NewRecord {
                timestamp: t,
                value: Some(value.as_bytes()),
                ..NewRecord::default()
            })
            .expect("append");
    }
    let records = batch.build().expect("batch");
    let (conn, _epoch) = admin
        .pool()
        .leader_connection(topic, 0)
        .await
        .unwrap_or_else(|e| panic!("{kind}: leader: {e}"));
    let produce = ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = conn
        .send(&produce)
        .await
        .unwrap_or_else(|e| panic!("{kind}: produce: {e}"));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "{kind}: {resp:?}");
    assert_eq!(p.base_offset, 0, "{kind}: {resp:?}");

    // The first record at or after the timestamp.
    let got = admin
        .list_offsets(&[
            (topic, 0, OffsetSpec::Timestamp(ts[0] + 500)),
            (topic, 0, OffsetSpec::Timestamp(ts[2])),
            (topic, 0, OffsetSpec::Timestamp(ts[0] - 500)),
        ])
        .await
        .unwrap_or_else(|e| panic!("{kind}: by timestamp: {e}"));
    assert_eq!(got[0].offset, Some(1), "{kind}: {got:?}");
    assert_eq!(got[0].timestamp, Some(ts[1]), "{kind}: {got:?}");
    assert_eq!(got[1].offset, Some(2), "{kind}: {got:?}");
    assert_eq!(got[1].timestamp, Some(ts[2]), "{kind}: {got:?}");
    assert_eq!(got[2].offset, Some(0), "{kind}: {got:?}");
    assert_eq!(got[2].timestamp, Some(ts[0]), "{kind}: {got:?}");

    let after = admin
        .list_offsets(&[(topic, 0, OffsetSpec::Timestamp(ts[2] + 1))])
        .await
        .unwrap_or_else(|e| panic!("{kind}: after the last record: {e}"));
    assert_eq!(after[0].offset, None, "{kind}: {after:?}");

    let ends = admin
        .list_offsets(&[(topic, 0, OffsetSpec::Earliest)])
        .await
        .unwrap_or_else(|e| panic!("{kind}: earliest: {e}"));
    assert_eq!(ends[0].offset, Some(0), "{kind}");
    let ends = admin
        .list_offsets(&[(topic, 0, OffsetSpec::Latest)])
        .await
        .unwrap_or_else(|e| panic!("{kind}: latest: {e}"));
    assert_eq!(ends[0].offset, Some(3), "{kind}");

    // An unknown partition is retried within the deadline, then named.
    let admin = admin.with_retry(RetryPolicy {
        deadline: Duration::from_millis(500),
        ..RetryPolicy::default()
    });
    let err = admin
        .list_offsets(&[(topic, 7, OffsetSpec::Latest)])
        .await
        .expect_err("no partition 7");
    let msg = err.to_string();
    assert!(
        msg.contains("UNKNOWN_TOPIC_OR_PARTITION") && msg.contains(topic) && msg.contains('7'),
        "{kind}: {msg}"
    );
}

/// Creation may take a moment to show in Metadata.
async fn wait_for_leaders(admin: &Admin, kind: &str, topic: &str) -> Vec<krust::admin::TopicInfo> {
    let started = Instant::now();
    loop {
        match admin.describe_topics(&[topic]).await {
            Ok(d) if d[0].partitions.iter().all(|p| p.leader.is_some()) => return d,
            r if started.elapsed() > Duration::from_secs(15) => {
                panic!("{kind}: topic not described with leaders: {r:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The admin client over SASL_SSL, configured by the Kafka property names
/// (`PoolConfig::from_properties`), on Kafka 4.4.0 enforcing it.
#[tokio::test]
async fn admin_calls_over_sasl_ssl() {
    let kafka = krust_testkit::SecureKafka::shared();
    let (user, password) = krust_testkit::SASL_USER;
    let addr = kafka.addr("SASL_SSL");
    let ca = kafka.pki().ca().display().to_string();
    let config = PoolConfig::from_properties([
        ("bootstrap.servers", addr.as_str()),
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", user),
        ("sasl.password", password),
        ("ssl.ca.location", ca.as_str()),
    ])
    .expect("admin properties");
    let admin = Admin::connect(config).await.expect("admin over SASL_SSL");
    let topic = unique("adminsec");
    let results = admin
        .create_topics(&[NewTopic::new(topic.clone(), 3)], Duration::from_secs(20))
        .await
        .expect("create over SASL_SSL");
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    let described = admin.describe_topics(&[&topic]).await.unwrap();
    assert_eq!(described[0].partitions.len(), 3);
    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(
        format!("{}:{}", cluster.brokers[0].host, cluster.brokers[0].port),
        addr
    );
}

/// Groups of both protocols on Kafka 4.4.0: `list_groups` names each with
/// its type and state (and filters by type), `describe_groups` describes a
/// KIP-848 group through ConsumerGroupDescribe and a classic one through
/// DescribeGroups, each member with its client id and the partitions it
/// holds, the same partitions its consumer reports; a group that does not
/// exist is GROUP_ID_NOT_FOUND in its own result.
#[tokio::test]
async fn list_and_describe_groups_of_both_protocols() {
    use krust::admin::{GroupFilter, GroupKind};
    use krust::consumer::{Consumer, ConsumerConfig};
    let kafka = krust_testkit::Kafka::shared();
    let b = kafka.bootstrap();
    let topic = unique("krust-admin-groups");
    kafka.create_topic(&topic, 4).expect("create topic");
    let (kip848, classic) = (unique("g-admin-kip848"), unique("g-admin-classic"));
    let consumer = |group: &str, client: &str, protocol: &str| {
        let mut props = vec![
            ("bootstrap.servers", b.clone()),
            ("group.id", group.to_owned()),
            ("client.id", client.to_owned()),
            ("group.protocol", protocol.to_owned()),
        ];
        if protocol == "classic" {
            props.push((
                "partition.assignment.strategy",
                "cooperative-sticky".to_owned(),
            ));
        }
        ConsumerConfig::from_properties(props).expect("config")
    };
    let mut members = Vec::new();
    for (group, client, protocol) in [
        (&kip848, "admin-a", "consumer"),
        (&kip848, "admin-b", "consumer"),
        (&classic, "admin-c", "classic"),
    ] {
        let mut c = Consumer::new(consumer(group, client, protocol))
            .await
            .expect("consumer");
        c.subscribe([&topic]).expect("subscribe");
        members.push((client, c));
    }
    let start = Instant::now();
    while members
        .iter()
        .map(|(_, c)| c.assignment().len())
        .collect::<Vec<_>>()
        != [2, 2, 4]
    {
        assert!(start.elapsed() < Duration::from_secs(40), "not assigned");
        for (_, c) in &mut members {
            c.poll(Duration::from_millis(50)).await.expect("poll");
        }
    }
    let admin = admin(kafka).await;

    let all = admin
        .list_groups(&GroupFilter::default())
        .await
        .expect("list");
    let of = |g: &str| all.iter().find(|l| l.group_id == g).cloned();
    let k = of(&kip848).expect("the KIP-848 group is listed");
    assert_eq!(
        (k.group_type.as_deref(), k.state.as_deref()),
        (Some("consumer"), Some("Stable")),
        "{k:?}"
    );
    let c = of(&classic).expect("the classic group is listed");
    assert_eq!(
        (c.group_type.as_deref(), c.state.as_deref()),
        (Some("classic"), Some("Stable")),
        "{c:?}"
    );
    let only = admin
        .list_groups(&GroupFilter {
            types: vec!["consumer".into()],
            ..GroupFilter::default()
        })
        .await
        .expect("list by type");
    assert!(only.iter().any(|l| l.group_id == kip848), "{only:?}");
    assert!(!only.iter().any(|l| l.group_id == classic), "{only:?}");

    let missing = unique("g-admin-missing");
    let described = admin
        .describe_groups(&[&kip848, &classic, &missing])
        .await
        .expect("describe");
    let names: Vec<&str> = described.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(
        names,
        [kip848.as_str(), classic.as_str(), missing.as_str()],
        "request order"
    );
    let d848 = described[0].1.as_ref().expect("the KIP-848 group");
    assert_eq!(
        (d848.kind, d848.state.as_str(), d848.assignor.as_str()),
        (GroupKind::Consumer, "Stable", "uniform")
    );
    assert!(d848.epoch.is_some_and(|e| e > 0), "{d848:?}");
    let dclassic = described[1].1.as_ref().expect("the classic group");
    assert_eq!(
        (
            dclassic.kind,
            dclassic.state.as_str(),
            dclassic.assignor.as_str()
        ),
        (GroupKind::Classic, "Stable", "cooperative-sticky")
    );
    for (client, c) in &members {
        let d = if *client == "admin-c" { dclassic } else { d848 };
        let m = d
            .members
            .iter()
            .find(|m| m.client_id == *client)
            .unwrap_or_else(|| panic!("{client} in {d:?}"));
        assert_eq!(
            m.assignment,
            c.assignment(),
            "{client} holds what its consumer has"
        );
    }
    match &described[2].1 {
        Err(Error::Broker { code, .. }) if *code == ErrorCode::GROUP_ID_NOT_FOUND => {}
        other => panic!("a missing group: {other:?}"),
    }
    for (_, c) in members {
        c.close().await.expect("close");
    }
}

/// A group's offsets as an operator handles them, on Kafka 4.4.0: listed
/// (many groups at once), refused to alter, delete or drop while a member
/// is in, then altered, deleted partition by partition and the group
/// deleted once it is empty; a static member removed by its instance id.
#[tokio::test]
async fn group_offsets_altered_deleted_and_groups_removed() {
    use std::collections::BTreeMap;

    use krust::admin::GroupOffsets;
    use krust::consumer::{Consumer, ConsumerConfig, OffsetAndMetadata, TopicPartition};
    let kafka = krust_testkit::Kafka::shared();
    let b = kafka.bootstrap();
    let topic = unique("krust-admin-offsets");
    kafka.create_topic(&topic, 2).expect("create topic");
    let (group, statics, missing) = (
        unique("g-admin-offsets"),
        unique("g-admin-static"),
        unique("g-admin-none"),
    );
    let tp = |p| TopicPartition::new(&*topic, p);
    let config = |group: &str, instance: Option<&str>| {
        let mut props = vec![
            ("bootstrap.servers", b.clone()),
            ("group.id", group.to_owned()),
            ("session.timeout.ms", "6000".to_owned()),
        ];
        props.extend(instance.map(|i| ("group.instance.id", i.to_owned())));
        ConsumerConfig::from_properties(props).expect("config")
    };
    let mut c = Consumer::new(config(&group, None)).await.expect("consumer");
    c.subscribe([&topic]).expect("subscribe");
    let start = Instant::now();
    while c.assignment().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(30), "not assigned");
        c.poll(Duration::from_millis(50)).await.expect("poll");
    }
    let at = |o: [i64; 2]| -> GroupOffsets {
        (0..2)
            .map(|p| (tp(p), OffsetAndMetadata::new(o[p as usize])))
            .collect()
    };
    c.commit_offsets(at([3, 7])).await.expect("commit");
    let admin = admin(kafka).await;
    let offsets = |listed: Vec<(String, Result<GroupOffsets, Error>)>| -> Vec<BTreeMap<i32, i64>> {
        listed
            .into_iter()
            .map(|(g, r)| {
                r.unwrap_or_else(|e| panic!("{g}: {e}"))
                    .into_iter()
                    .map(|(tp, o)| (tp.partition, o.offset))
                    .collect()
            })
            .collect()
    };
    let listed = admin
        .list_group_offsets(&[&group, &missing])
        .await
        .expect("list");
    assert_eq!(
        offsets(listed),
        [BTreeMap::from([(0, 3), (1, 7)]), BTreeMap::new()]
    );

    // A member is in: the broker refuses all three.
    assert!(
        admin
            .alter_group_offsets(&group, &at([0, 0]))
            .await
            .is_err(),
        "altered under a member"
    );
    let deleted = admin
        .delete_group_offsets(&group, &[tp(0)])
        .await
        .expect("delete offsets");
    assert!(
        matches!(&deleted[..], [(t, Err(Error::Broker { code, .. }))] if *t == tp(0) && *code == ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC),
        "{deleted:?}"
    );
    let dropped = admin.delete_groups(&[&group]).await.expect("delete group");
    assert!(
        matches!(&dropped[..], [(_, Err(Error::Broker { code, .. }))] if *code == ErrorCode::NON_EMPTY_GROUP),
        "{dropped:?}"
    );

    c.close().await.expect("close");
    admin
        .alter_group_offsets(&group, &at([1, 2]))
        .await
        .expect("alter an empty group");
    let listed = admin.list_group_offsets(&[&group]).await.expect("list");
    assert_eq!(offsets(listed), [BTreeMap::from([(0, 1), (1, 2)])]);
    let deleted = admin
        .delete_group_offsets(&group, &[tp(0)])
        .await
        .expect("delete offsets");
    assert!(
        matches!(&deleted[..], [(t, Ok(()))] if *t == tp(0)),
        "{deleted:?}"
    );
    let listed = admin.list_group_offsets(&[&group]).await.expect("list");
    assert_eq!(offsets(listed), [BTreeMap::from([(1, 2)])]);
    let dropped = admin.delete_groups(&[&group]).await.expect("delete group");
    assert!(matches!(&dropped[..], [(_, Ok(()))]), "{dropped:?}");
    let listed = admin.list_group_offsets(&[&group]).await.expect("list");
    assert_eq!(offsets(listed), [BTreeMap::new()]);

    // A static member, removed by its instance id.
    let mut s = Consumer::new(config(&statics, Some("i-1")))
        .await
        .expect("consumer");
    s.subscribe([&topic]).expect("subscribe");
    let start = Instant::now();
    while s.assignment().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(30), "not assigned");
        s.poll(Duration::from_millis(50)).await.expect("poll");
    }
    let removed = admin
        .remove_static_members(&statics, &["i-1", "nobody"])
        .await
        .expect("remove");
    assert!(
        matches!(&removed[..], [(a, Ok(())), (n, Err(Error::Broker { code, .. }))]
            if a == "i-1" && n == "nobody" && *code == ErrorCode::UNKNOWN_MEMBER_ID),
        "{removed:?}"
    );
    let described = admin.describe_groups(&[&statics]).await.expect("describe");
    let d = described[0].1.as_ref().expect("the group");
    assert!(d.members.is_empty(), "removed: {d:?}");
    drop(s);
}

/// `group_lag` on Kafka 4.4.0: a partition committed part way shows its
/// lag in records and in time (the age of the record at the committed
/// offset, written a minute in the past), a caught-up one shows 0 and 0,
/// one the group holds but never committed shows its lag from the log
/// start and no committed offset; each names the member holding it.
#[tokio::test]
async fn group_lag_in_records_and_in_time() {
    use krust::consumer::{Consumer, ConsumerConfig, OffsetAndMetadata, TopicPartition};
    use krust::producer::{Producer, ProducerRecord};
    let kafka = krust_testkit::Kafka::shared();
    let b = kafka.bootstrap();
    let topic = unique("krust-admin-lag");
    kafka.create_topic(&topic, 3).expect("create topic");
    let minute_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let minute_ago = i64::try_from(minute_ago).expect("ms") - 60_000;
    let producer = Producer::builder()
        .bootstrap_servers([b.as_str()])
        .create()
        .await
        .expect("producer");
    // 10 records on partitions 0 and 1, 5 on 2, a second apart.
    let mut pending = Vec::new();
    for (p, n) in [(0, 10), (1, 10), (2, 5)] {
        for i in 0..n {
            let r = ProducerRecord::new(&*topic, format!("{p}-{i}"))
                .partition(p)
                .timestamp(minute_ago + 1_000 * i64::from(i));
            pending.push(producer.send(r).await.expect("send"));
        }
    }
    for d in pending {
        d.await.expect("delivered");
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");

    let group = unique("g-admin-lag");
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", b.as_str()),
        ("group.id", group.as_str()),
        ("client.id", "lagging"),
    ])
    .expect("config");
    let mut c = Consumer::new(config).await.expect("consumer");
    c.subscribe([&topic]).expect("subscribe");
    let start = Instant::now();
    while c.assignment().len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(30), "not assigned");
        c.poll(Duration::from_millis(50)).await.expect("poll");
    }
    let tp = |p| TopicPartition::new(&*topic, p);
    c.commit_offsets(
        [
            (tp(0), OffsetAndMetadata::new(4)),
            (tp(1), OffsetAndMetadata::new(10)),
        ]
        .into(),
    )
    .await
    .expect("commit");

    let admin = admin(kafka).await;
    let lag = admin.group_lag(&group).await.expect("lag");
    let at = |p: i32| {
        lag.iter()
            .find(|l| l.partition == tp(p))
            .unwrap_or_else(|| panic!("{p}: {lag:#?}"))
    };
    let (p0, p1, p2) = (at(0), at(1), at(2));
    assert_eq!(
        (p0.committed, p0.log_start, p0.high_watermark, p0.lag),
        (Some(4), 0, 10, 6),
        "{p0:?}"
    );
    assert_eq!(p0.last_stable, 10, "{p0:?}");
    // Record 4 was written 56 s before the test's clock reading.
    let ms = p0.lag_ms.expect("lag in time");
    assert!((55_000..600_000).contains(&ms), "{p0:?}");
    assert_eq!(
        (p1.committed, p1.lag, p1.lag_ms),
        (Some(10), 0, Some(0)),
        "{p1:?}"
    );
    assert_eq!(
        (p2.committed, p2.lag),
        (None, 5),
        "no commit: lag from the log start: {p2:?}"
    );
    assert!(p2.lag_ms.is_some_and(|ms| ms >= 59_000), "{p2:?}");
    for l in [p0, p1, p2] {
        assert_eq!(
            l.member.as_ref().map(|m| m.1.as_str()),
            Some("lagging"),
            "{l:?}"
        );
    }
    c.close().await.expect("close");
}
