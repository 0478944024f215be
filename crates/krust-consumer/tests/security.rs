//! Producing and consuming through every security setting of Apache Kafka
//! 4.4.0 (`krust_testkit::SecureKafka`), configured by the Kafka property
//! names a user would paste: each SASL mechanism over SASL_SSL and
//! SASL_PLAINTEXT, and mTLS over SSL; then a group over SASL_SSL that
//! commits, and a second member that resumes at exactly those commits.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use krust_consumer::{Consumer, ConsumerConfig, TopicPartition};
use krust_producer::{Producer, ProducerConfig, ProducerRecord};
use krust_testkit::{SASL_USER, SecureKafka, unique};

/// The security properties for `listener` with `mechanism` (None: SSL
/// with a client certificate).
fn security(kafka: &SecureKafka, listener: &str, mechanism: Option<&str>) -> Vec<(String, String)> {
    let (user, password) = SASL_USER;
    let pki = kafka.pki();
    let mut p = vec![
        ("security.protocol".to_owned(), listener.to_owned()),
        ("ssl.ca.location".to_owned(), pki.ca().display().to_string()),
    ];
    match mechanism {
        None => {
            p.push((
                "ssl.certificate.location".into(),
                pki.client_cert().display().to_string(),
            ));
            p.push((
                "ssl.key.location".into(),
                pki.client_key().display().to_string(),
            ));
        }
        Some("OAUTHBEARER") => {
            p.push(("sasl.mechanism".into(), "OAUTHBEARER".into()));
            p.push(("enable.sasl.oauthbearer.unsecure.jwt".into(), "true".into()));
            p.push((
                "sasl.oauthbearer.config".into(),
                format!("principal={user}"),
            ));
        }
        Some(m) => {
            p.push(("sasl.mechanism".into(), m.into()));
            p.push(("sasl.username".into(), user.into()));
            p.push(("sasl.password".into(), password.into()));
        }
    }
    p
}

async fn produce(addr: &str, secure: &[(String, String)], topic: &str, from: usize, n: usize) {
    let mut props = vec![
        ("bootstrap.servers".to_owned(), addr.to_owned()),
        ("linger.ms".to_owned(), "5".to_owned()),
    ];
    props.extend(secure.iter().cloned());
    let producer = Producer::new(ProducerConfig::from_properties(props).expect("producer config"))
        .await
        .unwrap_or_else(|e| panic!("producer on {addr}: {e}"));
    let mut pending = Vec::new();
    for i in from..from + n {
        let r = ProducerRecord::new(topic, format!("v{i}")).partition((i % 2) as i32);
        pending.push(producer.send(r).await.expect("send"));
    }
    for p in pending {
        p.await.expect("delivered");
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
}

fn consumer_config(
    addr: &str,
    secure: &[(String, String)],
    extra: &[(&str, &str)],
) -> ConsumerConfig {
    let mut props: BTreeMap<String, String> = [
        ("bootstrap.servers", addr),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("fetch.max.wait.ms", "200"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    props.extend(secure.iter().cloned());
    props.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ConsumerConfig::from_properties(props).expect("consumer config")
}

/// Poll until `n` records came (or 60 s), returning their values.
async fn take(consumer: &mut Consumer, n: usize) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < until {
        for r in consumer
            .poll(Duration::from_millis(500))
            .await
            .expect("poll")
        {
            got.push(String::from_utf8(r.value().unwrap().to_vec()).unwrap());
        }
    }
    got
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn expected(from: usize, n: usize) -> Vec<String> {
    sorted((from..from + n).map(|i| format!("v{i}")).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mechanism_carries_records_both_ways() {
    let kafka = SecureKafka::shared();
    let cases = [
        ("SASL_SSL", Some("PLAIN")),
        ("SASL_SSL", Some("SCRAM-SHA-256")),
        ("SASL_SSL", Some("SCRAM-SHA-512")),
        ("SASL_SSL", Some("OAUTHBEARER")),
        ("SASL_PLAINTEXT", Some("PLAIN")),
        ("SASL_PLAINTEXT", Some("SCRAM-SHA-256")),
        ("SASL_PLAINTEXT", Some("SCRAM-SHA-512")),
        ("SASL_PLAINTEXT", Some("OAUTHBEARER")),
        ("SSL", None),
    ];
    for (listener, mechanism) in cases {
        let what = format!("{listener} {mechanism:?}");
        let topic = unique("sec");
        kafka.kafka().as_cluster().create_topic(&topic, 2).unwrap();
        let addr = kafka.addr(listener);
        let secure = security(kafka, listener, mechanism);
        produce(&addr, &secure, &topic, 0, 100).await;
        let mut c = Consumer::new(consumer_config(&addr, &secure, &[]))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        c.assign([
            TopicPartition::new(&topic, 0),
            TopicPartition::new(&topic, 1),
        ])
        .unwrap();
        let got = take(&mut c, 100).await;
        assert_eq!(sorted(got), expected(0, 100), "{what}");
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_over_sasl_ssl_commits_and_a_new_member_resumes_there() {
    let kafka = SecureKafka::shared();
    let topic = unique("secgroup");
    let group = unique("secgroup");
    kafka.kafka().as_cluster().create_topic(&topic, 2).unwrap();
    let addr = kafka.addr("SASL_SSL");
    let secure = security(kafka, "SASL_SSL", Some("SCRAM-SHA-512"));
    produce(&addr, &secure, &topic, 0, 200).await;
    let config = || consumer_config(&addr, &secure, &[("group.id", group.as_str())]);
    let mut first = Consumer::new(config()).await.unwrap();
    first.subscribe([topic.as_str()]).unwrap();
    let got = take(&mut first, 200).await;
    assert_eq!(sorted(got), expected(0, 200));
    first.commit().await.expect("commit over SASL_SSL");
    first.close().await.unwrap();

    produce(&addr, &secure, &topic, 200, 50).await;
    let mut second = Consumer::new(config()).await.unwrap();
    second.subscribe([topic.as_str()]).unwrap();
    let got = take(&mut second, 50).await;
    assert_eq!(
        sorted(got),
        expected(200, 50),
        "resumed at the commits, nothing again"
    );
    // Nothing more than the 50 new ones arrives.
    let extra = second.poll(Duration::from_secs(1)).await.unwrap();
    assert!(extra.is_empty(), "{} records again", extra.len());
    second.close().await.unwrap();
}
