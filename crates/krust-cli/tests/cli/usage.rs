//! Usage and failure paths: bad properties, unreachable brokers, failed
//! deliveries, flags that need a group.

use super::*;

#[test]
fn produce_reports_a_failed_delivery_and_exits_non_zero() {
    for broker in brokers() {
        let name = broker.name();
        let addr = broker.bootstrap();
        let topic = topic_on(broker.as_ref(), "two", 2);
        // Partition 7 does not exist: refused before sending, nothing delivered.
        let o = run(
            &[
                "produce",
                "-b",
                &addr,
                "-t",
                &topic,
                "-p",
                "7",
                "-X",
                "max.block.ms=5000",
            ],
            b"a\nb\n",
            Duration::from_secs(30),
        );
        assert!(!o.status.success(), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("partition 7"), "{name}: {err}");
        assert!(
            err.contains(&format!("produced 0 records to {topic}, 1 failed")),
            "{name}: {err}"
        );
    }
}

#[test]
fn bad_properties_name_the_key_and_value() {
    for (sub, property, key, value) in [
        ("produce", "no.such.key=1", "no.such.key", "`1`"),
        ("consume", "no.such.key=1", "no.such.key", "`1`"),
        ("produce", "linger.ms=soon", "linger.ms", "soon"),
        (
            "consume",
            "session.timeout.ms=soon",
            "session.timeout.ms",
            "soon",
        ),
    ] {
        // Refused before any connection: the broker address is never tried.
        let o = run(
            &[sub, "-b", "127.0.0.1:1", "-t", "t", "-X", property],
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(o.status.code(), Some(1), "{sub} -X {property}");
        let err = stderr(&o);
        assert!(
            err.contains(key) && err.contains(value) && !err.contains("127.0.0.1:1"),
            "{sub} -X {property}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

/// How long after its bootstrap timeout a command may take to give up: the
/// process starting and printing, and the last refused connect. A command
/// that ignored the setting (the default is 30 s) or retried for 10 s
/// fails this.
const GIVE_UP_SLACK: Duration = Duration::from_millis(1500);

#[test]
fn unreachable_broker_gives_up_within_the_bootstrap_timeout_naming_it() {
    // The producer's bootstrap is bounded by max.block.ms, the consumer's
    // by bootstrap.timeout.ms (both at most 30 s by default). Port 1
    // refuses at once, so every attempt fails fast and the command is
    // retrying until its timeout.
    for (sub, key) in [
        ("produce", "max.block.ms"),
        ("consume", "bootstrap.timeout.ms"),
    ] {
        for timeout_ms in [2000u64, 4000] {
            let bound = format!("{key}={timeout_ms}");
            let timeout = Duration::from_millis(timeout_ms);
            let started = Instant::now();
            let o = run(
                &[sub, "-b", "127.0.0.1:1", "-t", "t", "-X", &bound],
                b"x\n",
                Duration::from_secs(20),
            );
            let took = started.elapsed();
            assert!(!o.status.success(), "{sub} {bound}");
            let err = stderr(&o);
            assert!(err.contains("127.0.0.1:1"), "{sub} {bound}: {err}");
            assert_eq!(err.lines().count(), 1, "{sub} {bound}: one line: {err}");
            assert!(
                took >= timeout * 3 / 4 && took < timeout + GIVE_UP_SLACK,
                "{sub} {bound}: gave up after {took:?}, not within {timeout:?} (+{GIVE_UP_SLACK:?})"
            );
        }
    }
}

#[test]
fn commit_modes_other_than_none_need_a_group() {
    for mode in ["each", "auto"] {
        let o = run(
            &["consume", "-b", "127.0.0.1:1", "-t", "t", "--commit", mode],
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(o.status.code(), Some(2), "{mode}: {}", stderr(&o));
        assert!(stderr(&o).contains("needs a group"), "{}", stderr(&o));
    }
}

/// Every command's `--help` shows examples, and a usage error is exit 2.
#[test]
fn every_command_has_help_with_examples() {
    for cmd in [
        &["produce"][..],
        &["consume"],
        &["metadata"],
        &["topics", "list"],
        &["topics", "describe"],
        &["topics", "create"],
        &["topics", "delete"],
        &["groups", "list"],
        &["groups", "describe"],
        &["offsets", "reset"],
        &["offsets", "delete"],
        &["lag", "watch"],
        &["lag", "serve"],
    ] {
        let args: Vec<&str> = cmd.iter().copied().chain(["--help"]).collect();
        let o = run(&args, b"", Duration::from_secs(10));
        assert_success(&o, &args.join(" "));
        let help = stdout(&o);
        assert!(help.contains("Examples:"), "{}:\n{help}", cmd.join(" "));
        assert!(help.contains(&format!("krust {}", cmd.join(" "))), "{help}");
    }
    // Two reset targets at once: a usage error naming both.
    let o = run(
        &[
            "offsets",
            "reset",
            "-b",
            "127.0.0.1:1",
            "-g",
            "g",
            "--all-topics",
            "--to-earliest",
            "--to-latest",
        ],
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--to-latest"), "{}", stderr(&o));
}
