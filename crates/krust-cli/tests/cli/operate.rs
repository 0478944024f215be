//! `krust groups` and `krust offsets` against Kafka's own
//! `kafka-consumer-groups.sh` on Apache Kafka 4.4.0: describe agrees
//! partition by partition, every reset target plans what the tool's
//! `--dry-run` plans, `--execute` leaves the offsets there, and a group
//! with members is refused naming them.

use std::collections::BTreeSet;

use krust_testkit::CONSUMER_GROUP_COMMAND;
use serde_json::Value;

use super::*;

/// A topic's partition and an offset.
type Offsets = BTreeMap<(String, i32), i64>;

/// `kafka-consumer-groups.sh ARGS` on the shared Kafka node.
fn tool(args: &[&str]) -> String {
    kafka()
        .tool(CONSUMER_GROUP_COMMAND, args)
        .unwrap_or_else(|e| panic!("kafka-consumer-groups {args:?}: {e}"))
}

/// The rows of a table the tool printed whose header holds `marker`, by
/// column name.
fn tool_rows(out: &str, marker: &str) -> Vec<BTreeMap<String, String>> {
    let mut header: Option<Vec<&str>> = None;
    let mut rows = Vec::new();
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.contains(&marker) {
            header = Some(cols);
            continue;
        }
        match &header {
            Some(h) if cols.len() == h.len() => rows.push(
                h.iter()
                    .zip(&cols)
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            _ => {}
        }
    }
    rows
}

/// The tool's `--reset-offsets ... --dry-run` plan.
fn tool_plan(group: &str, scope_and_target: &[&str]) -> Offsets {
    let mut args = vec!["--reset-offsets", "--group", group, "--dry-run"];
    args.extend_from_slice(scope_and_target);
    tool_rows(&tool(&args), "NEW-OFFSET")
        .into_iter()
        .map(|r| {
            let p = r["PARTITION"].parse().expect("partition");
            let o = r["NEW-OFFSET"].parse().expect("offset");
            ((r["TOPIC"].clone(), p), o)
        })
        .collect()
}

/// The offsets of `topic,partition,offset` lines.
fn csv(out: &str) -> Offsets {
    out.lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            assert_eq!(c.len(), 3, "a CSV line: {l}");
            (
                (c[0].to_owned(), c[1].parse().expect("p")),
                c[2].parse().expect("o"),
            )
        })
        .collect()
}

/// `krust offsets reset -b ADDR -g GROUP ARGS...`.
pub(super) fn reset(addr: &str, group: &str, args: &[&str]) -> Output {
    let mut all = vec!["offsets", "reset", "-b", addr, "-g", group];
    all.extend_from_slice(args);
    run(&all, b"", Duration::from_secs(60))
}

/// `krust offsets reset` with `scope_and_target`, as CSV (`--export`).
fn krust_plan(addr: &str, group: &str, scope_and_target: &[&str]) -> Offsets {
    let args = [scope_and_target, &["--export"]].concat();
    let o = reset(addr, group, &args);
    assert_success(&o, &format!("krust offsets reset {args:?}"));
    csv(&stdout(&o))
}

/// `krust groups describe --json` of one group.
pub(super) fn describe_json(addr: &str, group: &str) -> Value {
    let o = run(
        &["groups", "describe", "-b", addr, group, "--json"],
        b"",
        Duration::from_secs(60),
    );
    assert_success(&o, "groups describe --json");
    let all: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    all[0].clone()
}

/// The group's partitions of `topic` in `describe --json`, by partition.
pub(super) fn json_partitions(g: &Value, topic: &str) -> BTreeMap<i32, Value> {
    g["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .filter(|p| p["topic"] == topic)
        .map(|p| {
            (
                i32::try_from(p["partition"].as_i64().expect("p")).expect("i32"),
                p.clone(),
            )
        })
        .collect()
}

/// `topic` with 10, 20 and 30 records on partitions 0, 1 and 2, then
/// (after a pause) 5 more on each; returns the time between the two
/// batches in ms since the epoch.
fn two_batches(addr: &str, topic: &str) -> i64 {
    for p in 0..3 {
        let lines: String = (0..10 * (p + 1)).map(|i| format!("a-{p}-{i}\n")).collect();
        let ps = p.to_string();
        let o = run(
            &["produce", "-b", addr, "-t", topic, "-p", &ps],
            lines.as_bytes(),
            Duration::from_secs(60),
        );
        assert_success(&o, "produce");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let between = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    std::thread::sleep(Duration::from_millis(1500));
    for p in 0..3 {
        let lines: String = (0..5).map(|i| format!("b-{p}-{i}\n")).collect();
        let ps = p.to_string();
        let o = run(
            &["produce", "-b", addr, "-t", topic, "-p", &ps],
            lines.as_bytes(),
            Duration::from_secs(60),
        );
        assert_success(&o, "produce");
    }
    i64::try_from(between).expect("ms fit i64")
}

/// A UTC date-time with milliseconds, as both tools read it.
fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[test]
fn the_iso_helper_writes_utc() {
    assert_eq!(iso(1_796_292_900_250), "2026-12-03T10:15:00.250Z");
    assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
}

/// Every reset target plans what `kafka-consumer-groups.sh --reset-offsets
/// --dry-run` plans for the same group, `--execute` leaves the group's
/// offsets at the plan, and `describe --json` agrees with the tool's
/// `--describe` partition by partition (committed, log end, lag).
#[test]
fn reset_plans_and_describe_agree_with_kafka_consumer_groups() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "reset", 3);
    let group = unique("resetters");
    let between = two_batches(&addr, &topic);

    // Offsets set from a file (one beyond the log end, clamped), applied.
    let file = std::env::temp_dir().join(format!("{group}.csv"));
    std::fs::write(&file, format!("{topic},0,3\n{topic},1,99\n{topic},2,1\n")).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let from_file = ["--from-file", path];
    let o = reset(&addr, &group, &from_file);
    assert_success(&o, "dry run from a file");
    assert!(
        stderr(&o).contains("dry run: nothing changed"),
        "{}",
        stderr(&o)
    );
    let table = stdout(&o);
    assert!(table.contains("CURRENT"), "{table}");
    // Nothing committed yet: the plan says it sets first offsets.
    assert!(table.contains("sets a first offset"), "{table}");
    let o = reset(&addr, &group, &[&from_file[..], &["--execute"]].concat());
    assert_success(&o, "--execute from a file");
    let want = |a: i64, b: i64, c: i64| -> Offsets {
        [(0, a), (1, b), (2, c)]
            .into_iter()
            .map(|(p, o)| ((topic.clone(), p), o))
            .collect()
    };
    assert_eq!(
        committed(&addr, &group, &topic, 3)
            .into_iter()
            .map(|(p, o)| ((topic.clone(), p), o))
            .collect::<Offsets>(),
        want(3, 25, 1),
        "--execute left the plan (99 clamped to the log end 25)"
    );

    // Describe: the same committed offsets, log ends and lags as the tool.
    let g = describe_json(&addr, &group);
    let ours = json_partitions(&g, &topic);
    let theirs = tool_rows(&tool(&["--describe", "--group", &group]), "CURRENT-OFFSET");
    assert_eq!(theirs.len(), 3, "the tool's rows: {theirs:?}");
    for row in &theirs {
        let p: i32 = row["PARTITION"].parse().expect("partition");
        let mine = &ours[&p];
        for (col, field) in [
            ("CURRENT-OFFSET", "committed"),
            ("LOG-END-OFFSET", "log_end"),
            ("LAG", "lag"),
        ] {
            assert_eq!(
                mine[field].to_string(),
                row[col],
                "partition {p}: {field} vs {col}"
            );
        }
    }
    assert_eq!(g["state"], "Empty", "{g}");
    // 15 - 3, 25 - 25 and 35 - 1.
    assert_eq!(g["total_lag"], 46, "{g}");
    // Record 3 of partition 0 was written seconds ago; partition 1 is
    // caught up.
    let age = ours[&0]["lag_ms"].as_i64().expect("lag_ms of partition 0");
    assert!((1000..120_000).contains(&age), "{age}");
    assert_eq!(ours[&1]["lag_ms"], 0);

    // Every target, against the tool's dry run.
    let ts = iso(between);
    let targets: Vec<Vec<&str>> = vec![
        vec!["--to-earliest"],
        vec!["--to-latest"],
        vec!["--to-offset", "12"],
        vec!["--shift-by", "-2"],
        vec!["--shift-by", "7"],
        vec!["--to-datetime", &ts],
        vec!["--by-duration", "PT1H"],
        vec!["--to-current"],
    ];
    let mut scopes: Vec<Vec<String>> = vec![
        vec!["--topic".into(), topic.clone()],
        vec!["--all-topics".into()],
        vec!["--topic".into(), format!("{topic}:0,2")],
    ];
    let mut seen = BTreeSet::new();
    for (i, target) in targets.iter().enumerate() {
        // Each scope form, in turn.
        let scope = scopes[i % scopes.len()].clone();
        let mut args: Vec<&str> = scope.iter().map(String::as_str).collect();
        args.extend_from_slice(target);
        let mine = krust_plan(&addr, &group, &args);
        let theirs = tool_plan(&group, &args);
        assert_eq!(mine, theirs, "{args:?}");
        assert!(!mine.is_empty(), "{args:?}");
        seen.insert(format!("{mine:?}"));
    }
    // The targets plan different things (the comparison is not of two
    // empty or constant answers): earliest, latest, to-offset, the two
    // shifts and the time are all different plans.
    assert!(seen.len() >= 6, "{seen:?}");
    assert_eq!(
        krust_plan(&addr, &group, &["--topic", &topic, "--to-datetime", &ts]),
        want(10, 20, 30),
        "the first record after the pause"
    );
    scopes.clear();

    // A plan exported and read back is the same plan.
    let exported = {
        let o = reset(
            &addr,
            &group,
            &["--topic", &topic, "--shift-by", "-1", "--export"],
        );
        assert_success(&o, "--export");
        stdout(&o)
    };
    std::fs::write(&file, &exported).expect("write");
    assert_eq!(krust_plan(&addr, &group, &from_file), csv(&exported));
    assert_eq!(tool_plan(&group, &from_file), csv(&exported));
    let _ = std::fs::remove_file(&file);
}

/// With a member in the group: `describe` names it as the tool does,
/// `reset --execute` is refused naming it (a dry run warns), `offsets
/// delete` is refused by the broker; once it left, both work.
#[test]
fn a_group_with_members_is_described_and_protected() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "members", 3);
    let group = unique("protected");
    let client = unique("op-client");
    produce_lines(&addr, &topic, &keyed_lines(30));
    let client_prop = format!("client.id={client}");
    let child = krust(&[
        "consume",
        "-b",
        &addr,
        "-t",
        &topic,
        "-g",
        &group,
        "--commit",
        "each",
        "-X",
        SESSION,
        "-X",
        &client_prop,
        "-f",
        "%p %o\\n",
    ])
    .spawn()
    .expect("spawn consume");
    // Until the member holds every partition and committed them all.
    let deadline = Instant::now() + Duration::from_secs(60);
    let g = loop {
        let g = describe_json(&addr, &group);
        let parts = json_partitions(&g, &topic);
        let done = parts.len() == 3
            && parts
                .values()
                .all(|p| p["lag"] == 0 && p["client_id"] == client.as_str());
        if done {
            break g;
        }
        assert!(Instant::now() < deadline, "never caught up: {g}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(g["state"], "Stable", "{g}");
    let member = g["members"][0]["member_id"]
        .as_str()
        .expect("member id")
        .to_owned();
    let theirs = tool_rows(&tool(&["--describe", "--group", &group]), "CURRENT-OFFSET");
    let ours = json_partitions(&g, &topic);
    assert_eq!(theirs.len(), 3, "{theirs:?}");
    for row in &theirs {
        let p: i32 = row["PARTITION"].parse().expect("partition");
        assert_eq!(row["CONSUMER-ID"], member, "partition {p}");
        assert_eq!(row["CLIENT-ID"], client, "partition {p}");
        assert_eq!(ours[&p]["host"].as_str(), Some(row["HOST"].as_str()));
        assert_eq!(ours[&p]["committed"].to_string(), row["CURRENT-OFFSET"]);
    }
    // The text form: the table, the member, the summary line.
    let o = run(
        &["groups", "describe", "-b", &addr, &group, "--members"],
        b"",
        Duration::from_secs(60),
    );
    assert_success(&o, "groups describe --members");
    let text = stdout(&o);
    assert!(
        text.contains("LAG-TIME") && text.contains("#PARTITIONS"),
        "{text}"
    );
    assert!(
        text.contains("total lag 0, max lag in time 0s, state Stable, 1 member"),
        "{text}"
    );
    // Listed, and filtered by state.
    let listed = |extra: &[&str]| {
        let mut args = vec!["groups", "list", "-b", &addr];
        args.extend_from_slice(extra);
        let o = run(&args, b"", Duration::from_secs(60));
        assert_success(&o, "groups list");
        stdout(&o)
    };
    assert!(listed(&["--state", "stable"]).contains(&group));
    assert!(!listed(&["--state", "Empty"]).contains(&group));

    // Reset refused naming the member; a dry run warns and exits 0.
    let to_earliest = ["--topic", &topic, "--to-earliest"];
    let execute = [&to_earliest[..], &["--execute"]].concat();
    let o = reset(&addr, &group, &execute);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("is not empty") && e.contains(&member) && e.contains(&client),
        "{e}"
    );
    let o = reset(&addr, &group, &to_earliest);
    assert_success(&o, "dry run with members");
    assert!(
        stderr(&o).contains("--execute would be refused"),
        "{}",
        stderr(&o)
    );
    // Deleting offsets of a topic it consumes: the broker's refusal.
    let delete = [
        "offsets", "delete", "-b", &addr, "-g", &group, "--topic", &topic,
    ];
    let o = run(&delete, b"", Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("GROUP_SUBSCRIBED_TO_TOPIC"),
        "{}",
        stdout(&o)
    );

    // The member leaves (SIGINT); now the reset applies, then the delete.
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGINT).expect("SIGINT");
    let o = wait_output(child, Duration::from_secs(30), "consume after SIGINT");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = reset(&addr, &group, &execute);
    assert_success(&o, "reset once empty");
    assert_eq!(
        committed(&addr, &group, &topic, 3),
        BTreeMap::from([(0, 0), (1, 0), (2, 0)])
    );
    let o = run(&delete, b"", Duration::from_secs(60));
    assert_success(&o, "delete once empty");
    assert_eq!(stdout(&o).matches("deleted").count(), 3, "{}", stdout(&o));
    assert_eq!(
        committed(&addr, &group, &topic, 3),
        BTreeMap::from([(0, -1), (1, -1), (2, -1)])
    );
}
