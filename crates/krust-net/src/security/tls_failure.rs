//! The causes of a failed TLS handshake, as a user can act on them
//! (defined without the `tls` feature too: [`crate::Error::Tls`] names it).

/// Why a TLS handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The broker's certificate does not chain to a trusted CA
    /// (`ssl.ca.location`).
    #[error(
        "the broker's certificate is not trusted ({0}); is ssl.ca.location the CA that signed it?"
    )]
    Untrusted(String),
    /// The broker's certificate has expired or is not valid yet.
    #[error("the broker's certificate is outside its validity period ({0})")]
    Expired(String),
    /// The broker's certificate is not issued for the host connected to.
    #[error(
        "the broker's certificate is not valid for {host} (hostname verification; ssl.endpoint.identification.algorithm=none turns it off)"
    )]
    HostnameMismatch {
        /// The host name or address connected to.
        host: String,
    },
    /// The peer answered with bytes that are not TLS.
    #[error(
        "the peer does not speak TLS ({0}); is it a PLAINTEXT listener? then set security.protocol=PLAINTEXT or SASL_PLAINTEXT"
    )]
    NotTls(String),
    /// The peer closed the connection during the handshake: what a
    /// Kafka PLAINTEXT listener does to a TLS ClientHello.
    #[error(
        "the peer closed the connection during the handshake; is it a PLAINTEXT listener (then set security.protocol=PLAINTEXT or SASL_PLAINTEXT)?"
    )]
    Closed,
    /// The broker refused the handshake with an alert; `bad_certificate`
    /// or `certificate_required` mean it refused our client certificate.
    #[error("the broker sent the alert {alert}{hint}", alert = .0, hint = client_cert_hint(.0))]
    Alert(String),
    /// The peer accepted the TCP connection and did not answer the
    /// ClientHello in time: a hung broker (retried, as a timeout is).
    #[error("no answer to the TLS ClientHello within {0:?}")]
    NoAnswer(std::time::Duration),
    /// Anything else rustls reported.
    #[error("{0}")]
    Other(String),
}

fn client_cert_hint(alert: &str) -> &'static str {
    match alert {
        "BadCertificate" | "CertificateRequired" | "UnknownCA" | "CertificateUnknown" => {
            ": it refused our client certificate (ssl.certificate.location, ssl.key.location)"
        }
        _ => "",
    }
}
