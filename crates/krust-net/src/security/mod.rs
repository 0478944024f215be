//! Security: TLS (rustls) and SASL (PLAIN, SCRAM-SHA-256/512,
//! OAUTHBEARER), configured by the Kafka property names users know
//! (`security.protocol`, `sasl.*`, `ssl.*`) or the typed builder of
//! [`SecurityConfig`]. See docs/ARCHITECTURE.md, "Security".
//!
//! A [`SecurityConfig`] is what the user gave; [`SecurityConfig::resolve`]
//! reads the PEM files, builds the TLS configuration once and checks that
//! the settings hold together, giving the [`Security`] every connection of
//! a client shares. The TLS handshake runs right after the TCP connect,
//! the SASL exchange right after ApiVersions, both before the connection
//! is handed out; each failure is a typed error that names the broker
//! ([`crate::Error::Tls`], [`crate::Error::Sasl`]) and is not retried.

mod config;
mod jaas;
pub(crate) mod oauth;
pub(crate) mod sasl;
pub(crate) mod scram;
mod secret;
#[cfg(feature = "tls")]
mod tls;
mod tls_failure;
mod transport;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use config::SecurityConfig;
pub use oauth::{OAuthToken, TokenFuture, TokenProvider, UnsecuredJwt};
pub use sasl::SaslFailure;
pub use scram::{ScramError, ScramHash};
pub use secret::{Secret, is_secret_key};
pub use tls_failure::TlsFailure;
pub(crate) use transport::Transport;

use sasl::SaslCredentials;

/// `security.protocol`: how a client talks to the brokers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL (the default).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The property value: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // Java takes upper case, librdkafka lower: either.
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL".into()),
        }
    }
}

/// A SASL mechanism krust speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): the password travels as is; use it over TLS.
    Plain,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512` (RFC 5802, 7677).
    Scram(ScramHash),
    /// `OAUTHBEARER` (KIP-255) with a token provider.
    OAuthBearer,
}

impl FromStr for SaslMechanism {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::Scram(ScramHash::Sha256)),
            "SCRAM-SHA-512" => Ok(SaslMechanism::Scram(ScramHash::Sha512)),
            "OAUTHBEARER" => Ok(SaslMechanism::OAuthBearer),
            "GSSAPI" => Err("GSSAPI (Kerberos) is not supported; krust speaks PLAIN, \
                             SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER"
                .into()),
            _ => Err("expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER".into()),
        }
    }
}

/// Where a PEM document comes from: a file, or the text itself.
#[derive(Clone, Debug)]
pub enum PemSource {
    /// A file (`ssl.ca.location` and friends).
    File(PathBuf),
    /// The PEM text (`ssl.ca.pem` and friends); kept as a secret, since a
    /// private key may be one.
    Inline(Secret),
}

/// The TLS settings.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// The CA certificates that sign the brokers' certificates; `None`:
    /// the system's trusted roots.
    pub ca: Option<PemSource>,
    /// The client certificate chain, for listeners that require one (mTLS).
    pub cert: Option<PemSource>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1;
    /// encrypted PKCS#8 with [`TlsSettings::key_password`]).
    pub key: Option<PemSource>,
    /// `ssl.key.password`.
    pub key_password: Option<Secret>,
    /// Check that the broker's certificate names the host connected to
    /// (`ssl.endpoint.identification.algorithm=https`, the default).
    pub verify_hostname: bool,
    /// `ssl.enabled.protocols`: the TLS versions offered; `None`: 1.3 and
    /// 1.2 (rustls has nothing older).
    pub versions: Option<Vec<TlsVersion>>,
}

/// A TLS protocol version (`ssl.enabled.protocols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca: None,
            cert: None,
            key: None,
            key_password: None,
            verify_hostname: true,
            versions: None,
        }
    }
}

/// The resolved security of a client, shared by all its connections.
#[derive(Clone, Debug, Default)]
pub struct Security {
    protocol: SecurityProtocol,
    #[cfg(feature = "tls")]
    tls: Option<tls::TlsConnector>,
    sasl: Option<SaslCredentials>,
    handshake_v0: bool,
}

impl Security {
    /// Plaintext, no SASL.
    pub fn plaintext() -> Security {
        Security::default()
    }

    /// The protocol.
    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<&tls::TlsConnector> {
        self.tls.as_ref()
    }

    pub(crate) fn sasl(&self) -> Option<&SaslCredentials> {
        self.sasl.as_ref()
    }

    pub(crate) fn sasl_handshake_v0(&self) -> bool {
        self.handshake_v0
    }
}

#[cfg(feature = "tls")]
pub(crate) use tls::{failure_of as tls_failure_of, host_of};
