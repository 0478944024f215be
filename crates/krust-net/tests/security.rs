//! TLS and SASL against Apache Kafka 4.4.0 enforcing them
//! (`krust_testkit::SecureKafka`: certificates made by the test, SCRAM
//! users made by Kafka's storage tool): every mechanism over SASL_SSL and
//! SASL_PLAINTEXT, mTLS, re-authentication (KIP-368), and each kind of bad
//! input ending with its own error within the bootstrap timeout.

use std::time::{Duration, Instant};

use krust_net::security::{
    OAuthToken, SaslFailure, ScramHash, SecurityConfig, SecurityProtocol, TlsFailure, UnsecuredJwt,
};
use krust_net::{Error, Pool, PoolConfig};
use krust_testkit::{SASL_USER, SecureKafka};

fn pool_config(addr: String, security: &SecurityConfig) -> PoolConfig {
    let mut config = PoolConfig {
        bootstrap: vec![addr],
        bootstrap_timeout: Duration::from_secs(15),
        ..PoolConfig::default()
    };
    config.connection.security = security.resolve().expect("settings resolve");
    config
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Bootstrap and ask for metadata; the cluster must list its broker on the
/// same listener.
fn works(addr: String, security: SecurityConfig) {
    rt().block_on(async {
        let pool = Pool::bootstrap(pool_config(addr.clone(), &security))
            .await
            .unwrap_or_else(|e| panic!("{addr}: {e}"));
        let md = pool.refresh_metadata(&[]).await.unwrap();
        let listed: Vec<String> = md
            .brokers
            .values()
            .map(|b| format!("{}:{}", b.host, b.port))
            .collect();
        assert_eq!(
            listed,
            [addr],
            "the broker advertises the listener connected to"
        );
        pool.any_connection().await.unwrap();
    });
}

/// Bootstrap must fail, within 15 s, with the error `check` accepts.
fn fails(addr: String, security: SecurityConfig, what: &str, check: impl Fn(&Error) -> bool) {
    let started = Instant::now();
    let err = rt().block_on(async {
        match Pool::bootstrap(pool_config(addr.clone(), &security)).await {
            Ok(_) => panic!("{what}: bootstrap to {addr} succeeded"),
            Err(e) => e,
        }
    });
    let elapsed = started.elapsed();
    let cause = match &err {
        Error::Bootstrap { attempts } => {
            assert_eq!(attempts.len(), 1, "{err}");
            attempts[0].1.clone()
        }
        other => other.clone(),
    };
    assert!(check(&cause), "{what}: unexpected error: {cause:?} ({err})");
    assert!(
        elapsed < Duration::from_secs(15),
        "{what}: took {elapsed:?}: {err}"
    );
    assert!(
        err.to_string().contains(&addr),
        "{what}: names the broker: {err}"
    );
    assert!(
        !err.to_string().contains(SASL_USER.1),
        "{what}: shows the password: {err}"
    );
    eprintln!("{what}: {err} ({elapsed:?})");
}

fn sasl_ssl(kafka: &SecureKafka) -> SecurityConfig {
    SecurityConfig::new()
        .protocol(SecurityProtocol::SaslSsl)
        .ca_file(kafka.pki().ca())
}

/// Each of the four mechanisms over both SASL listeners, with the
/// handshake version `v0` says, and a wrong password; what the wrong
/// password's error must show.
fn every_mechanism(v0: bool, refused: impl Fn(&str) -> bool) {
    let kafka = SecureKafka::shared();
    let (user, password) = SASL_USER;
    for (listener, protocol) in [
        ("SASL_SSL", SecurityProtocol::SaslSsl),
        ("SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext),
    ] {
        let base = || {
            SecurityConfig::new()
                .protocol(protocol)
                .ca_file(kafka.pki().ca())
                .sasl_handshake_v0(v0)
        };
        let addr = || kafka.addr(listener);
        works(addr(), base().sasl_plain(user, password));
        works(addr(), base().sasl_scram(ScramHash::Sha256, user, password));
        works(addr(), base().sasl_scram(ScramHash::Sha512, user, password));
        works(addr(), base().sasl_oauthbearer(UnsecuredJwt::new(user)));
        fails(
            addr(),
            base().sasl_scram(ScramHash::Sha512, user, "wrong-password"),
            "a wrong password",
            |e| {
                matches!(e, Error::Sasl { cause: SaslFailure::AuthenticationFailed { message }, .. }
                    if refused(message))
            },
        );
    }
}

#[test]
fn every_mechanism_authenticates_over_sasl_ssl_and_sasl_plaintext() {
    every_mechanism(false, |m| m.contains("invalid credentials"));
}

/// SaslHandshake v0 and raw tokens, what brokers before 1.0 speak (Kafka
/// 4.4.0 still takes them); a wrong password v0 can only answer by
/// closing the connection.
#[test]
fn every_mechanism_authenticates_over_sasl_handshake_v0() {
    every_mechanism(true, |m| m.contains("SaslHandshake v0"));
}

#[test]
fn the_java_property_forms_work() {
    let kafka = SecureKafka::shared();
    let (user, password) = SASL_USER;
    let mut c = SecurityConfig::new();
    for (k, v) in [
        ("security.protocol", "SASL_SSL".to_owned()),
        ("sasl.mechanism", "SCRAM-SHA-512".to_owned()),
        (
            "sasl.jaas.config",
            format!(
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";"#
            ),
        ),
        ("ssl.ca.location", kafka.pki().ca().display().to_string()),
    ] {
        assert!(c.set(k, &v).unwrap());
    }
    works(kafka.addr("SASL_SSL"), c);
}

#[test]
fn mutual_tls_with_a_client_certificate() {
    let kafka = SecureKafka::shared();
    let ssl = || {
        SecurityConfig::new()
            .protocol(SecurityProtocol::Ssl)
            .ca_file(kafka.pki().ca())
    };
    works(
        kafka.addr("SSL"),
        ssl().client_cert_files(kafka.pki().client_cert(), kafka.pki().client_key()),
    );
    let pem = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
    works(
        kafka.addr("SSL"),
        ssl().client_cert_pem(
            pem(kafka.pki().client_cert()),
            pem(kafka.pki().client_key()),
        ),
    );
    // Either TLS version alone (`ssl.enabled.protocols`); nothing older.
    for version in ["TLSv1.2", "TLSv1.3"] {
        let mut c = ssl().client_cert_files(kafka.pki().client_cert(), kafka.pki().client_key());
        assert!(c.set("ssl.enabled.protocols", version).unwrap());
        works(kafka.addr("SSL"), c);
    }
    let old = SecurityConfig::new()
        .set("ssl.enabled.protocols", "TLSv1.1")
        .unwrap_err()
        .to_string();
    assert!(old.contains("older versions are not offered"), "{old}");
    // An encrypted key with its passphrase (`ssl.key.password`).
    let pki = kafka.pki();
    works(
        kafka.addr("SSL"),
        ssl()
            .client_cert_files(pki.client_cert(), pki.client_key_encrypted())
            .key_password(krust_testkit::Pki::KEY_PASSWORD),
    );
    let wrong = ssl()
        .client_cert_files(pki.client_cert(), pki.client_key_encrypted())
        .key_password("not-it")
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("ssl.key.location") && wrong.contains("wrong ssl.key.password"),
        "{wrong}"
    );
    assert!(!wrong.contains("not-it"), "{wrong}");
    let none = ssl()
        .client_cert_files(pki.client_cert(), pki.client_key_encrypted())
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(none.contains("set ssl.key.password"), "{none}");
    // No certificate, or one the broker's CA did not sign: refused.
    fails(kafka.addr("SSL"), ssl(), "no client certificate", |e| {
        matches!(
            e,
            Error::Tls {
                cause: TlsFailure::Alert(_),
                ..
            }
        )
    });
    let (cert, key) = kafka.pki().stranger();
    fails(
        kafka.addr("SSL"),
        ssl().client_cert_files(cert, key),
        "a client certificate of another CA",
        |e| {
            matches!(
                e,
                Error::Tls {
                    cause: TlsFailure::Alert(_),
                    ..
                }
            )
        },
    );
}

#[test]
fn bad_input_ends_with_its_own_error() {
    let kafka = SecureKafka::shared();
    let (user, password) = SASL_USER;
    fails(
        kafka.addr("SASL_SSL"),
        sasl_ssl(kafka).sasl_scram(ScramHash::Sha256, user, "wrong-password"),
        "wrong password",
        |e| {
            matches!(e, Error::Sasl { cause: SaslFailure::AuthenticationFailed { message }, .. }
                if message.contains("Authentication failed"))
        },
    );
    fails(
        kafka.addr("REAUTH"),
        SecurityConfig::new()
            .protocol(SecurityProtocol::SaslPlaintext)
            .sasl_plain(user, password),
        "a mechanism the listener does not enable",
        |e| {
            matches!(e, Error::Sasl { cause: SaslFailure::MechanismNotEnabled { enabled }, .. }
                if enabled == &["SCRAM-SHA-256"])
        },
    );
    fails(
        kafka.addr("EXPIRED"),
        SecurityConfig::new()
            .protocol(SecurityProtocol::Ssl)
            .ca_file(kafka.pki().ca()),
        "an expired certificate",
        |e| {
            matches!(
                e,
                Error::Tls {
                    cause: TlsFailure::Expired(_),
                    ..
                }
            )
        },
    );
    fails(
        kafka.addr("SASL_SSL"),
        SecurityConfig::new()
            .protocol(SecurityProtocol::SaslSsl)
            .ca_file(kafka.pki().other_ca())
            .sasl_plain(user, password),
        "a certificate of an untrusted CA",
        |e| {
            matches!(
                e,
                Error::Tls {
                    cause: TlsFailure::Untrusted(_),
                    ..
                }
            )
        },
    );
    // No ssl.ca.location: the system's roots, which do not hold the
    // test CA.
    fails(
        kafka.addr("SASL_SSL"),
        SecurityConfig::new()
            .protocol(SecurityProtocol::SaslSsl)
            .sasl_plain(user, password),
        "the system's roots for a broker of a private CA",
        |e| {
            matches!(
                e,
                Error::Tls {
                    cause: TlsFailure::Untrusted(_),
                    ..
                }
            )
        },
    );
    // The CA as PEM text works as the file does.
    works(
        kafka.addr("SASL_SSL"),
        SecurityConfig::new()
            .protocol(SecurityProtocol::SaslSsl)
            .ca_pem(std::fs::read_to_string(kafka.pki().ca()).unwrap())
            .sasl_plain(user, password),
    );
    let localhost = kafka.addr("SASL_SSL").replace("127.0.0.1", "localhost");
    fails(
        localhost.clone(),
        sasl_ssl(kafka).sasl_plain(user, password),
        "a host the certificate does not name",
        |e| matches!(e, Error::Tls { cause: TlsFailure::HostnameMismatch { host }, .. } if host == "localhost"),
    );
    // Hostname verification off: the same connection is accepted.
    rt().block_on(async {
        let c = sasl_ssl(kafka)
            .sasl_plain(user, password)
            .verify_hostname(false);
        krust_net::Connection::connect(
            &localhost,
            None,
            &pool_config(localhost.clone(), &c).connection,
        )
        .await
        .unwrap();
    });
    fails(
        kafka.addr("SSL"),
        SecurityConfig::new(),
        "a plaintext client on a TLS port",
        |e| e.is_not_kafka(),
    );
    fails(
        kafka.addr("PLAINTEXT"),
        SecurityConfig::new()
            .protocol(SecurityProtocol::Ssl)
            .ca_file(kafka.pki().ca()),
        "a TLS client on a plaintext port",
        |e| {
            matches!(
                e,
                Error::Tls {
                    cause: TlsFailure::Closed,
                    ..
                }
            )
        },
    );
    fails(
        kafka.addr("SASL_SSL"),
        sasl_ssl(kafka).sasl_oauthbearer(|| async {
            Err::<OAuthToken, _>("the identity provider is down".into())
        }),
        "a token provider that fails",
        |e| {
            matches!(e, Error::Sasl { cause: SaslFailure::TokenProvider(m), .. }
                if m.contains("identity provider is down"))
        },
    );
}

/// The REAUTH listener's sessions last 3 s (KIP-368): a broker closes a
/// connection whose session ran out at its next request. One connection
/// used for four lifetimes must stay the same connection, answering.
#[test]
fn a_connection_re_authenticates_before_its_session_ends() {
    let kafka = SecureKafka::shared();
    let (user, password) = SASL_USER;
    let security = SecurityConfig::new()
        .protocol(SecurityProtocol::SaslPlaintext)
        .sasl_scram(ScramHash::Sha256, user, password);
    rt().block_on(async {
        let addr = kafka.addr("REAUTH");
        let config = pool_config(addr.clone(), &security);
        let conn = krust_net::Connection::connect(&addr, None, &config.connection)
            .await
            .unwrap();
        let lifetime = Duration::from_millis(SecureKafka::REAUTH_MS);
        let started = Instant::now();
        let until = started + lifetime * 4;
        let mut requests = 0;
        while Instant::now() < until {
            conn.send(&krust_codec::generated::MetadataRequest::default())
                .await
                .unwrap_or_else(|e| {
                    panic!("request {requests} after {:?}: {e}", started.elapsed())
                });
            requests += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(!conn.is_closed());
        assert!(requests >= 40, "{requests}");
    });
}

/// A re-authentication does not queue behind a request the broker holds:
/// Fetches held 2.5 s each (an empty partition, `max_wait_ms`), on a
/// connection whose other requests time out after 1 s, for four 3 s
/// sessions. Queued behind a held Fetch, the SaslHandshake timed out and
/// closed the connection under it ("a SaslHandshake request (correlation
/// id 6) had no reply within 1s", fetch 1 after 3.8 s); the exchange now
/// starts once the replies in flight are in, past the session's end when
/// a Fetch outlives it: Kafka takes that late SaslHandshake.
#[test]
fn a_re_authentication_waits_for_the_requests_the_broker_holds() {
    use krust_codec::KString;
    use krust_codec::generated::FetchRequest;
    use krust_codec::generated::fetch_request::{FetchPartition, FetchTopic};

    let kafka = SecureKafka::shared();
    let (user, password) = SASL_USER;
    let topic = krust_testkit::unique("reauth-held");
    kafka.kafka().as_cluster().create_topic(&topic, 1).unwrap();
    let security = SecurityConfig::new()
        .protocol(SecurityProtocol::SaslPlaintext)
        .sasl_scram(ScramHash::Sha256, user, password);
    rt().block_on(async {
        let addr = kafka.addr("REAUTH");
        let mut config = pool_config(addr.clone(), &security).connection;
        config.request_timeout = Duration::from_secs(1);
        let conn = krust_net::Connection::connect(&addr, None, &config)
            .await
            .unwrap();
        let fetch = FetchRequest {
            replica_id: -1,
            max_wait_ms: 2500,
            min_bytes: 1,
            max_bytes: 1 << 20,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: KString::from(topic.as_str()),
                partitions: vec![FetchPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    fetch_offset: 0,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let started = Instant::now();
        let mut fetches = 0;
        while started.elapsed() < Duration::from_millis(SecureKafka::REAUTH_MS * 4) {
            let reply = conn
                .send_at_with_timeout(&fetch, 12, Duration::from_secs(4))
                .await
                .unwrap_or_else(|e| panic!("fetch {fetches} after {:?}: {e}", started.elapsed()));
            assert_eq!(reply.error_code, 0);
            fetches += 1;
        }
        assert!(!conn.is_closed());
        assert!(fetches >= 4, "{fetches} fetches");
    });
}
