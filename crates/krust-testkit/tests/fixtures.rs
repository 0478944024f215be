//! Every fixture starts, speaks Kafka on its port, and is gone after drop;
//! topic creation shows in Metadata; the mock clusters' (librdkafka 2.0.2
//! and 2.12.1, one fixture) broker down/up and other fault commands take
//! effect.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use krust_codec::KString;
use krust_codec::frame::FrameDecoder;
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
};
use krust_codec::header;
use krust_testkit::raw::Connection;
use krust_testkit::{
    Broker, BrokerKind, Capability, MockCluster, MockVersion, NoidaDb, Tansu, accepts, all_brokers,
    local_brokers,
};

/// ApiVersions v0 by hand (every broker answers v0, including the 2.0.2
/// mock, which refuses v3): frame, send, read one frame, decode.
fn api_versions_v0(addr: &str) -> ApiVersionsResponse {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = BytesMut::new();
    let client = KString::from("krust-testkit-test");
    header::encode_request_frame(
        &mut out,
        0,
        42,
        Some(&client),
        &ApiVersionsRequest::default(),
    )
    .unwrap();
    stream.write_all(&out).unwrap();

    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let frame = loop {
        if let Some(frame) = decoder.decode(&mut buf).unwrap() {
            break frame;
        }
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("read from {addr}: {e}"));
        assert!(
            n > 0,
            "{addr} closed the connection before answering ApiVersions"
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let (head, body) = header::decode_response_as::<ApiVersionsRequest>(frame, 0).unwrap();
    assert_eq!(head.correlation_id, 42, "{addr}");
    body
}

fn assert_speaks_kafka(kind: &str, addr: &str) {
    let response = api_versions_v0(addr);
    assert_eq!(response.error_code, 0, "{kind} at {addr}");
    assert!(
        !response.api_keys.is_empty(),
        "{kind} at {addr}: empty API list"
    );
    for must in [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::Produce,
        ApiKey::Fetch,
    ] {
        assert!(
            response.api_keys.iter().any(|k| k.api_key == must.key()),
            "{kind} at {addr} does not list {must:?}"
        );
    }
}

/// The partitions of `topic` in a Metadata response, polling until they
/// appear (topic creation may complete asynchronously).
fn partitions_in_metadata(addr: &str, topic: &str) -> Vec<i32> {
    let mut conn = Connection::connect(addr).unwrap();
    let version = conn.version_for::<MetadataRequest>().unwrap();
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(KString::from(topic)),
            ..Default::default()
        }]),
        // Settable from v4 on; older versions (the 2.0.2 mock offers v2)
        // only know the schema default.
        allow_auto_topic_creation: version < 4,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response: MetadataResponse = conn.send(version, &request).unwrap();
        let found = response
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(topic) && t.error_code == 0);
        if let Some(t) = found {
            let mut ids: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
            ids.sort_unstable();
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} never showed in Metadata v{version} from {addr}: {response:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_stops_accepting(kind: &str, addrs: &[String]) {
    for addr in addrs {
        assert!(
            !accepts(addr),
            "{kind}: {addr} still accepts connections after drop"
        );
    }
}

#[test]
fn tansu_speaks_kafka_creates_topics_and_dies_on_drop() {
    let started = Instant::now();
    let tansu = Tansu::start();
    eprintln!("tansu ready in {:?} at {}", started.elapsed(), tansu.addr());
    assert_speaks_kafka("tansu", tansu.addr());

    let started = Instant::now();
    tansu.create_topic("testkit-tansu", 3).unwrap();
    eprintln!("tansu topic create took {:?}", started.elapsed());
    assert_eq!(
        partitions_in_metadata(tansu.addr(), "testkit-tansu"),
        vec![0, 1, 2]
    );

    let addr = tansu.addr().to_string();
    drop(tansu);
    assert_stops_accepting("tansu", &[addr]);
}

#[test]
fn noida_speaks_kafka_keeps_topics_across_restart_and_dies_on_drop() {
    let started = Instant::now();
    let mut noida = NoidaDb::start();
    eprintln!(
        "noida-db ready in {:?} at {}",
        started.elapsed(),
        noida.addr()
    );
    assert_speaks_kafka("noida-db", noida.addr());

    Broker::create_topic(&noida, "testkit-noida", 2).unwrap();
    assert_eq!(
        partitions_in_metadata(noida.addr(), "testkit-noida"),
        vec![0, 1]
    );

    let started = Instant::now();
    noida.restart().unwrap();
    eprintln!("noida-db restarted in {:?}", started.elapsed());
    assert_speaks_kafka("noida-db", noida.addr());
    assert_eq!(
        partitions_in_metadata(noida.addr(), "testkit-noida"),
        vec![0, 1]
    );

    let addr = noida.addr().to_string();
    drop(noida);
    assert_stops_accepting("noida-db", &[addr]);
}

#[test]
fn mock_cluster_brokers_speak_kafka_and_die_on_drop() {
    for version in MockVersion::ALL {
        mock_brokers_speak_kafka_and_die_on_drop(version);
    }
}

fn mock_brokers_speak_kafka_and_die_on_drop(version: MockVersion) {
    let started = Instant::now();
    let mock = MockCluster::start_version(version, 3, &[("testkit-mock", 4)]);
    let kind = mock.name();
    eprintln!(
        "librdkafka {} mock ready in {:?} at {}",
        mock.librdkafka_version(),
        started.elapsed(),
        mock.bootstrap()
    );
    assert_eq!(mock.version(), version);
    assert_eq!(mock.kind(), version.kind());
    assert_eq!(mock.librdkafka_version(), version.librdkafka());
    assert_eq!(mock.brokers().len(), 3, "{kind}");
    for (_, addr) in mock.brokers() {
        assert_speaks_kafka(&kind, addr);
    }
    assert_eq!(
        partitions_in_metadata(mock.broker_addr(2).unwrap(), "testkit-mock"),
        vec![0, 1, 2, 3],
        "{kind}"
    );
    mock.create_topic("testkit-mock-2", 2).unwrap();
    assert_eq!(
        partitions_in_metadata(mock.broker_addr(1).unwrap(), "testkit-mock-2"),
        vec![0, 1],
        "{kind}"
    );

    // The BROKER lines name each id with its own address.
    let mut conn = Connection::connect(mock.broker_addr(1).unwrap()).unwrap();
    let version = conn.version_for::<MetadataRequest>().unwrap();
    let response = conn.send(version, &MetadataRequest::default()).unwrap();
    assert_eq!(response.brokers.len(), 3, "{kind}");
    for b in &response.brokers {
        assert_eq!(
            mock.broker_addr(b.node_id),
            Some(format!("{}:{}", b.host, b.port).as_str()),
            "{kind}"
        );
    }

    let addrs: Vec<String> = mock.brokers().iter().map(|(_, a)| a.clone()).collect();
    drop(mock);
    assert_stops_accepting(&kind, &addrs);
}

/// A down broker closes its connections: the peer sees end of file or a
/// reset, never an answer.
fn refuses_service(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return true;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut out = BytesMut::new();
    header::encode_request_frame(&mut out, 0, 1, None, &ApiVersionsRequest::default()).unwrap();
    if stream.write_all(&out).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            assert_ne!(
                e.kind(),
                ErrorKind::WouldBlock,
                "{addr}: neither answered nor closed within 5 s"
            );
            assert_ne!(
                e.kind(),
                ErrorKind::TimedOut,
                "{addr}: neither answered nor closed within 5 s"
            );
            true
        }
    }
}

#[test]
fn mock_cluster_broker_down_refuses_and_up_restores() {
    for version in MockVersion::ALL {
        mock_broker_down_refuses_and_up_restores(version);
    }
}

fn mock_broker_down_refuses_and_up_restores(version: MockVersion) {
    let mock = MockCluster::start_version(version, 3, &[("faults", 3)]);
    let kind = mock.name();
    let addr2 = mock.broker_addr(2).unwrap().to_string();

    // An open connection to broker 2 is closed when it goes down.
    let mut open = TcpStream::connect(&addr2).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    mock.broker_down(2).unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(open.read(&mut byte), Ok(0) | Err(_)),
        "{kind}: connection to a down broker stays open"
    );

    assert!(
        refuses_service(&addr2),
        "{kind}: broker 2 still answers while down"
    );
    assert_speaks_kafka(&format!("{kind} broker 1"), mock.broker_addr(1).unwrap());

    mock.broker_up(2).unwrap();
    assert!(!refuses_service(&addr2), "{kind}: broker 2 up again");
    assert_speaks_kafka(&format!("{kind} broker 2"), &addr2);
}

#[test]
fn mock_cluster_accepts_every_fault_command_and_rejects_nonsense() {
    for version in MockVersion::ALL {
        mock_accepts_every_fault_command_and_rejects_nonsense(version);
    }
}

fn mock_accepts_every_fault_command_and_rejects_nonsense(version: MockVersion) {
    let mock = MockCluster::start_version(version, 3, &[("faults", 2)]);
    let kind = mock.name();
    mock.set_leader("faults", 0, 3).unwrap();
    mock.set_coordinator("group-a", 2).unwrap();
    mock.set_txn_coordinator("txn-a", 1).unwrap();
    mock.push_errors(ApiKey::OffsetCommit.key(), &[16, 15])
        .unwrap();
    mock.clear_errors(ApiKey::OffsetCommit.key()).unwrap();
    mock.set_rtt(1, 50).unwrap();
    mock.set_rtt(1, 0).unwrap();

    // The leader move shows in Metadata.
    let mut conn = Connection::connect(mock.broker_addr(1).unwrap()).unwrap();
    let version = conn.version_for::<MetadataRequest>().unwrap();
    let all_topics = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let response = conn.send(version, &all_topics).unwrap();
    let topic = response
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some("faults"))
        .unwrap();
    let p0 = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == 0)
        .unwrap();
    assert_eq!(p0.leader_id, 3, "{kind}");

    // A delay on broker 1 shows in its answers.
    mock.set_rtt(1, 300).unwrap();
    let started = Instant::now();
    api_versions_v0(mock.broker_addr(1).unwrap());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{kind}: rtt not applied: {:?}",
        started.elapsed()
    );
    mock.set_rtt(1, 0).unwrap();

    let err = mock.command("no-such-command").unwrap_err();
    assert!(err.to_string().contains("no-such-command"), "{kind}: {err}");
    assert!(
        mock.set_leader("faults", 0, 99).is_err(),
        "{kind}: leader on an unknown broker accepted"
    );
    for nonsense in ["err 1 NO_SUCH_ERROR", "err x 1", "down x", "topic t x"] {
        assert!(
            mock.command(nonsense).is_err(),
            "{kind}: {nonsense:?} accepted"
        );
    }
    // An error name is as good as its number; each queued error answers
    // one request, then requests are answered as before. (Heartbeat, not
    // FindCoordinator: on an error both mocks send FindCoordinator's Host
    // as null, which its schema does not allow, so it does not decode.)
    use krust_codec::generated::HeartbeatRequest;
    mock.command("err 12 COORDINATOR_NOT_AVAILABLE 15").unwrap();
    let version = conn.version_for::<HeartbeatRequest>().unwrap();
    let heartbeat = HeartbeatRequest {
        group_id: KString::from("group-a"),
        generation_id: 1,
        member_id: KString::from("no-such-member"),
        ..Default::default()
    };
    let codes: Vec<i16> = (0..3)
        .map(|_| conn.send(version, &heartbeat).unwrap().error_code)
        .collect();
    assert_eq!(
        codes[..2],
        [15, 15],
        "{kind}: Heartbeat v{version}: {codes:?}"
    );
    assert_ne!(codes[2], 15, "{kind}: the queue is used up: {codes:?}");
}

#[test]
fn every_local_broker_answers_and_flexible_ones_are_listed_right() {
    let brokers = local_brokers(Capability::Produce);
    let kinds: Vec<BrokerKind> = brokers.iter().map(|b| b.kind()).collect();
    assert_eq!(
        kinds,
        [
            BrokerKind::Kafka,
            BrokerKind::Tansu,
            BrokerKind::NoidaDb,
            BrokerKind::MockCluster,
            BrokerKind::MockCluster212
        ]
    );
    for broker in &brokers {
        let first = broker.bootstrap().split(',').next().unwrap().to_string();
        assert_speaks_kafka(broker.kind().name(), &first);
    }
    let flexible: Vec<BrokerKind> = local_brokers(Capability::FlexibleVersions)
        .iter()
        .map(|b| b.kind())
        .collect();
    assert!(!flexible.contains(&BrokerKind::MockCluster));
    assert!(flexible.contains(&BrokerKind::MockCluster212));
    assert!(flexible.contains(&BrokerKind::Kafka));
    let several: Vec<BrokerKind> = local_brokers(Capability::MultipleBrokers)
        .iter()
        .map(|b| b.kind())
        .collect();
    assert_eq!(
        several,
        [
            BrokerKind::KafkaCluster,
            BrokerKind::MockCluster,
            BrokerKind::MockCluster212
        ]
    );
    // Its coordinator has the 2.0.2 mock's fixed rounds, which the group
    // suites skip by kind (docs/ARCHITECTURE.md).
    for cap in [
        Capability::ClassicGroups,
        Capability::LeaveDuringRebalance,
        Capability::RebalanceTimeoutEviction,
    ] {
        assert!(!BrokerKind::MockCluster212.supports(cap), "{cap:?}");
    }
    assert!(BrokerKind::MockCluster212.supports(Capability::CommitOffsets));
    let faults: Vec<BrokerKind> = local_brokers(Capability::FaultInjection)
        .iter()
        .map(|b| b.kind())
        .collect();
    assert_eq!(
        faults,
        [BrokerKind::MockCluster, BrokerKind::MockCluster212]
    );
}

#[test]
fn create_topic_through_the_trait_on_every_broker_that_creates_topics() {
    let mut brokers = local_brokers(Capability::CreateTopics);
    // The mocks have no CreateTopics API; their fixture creates topics
    // through the mock's own command instead.
    for version in MockVersion::ALL {
        brokers.push(Box::new(MockCluster::start_version(version, 1, &[])));
    }
    for broker in &brokers {
        let topic = krust_testkit::unique(&format!("created-{}", broker.kind().name()));
        broker
            .create_topic(&topic, 5)
            .unwrap_or_else(|e| panic!("{}: {e}", broker.kind()));
        let first = broker.bootstrap().split(',').next().unwrap().to_string();
        assert_eq!(
            partitions_in_metadata(&first, &topic),
            vec![0, 1, 2, 3, 4],
            "{}",
            broker.kind()
        );
    }
}

/// With `KAFKA_BOOTSTRAP` set (or Docker, with the `docker` feature) this
/// covers those brokers too.
#[test]
fn every_broker_of_all_brokers_answers_api_versions() {
    let brokers = all_brokers(Capability::Fetch);
    assert!(brokers.len() >= 4);
    assert_eq!(brokers[0].kind(), BrokerKind::Kafka);
    for broker in &brokers {
        for addr in broker.bootstrap().split(',') {
            assert_speaks_kafka(broker.kind().name(), addr);
        }
    }
}
