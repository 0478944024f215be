//! The SASL exchange on a new connection, after ApiVersions and before the
//! connection is handed out: SaslHandshake v1 names the mechanism, then
//! SaslAuthenticate (v0–v2, KIP-152) carries its messages as ordinary
//! Kafka requests through the connection task. The reply's
//! `session_lifetime_ms` (KIP-368) says when the session must be renewed.
//!
//! A broker whose SaslHandshake stops at v0 (before 1.0, no
//! SaslAuthenticate) takes the messages as raw length-prefixed tokens
//! after the handshake, without a request header, and answers a failure
//! by closing the connection; the same mechanisms run over that.

use std::time::Duration;

use bytes::Bytes;
use krust_codec::generated::{SaslAuthenticateRequest, SaslHandshakeRequest};
use krust_codec::{ApiKey, ErrorCode, KString};

use super::Secret;
use super::oauth::{self, SharedTokenProvider};
use super::scram::{Scram, ScramError, ScramHash};
use crate::connection::Connection;
use crate::error::Error;

/// Why SASL authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslFailure {
    /// The broker refused the credentials (SASL_AUTHENTICATION_FAILED),
    /// with its message.
    #[error("the broker refused the credentials: {message}")]
    AuthenticationFailed {
        /// The broker's message.
        message: String,
    },
    /// The listener does not enable the mechanism
    /// (UNSUPPORTED_SASL_MECHANISM); `enabled` are the ones it does.
    #[error("the listener does not enable it; it enables [{}] (set sasl.mechanism)", .enabled.join(", "))]
    MechanismNotEnabled {
        /// The mechanisms the listener enables.
        enabled: Vec<String>,
    },
    /// The listener does not take SASL at all (ILLEGAL_SASL_STATE to the
    /// handshake): it is a PLAINTEXT or SSL listener.
    #[error(
        "the listener does not take SASL (is it a PLAINTEXT or SSL listener? then set security.protocol to match): {message}"
    )]
    NotSaslListener {
        /// The broker's message.
        message: String,
    },
    /// The SCRAM exchange failed on our side (the server is not who it
    /// says, or does not speak SCRAM as Kafka does).
    #[error("{0}")]
    Scram(#[from] ScramError),
    /// The OAUTHBEARER token provider failed.
    #[error("the token provider failed: {0}")]
    TokenProvider(String),
    /// The broker answered with another error code.
    #[error("{api} failed with {code}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The API.
        api: ApiKey,
        /// The code.
        code: ErrorCode,
        /// The broker's message.
        message: Option<String>,
    },
}

/// The resolved SASL credentials of a client.
#[derive(Clone, Debug)]
pub(crate) enum SaslCredentials {
    Plain {
        username: String,
        password: Secret,
    },
    Scram {
        hash: ScramHash,
        username: String,
        password: Secret,
    },
    OAuthBearer {
        provider: SharedTokenProvider,
    },
}

impl SaslCredentials {
    pub(crate) fn mechanism(&self) -> &'static str {
        match self {
            SaslCredentials::Plain { .. } => "PLAIN",
            SaslCredentials::Scram { hash, .. } => hash.mechanism(),
            SaslCredentials::OAuthBearer { .. } => "OAUTHBEARER",
        }
    }
}

/// A server message and the session lifetime it grants (0: none).
struct Reply {
    auth_bytes: Bytes,
    session_lifetime_ms: i64,
}

/// Authenticate `conn` with `creds` (over SaslHandshake v0 and raw tokens
/// when `handshake_v0`, or when the broker has nothing newer), each
/// request bounded by `timeout`;
/// returns the session lifetime the broker set, if it set one.
pub(crate) async fn authenticate(
    conn: &Connection,
    creds: &SaslCredentials,
    handshake_v0: bool,
    timeout: Duration,
) -> Result<Option<Duration>, Error> {
    let mechanism = creds.mechanism();
    let fail = |cause: SaslFailure| Error::Sasl {
        broker: conn.addr().to_owned(),
        mechanism,
        cause,
    };
    // v1 and SaslAuthenticate (KIP-152) on every broker since 1.0; v0 and
    // raw tokens before that, or when asked to.
    let hs_version = if handshake_v0 {
        0
    } else {
        conn.negotiate(ApiKey::SaslHandshake, (0, 1))?
    };
    let hs = conn
        .send_auth_at(
            &SaslHandshakeRequest {
                mechanism: KString::from(mechanism),
            },
            hs_version,
            timeout,
        )
        .await?;
    match ErrorCode(hs.error_code) {
        ErrorCode::NONE => {}
        ErrorCode::UNSUPPORTED_SASL_MECHANISM => {
            return Err(fail(SaslFailure::MechanismNotEnabled {
                enabled: hs.mechanisms.iter().map(|m| m.to_string()).collect(),
            }));
        }
        ErrorCode::ILLEGAL_SASL_STATE => {
            return Err(fail(SaslFailure::NotSaslListener {
                message: format!(
                    "SaslHandshake refused with ILLEGAL_SASL_STATE; enabled mechanisms [{}]",
                    hs.mechanisms
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }));
        }
        code => {
            return Err(fail(SaslFailure::Broker {
                api: ApiKey::SaslHandshake,
                code,
                message: None,
            }));
        }
    }
    let raw = hs_version == 0;
    let version = if raw {
        0
    } else {
        conn.negotiate(ApiKey::SaslAuthenticate, (0, 2))?
    };
    let step = |bytes: Vec<u8>| async move {
        if raw {
            return match conn.raw_sasl_token(&bytes, timeout).await {
                Ok(token) => Ok(Reply {
                    auth_bytes: token,
                    session_lifetime_ms: 0,
                }),
                // The only refusal v0 has.
                Err(Error::Io { .. }) => Err(fail(SaslFailure::AuthenticationFailed {
                    message: "the broker closed the connection (after SaslHandshake v0 it \
                              sends no reason; the credentials are the likely cause)"
                        .into(),
                })),
                Err(e) => Err(e),
            };
        }
        let reply = conn
            .send_auth_at(
                &SaslAuthenticateRequest {
                    auth_bytes: Bytes::from(bytes),
                    ..Default::default()
                },
                version,
                timeout,
            )
            .await?;
        match ErrorCode(reply.error_code) {
            ErrorCode::NONE => Ok(Reply {
                auth_bytes: reply.auth_bytes,
                session_lifetime_ms: reply.session_lifetime_ms,
            }),
            code => {
                let message = reply.error_message.map(|m| m.to_string());
                Err(fail(if code == ErrorCode::SASL_AUTHENTICATION_FAILED {
                    SaslFailure::AuthenticationFailed {
                        message: message.unwrap_or_default(),
                    }
                } else {
                    SaslFailure::Broker {
                        api: ApiKey::SaslAuthenticate,
                        code,
                        message,
                    }
                }))
            }
        }
    };
    let last = match creds {
        SaslCredentials::Plain { username, password } => {
            let msg = format!("\0{username}\0{}", password.expose()).into_bytes();
            step(msg).await?
        }
        SaslCredentials::Scram {
            hash,
            username,
            password,
        } => {
            let mut scram = Scram::new(*hash, username, password.clone());
            let first = step(scram.client_first()).await?;
            let final_msg = scram
                .client_final(&first.auth_bytes)
                .map_err(|e| fail(e.into()))?;
            let last = step(final_msg).await?;
            scram
                .verify_server_final(&last.auth_bytes)
                .map_err(|e| fail(e.into()))?;
            last
        }
        SaslCredentials::OAuthBearer { provider } => {
            let token = provider
                .0
                .token()
                .await
                .map_err(|e| fail(SaslFailure::TokenProvider(e.to_string())))?;
            let reply = step(oauth::initial_response(&token)).await?;
            if !reply.auth_bytes.is_empty() {
                // RFC 7628 3.2.2: an error challenge (JSON) is answered
                // with a lone %x01, after which the server fails the
                // exchange; a broker that accepts anyway is not trusted.
                let detail = String::from_utf8_lossy(&reply.auth_bytes).into_owned();
                step(vec![1]).await?;
                return Err(fail(SaslFailure::AuthenticationFailed { message: detail }));
            }
            reply
        }
    };
    Ok(u64::try_from(last.session_lifetime_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis))
}
