//! Interop with librdkafka: for 1,000 keys, the partition krust's murmur2
//! picks is the one `confluent-kafka` (librdkafka 2.16) picks with
//! `partitioner=murmur2_random`, on a partition count that is not a power
//! of two. The Python peer produces each key to a topic on Apache Kafka
//! 4.4.0 (the node this test binary shares) and prints the partition of
//! each delivery report (`tests/interop/partitions.py`). The partition is
//! the client's choice, so one broker is enough: the reference one.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use krust_producer::murmur2_partition;
use krust_testkit::{Broker, Kafka, confluent_python, unique};

const KEYS: usize = 1_000;
const PARTITIONS: i32 = 7;

/// Keys of many lengths (murmur2 handles the 0-3 byte tail separately),
/// text and binary, including the empty key.
fn keys() -> Vec<Vec<u8>> {
    (0..KEYS)
        .map(|i| match i % 4 {
            0 => format!("key-{i}").into_bytes(),
            1 => format!("user-{}", i * 7919).repeat(i % 5 + 1).into_bytes(),
            2 => (0..i % 37).map(|j| (i * 31 + j * 17) as u8).collect(),
            _ => i.to_le_bytes()[..i % 9].to_vec(),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn murmur2_matches_librdkafka_murmur2_random() {
    let python = confluent_python();
    let started = Instant::now();
    let kafka = Kafka::shared();
    let topic = unique("krust-producer-interop");
    kafka
        .create_topic(&topic, PARTITIONS)
        .expect("create topic");
    let keys = keys();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/partitions.py");
    let mut child = Command::new(python)
        .arg(script)
        .args([kafka.addr().as_str(), topic.as_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the confluent-kafka peer");
    let input: String = keys.iter().map(|k| hex(k) + "\n").collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write keys");
    let out = child.wait_with_output().expect("peer output");
    assert!(
        out.status.success(),
        "confluent-kafka peer failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: HashMap<String, i32> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let (k, p) = l.split_once(' ').expect("<key> <partition>");
            (k.to_owned(), p.parse().expect("partition"))
        })
        .collect();
    let mut used = vec![0usize; usize::try_from(PARTITIONS).expect("small")];
    for key in &keys {
        let h = hex(key);
        let want = *theirs
            .get(&h)
            .unwrap_or_else(|| panic!("no delivery report for key {h}"));
        let ours = murmur2_partition(key, PARTITIONS);
        assert_eq!(ours, want, "key {h}: krust picks {ours}, librdkafka {want}");
        used[usize::try_from(ours).expect("partition")] += 1;
    }
    assert!(used.iter().all(|&n| n > 0), "keys spread: {used:?}");
    eprintln!(
        "{KEYS} keys on {PARTITIONS} partitions agree with librdkafka's murmur2_random in {:?}",
        started.elapsed()
    );
}
