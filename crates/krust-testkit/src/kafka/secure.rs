//! A Kafka node that enforces security, for the TLS and SASL tests: its
//! certificates are made by the test (rcgen, fresh keys every run, never
//! committed), its SCRAM users created by Kafka's own storage tool.
//!
//! Listeners, each on a free port of 127.0.0.1:
//!
//! | name | protocol | what it enforces |
//! |---|---|---|
//! | `PLAINTEXT` | PLAINTEXT | nothing (the brokers' own, and setup) |
//! | `SASL_SSL` | SASL_SSL | PLAIN, SCRAM-SHA-256/512, OAUTHBEARER (unsecured JWT) |
//! | `SSL` | SSL | a client certificate signed by the test CA (mTLS) |
//! | `SASL_PLAINTEXT` | SASL_PLAINTEXT | the same mechanisms as SASL_SSL |
//! | `EXPIRED` | SSL | nothing, but its certificate expired in 2021 |
//! | `REAUTH` | SASL_PLAINTEXT | SCRAM-SHA-256, sessions of [`SecureKafka::REAUTH_MS`] (KIP-368) |
//!
//! The server certificates name only the address `127.0.0.1`, so
//! connecting to `localhost` fails hostname verification.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use super::{Kafka, KafkaVersion};
use crate::process::TempDir;
use crate::{Error, Result};

/// The SASL user every mechanism knows, and its password.
pub const SASL_USER: (&str, &str) = ("alice", "alice-secret");

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTH: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// The test PKI's files.
#[derive(Debug)]
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA that signs the brokers' and the client's certificates.
    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// A CA that signed nothing here: a client trusting only it trusts no
    /// broker.
    pub fn other_ca(&self) -> PathBuf {
        self.path("other-ca.pem")
    }

    /// The client certificate (signed by [`Pki::ca`]).
    pub fn client_cert(&self) -> PathBuf {
        self.path("client.pem")
    }

    /// The client certificate's key (PKCS#8, unencrypted).
    pub fn client_key(&self) -> PathBuf {
        self.path("client.key")
    }

    /// [`Pki::client_key`] encrypted (PKCS#8, PBKDF2-SHA256 and
    /// AES-256-CBC, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it)
    /// with [`Pki::KEY_PASSWORD`].
    pub fn client_key_encrypted(&self) -> PathBuf {
        self.path("client.enc.key")
    }

    /// The passphrase of [`Pki::client_key_encrypted`].
    pub const KEY_PASSWORD: &'static str = "key-passphrase";

    /// A client certificate signed by [`Pki::other_ca`], and its key.
    pub fn stranger(&self) -> (PathBuf, PathBuf) {
        (self.path("stranger.pem"), self.path("stranger.key"))
    }

    fn generate() -> Result<Pki> {
        let dir = TempDir::new("pki")?;
        let pki = Pki { dir };
        let fail = |what: &str, e: rcgen::Error| Error::new(format!("generating {what}: {e}"));
        let ca_key = KeyPair::generate().map_err(|e| fail("the CA key", e))?;
        let ca_p = ca_params("krust test CA");
        let ca_cert = ca_p.self_signed(&ca_key).map_err(|e| fail("the CA", e))?;
        let ca = Issuer::new(ca_p, ca_key);
        let other_key = KeyPair::generate().map_err(|e| fail("the other CA key", e))?;
        let other_params = ca_params("krust untrusted CA");
        let other_cert = other_params
            .self_signed(&other_key)
            .map_err(|e| fail("the other CA", e))?;
        let other = Issuer::new(other_params, other_key);
        pki.write("ca.pem", &ca_cert.pem())?;
        pki.write("other-ca.pem", &other_cert.pem())?;

        let leaf = |name: &str, issuer: &Issuer<'_, KeyPair>, expired: bool, server: bool| {
            let key = KeyPair::generate().map_err(|e| fail(name, e))?;
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, name);
            if server {
                params.subject_alt_names =
                    vec![SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())];
            }
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let cert = params.signed_by(&key, issuer).map_err(|e| fail(name, e))?;
            Ok::<_, Error>((cert.pem(), key.serialize_pem()))
        };
        // Kafka's PEM keystore: the chain, then the PKCS#8 key, in one file.
        for (file, expired) in [("server.pem", false), ("expired.pem", true)] {
            let (cert, key) = leaf("127.0.0.1", &ca, expired, true)?;
            pki.write(file, &format!("{cert}{}{key}", ca_cert.pem()))?;
        }
        let (cert, key) = leaf("krust-client", &ca, false, false)?;
        pki.write("client.pem", &cert)?;
        pki.write("client.key", &key)?;
        pki.write("client.enc.key", &encrypt(&key, Self::KEY_PASSWORD)?)?;
        let (cert, key) = leaf("stranger", &other, false, false)?;
        pki.write("stranger.pem", &cert)?;
        pki.write("stranger.key", &key)?;
        Ok(pki)
    }

    fn write(&self, name: &str, text: &str) -> Result<()> {
        fs::write(self.path(name), text).map_err(|e| Error::io(&format!("writing {name}"), e))
    }
}

/// A PEM PKCS#8 key encrypted with `password`.
fn encrypt(key_pem: &str, password: &str) -> Result<String> {
    use pkcs8::der::Decode as _;
    let fail = |e: &dyn std::fmt::Display| Error::new(format!("encrypting the client key: {e}"));
    let (_, doc) = pkcs8::SecretDocument::from_pem(key_pem).map_err(|e| fail(&e))?;
    let info = pkcs8::PrivateKeyInfo::from_der(doc.as_bytes()).map_err(|e| fail(&e))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| fail(&e))?;
    getrandom::fill(&mut iv).map_err(|e| fail(&e))?;
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &salt, &iv)
        .map_err(|e| fail(&e))?;
    let encrypted = info
        .encrypt_with_params(params, password)
        .map_err(|e| fail(&e))?;
    encrypted
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .map(|p| p.to_string())
        .map_err(|e| fail(&e))
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// A Kafka 4.4.0 node with the listeners of the module doc.
#[derive(Debug)]
pub struct SecureKafka {
    kafka: Kafka,
    pki: Pki,
}

impl SecureKafka {
    /// The session lifetime of the `REAUTH` listener, in ms.
    pub const REAUTH_MS: u64 = 3000;

    /// Start one; panics (saying how to install Kafka) if it cannot.
    pub fn start() -> SecureKafka {
        Self::try_start().unwrap_or_else(|e| panic!("cannot start a secure Apache Kafka: {e}"))
    }

    /// The node this test binary shares.
    pub fn shared() -> &'static SecureKafka {
        static SHARED: OnceLock<SecureKafka> = OnceLock::new();
        SHARED.get_or_init(SecureKafka::start)
    }

    /// Start one.
    pub fn try_start() -> Result<SecureKafka> {
        Self::try_start_with(None)
    }

    /// Start one whose JVM runs with `jvm_options` instead of the
    /// fixture's (which start fastest: C1 only); a benchmark gives the
    /// broker the optimizing JIT with `&[]`, as production brokers have,
    /// so that its TLS is not what is measured.
    pub fn try_start_with(jvm_options: Option<&[&str]>) -> Result<SecureKafka> {
        let pki = Pki::generate()?;
        let (user, password) = SASL_USER;
        let path = |p: PathBuf| p.display().to_string();
        let mut b = Kafka::builder()
            .version(KafkaVersion::V4_4)
            .listener("SASL_SSL", "SASL_SSL")
            .listener("SSL", "SSL")
            .listener("SASL_PLAINTEXT", "SASL_PLAINTEXT")
            .listener("EXPIRED", "SSL")
            .listener("REAUTH", "SASL_PLAINTEXT");
        if let Some(options) = jvm_options {
            b = b.jvm_options(options);
        }
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            b = b
                .format_arg("--add-scram")
                .format_arg(&format!("{mechanism}=[name={user},password={password}]"));
        }
        let tls = |b: crate::kafka::KafkaBuilder, listener: &str, keystore: &str| {
            b.config(
                &format!("listener.name.{listener}.ssl.keystore.type"),
                "PEM",
            )
            .config(
                &format!("listener.name.{listener}.ssl.keystore.location"),
                &path(pki.path(keystore)),
            )
            .config(
                &format!("listener.name.{listener}.ssl.truststore.type"),
                "PEM",
            )
            .config(
                &format!("listener.name.{listener}.ssl.truststore.location"),
                &path(pki.ca()),
            )
        };
        b = tls(b, "sasl_ssl", "server.pem");
        b = tls(b, "ssl", "server.pem");
        b = tls(b, "expired", "expired.pem");
        b = b.config("listener.name.ssl.ssl.client.auth", "required");
        for listener in ["sasl_ssl", "sasl_plaintext"] {
            b = b
                .config(
                    &format!("listener.name.{listener}.sasl.enabled.mechanisms"),
                    "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
                )
                .config(
                    &format!("listener.name.{listener}.plain.sasl.jaas.config"),
                    &format!(r#"{PLAIN} required user_{user}="{password}";"#),
                )
                .config(
                    &format!("listener.name.{listener}.scram-sha-256.sasl.jaas.config"),
                    &format!("{SCRAM} required;"),
                )
                .config(
                    &format!("listener.name.{listener}.scram-sha-512.sasl.jaas.config"),
                    &format!("{SCRAM} required;"),
                )
                .config(
                    &format!("listener.name.{listener}.oauthbearer.sasl.jaas.config"),
                    &format!(r#"{OAUTH} required unsecuredLoginStringClaim_sub="admin";"#),
                );
        }
        b = b
            .config(
                "listener.name.reauth.sasl.enabled.mechanisms",
                "SCRAM-SHA-256",
            )
            .config(
                "listener.name.reauth.scram-sha-256.sasl.jaas.config",
                &format!("{SCRAM} required;"),
            )
            .config(
                "listener.name.reauth.scram-sha-256.connections.max.reauth.ms",
                &Self::REAUTH_MS.to_string(),
            );
        let kafka = b.try_start()?;
        Ok(SecureKafka { kafka, pki })
    }

    /// The node (its PLAINTEXT listener is [`Kafka::addr`]).
    pub fn kafka(&self) -> &Kafka {
        &self.kafka
    }

    /// The test certificates.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The address of a listener of the module doc's table.
    pub fn addr(&self, listener: &str) -> String {
        if listener == "PLAINTEXT" {
            return self.kafka.addr();
        }
        self.kafka
            .listener_addr(listener)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The directory of the PKI's files.
    pub fn pki_dir(&self) -> &Path {
        self.pki.dir.path()
    }
}
