//! How a connection is established: the TCP connect, the TLS handshake,
//! and SASL with its re-authentication (docs/ARCHITECTURE.md, Security).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use krust_codec::ApiKey;
use krust_codec::generated::Request;
use tokio::net::TcpStream;

use super::{Connection, ConnectionConfig, RawRequest};
use crate::error::Error;
use crate::security::Transport;
use crate::security::sasl::{self, SaslCredentials};
#[cfg(feature = "tls")]
use crate::security::tls_failure_of;
use crate::throttle::ThrottleTime;

impl Connection {
    /// A failure of an established TLS stream that rustls explains (an
    /// alert after the handshake: TLS 1.3 servers refuse a client
    /// certificate then) as the [`Error::Tls`] it is.
    pub(super) fn tls_cause(&self, e: Error, config: &ConnectionConfig) -> Error {
        #[cfg(feature = "tls")]
        if let Error::Io { broker, source } = &e
            && config.security.tls().is_some()
            && let Some(cause) = tls_failure_of(source, crate::security::host_of(broker))
        {
            return Error::Tls {
                broker: broker.clone(),
                cause,
            };
        }
        let _ = config;
        e
    }

    /// SASL authentication when the configuration has it, and the
    /// re-authentication before the session the broker granted ends.
    pub(super) async fn authenticate(
        &self,
        config: &ConnectionConfig,
        timeout: Duration,
    ) -> Result<(), Error> {
        let Some(creds) = config.security.sasl() else {
            return Ok(());
        };
        let v0 = config.security.sasl_handshake_v0();
        let lifetime = sasl::authenticate(self, creds, v0, timeout).await?;
        if let Some(lifetime) = lifetime {
            self.reauthenticate_within(lifetime, creds.clone(), config.request_timeout);
        }
        Ok(())
    }

    /// KIP-368: authenticate again before `lifetime` ends, and after each
    /// new session again before it ends, while the connection lives. As
    /// Java does, at a random point between 85 and 95 % of the lifetime,
    /// and once the replies in flight are in, so that the exchange does not
    /// queue behind a request the broker holds (a JoinGroup, a Fetch's long
    /// poll) past its own timeout. That may be after the session's end:
    /// Kafka takes a SaslHandshake that comes late, as the first request
    /// after the expiry (Kafka 4.4.0: tests/security.rs, a_re_authentication_waits_for_the_requests_the_broker_holds). A failure closes the
    /// connection with its error.
    fn reauthenticate_within(&self, lifetime: Duration, creds: SaslCredentials, timeout: Duration) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut lifetime = lifetime;
            loop {
                tokio::time::sleep(lifetime.mul_f64(0.85 + fastrand::f64() * 0.10)).await;
                let Some(inner) = weak.upgrade() else { return };
                let conn = Connection { inner };
                if conn.is_closed() {
                    return;
                }
                let Some(gate) = conn.inner.gate.as_ref() else {
                    return;
                };
                let _exclusive = gate.write().await;
                // Each request in flight ends by its own timeout at the
                // latest (which closes the connection).
                while conn.in_flight() > 0 && !conn.is_closed() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                match sasl::authenticate(&conn, &creds, false, timeout).await {
                    Ok(Some(next)) => {
                        tracing::debug!(
                            broker = conn.addr(),
                            lifetime_ms = next.as_millis() as u64,
                            "re-authenticated"
                        );
                        lifetime = next;
                    }
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(broker = conn.addr(), error = %e, "re-authentication failed: closing the connection");
                        conn.inner.shared.close(e);
                        return;
                    }
                }
            }
        });
    }

    /// Send a SASL request past the re-authentication gate (the exchange
    /// holds it, or there is none yet).
    pub(crate) async fn send_auth_at<R>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        self.send_timed(req, version, timeout, false).await
    }

    /// After SaslHandshake v0: send one raw SASL token (length-prefixed, no
    /// request header) and wait for the broker's raw token.
    pub(crate) async fn raw_sasl_token(
        &self,
        token: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let len = i32::try_from(token.len()).map_err(|_| Error::Encode {
            api: ApiKey::SaslHandshake,
            source: krust_codec::EncodeError::TooLong {
                what: "SASL token",
                length: token.len(),
            },
        })?;
        let mut frame = BytesMut::with_capacity(4 + token.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(token);
        self.round_trip_as(
            RawRequest {
                api: ApiKey::SaslHandshake,
                version: 0,
                frame: frame.freeze(),
                correlation_id: self.next_correlation_id(),
                expect_response: true,
                timeout: Some(timeout),
            },
            false,
            true,
        )
        .await
    }
}

/// The TCP connect within `connect_timeout`, then the TLS handshake within
/// `handshake_timeout` when the configuration has TLS.
pub(super) async fn open(
    addr: &str,
    config: &ConnectionConfig,
    connect_timeout: Duration,
    handshake_timeout: Duration,
) -> Result<Transport, Error> {
    let tcp = tokio::time::timeout(connect_timeout, tcp_connect(addr))
        .await
        .map_err(|_| Error::Connect {
            broker: addr.to_owned(),
            source: Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {connect_timeout:?}"),
            )),
        })??;
    #[cfg(feature = "tls")]
    if let Some(tls) = config.security.tls() {
        return match tokio::time::timeout(handshake_timeout, tls.connect(addr, tcp)).await {
            Ok(stream) => Ok(Transport::Tls(Box::new(stream?))),
            Err(_) => Err(Error::Tls {
                broker: addr.to_owned(),
                cause: crate::security::TlsFailure::NoAnswer(handshake_timeout),
            }),
        };
    }
    let _ = (config, handshake_timeout);
    Ok(Transport::Plain(tcp))
}

async fn tcp_connect(addr: &str) -> Result<TcpStream, Error> {
    let connect_err = |e: std::io::Error| Error::Connect {
        broker: addr.to_owned(),
        source: Arc::new(e),
    };
    let mut last = None;
    for sa in tokio::net::lookup_host(addr).await.map_err(connect_err)? {
        match TcpStream::connect(sa).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(connect_err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the name resolved to no address",
        )
    })))
}
