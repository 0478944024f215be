//! `krust metadata` and `krust topics`, checked against what the test
//! created: `--json` parsed back, the tables read for their cells, and the
//! per-topic errors (an existing topic, an unknown one) as one line each
//! with exit code 1.
//!
//! On Kafka 4.4.0 and Tansu (both have CreateTopics and DeleteTopics);
//! the broker ids and controller are checked on Kafka, whose node id the
//! fixture knows.

use serde_json::Value;

use super::*;

/// Run `krust args` and parse each stdout line as JSON.
fn json_lines(args: &[&str]) -> Vec<Value> {
    let o = run(args, b"", Duration::from_secs(60));
    assert_success(&o, &args.join(" "));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The port of `host:port`.
fn port(addr: &str) -> i64 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("host:port")
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|i| i.as_i64().expect("an id"))
        .collect()
}

#[test]
fn metadata_json_is_what_the_cluster_holds() {
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = topic_on(broker.as_ref(), "meta", 4);
        let m = json_lines(&["metadata", "-b", &addr, "-t", &topic, "--json"]);
        assert_eq!(m.len(), 1, "{name}: one object: {m:?}");
        let m = &m[0];
        let brokers = m["brokers"].as_array().expect("brokers");
        assert_eq!(brokers.len(), 1, "{name}: {m}");
        let b = &brokers[0];
        assert_eq!(b["port"].as_i64(), Some(port(&addr)), "{name}: {b}");
        assert_eq!(b["host"], "127.0.0.1", "{name}: {b}");
        let id = b["id"].as_i64().expect("broker id");
        if broker.kind().is_real_kafka() {
            let node = kafka().as_cluster().node_ids()[0];
            assert_eq!(id, i64::from(node), "{name}: {b}");
            assert_eq!(m["controller"].as_i64(), Some(id), "{name}: {m}");
            assert_eq!(b["controller"], true, "{name}: {b}");
            assert!(m["cluster_id"].is_string(), "{name}: {m}");
        }
        let topics = m["topics"].as_array().expect("topics");
        assert_eq!(topics.len(), 1, "{name}: -t limits: {m}");
        let t = &topics[0];
        assert_eq!(t["name"], topic.as_str(), "{name}");
        assert_eq!(t["internal"], false, "{name}");
        assert!(t["error"].is_null(), "{name}: {t}");
        let partitions = t["partitions"].as_array().expect("partitions");
        let indexes: Vec<i64> = partitions
            .iter()
            .map(|p| p["partition"].as_i64().expect("index"))
            .collect();
        assert_eq!(indexes, [0, 1, 2, 3], "{name}: {t}");
        for p in partitions {
            assert_eq!(p["leader"].as_i64(), Some(id), "{name}: leader set: {p}");
            assert_eq!(ids(&p["replicas"]), [id], "{name}: {p}");
            assert_eq!(ids(&p["isr"]), [id], "{name}: {p}");
            assert_eq!(ids(&p["offline_replicas"]), Vec::<i64>::new(), "{name}");
            assert!(p["error"].is_null(), "{name}: {p}");
        }

        // Without -t every topic is there, this one with its 4 partitions.
        let all = json_lines(&["metadata", "-b", &addr, "--json"]);
        let listed: Vec<&Value> = all[0]["topics"]
            .as_array()
            .expect("topics")
            .iter()
            .filter(|t| t["name"] == topic.as_str())
            .collect();
        assert_eq!(listed.len(), 1, "{name}");
        assert_eq!(listed[0]["partitions"].as_array().map(Vec::len), Some(4));

        // The table: the broker with its address, a row per partition.
        let o = run(
            &["metadata", "-b", &addr, "-t", &topic],
            b"",
            Duration::from_secs(60),
        );
        assert_success(&o, "metadata");
        let out = stdout(&o);
        let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let broker_row = out
            .lines()
            .map(cells)
            .find(|c| c.get(1).map(String::as_str) == Some(addr.as_str()))
            .unwrap_or_else(|| panic!("{name}: no broker row for {addr}:\n{out}"));
        assert_eq!(broker_row[0], id.to_string(), "{name}: {out}");
        let rows: Vec<Vec<String>> = out
            .lines()
            .map(cells)
            .filter(|c| c.first() == Some(&topic))
            .collect();
        assert_eq!(rows.len(), 4, "{name}:\n{out}");
        for (i, r) in rows.iter().enumerate() {
            let id = id.to_string();
            let want = [
                topic.clone(),
                i.to_string(),
                id.clone(),
                id.clone(),
                id,
                "-".into(),
            ];
            assert_eq!(r[..], want[..], "{name}:\n{out}");
        }

        let missing = unique("meta-missing");
        let o = run(
            &["metadata", "-b", &addr, "-t", &missing],
            b"",
            Duration::from_secs(60),
        );
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&missing) && err.contains("UNKNOWN_TOPIC_OR_PARTITION"),
            "{name}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
}

/// The `topics list --json` entry of `topic`, if listed.
fn listed(addr: &str, topic: &str, internal: bool) -> Option<Value> {
    let mut args = vec!["topics", "list", "-b", addr, "--json"];
    if internal {
        args.push("--internal");
    }
    json_lines(&args).into_iter().find(|t| t["name"] == topic)
}

#[test]
fn topics_create_list_describe_delete_round_trip() {
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = unique("topics-rt");
        let create = |extra: &[&str]| {
            let mut args = vec!["topics", "create", "-b", &addr, &topic];
            args.extend(extra);
            run(&args, b"", Duration::from_secs(60))
        };
        let o = create(&[
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=3600000",
        ]);
        assert_success(&o, &format!("{name}: create"));
        assert_eq!(
            stdout(&o),
            format!("created topic {topic} (3 partitions)\n"),
            "{name}"
        );

        // Again: refused, naming the topic and the code, in one line.
        let o = create(&["--partitions", "3"]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("krust: error: ")
                && err.contains(&topic)
                && err.contains("TOPIC_ALREADY_EXISTS"),
            "{name}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert_eq!(stdout(&o), "", "{name}");

        let entry =
            listed(&addr, &topic, false).unwrap_or_else(|| panic!("{name}: {topic} not listed"));
        assert_eq!(
            entry,
            serde_json::json!({"name": topic, "partitions": 3, "replication_factor": 1, "internal": false}),
            "{name}"
        );
        let o = run(
            &["topics", "list", "-b", &addr],
            b"",
            Duration::from_secs(60),
        );
        assert_success(&o, "list");
        let out = stdout(&o);
        assert_eq!(
            out.lines()
                .next()
                .map(|l| l.split_whitespace().collect::<Vec<_>>()),
            Some(vec!["TOPIC", "PARTITIONS", "REPLICATION"]),
            "{name}"
        );
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [topic.as_str(), "3", "1"]),
            "{name}:\n{out}"
        );

        // A new topic's leaders may take a moment to reach the broker's
        // metadata (as the admin tests wait for them too).
        let started = Instant::now();
        let described = loop {
            let d = json_lines(&["topics", "describe", "-b", &addr, &topic, "--json"]);
            let led = d
                .iter()
                .flat_map(|t| t["partitions"].as_array().into_iter().flatten());
            if led.clone().count() == 3 && led.clone().all(|p| p["leader"].is_i64())
                || started.elapsed() > Duration::from_secs(15)
            {
                break d;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(described.len(), 1, "{name}");
        let d = &described[0];
        assert_eq!(d["name"], topic.as_str());
        let partitions = d["partitions"].as_array().expect("partitions");
        assert_eq!(partitions.len(), 3, "{name}: {d}");
        for p in partitions {
            let leader = p["leader"]
                .as_i64()
                .unwrap_or_else(|| panic!("{name}: no leader: {p}"));
            assert_eq!(ids(&p["replicas"]), [leader], "{name}: {p}");
            assert_eq!(ids(&p["isr"]), [leader], "{name}: {p}");
        }
        let o = run(
            &["topics", "describe", "-b", &addr, &topic],
            b"",
            Duration::from_secs(60),
        );
        assert_success(&o, "describe");
        let out = stdout(&o);
        assert!(
            out.lines().any(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                c.len() == 5 && c[0] == topic && c[2] == "3" && c[3] == "1" && c[4] == "no"
            }),
            "{name}: summary row:\n{out}"
        );
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with(&format!("{topic} ")))
                .count(),
            4,
            "{name}: summary and 3 partitions:\n{out}"
        );

        // A batch with one existing topic: the other is still created.
        let other = unique("topics-rt-other");
        let o = run(
            &[
                "topics",
                "create",
                "-b",
                &addr,
                &other,
                &topic,
                "--partitions",
                "1",
            ],
            b"",
            Duration::from_secs(60),
        );
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert_eq!(
            stdout(&o),
            format!("created topic {other} (1 partition)\n"),
            "{name}"
        );
        assert_eq!(stderr(&o).lines().count(), 1, "{name}: {}", stderr(&o));

        let o = run(
            &["topics", "delete", "-b", &addr, &topic, &other],
            b"",
            Duration::from_secs(60),
        );
        assert_success(&o, &format!("{name}: delete"));
        assert_eq!(
            stdout(&o),
            format!("deleted topic {topic}\ndeleted topic {other}\n"),
            "{name}"
        );
        let started = Instant::now();
        while listed(&addr, &topic, true).is_some() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{name}: still listed after delete"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let o = run(
            &["topics", "delete", "-b", &addr, &topic],
            b"",
            Duration::from_secs(60),
        );
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&topic) && err.contains("UNKNOWN_TOPIC_OR_PARTITION"),
            "{name}: {err}"
        );
        let o = run(
            &["topics", "describe", "-b", &addr, &topic],
            b"",
            Duration::from_secs(60),
        );
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("UNKNOWN_TOPIC_OR_PARTITION"),
            "{name}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn internal_topics_are_listed_only_with_internal() {
    // A group's commit makes Kafka create __consumer_offsets.
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "internal", 1);
    produce_lines(&addr, &topic, "k:v\n");
    let group = unique("internal");
    let o = run(
        &[
            "consume", "-b", &addr, "-t", &topic, "-g", &group, "--commit", "each", "-c", "1",
            "-X", SESSION,
        ],
        b"",
        Duration::from_secs(60),
    );
    assert_success(&o, "consume with a group");
    let offsets = listed(&addr, "__consumer_offsets", true).expect("listed with --internal");
    assert_eq!(offsets["internal"], true, "{offsets}");
    assert!(
        listed(&addr, "__consumer_offsets", false).is_none(),
        "hidden without --internal"
    );
    assert!(listed(&addr, &topic, false).is_some());
}

#[test]
fn a_bad_topic_config_is_the_broker_s_refusal() {
    let addr = kafka().addr();
    let topic = unique("bad-config");
    let o = run(
        &[
            "topics",
            "create",
            "-b",
            &addr,
            &topic,
            "--partitions",
            "1",
            "--config",
            "retention.ms=soon",
        ],
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&topic) && err.contains("INVALID_CONFIG"),
        "{err}"
    );
    assert!(listed(&addr, &topic, false).is_none(), "not created");
}
