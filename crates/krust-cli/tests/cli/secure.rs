//! The CLI through a listener that enforces SASL_SSL, configured by `-X`
//! as a user pastes it; and a wrong password as one line on stderr with
//! exit code 1, without the password.

use super::*;
use krust_testkit::{SASL_USER, SecureKafka};

pub(super) fn sasl_ssl(kafka: &SecureKafka, password: &str) -> Vec<String> {
    let (user, _) = SASL_USER;
    [
        "security.protocol=SASL_SSL".to_owned(),
        "sasl.mechanism=SCRAM-SHA-256".to_owned(),
        format!("sasl.username={user}"),
        format!("sasl.password={password}"),
        format!("ssl.ca.location={}", kafka.pki().ca().display()),
    ]
    .into_iter()
    .flat_map(|p| ["-X".to_owned(), p])
    .collect()
}

#[test]
fn produce_and_consume_a_group_over_sasl_ssl() {
    let kafka = SecureKafka::shared();
    let addr = kafka.addr("SASL_SSL");
    let topic = unique("clisec");
    let group = unique("clisec");
    kafka.kafka().as_cluster().create_topic(&topic, 2).unwrap();
    let x = sasl_ssl(kafka, SASL_USER.1);
    let x: Vec<&str> = x.iter().map(String::as_str).collect();

    let mut args = vec!["produce", "-b", &addr, "-t", &topic, "-K", ":"];
    args.extend(&x);
    let o = run(&args, keyed_lines(50).as_bytes(), Duration::from_secs(60));
    assert_success(&o, "produce over SASL_SSL");

    let mut args = vec![
        "consume",
        "-b",
        &addr,
        "-t",
        &topic,
        "-g",
        &group,
        "--from",
        "earliest",
        "-e",
        "-f",
        "%p %o %k %s\\n",
    ];
    args.extend(&x);
    let o = run(&args, b"", Duration::from_secs(60));
    assert_success(&o, "consume over SASL_SSL");
    assert_eq!(parse_lines(&stdout(&o)).len(), 50, "{}", stderr(&o));
    // The group committed: a second run has nothing left.
    let o = run(&args, b"", Duration::from_secs(60));
    assert_success(&o, "second consume");
    assert_eq!(parse_lines(&stdout(&o)).len(), 0, "{}", stdout(&o));
}

#[test]
fn a_wrong_password_is_one_line_and_exit_code_1() {
    let kafka = SecureKafka::shared();
    let addr = kafka.addr("SASL_SSL");
    let x = sasl_ssl(kafka, "not-the-password");
    let mut args: Vec<&str> = vec!["consume", "-b", &addr, "-t", "any", "-e"];
    args.extend(x.iter().map(String::as_str));
    let o = run(&args, b"", Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("SASL SCRAM-SHA-256 authentication"), "{err}");
    assert!(err.contains(&addr), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}
