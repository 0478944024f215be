//! `-v` / `-vv` and `RUST_LOG`: the library's tracing events on stderr,
//! nothing without them, and never a SASL password, right or wrong, even
//! at debug level over a SASL_SSL listener (Kafka 4.4.0).

use krust_testkit::{SASL_USER, SecureKafka};

use super::secure::sasl_ssl;
use super::*;

/// `krust args` with `RUST_LOG` set to `rust_log` (unset for `None`).
fn run_logged(args: &[&str], rust_log: Option<&str>) -> Output {
    let mut cmd = krust(args);
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    run_cmd(cmd, b"", Duration::from_secs(60), args)
}

/// The lines of a tracing event at `level` (the fmt layer writes the
/// level after the timestamp).
fn at_level<'a>(err: &'a str, level: &str) -> Vec<&'a str> {
    let tag = format!(" {level} ");
    err.lines().filter(|l| l.contains(&tag)).collect()
}

#[test]
fn v_and_vv_log_the_library_s_events_and_nothing_without_them() {
    let addr = kafka().addr();
    let quiet = run_logged(&["metadata", "-b", &addr], None);
    assert_success(&quiet, "metadata");
    assert_eq!(stderr(&quiet), "", "no subscriber without -v");

    let vv = run_logged(&["-vv", "metadata", "-b", &addr], None);
    assert_success(&vv, "-vv metadata");
    let err = stderr(&vv);
    let debug = at_level(&err, "DEBUG");
    assert!(
        debug.iter().any(|l| l.contains("krust_net")),
        "debug events of the connection layer:\n{err}"
    );
    // stdout is still only the output.
    assert_eq!(stdout(&vv), stdout(&quiet), "-vv changes stderr only");

    // The flag also works after the subcommand; -v stops at info.
    let v = run_logged(&["metadata", "-b", &addr, "-v"], None);
    assert_success(&v, "metadata -v");
    assert!(at_level(&stderr(&v), "DEBUG").is_empty(), "{}", stderr(&v));

    // RUST_LOG alone turns it on and chooses the targets.
    let env = run_logged(&["metadata", "-b", &addr], Some("krust_net=debug"));
    assert_success(&env, "RUST_LOG=krust_net=debug");
    let err = stderr(&env);
    let debug = at_level(&err, "DEBUG");
    assert!(!debug.is_empty(), "{err}");
    assert!(debug.iter().all(|l| l.contains("krust_net")), "{err}");

    // RUST_LOG wins over -vv: warn shows no debug events.
    let warn = run_logged(&["-vv", "metadata", "-b", &addr], Some("warn"));
    assert_success(&warn, "RUST_LOG=warn -vv");
    assert!(
        at_level(&stderr(&warn), "DEBUG").is_empty(),
        "{}",
        stderr(&warn)
    );

    let bad = run_logged(&["metadata", "-b", &addr], Some("krust=loud"));
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("RUST_LOG"), "{}", stderr(&bad));
}

#[test]
fn vv_never_prints_the_sasl_password() {
    let kafka = SecureKafka::shared();
    let addr = kafka.addr("SASL_SSL");
    let topic = unique("clisec-log");
    kafka.kafka().as_cluster().create_topic(&topic, 1).unwrap();
    let (_, password) = SASL_USER;
    for (password, ok) in [(password, true), ("wrong-pass-7c1e", false)] {
        let x = sasl_ssl(kafka, password);
        let x: Vec<&str> = x.iter().map(String::as_str).collect();
        for command in [
            vec!["-vv", "metadata", "-b", &addr],
            vec![
                "-vv", "consume", "-b", &addr, "-t", &topic, "--from", "earliest", "-e",
            ],
        ] {
            let mut args = command.clone();
            args.extend(&x);
            let o = run_logged(&args, None);
            let err = stderr(&o);
            assert_eq!(o.status.success(), ok, "{command:?} ({password}): {err}");
            assert!(
                !at_level(&err, "DEBUG").is_empty(),
                "{command:?}: debug events:\n{err}"
            );
            // The exchange that carries the password is in the log.
            assert!(err.contains("api=SaslAuthenticate"), "{command:?}: {err}");
            assert!(
                !err.contains(password) && !stdout(&o).contains(password),
                "{command:?}: the password is printed:\n{err}"
            );
            if !ok {
                let last = err.lines().last().unwrap_or_default();
                assert!(last.starts_with("krust: error: "), "{command:?}: {err}");
            }
        }
    }
}
