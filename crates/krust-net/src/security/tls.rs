//! TLS with rustls: the client configuration built once from the PEM
//! settings, the handshake over a new TCP connection, and the handshake's
//! failures sorted into the causes a user can act on.
//!
//! The cryptography is the process's default rustls `CryptoProvider` when
//! the application installed one, else graviola's (pure Rust with inline
//! assembly: no C compiler or assembler needed to build it).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{PemSource, TlsFailure, TlsSettings, TlsVersion};
use crate::error::Error;
use crate::props::ConfigError;

/// The client side of TLS, built once per client from its settings.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector")
    }
}

/// The process's default provider when the application installed one,
/// else graviola's where it runs (x86_64, aarch64).
fn provider() -> Result<Arc<CryptoProvider>, ConfigError> {
    if let Some(p) = CryptoProvider::get_default() {
        return Ok(p.clone());
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    return Ok(Arc::new(rustls_graviola::default_provider()));
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    Err(ConfigError::Conflict(
        "TLS on this architecture needs a rustls CryptoProvider installed as the process \
         default (rustls::crypto::CryptoProvider::install_default, e.g. ring's or \
         aws-lc-rs's): graviola, the built-in one, serves x86_64 and aarch64 only"
            .into(),
    ))
}

fn read_pem(source: &PemSource, key: &'static str) -> Result<Vec<u8>, ConfigError> {
    match source {
        PemSource::File(path) => std::fs::read(path).map_err(|e| ConfigError::BadValue {
            key: key.to_owned(),
            value: path.display().to_string(),
            reason: format!("cannot read the file: {e}"),
        }),
        PemSource::Inline(pem) => Ok(pem.expose().as_bytes().to_vec()),
    }
}

fn bad(key: &'static str, source: &PemSource, reason: String) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_owned(),
        value: match source {
            PemSource::File(p) => p.display().to_string(),
            PemSource::Inline(_) => "[inline PEM]".to_owned(),
        },
        reason,
    }
}

fn certificates(
    source: &PemSource,
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read_pem(source, key)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(key, source, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad(key, source, "holds no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn private_key(
    source: &PemSource,
    password: Option<&super::Secret>,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let key = "ssl.key.location";
    let pem = read_pem(source, key)?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let password = password.ok_or_else(|| {
            bad(
                key,
                source,
                "the key is encrypted: set ssl.key.password".into(),
            )
        })?;
        let (_, doc) = pkcs8::SecretDocument::from_pem(text.trim())
            .map_err(|e| bad(key, source, format!("not a PEM key: {e}")))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| bad(key, source, format!("not an encrypted PKCS#8 key: {e}")))?;
        let plain = info.decrypt(password.expose()).map_err(|_| {
            bad(
                key,
                source,
                "cannot decrypt the key: wrong ssl.key.password or an unsupported cipher".into(),
            )
        })?;
        return Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        bad(
            key,
            source,
            format!("no PKCS#8, PKCS#1 or SEC1 private key: {e}"),
        )
    })
}

impl TlsConnector {
    pub(crate) fn new(settings: &TlsSettings) -> Result<TlsConnector, ConfigError> {
        let provider = provider()?;
        let mut roots = RootCertStore::empty();
        match &settings.ca {
            Some(ca) => {
                for cert in certificates(ca, "ssl.ca.location")? {
                    roots.add(cert).map_err(|e| {
                        bad("ssl.ca.location", ca, format!("not a CA certificate: {e}"))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(ConfigError::Conflict(format!(
                        "TLS needs a CA: the system has no trusted roots ({}); set ssl.ca.location",
                        found
                            .errors
                            .first()
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "none found".into())
                    )));
                }
            }
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| ConfigError::Conflict(format!("cannot build the TLS verifier: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = if settings.verify_hostname {
            webpki
        } else {
            Arc::new(AnyName(webpki))
        };
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = match &settings.versions {
            None => rustls::DEFAULT_VERSIONS.to_vec(),
            Some(vs) => vs
                .iter()
                .map(|v| match v {
                    TlsVersion::Tls12 => &rustls::version::TLS12,
                    TlsVersion::Tls13 => &rustls::version::TLS13,
                })
                .collect(),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| ConfigError::Conflict(format!("TLS provider: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    certificates(cert, "ssl.certificate.location")?,
                    private_key(key, settings.key_password.as_ref())?,
                )
                .map_err(|e| {
                    bad(
                        "ssl.key.location",
                        key,
                        format!("does not fit the certificate: {e}"),
                    )
                })?,
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(ConfigError::Conflict(
                    "ssl.certificate.location is set without ssl.key.location".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::Conflict(
                    "ssl.key.location is set without ssl.certificate.location".into(),
                ));
            }
        };
        Ok(TlsConnector {
            config: Arc::new(config),
        })
    }

    /// The TLS handshake over `tcp` with the broker at `addr` (`host:port`).
    pub(crate) async fn connect(
        &self,
        addr: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, Error> {
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_owned()).map_err(|e| Error::Tls {
            broker: addr.to_owned(),
            cause: TlsFailure::Other(format!("{host} is not a host name: {e}")),
        })?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Tls {
                broker: addr.to_owned(),
                cause: classify(&e, host),
            })
    }
}

/// The host of `host:port` or `[v6]:port`.
pub(crate) fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The TLS failure an I/O error of a TLS stream carries, if it carries one.
pub(crate) fn failure_of(e: &std::io::Error, host: &str) -> Option<TlsFailure> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(|r| classify_rustls(r, host))
}

fn classify(e: &std::io::Error, host: &str) -> TlsFailure {
    if let Some(f) = failure_of(e, host) {
        return f;
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::BrokenPipe => TlsFailure::Closed,
        _ => TlsFailure::Other(e.to_string()),
    }
}

fn classify_rustls(e: &rustls::Error, host: &str) -> TlsFailure {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::HostnameMismatch {
                    host: host.to_owned(),
                }
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsFailure::Expired(format!("{c:?}")),
            other => TlsFailure::Untrusted(format!("{other:?}")),
        },
        E::InvalidMessage(m) => TlsFailure::NotTls(format!("{m:?}")),
        E::AlertReceived(a) => TlsFailure::Alert(format!("{a:?}")),
        other => TlsFailure::Other(other.to_string()),
    }
}

/// The webpki verifier with the name check left out
/// (`ssl.endpoint.identification.algorithm=none`): the chain, the
/// validity period and the signatures are still checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_cut_from_the_address() {
        assert_eq!(host_of("broker-1.example:9093"), "broker-1.example");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }
}
