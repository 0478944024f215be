//! [`SecurityConfig`]: the security settings as the user gave them, by
//! Kafka property names or typed builders, and their resolution into the
//! [`Security`] a client's connections share.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::jaas;
use super::oauth::SharedTokenProvider;
use super::sasl::SaslCredentials;
#[cfg(feature = "tls")]
use super::tls;
use super::{
    PemSource, SaslMechanism, ScramHash, Secret, Security, SecurityProtocol, TlsSettings,
    TlsVersion, TokenProvider, UnsecuredJwt,
};
use crate::props::{self, ConfigError};

/// The security settings of a client as given: by properties
/// ([`SecurityConfig::set`]) or the typed methods. Secrets never show in
/// its `Debug`.
#[derive(Clone, Debug, Default)]
pub struct SecurityConfig {
    protocol: SecurityProtocol,
    tls: TlsSettings,
    mechanism: Option<SaslMechanism>,
    username: Option<String>,
    password: Option<Secret>,
    jaas: Option<jaas::Jaas>,
    token_provider: Option<SharedTokenProvider>,
    unsecured_jwt: bool,
    oauthbearer_config: Option<String>,
    handshake_v0: bool,
}

impl SecurityConfig {
    /// Plaintext, no SASL.
    pub fn new() -> SecurityConfig {
        SecurityConfig::default()
    }

    /// `security.protocol`.
    pub fn protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The protocol set.
    pub fn security_protocol(&self) -> SecurityProtocol {
        self.protocol
    }

    /// SASL/PLAIN with these credentials.
    pub fn sasl_plain(mut self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.mechanism = Some(SaslMechanism::Plain);
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// SASL/SCRAM with this hash and these credentials.
    pub fn sasl_scram(
        mut self,
        hash: ScramHash,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        self.mechanism = Some(SaslMechanism::Scram(hash));
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// SASL/OAUTHBEARER with tokens from `provider`.
    pub fn sasl_oauthbearer(mut self, provider: impl TokenProvider) -> Self {
        self.mechanism = Some(SaslMechanism::OAuthBearer);
        self.token_provider = Some(SharedTokenProvider(Arc::new(provider)));
        self
    }

    /// The CA certificates (a PEM file) the brokers' certificates chain to.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca = Some(PemSource::File(path.into()));
        self
    }

    /// The CA certificates as PEM text.
    pub fn ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.tls.ca = Some(PemSource::Inline(Secret::new(pem)));
        self
    }

    /// A client certificate chain and its key, as PEM files (mTLS).
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.cert = Some(PemSource::File(cert.into()));
        self.tls.key = Some(PemSource::File(key.into()));
        self
    }

    /// A client certificate chain and its key, as PEM text (mTLS).
    pub fn client_cert_pem(mut self, cert: impl Into<String>, key: impl Into<Secret>) -> Self {
        self.tls.cert = Some(PemSource::Inline(Secret::new(cert)));
        self.tls.key = Some(PemSource::Inline(key.into()));
        self
    }

    /// The passphrase of an encrypted client key (`ssl.key.password`).
    pub fn key_password(mut self, password: impl Into<Secret>) -> Self {
        self.tls.key_password = Some(password.into());
        self
    }

    /// Authenticate with SaslHandshake v0 and raw SASL tokens, as brokers
    /// before 1.0 need. krust picks it by itself for a broker whose
    /// SaslHandshake stops at v0; this forces it (newer brokers still take
    /// it). There is no re-authentication (KIP-368) over v0.
    pub fn sasl_handshake_v0(mut self, v0: bool) -> Self {
        self.handshake_v0 = v0;
        self
    }

    /// Whether the broker's certificate must name the host connected to
    /// (on by default).
    pub fn verify_hostname(mut self, verify: bool) -> Self {
        self.tls.verify_hostname = verify;
        self
    }

    /// Set one security property by its Kafka name; `Ok(false)` when `key`
    /// is not a security property (the caller handles it). The value of
    /// a secret never appears in the error.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let bad = |reason: &str| ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let v = value.trim();
        let path = || {
            if v.is_empty() {
                Err(bad("expected a file path"))
            } else {
                Ok(PemSource::File(PathBuf::from(v)))
            }
        };
        let inline = || PemSource::Inline(Secret::new(v));
        match key {
            "security.protocol" => self.protocol = v.parse().map_err(|r: String| bad(&r))?,
            "sasl.mechanism" | "sasl.mechanisms" => {
                self.mechanism = Some(v.parse().map_err(|r: String| bad(&r))?);
            }
            "sasl.username" => self.username = Some(v.to_owned()),
            "sasl.password" => self.password = Some(Secret::new(value)),
            "sasl.jaas.config" => self.jaas = Some(jaas::Jaas::parse(v).map_err(|r| bad(&r))?),
            "enable.sasl.oauthbearer.unsecure.jwt" => {
                self.unsecured_jwt = props::boolean(v).map_err(|r| bad(&r))?;
            }
            "sasl.oauthbearer.config" => self.oauthbearer_config = Some(v.to_owned()),
            "ssl.ca.location" if v.eq_ignore_ascii_case("probe") => self.tls.ca = None,
            "ssl.ca.location" => self.tls.ca = Some(path()?),
            "ssl.ca.pem" | "ssl.truststore.certificates" => self.tls.ca = Some(inline()),
            "ssl.certificate.location" => self.tls.cert = Some(path()?),
            "ssl.certificate.pem" | "ssl.keystore.certificate.chain" => {
                self.tls.cert = Some(inline());
            }
            "ssl.key.location" => self.tls.key = Some(path()?),
            "ssl.key.pem" | "ssl.keystore.key" => self.tls.key = Some(inline()),
            "ssl.key.password" => self.tls.key_password = Some(Secret::new(value)),
            "ssl.enabled.protocols" | "ssl.protocol" => {
                let mut versions = Vec::new();
                for v in props::list(v) {
                    versions.push(match v.as_str() {
                        "TLSv1.3" | "TLS" => TlsVersion::Tls13,
                        "TLSv1.2" => TlsVersion::Tls12,
                        _ => {
                            return Err(bad(
                                "expected TLSv1.2 and/or TLSv1.3 (older versions are not offered)",
                            ));
                        }
                    });
                    if v == "TLS" {
                        versions.push(TlsVersion::Tls12);
                    }
                }
                if versions.is_empty() {
                    return Err(bad("expected TLSv1.2 and/or TLSv1.3"));
                }
                self.tls.versions = Some(versions);
            }
            "ssl.endpoint.identification.algorithm" => {
                self.tls.verify_hostname = match v.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => return Err(bad("expected https, none or an empty value")),
                };
            }
            // Java's PEM stores name their type; JKS and PKCS12 stores are
            // not read (below).
            "ssl.truststore.type" | "ssl.keystore.type" if v.eq_ignore_ascii_case("PEM") => {}
            "ssl.truststore.location" | "ssl.truststore.password" | "ssl.truststore.type" => {
                return Err(bad(
                    "Java truststores are not read: give the CA certificates as PEM with \
                     ssl.ca.location (keytool -exportcert -rfc writes them)",
                ));
            }
            "ssl.keystore.location" | "ssl.keystore.password" | "ssl.keystore.type" => {
                return Err(bad(
                    "Java keystores are not read: give the client certificate and key as PEM \
                     with ssl.certificate.location and ssl.key.location (openssl pkcs12 \
                     converts a PKCS12 store)",
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Check the settings, read the PEM files and build the TLS
    /// configuration.
    pub fn resolve(&self) -> Result<Security, ConfigError> {
        #[cfg(feature = "tls")]
        let tls = if self.protocol.uses_tls() {
            Some(tls::TlsConnector::new(&self.tls)?)
        } else {
            None
        };
        #[cfg(not(feature = "tls"))]
        if self.protocol.uses_tls() {
            return Err(ConfigError::Conflict(format!(
                "security.protocol={} needs TLS, and krust was built without its `tls` feature",
                self.protocol
            )));
        }
        let sasl = if self.protocol.uses_sasl() {
            Some(self.credentials()?)
        } else {
            let given = [
                (self.mechanism.is_some(), "sasl.mechanism"),
                (self.jaas.is_some(), "sasl.jaas.config"),
                (self.username.is_some(), "sasl.username"),
                (self.token_provider.is_some(), "a token provider"),
            ];
            if let Some((_, what)) = given.iter().find(|(set, _)| *set) {
                return Err(ConfigError::Conflict(format!(
                    "{what} is set but security.protocol={} does not use SASL \
                     (set SASL_PLAINTEXT or SASL_SSL)",
                    self.protocol
                )));
            }
            None
        };
        Ok(Security {
            protocol: self.protocol,
            #[cfg(feature = "tls")]
            tls,
            sasl,
            handshake_v0: self.handshake_v0,
        })
    }

    fn credentials(&self) -> Result<SaslCredentials, ConfigError> {
        let jaas = self.jaas.as_ref();
        let mechanism = match (self.mechanism, jaas.and_then(|j| j.mechanism())) {
            (Some(m), _) => m,
            (None, Some(m)) => m,
            (None, None) => {
                return Err(ConfigError::Conflict(format!(
                    "security.protocol={} needs sasl.mechanism (PLAIN, SCRAM-SHA-256, \
                     SCRAM-SHA-512 or OAUTHBEARER)",
                    self.protocol
                )));
            }
        };
        if let Some(j) = jaas {
            j.check_fits(mechanism)?;
        }
        let username = self
            .username
            .clone()
            .or_else(|| jaas.and_then(|j| j.get("username").map(str::to_owned)));
        let password = self
            .password
            .clone()
            .or_else(|| jaas.and_then(|j| j.get("password").map(Secret::new)));
        let user_pass = |name: &str| match (username.clone(), password.clone()) {
            (Some(u), Some(p)) => Ok((u, p)),
            _ => Err(ConfigError::Conflict(format!(
                "sasl.mechanism={name} needs sasl.username and sasl.password (or \
                 sasl.jaas.config with username and password)"
            ))),
        };
        Ok(match mechanism {
            SaslMechanism::Plain => {
                let (username, password) = user_pass("PLAIN")?;
                SaslCredentials::Plain { username, password }
            }
            SaslMechanism::Scram(hash) => {
                let (username, password) = user_pass(hash.mechanism())?;
                SaslCredentials::Scram {
                    hash,
                    username,
                    password,
                }
            }
            SaslMechanism::OAuthBearer => SaslCredentials::OAuthBearer {
                provider: self.token_provider()?,
            },
        })
    }

    fn token_provider(&self) -> Result<SharedTokenProvider, ConfigError> {
        if let Some(p) = &self.token_provider {
            return Ok(p.clone());
        }
        // Java's unsecured login module, or librdkafka's unsecured JWT.
        let from_jaas = self
            .jaas
            .as_ref()
            .and_then(|j| j.get("unsecuredLoginStringClaim_sub"))
            .map(|sub| {
                let mut jwt = UnsecuredJwt::new(sub);
                if let Some(s) = self
                    .jaas
                    .as_ref()
                    .and_then(|j| j.get("unsecuredLoginListClaim_scope"))
                {
                    jwt = jwt.scope(s);
                }
                jwt
            });
        let from_rdkafka = if self.unsecured_jwt {
            let config = self.oauthbearer_config.as_deref().unwrap_or_default();
            let mut principal = None;
            let mut jwt_scope = None;
            let mut life = None;
            for kv in config.split_whitespace() {
                match kv.split_once('=') {
                    Some(("principal", p)) => principal = Some(p.to_owned()),
                    Some(("scope", s)) => jwt_scope = Some(s.to_owned()),
                    Some(("lifeSeconds", s)) => {
                        life = Some(s.parse::<u64>().map_err(|_| ConfigError::BadValue {
                            key: "sasl.oauthbearer.config".into(),
                            value: config.to_owned(),
                            reason: "lifeSeconds must be a number of seconds".into(),
                        })?);
                    }
                    _ => {}
                }
            }
            let principal = principal.ok_or_else(|| ConfigError::BadValue {
                key: "sasl.oauthbearer.config".into(),
                value: config.to_owned(),
                reason: "an unsecured JWT needs principal=NAME".into(),
            })?;
            let mut jwt = UnsecuredJwt::new(principal);
            if let Some(s) = jwt_scope {
                jwt = jwt.scope(s);
            }
            if let Some(secs) = life {
                jwt = jwt.lifetime(Duration::from_secs(secs));
            }
            Some(jwt)
        } else {
            None
        };
        match from_jaas.or(from_rdkafka) {
            Some(jwt) => Ok(SharedTokenProvider(Arc::new(jwt))),
            None => Err(ConfigError::Conflict(
                "sasl.mechanism=OAUTHBEARER needs a token provider (the builder's \
                 sasl_oauthbearer), or an unsecured JWT for development \
                 (enable.sasl.oauthbearer.unsecure.jwt=true with \
                 sasl.oauthbearer.config=principal=NAME)"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(props: &[(&str, &str)]) -> Result<SecurityConfig, ConfigError> {
        let mut c = SecurityConfig::new();
        for (k, v) in props {
            assert!(c.set(k, v)?, "{k} is a security property");
        }
        Ok(c)
    }

    #[test]
    fn properties_resolve_to_credentials() {
        let c = config(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "s3cret"),
        ])
        .unwrap();
        let s = c.resolve().unwrap();
        assert_eq!(s.protocol(), SecurityProtocol::SaslPlaintext);
        assert_eq!(s.sasl().unwrap().mechanism(), "SCRAM-SHA-512");
        assert!(!format!("{c:?} {s:?}").contains("s3cret"));

        let jaas = config(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="bob" password="pw\"1";"#,
            ),
        ])
        .unwrap()
        .resolve()
        .unwrap();
        match jaas.sasl().unwrap() {
            SaslCredentials::Plain { username, password } => {
                assert_eq!(username, "bob");
                assert_eq!(password.expose(), "pw\"1");
            }
            other => panic!("{other:?}"),
        }
        let oauth = config(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
            ("sasl.oauthbearer.config", "principal=carol scope=test"),
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(oauth.sasl().unwrap().mechanism(), "OAUTHBEARER");
    }

    #[test]
    fn settings_that_cannot_work_are_refused_with_the_reason() {
        let err = |props: &[(&str, &str)]| match config(props) {
            Err(e) => e.to_string(),
            Ok(c) => c.resolve().unwrap_err().to_string(),
        };
        assert!(err(&[("security.protocol", "SASL_SSLX")]).contains("SASL_SSL"));
        assert!(err(&[("sasl.mechanism", "GSSAPI")]).contains("Kerberos"));
        assert!(err(&[("security.protocol", "SASL_PLAINTEXT")]).contains("needs sasl.mechanism"));
        assert!(
            err(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "u"),
            ])
            .contains("needs sasl.username and sasl.password")
        );
        assert!(err(&[("sasl.mechanism", "PLAIN")]).contains("does not use SASL"));
        assert!(
            err(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                (
                    "sasl.jaas.config",
                    r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#
                ),
            ])
            .contains("PlainLoginModule")
        );
        let truststore = err(&[("ssl.truststore.location", "/x.jks")]);
        assert!(truststore.contains("ssl.ca.location"), "{truststore}");
        let keystore = err(&[("ssl.keystore.password", "hunter2")]);
        assert!(keystore.contains("ssl.certificate.location"), "{keystore}");
        assert!(!keystore.contains("hunter2"), "{keystore}");
        let missing = err(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", "/nonexistent/ca.pem"),
        ]);
        #[cfg(feature = "tls")]
        assert!(
            missing.contains("ssl.ca.location") && missing.contains("/nonexistent/ca.pem"),
            "{missing}"
        );
        #[cfg(not(feature = "tls"))]
        assert!(missing.contains("without its `tls` feature"), "{missing}");
        let mut c = SecurityConfig::new();
        assert_eq!(c.set("linger.ms", "5"), Ok(false));
    }
}
