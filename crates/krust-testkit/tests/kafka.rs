//! The Apache Kafka fixtures: a node of each installed release starts,
//! speaks the protocol its release speaks, creates topics, keeps them across
//! a restart and is gone after drop; a 3-node cluster elects a new leader
//! when the leader is killed, hangs when a node is stopped and serves again
//! when it is resumed or restarted on the same port; Kafka's own tools and
//! the Java peer run.

use std::time::{Duration, Instant};

use krust_codec::generated::{ApiKey, ApiVersionsResponse};
use krust_testkit::raw::Connection;
use krust_testkit::{
    Broker, BrokerKind, CONSUMER_GROUP_COMMAND, Capability, Kafka, KafkaCluster, KafkaVersion,
    TOPIC_COMMAND, accepts, java_peer, local_brokers, unique,
};

fn api_versions(addr: &str) -> ApiVersionsResponse {
    let mut conn = Connection::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    conn.api_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .clone()
}

fn min_version(v: &ApiVersionsResponse, api: ApiKey) -> i16 {
    v.api_keys
        .iter()
        .find(|k| k.api_key == api.key())
        .unwrap_or_else(|| panic!("{api:?} not offered"))
        .min_version
}

/// Both releases start, and each speaks its own protocol range: KIP-896
/// removed Fetch v0–v3, ListOffsets v0 and OffsetCommit v0–v1 in 4.0, and
/// 3.9 still has them. (Produce v0–v2 are gone too but still advertised,
/// for old librdkafka versions that check for v0.)
#[test]
fn each_release_starts_and_speaks_its_protocol_range() {
    for version in KafkaVersion::ALL {
        let started = Instant::now();
        let kafka = Kafka::start_version(version);
        eprintln!("kafka {version} ready in {:?}", started.elapsed());
        assert_eq!(kafka.version(), version);
        assert_eq!(kafka.name(), format!("kafka-{version}"));
        let v = api_versions(&kafka.addr());
        assert_eq!(v.error_code, 0);
        let mins = [ApiKey::Fetch, ApiKey::ListOffsets, ApiKey::OffsetCommit]
            .map(|api| min_version(&v, api));
        match version {
            KafkaVersion::V4_4 => assert_eq!(mins, [4, 1, 2]),
            _ => assert_eq!(mins, [0, 0, 0]),
        }
        let addr = kafka.addr();
        drop(kafka);
        assert!(!accepts(&addr), "{version}: {addr} accepts after drop");
    }
}

#[test]
fn a_node_creates_topics_and_keeps_them_across_a_crash_and_restart() {
    let kafka = Kafka::start();
    let topic = unique("fixture");
    kafka.create_topic(&topic, 3).expect("create");
    assert_eq!(kafka.as_cluster().leader(&topic, 2).expect("leader"), 1);
    let listed = kafka
        .tool(TOPIC_COMMAND, &["--list"])
        .expect("kafka-topics --list");
    assert!(listed.lines().any(|l| l == topic), "{listed}");
    let started = Instant::now();
    kafka.restart().expect("restart");
    eprintln!("restarted in {:?}", started.elapsed());
    let described = kafka
        .tool(TOPIC_COMMAND, &["--describe", "--topic", &topic])
        .expect("kafka-topics --describe");
    assert!(described.contains("PartitionCount: 3"), "{described}");
}

#[test]
fn the_shared_node_is_one_per_binary_and_local_brokers_put_it_first() {
    let a: *const Kafka = Kafka::shared();
    let b: *const Kafka = Kafka::shared();
    assert_eq!(a, b);
    let brokers = local_brokers(Capability::ClassicGroups);
    assert_eq!(brokers[0].kind(), BrokerKind::Kafka);
    assert_eq!(brokers[0].bootstrap(), Kafka::shared().addr());
    for cap in [
        Capability::Transactions,
        Capability::DeleteRecords,
        Capability::ListOffsetsByTimestamp,
        Capability::RebalanceTimeoutEviction,
        Capability::LeaveDuringRebalance,
        Capability::DescribeGroupMembers,
    ] {
        assert!(BrokerKind::Kafka.supports(cap), "{cap:?}");
    }
}

/// A 3-node cluster with replication factor 3: the leader of a partition
/// killed, another node leads; a node hung, it answers nothing until
/// resumed; a killed node restarted on the same port is listed again.
#[test]
fn a_cluster_moves_leaders_on_a_kill_and_survives_hangs_and_restarts() {
    let started = Instant::now();
    let cluster = KafkaCluster::start();
    eprintln!("3-node cluster ready in {:?}", started.elapsed());
    assert_eq!(cluster.node_ids(), &[1, 2, 3]);
    assert_eq!(cluster.bootstrap().split(',').count(), 3);
    let topic = unique("replicated");
    cluster.create_topic(&topic, 1).expect("create");
    let described = cluster
        .tool(TOPIC_COMMAND, &["--describe", "--topic", &topic])
        .expect("describe");
    assert!(described.contains("ReplicationFactor: 3"), "{described}");

    let leader = cluster.leader(&topic, 0).expect("leader");
    cluster.kill(leader).expect("kill");
    assert!(!cluster.is_running(leader));
    let moved = wait_until(Duration::from_secs(30), || {
        cluster
            .leader(&topic, 0)
            .ok()
            .filter(|&l| l >= 0 && l != leader)
    });
    eprintln!("leader {leader} killed; node {moved} leads");

    let hung = cluster
        .node_ids()
        .iter()
        .copied()
        .find(|&id| id != leader && id != moved)
        .expect("the third node");
    let hung_addr = cluster.addr(hung).expect("addr");
    cluster.pause(hung).expect("pause");
    let probe = Connection::connect_with_timeout(&hung_addr, Duration::from_secs(1))
        .and_then(|mut c| c.api_versions().map(|_| ()));
    assert!(probe.is_err(), "a stopped node answered ApiVersions");
    assert!(cluster.is_running(hung) && !cluster.is_serving(hung));
    // Questions go to the nodes that answer, not to the hung one.
    let asked = Instant::now();
    assert_eq!(cluster.leader(&topic, 0).expect("leader"), moved);
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    cluster.resume(hung).expect("resume");
    wait_until(Duration::from_secs(20), || {
        Connection::connect_with_timeout(&hung_addr, Duration::from_secs(2))
            .and_then(|mut c| c.api_versions().map(|_| ()))
            .ok()
    });

    let started = Instant::now();
    cluster.restart(leader).expect("restart");
    eprintln!("node {leader} restarted in {:?}", started.elapsed());
    assert!(accepts(&cluster.addr(leader).expect("addr")));

    let addrs: Vec<String> = cluster.bootstrap().split(',').map(str::to_owned).collect();
    drop(cluster);
    for addr in addrs {
        assert!(!accepts(&addr), "{addr} accepts after drop");
    }
}

/// Kafka's `kafka-consumer-groups.sh` runs against the fixture, and the
/// compiled Java peer starts (it prints its usage and exits 2 without
/// arguments).
#[test]
fn kafka_tools_and_the_java_peer_run() {
    let kafka = Kafka::shared();
    let groups = kafka
        .tool(CONSUMER_GROUP_COMMAND, &["--list"])
        .expect("kafka-consumer-groups --list");
    assert!(!groups.contains("Exception"), "{groups}");
    let out = java_peer("JavaGroupConsumer").output().expect("java peer");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: JavaGroupConsumer"));
}

fn wait_until<T>(bound: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {bound:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
