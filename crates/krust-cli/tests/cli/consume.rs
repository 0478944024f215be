//! Round trips through a broker: keys and values back, commits and
//! resumption per commit mode, SIGINT, missing topics, JSON output.

use super::*;

#[test]
fn produced_lines_come_back_with_keys_values_and_increasing_offsets() {
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = topic_on(broker.as_ref(), "roundtrip", 3);
        produce_lines(&addr, &topic, &keyed_lines(100));

        let o = run(
            &[
                "consume",
                "-b",
                &addr,
                "-t",
                &topic,
                "--from",
                "earliest",
                "-e",
                "-f",
                "%p %o %k %s\\n",
            ],
            b"",
            Duration::from_secs(60),
        );
        assert_success(&o, &format!("{name}: consume"));
        let lines = parse_lines(&stdout(&o));
        assert_eq!(lines.len(), 100, "{name}: stdout:\n{}", stdout(&o));
        let mut pairs: Vec<String> = lines.iter().map(|l| l.rest.clone()).collect();
        pairs.sort();
        let mut expected: Vec<String> = (0..100).map(|i| format!("key-{i} value-{i}:x")).collect();
        expected.sort();
        assert_eq!(pairs, expected, "{name}");
        let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for l in &lines {
            by_partition.entry(l.partition).or_default().push(l.offset);
        }
        assert!(
            by_partition.len() > 1,
            "{name}: murmur2 spread 100 keys: {by_partition:?}"
        );
        for (p, offsets) in &by_partition {
            // Printed in order, and nothing skipped: 0, 1, 2, ...
            let want: Vec<i64> = (0..).take(offsets.len()).collect();
            assert_eq!(offsets, &want, "{name}: partition {p}");
        }
        assert!(
            stderr(&o).contains("consumed 100 records"),
            "{name}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_group_resumes_after_the_last_record_committed_with_commit_each() {
    resumes_after_the_last_record_committed(&["-X", SESSION]);
}

/// The same with `-X group.protocol=consumer` (KIP-848, Kafka 4.4.0).
#[test]
fn a_consumer_protocol_group_resumes_after_the_last_record_committed() {
    resumes_after_the_last_record_committed(&["-X", "group.protocol=consumer"]);
}

fn resumes_after_the_last_record_committed(settings: &[&str]) {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "resume", 3);
    let group = unique("resumers");
    produce_lines(&addr, &topic, &keyed_lines(30));
    let consume = |extra: &[&str]| {
        let mut args = vec![
            "consume",
            "-b",
            &addr,
            "-t",
            &topic,
            "-g",
            &group,
            "--commit",
            "each",
            "-f",
            "%p %o %s\\n",
        ];
        args.extend(settings);
        args.extend(extra);
        let o = run(&args, b"", Duration::from_secs(90));
        assert_success(&o, "consume");
        parse_lines(&stdout(&o))
    };

    let first = consume(&["-c", "10"]);
    assert_eq!(first.len(), 10, "{first:?}");
    let after_first = committed(&addr, &group, &topic, 3);
    for p in 0..3 {
        let printed = next_offsets(&first).get(&p).copied();
        assert_eq!(
            after_first[&p],
            printed.unwrap_or(-1),
            "partition {p}: committed vs printed {first:?}"
        );
    }

    let second = consume(&["-e"]);
    assert_eq!(second.len(), 20, "{second:?}");
    // Each partition picks up right after the first run's last record.
    for p in 0..3 {
        let resumed = second.iter().find(|l| l.partition == p).map(|l| l.offset);
        let from = after_first[&p].max(0);
        assert!(
            resumed.is_none_or(|o| o == from),
            "partition {p} resumed at {resumed:?}, committed {from}"
        );
    }
    let mut all: Vec<Line> = first.iter().chain(&second).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 30, "no duplicates, none lost");
    let mut values: Vec<String> = all.iter().map(|l| l.rest.clone()).collect();
    values.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("value-{i}:x")).collect();
    expected.sort();
    assert_eq!(values, expected);
    assert_eq!(
        committed(&addr, &group, &topic, 3),
        expected_commits(&all, 3)
    );
}

/// The group's state and its members' client ids, from a raw
/// DescribeGroups to the broker (its own coordinator).
fn describe_group(addr: &str, group: &str) -> (String, Vec<String>) {
    let mut conn = RawConnection::connect(addr).expect("connect");
    let version = conn
        .version_for::<DescribeGroupsRequest>()
        .expect("DescribeGroups version");
    let request = DescribeGroupsRequest {
        groups: vec![KString::from(group)],
        ..Default::default()
    };
    let response = conn.send(version, &request).expect("DescribeGroups");
    assert_eq!(response.groups.len(), 1, "{response:?}");
    let g = &response.groups[0];
    assert_eq!(g.error_code, 0, "DescribeGroups: {g:?}");
    (
        g.group_state.as_str().to_owned(),
        g.members
            .iter()
            .map(|m| m.client_id.as_str().to_owned())
            .collect(),
    )
}

#[test]
fn sigint_commits_what_was_printed_leaves_and_exits_zero() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "interrupted", 3);
    let group = unique("interrupted-group");
    produce_lines(&addr, &topic, &keyed_lines(30));
    // No periodic commit in the test's time: what is committed is what
    // the shutdown path commits.
    let mut child = krust(&[
        "consume",
        "-b",
        &addr,
        "-t",
        &topic,
        "-g",
        &group,
        "-f",
        "%p %o %s\\n",
        "-X",
        SESSION,
        "-X",
        "auto.commit.interval.ms=600000",
    ])
    .spawn()
    .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while n < 30 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("only {n} records printed in 60 s:\n{printed}")
        });
        printed.push_str(&line);
        printed.push('\n');
        n += 1;
    }
    // A member of the group while it runs (so the check after exit can
    // tell a member that left from one that never joined).
    assert_eq!(
        describe_group(&addr, &group),
        ("Stable".to_owned(), vec!["krust-cli".to_owned()]),
        "while consuming"
    );
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
    kill(pid, Signal::SIGINT).expect("SIGINT");
    let o = wait_output(child, Duration::from_secs(30), "consume after SIGINT");
    let exited = Instant::now();
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    // Left the group on the way out: empty at once, where a member that
    // just vanished would stay listed for its 45 s session.
    assert_eq!(
        describe_group(&addr, &group),
        ("Empty".to_owned(), Vec::new()),
        "right after exit"
    );
    assert!(
        exited.elapsed() < Duration::from_secs(10),
        "checked well within the session"
    );
    // Everything printed after the 30th line, read to the end of the
    // pipe: the reader ends when the exited process's stdout closes.
    let mut rest = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => rest.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("stdout still open after exit"),
        }
    }
    reader.join().expect("stdout reader");
    assert!(rest.is_empty(), "printed more than was produced: {rest:?}");
    let lines = parse_lines(&printed);
    assert_eq!(
        committed(&addr, &group, &topic, 3),
        expected_commits(&lines, 3)
    );
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
}

#[test]
fn auto_commit_stopping_mid_batch_commits_only_what_was_printed() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "midbatch", 1);
    let group = unique("midbatch-group");
    produce_lines(&addr, &topic, &keyed_lines(50));
    // One partition: the 50 records arrive in one or few batches and `-c 7`
    // stops after the 7th, mid-batch; close() commits (auto mode) offset 7.
    let o = run(
        &[
            "consume",
            "-b",
            &addr,
            "-t",
            &topic,
            "-g",
            &group,
            "-c",
            "7",
            "-f",
            "%p %o %s\\n",
            "-X",
            SESSION,
        ],
        b"",
        Duration::from_secs(60),
    );
    assert_success(&o, "consume");
    let lines = parse_lines(&stdout(&o));
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(
        committed(&addr, &group, &topic, 1),
        BTreeMap::from([(0, 7)])
    );
}

/// Whether `topic` exists, by a Metadata request that does not create it.
fn topic_exists(addr: &str, topic: &str) -> bool {
    let mut conn = RawConnection::connect(addr).expect("connect");
    let version = conn
        .version_for::<MetadataRequest>()
        .expect("Metadata version");
    assert!(version >= 4, "allow_auto_topic_creation needs v4+");
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(KString::from(topic)),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let response = conn.send(version, &request).expect("Metadata");
    response.topics.iter().any(|t| t.error_code == 0)
}

#[test]
fn a_missing_topic_is_an_error_and_is_not_created() {
    // Kafka creates topics on Metadata by default
    // (auto.create.topics.enable): the consumer must not ask it to.
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = unique("no-such-topic");
        // Twice: had the first run auto-created the topic, the second would
        // find it and exit 0 at its empty end instead of failing.
        for _ in 0..2 {
            let o = run(
                &["consume", "-b", &addr, "-t", &topic, "-e"],
                b"",
                Duration::from_secs(30),
            );
            assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.contains(&format!("topic {topic}"))
                    && err.contains("UNKNOWN_TOPIC_OR_PARTITION"),
                "{name}: {err}"
            );
        }
        if broker.kind().is_real_kafka() {
            assert!(!topic_exists(&addr, &topic), "{name}: {topic} was created");
        }
    }
}

#[test]
fn json_output_is_one_object_per_record() {
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = topic_on(broker.as_ref(), "js", 1);
        produce_lines(&addr, &topic, "k:say \"hi\"\nonly-value\n");
        let o = run(
            &["consume", "-b", &addr, "-t", &topic, "-e", "--json"],
            b"",
            Duration::from_secs(60),
        );
        assert_success(&o, &format!("{name}: consume --json"));
        let out = String::from_utf8(o.stdout).expect("utf-8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{name}: {out}");
        let start = format!(r#"{{"topic":"{topic}","partition":0,"offset":0,"timestamp":"#);
        assert!(
            lines[0].starts_with(&start)
                && lines[0].ends_with(r#","key":"k","value":"say \"hi\"","headers":[]}"#),
            "{name}: {}",
            lines[0]
        );
        assert!(
            lines[1].contains(r#""offset":1,"#)
                && lines[1].ends_with(r#","key":null,"value":"only-value","headers":[]}"#),
            "{name}: {}",
            lines[1]
        );
        let both = run(
            &[
                "consume", "-b", &addr, "-t", &topic, "-e", "--json", "-f", "%s",
            ],
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(
            both.status.code(),
            Some(2),
            "{name}: --json and -f conflict"
        );
    }
}
