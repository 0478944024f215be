//! kcat's `-o`, `-p` and several `-t` on `krust consume`: each form of
//! `-o` prints exactly the offsets it names, per partition.
//!
//! Kafka 4.4.0 runs every form. Tansu runs the forms that need only the
//! log start and fetching (`beginning`, an absolute offset, `-p`, several
//! topics): its ListOffsets(latest) is wrong after the multi-record
//! batches `krust produce` writes, so `end` and `-N` run where
//! `Capability::ListOffsetsLatest` holds, and its ListOffsets by timestamp
//! answers 0, so `s@TS` runs where `Capability::ListOffsetsByTimestamp`
//! holds. `stored` needs a group: Kafka only, as the other group tests.

use std::time::SystemTime;

use krust::producer::{Producer, ProducerConfig, ProducerRecord};
use krust_testkit::Capability;

use super::*;

/// Records per partition in the fixtures.
const PER_PARTITION: i64 = 10;

/// What `-f '%t %p %o %s\n'` printed: the offsets of each topic and
/// partition in the order printed, after checking every value is the one
/// `fill` wrote at that offset.
fn printed(out: &str) -> BTreeMap<(String, i32), Vec<i64>> {
    let mut by = BTreeMap::<(String, i32), Vec<i64>>::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 4, "{line}");
        let (partition, offset): (i32, i64) =
            (f[1].parse().expect(line), f[2].parse().expect(line));
        assert_eq!(f[3], format!("p{partition}-{offset}"), "{line}");
        by.entry((f[0].to_owned(), partition))
            .or_default()
            .push(offset);
    }
    by
}

/// `PER_PARTITION` records in each partition of `topic`, values
/// `p{partition}-{offset}`, one `krust produce -p` per partition.
fn fill(addr: &str, topic: &str, partitions: i32) {
    for p in 0..partitions {
        let lines: String = (0..PER_PARTITION).map(|o| format!("p{p}-{o}\n")).collect();
        let o = run(
            &["produce", "-b", addr, "-t", topic, "-p", &p.to_string()],
            lines.as_bytes(),
            Duration::from_secs(60),
        );
        assert_success(&o, "produce");
    }
}

/// `krust consume ... -e -f '%t %p %o %s\n'` with `extra`, exit 0.
fn consume_at(addr: &str, topics: &[&str], extra: &[&str]) -> BTreeMap<(String, i32), Vec<i64>> {
    let mut args = vec!["consume", "-b", addr, "-e", "-f", "%t %p %o %s\\n"];
    for t in topics {
        args.extend(["-t", t]);
    }
    args.extend(extra);
    let o = run(&args, b"", Duration::from_secs(60));
    assert_success(&o, &args.join(" "));
    printed(&stdout(&o))
}

/// `from..PER_PARTITION` in each of `partitions` of `topic`.
fn want(topic: &str, partitions: &[i32], from: i64) -> BTreeMap<(String, i32), Vec<i64>> {
    partitions
        .iter()
        .filter(|_| from < PER_PARTITION)
        .map(|&p| ((topic.to_owned(), p), (from..PER_PARTITION).collect()))
        .collect()
}

#[test]
fn each_o_form_prints_exactly_its_offsets_per_partition() {
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = topic_on(broker.as_ref(), "kcat-o", 3);
        fill(&addr, &topic, 3);
        let all = [0, 1, 2];
        let mut cases: Vec<(Vec<&str>, i64)> = vec![
            (vec!["-o", "beginning"], 0),
            (vec!["-o", "0"], 0),
            (vec!["-o", "4"], 4),
            (vec!["-o", "9"], 9),
        ];
        if broker.supports(Capability::ListOffsetsLatest) {
            cases.extend([
                (vec!["-o", "-3"], 7),
                (vec!["-o-1"], 9),
                // Clamped at the log start.
                (vec!["-o", "-30"], 0),
                (vec!["-o", "-0"], PER_PARTITION),
                (vec!["-o", "end"], PER_PARTITION),
                // Past the end: OFFSET_OUT_OF_RANGE, settled by --from.
                (vec!["-o", "50"], 0),
                (vec!["-o", "50", "--from", "latest"], PER_PARTITION),
            ]);
        }
        for (extra, from) in cases {
            assert_eq!(
                consume_at(&addr, &[&topic], &extra),
                want(&topic, &all, from),
                "{name}: {extra:?}"
            );
        }
    }
}

#[test]
fn p_limits_consumption_to_the_partitions_given() {
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = topic_on(broker.as_ref(), "kcat-p", 3);
        fill(&addr, &topic, 3);
        for (extra, partitions, from) in [
            (&["-p", "1"][..], &[1][..], 0),
            (&["-p", "1", "-o", "beginning"], &[1], 0),
            (&["-p", "0,2", "-o", "8"], &[0, 2], 8),
            (&["-p", "0", "-p", "2", "-o", "8"], &[0, 2], 8),
        ] {
            assert_eq!(
                consume_at(&addr, &[&topic], extra),
                want(&topic, partitions, from),
                "{name}: {extra:?}"
            );
        }
        let o = run(
            &["consume", "-b", &addr, "-t", &topic, "-p", "5", "-e"],
            b"",
            Duration::from_secs(30),
        );
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("krust: error: ")
                && err.contains(&format!(
                    "topic {topic} has no partition 5 (it has partitions 0-2)"
                )),
            "{name}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
}

#[test]
fn several_topics_are_consumed_at_once() {
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let a = topic_on(broker.as_ref(), "kcat-a", 2);
        let b = topic_on(broker.as_ref(), "kcat-b", 1);
        fill(&addr, &a, 2);
        fill(&addr, &b, 1);
        let mut both = want(&a, &[0, 1], 6);
        both.extend(want(&b, &[0], 6));
        assert_eq!(consume_at(&addr, &[&a, &b], &["-o", "6"]), both, "{name}");
        // A comma list is the same.
        let list = format!("{a},{b}");
        assert_eq!(consume_at(&addr, &[&list], &["-o", "6"]), both, "{name}");
        // -p applies to each topic.
        let mut zero = want(&a, &[0], 0);
        zero.extend(want(&b, &[0], 0));
        assert_eq!(consume_at(&addr, &[&a, &b], &["-p", "0"]), zero, "{name}");
        if broker.supports(Capability::ListOffsetsLatest) {
            let mut last = want(&a, &[0, 1], 8);
            last.extend(want(&b, &[0], 8));
            assert_eq!(consume_at(&addr, &[&a, &b], &["-o", "-2"]), last, "{name}");
        }
    }
}

/// Now in ms since the epoch.
fn now_ms() -> i64 {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch");
    i64::try_from(d.as_millis()).expect("fits")
}

/// `PER_PARTITION` records in each of `partitions`, the one at offset `o`
/// with timestamp `base + 1000 * o`, through the library's producer (the
/// CLI's producer stamps the time of sending).
fn fill_stamped(addr: &str, topic: &str, partitions: i32, base: i64) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let config =
            ProducerConfig::from_properties([("bootstrap.servers", addr)]).expect("config");
        let producer = Producer::new(config).await.expect("producer");
        for p in 0..partitions {
            for o in 0..PER_PARTITION {
                let record = ProducerRecord {
                    partition: Some(p),
                    timestamp: Some(base + 1000 * o),
                    ..ProducerRecord::new(topic, format!("p{p}-{o}"))
                };
                // Awaited one by one: offset o is the o-th record sent.
                producer
                    .send(record)
                    .await
                    .expect("send")
                    .await
                    .expect("delivered");
            }
        }
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
    });
}

#[test]
fn s_at_a_timestamp_starts_at_the_first_record_at_or_after_it() {
    for broker in brokers() {
        if !broker.supports(Capability::ListOffsetsByTimestamp) {
            continue;
        }
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = topic_on(broker.as_ref(), "kcat-ts", 2);
        // In the past, so no broker limit on future timestamps applies.
        let base = (now_ms() - 3_600_000) / 1000 * 1000;
        fill_stamped(&addr, &topic, 2, base);
        for (ts, from) in [
            (0, 0),
            (base, 0),
            (base + 4000, 4),
            (base + 4001, 5),
            (base + 9000, 9),
            // After every record: the end, nothing printed.
            (base + 9001, PER_PARTITION),
        ] {
            let at = format!("s@{ts}");
            assert_eq!(
                consume_at(&addr, &[&topic], &["-o", &at]),
                want(&topic, &[0, 1], from),
                "{name}: {at}"
            );
        }
        // The timestamps printed are the ones written.
        let at = format!("s@{}", base + 7000);
        let o = run(
            &[
                "consume", "-b", &addr, "-t", &topic, "-p", "1", "-o", &at, "-e", "-f", "%o %T\\n",
            ],
            b"",
            Duration::from_secs(60),
        );
        assert_success(&o, &format!("{name}: %T"));
        let want_ts: String = (7..PER_PARTITION)
            .map(|o| format!("{o} {}\n", base + 1000 * o))
            .collect();
        assert_eq!(stdout(&o), want_ts, "{name}");
    }
}

#[test]
fn end_prints_only_what_is_produced_after_the_start() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "kcat-end", 2);
    fill(&addr, &topic, 2);
    let mut child = krust(&[
        "-v",
        "consume",
        "-b",
        &addr,
        "-t",
        &topic,
        "-o",
        "end",
        "-c",
        "3",
        "-f",
        "%t %p %o %s\\n",
    ])
    .spawn()
    .expect("spawn");
    // `-v` logs each partition's starting position once it is placed:
    // produce only then, or the seek could land after the new records.
    let err = BufReader::new(child.stderr.take().expect("stderr"));
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in err.lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            if line.contains("starting position") {
                let _ = tx.send(line);
            }
        }
        all
    });
    let mut positions = Vec::new();
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => positions.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no starting position logged: {e}");
            }
        }
    }
    for p in 0..2 {
        assert!(
            positions
                .iter()
                .any(|l| l.contains(&format!("partition={p} offset={PER_PARTITION}"))),
            "{positions:?}"
        );
    }
    let lines: String = (PER_PARTITION..PER_PARTITION + 3)
        .map(|o| format!("p1-{o}\n"))
        .collect();
    let o = run(
        &["produce", "-b", &addr, "-t", &topic, "-p", "1"],
        lines.as_bytes(),
        Duration::from_secs(60),
    );
    assert_success(&o, "produce after the start");
    let o = wait_output(child, Duration::from_secs(60), "consume -o end");
    let log = reader.join().expect("stderr reader");
    assert!(o.status.success(), "{}: {log}", o.status);
    assert_eq!(
        printed(&stdout(&o)),
        BTreeMap::from([((topic.clone(), 1), vec![10, 11, 12])]),
        "{log}"
    );
}

#[test]
fn stored_is_the_group_s_committed_offset_else_from() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "kcat-stored", 1);
    fill(&addr, &topic, 1);
    let group = unique("kcat-stored");
    let group_args = |extra: &[&str]| {
        let mut v = vec!["-g", group.as_str(), "-X", SESSION];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let first = group_args(&["--commit", "each", "-c", "4"]);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    assert_eq!(
        consume_at(&addr, &[&topic], &first),
        BTreeMap::from([((topic.clone(), 0), vec![0, 1, 2, 3])])
    );
    assert_eq!(
        committed(&addr, &group, &topic, 1),
        BTreeMap::from([(0, 4)])
    );
    let stored = group_args(&["-o", "stored"]);
    let stored: Vec<&str> = stored.iter().map(String::as_str).collect();
    assert_eq!(consume_at(&addr, &[&topic], &stored), want(&topic, &[0], 4));
    // A group with no commit starts where --from says.
    let fresh = unique("kcat-stored-fresh");
    let from_latest = [
        "-g", &fresh, "-X", SESSION, "-o", "stored", "--from", "latest",
    ];
    assert_eq!(consume_at(&addr, &[&topic], &from_latest), BTreeMap::new());
}

#[test]
fn o_and_p_that_a_group_decides_are_usage_errors() {
    for (extra, needle) in [
        (&["-g", "g", "-o", "beginning"][..], "-o beginning with -g"),
        (&["-g", "g", "-o", "-5"], "-o -5 with -g"),
        (&["-g", "g", "-p", "0"], "-p with -g"),
        (&["-o", "stored"], "-o stored needs a group"),
        (&["-o", "soon"], "`soon`"),
    ] {
        // Refused before any connection: port 1 is never tried.
        let mut args = vec!["consume", "-b", "127.0.0.1:1", "-t", "t"];
        args.extend(extra);
        let o = run(&args, b"", Duration::from_secs(10));
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{extra:?}: {}", stderr(&o));
    }
}
