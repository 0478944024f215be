//! Errors of the networking layer. Every variant names the broker address
//! (or the API) it concerns, so a failure in a log line is actionable.
//!
//! Errors are `Clone` (I/O errors sit behind an `Arc`) because a poisoned
//! connection fails every waiting request with the same error.

use std::sync::Arc;
use std::time::Duration;

use krust_codec::frame::FrameError;
use krust_codec::{ApiKey, DecodeError, EncodeError, ErrorCode};
use thiserror::Error;

/// Why a peer is judged not to be a (working) Kafka broker.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// The bytes are not a Kafka frame (HTTP, TLS, oversize, negative length).
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// A frame arrived but its contents do not decode as the expected reply.
    #[error("undecodable reply: {0}")]
    Decode(#[from] DecodeError),
    /// A reply's correlation id is not the one of the oldest request in flight.
    #[error("reply carries correlation id {got}, expected {expected}")]
    CorrelationMismatch {
        /// The id of the oldest request in flight.
        expected: i32,
        /// The id the reply carries.
        got: i32,
    },
    /// A reply arrived when no request was in flight.
    #[error("unsolicited reply with correlation id {got}")]
    Unsolicited {
        /// The id the reply carries.
        got: i32,
    },
    /// The reply to the ApiVersions handshake started but never completed:
    /// the peer closed the connection mid-frame, or sent nothing more
    /// within the request timeout. A Kafka broker writes that reply (a few
    /// hundred bytes) whole, so this is what a peer speaking another
    /// protocol does; on an established connection the same thing is a
    /// disconnect ([`Error::Io`]), not this.
    #[error("{}", describe_incomplete(*.received, *.declared, *.closed))]
    IncompleteFrame {
        /// Bytes of the frame received (after its length prefix, or of the
        /// prefix itself when `declared` is `None`).
        received: usize,
        /// The length the prefix declared, when all four bytes came.
        declared: Option<i32>,
        /// Whether the peer closed the connection (else it went silent).
        closed: bool,
    },
}

fn describe_incomplete(received: usize, declared: Option<i32>, closed: bool) -> String {
    let got = match declared {
        Some(len) => format!("{received} of {len} bytes"),
        None => format!("{received} bytes of a length prefix"),
    };
    let then = if closed {
        "then the peer closed the connection"
    } else {
        "then nothing more within the request timeout"
    };
    format!("the reply never completed a frame: {got} received, {then}")
}

/// An error from `krust-net`.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading from or writing to an established connection failed, or the
    /// peer closed it (possibly mid-frame).
    #[error("I/O error on connection to {broker}: {source}")]
    Io {
        /// The broker address.
        broker: String,
        /// The cause.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The address could not be resolved or the TCP connection not made.
    #[error("cannot connect to {broker}: {source}")]
    Connect {
        /// The broker address.
        broker: String,
        /// The cause.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// What answered is not a working Kafka broker; retrying will not help.
    #[error("{broker} is not a Kafka broker: {cause}")]
    NotKafka {
        /// The broker address.
        broker: String,
        /// What it did wrong.
        #[source]
        cause: ProtocolViolation,
    },
    /// No reply within the request timeout. The connection is closed with
    /// it (its other requests fail with [`Error::Io`], `TimedOut`).
    #[error("{api} request to {broker} timed out after {elapsed:?}")]
    Timeout {
        /// The API of the request.
        api: ApiKey,
        /// The broker address.
        broker: String,
        /// How long was waited.
        elapsed: Duration,
    },
    /// The broker answered with an error code.
    #[error("{api} failed with {code}{}{}{}{}", .topic.as_ref().map(|t| format!(" for topic {t}")).unwrap_or_default(), .partition.map(|p| format!(" partition {p}")).unwrap_or_default(), .broker.as_ref().map(|b| format!(" from broker {b}")).unwrap_or_default(), .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The API of the request.
        api: ApiKey,
        /// The address of the broker that answered, when one did (a code
        /// derived from cached metadata has none).
        broker: Option<String>,
        /// The error code.
        code: ErrorCode,
        /// The topic (or group, or transactional id) the code is about.
        topic: Option<String>,
        /// The partition the code is about.
        partition: Option<i32>,
        /// The broker's error message, when it sent one.
        message: Option<String>,
    },
    /// No version of the API is supported by both sides.
    #[error("no common version of {api}: krust supports {}-{}, the broker{} {}", .ours.0, .ours.1, .broker.as_ref().map(|b| format!(" at {b}")).unwrap_or_default(), .theirs.map(|(a, b)| format!("{a}-{b}")).unwrap_or_else(|| "does not support it".into()))]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The broker's address, when a connection to it asked.
        broker: Option<String>,
        /// The versions krust can use.
        ours: (i16, i16),
        /// The versions the broker supports, `None` if it lacks the API.
        theirs: Option<(i16, i16)>,
    },
    /// The connection was closed (all handles dropped or the pool shut down).
    #[error("connection to {broker} is closed")]
    Closed {
        /// The broker address.
        broker: String,
    },
    /// A request could not be encoded.
    #[error("cannot encode {api} request: {source}")]
    Encode {
        /// The API.
        api: ApiKey,
        /// The cause.
        #[source]
        source: EncodeError,
    },
    /// A reply from a broker could not be decoded (the connection stays up).
    #[error("cannot decode {api} reply from {broker}: {source}")]
    Decode {
        /// The API.
        api: ApiKey,
        /// The broker address.
        broker: String,
        /// The cause.
        #[source]
        source: DecodeError,
    },
    /// No bootstrap address gave a working Kafka connection.
    #[error("no bootstrap broker reachable: {}", describe_attempts(.attempts))]
    Bootstrap {
        /// Every address tried and the most specific error it showed: the
        /// one that got furthest into a Kafka conversation, not the last
        /// (a peer that answered garbage, then stopped listening, is named
        /// for the garbage). From most to least specific: the peer answered
        /// and the answer rules it out ([`Error::NotKafka`], no common
        /// version, an error code); it accepted, then closed or reset the
        /// connection without a reply; it accepted and did not answer
        /// within the request timeout; the connection was refused or the
        /// host unreachable; the TCP connect timed out; the name did not
        /// resolve. Between two errors of one rank, the later.
        attempts: Vec<(String, Error)>,
    },
    /// A retried operation ran out of time; `last` is the last error an
    /// attempt returned (an attempt the deadline cut short has none: then
    /// it is the one before, or [`Error::DeadlineExceeded`]).
    #[error("{api} gave up after {attempts} attempts in {elapsed:?}: {last}")]
    RetriesExhausted {
        /// The API.
        api: ApiKey,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last attempt's error.
        #[source]
        last: Box<Error>,
    },
    /// A retried operation's deadline came while its first attempt was
    /// still running (no reply, no error yet): the attempt was dropped.
    #[error("{api} did not complete within its {deadline:?} deadline")]
    DeadlineExceeded {
        /// The API.
        api: ApiKey,
        /// The deadline of the whole operation.
        deadline: Duration,
    },
    /// A broker id is not (or no longer) in the cluster metadata.
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
    /// TLS could not be set up with the broker (its certificate, ours, or
    /// a listener that does not speak TLS). Not retried: the same
    /// handshake fails the same way.
    #[error("TLS handshake with {broker} failed: {cause}")]
    Tls {
        /// The broker address.
        broker: String,
        /// What went wrong.
        #[source]
        cause: crate::security::TlsFailure,
    },
    /// SASL authentication with the broker failed. Not retried: wrong
    /// credentials stay wrong (Java's `SaslAuthenticationException`).
    #[error("SASL {mechanism} authentication with {broker} failed: {cause}")]
    Sasl {
        /// The broker address.
        broker: String,
        /// The mechanism tried.
        mechanism: &'static str,
        /// What went wrong.
        #[source]
        cause: crate::security::SaslFailure,
    },
}

fn describe_attempts(attempts: &[(String, Error)]) -> String {
    if attempts.is_empty() {
        return "no addresses given".into();
    }
    attempts
        .iter()
        .map(|(addr, e)| format!("{addr}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Whether the same request may succeed if sent again later (possibly
    /// after a metadata refresh or a reconnect).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Io { .. } | Error::Connect { .. } | Error::Timeout { .. } => true,
            Error::DeadlineExceeded { .. } => true,
            Error::Closed { .. } | Error::UnknownBroker(_) => true,
            Error::Broker { code, .. } => code.is_retriable(),
            Error::Tls {
                cause: crate::security::TlsFailure::NoAnswer(_),
                ..
            } => true,
            Error::NotKafka { .. }
            | Error::UnsupportedVersion { .. }
            | Error::Encode { .. }
            | Error::Decode { .. }
            | Error::Bootstrap { .. }
            | Error::RetriesExhausted { .. }
            | Error::Tls { .. }
            | Error::Sasl { .. } => false,
        }
    }

    /// Whether the cluster could not be reached in time, rather than
    /// refusing: a retriable error, or a call that ran out of time
    /// ([`Error::RetriesExhausted`]) or found no bootstrap address that
    /// answered ([`Error::Bootstrap`]) while some cause was retriable. An
    /// outage, not a reason to give up for good: the brokers may come back
    /// (Java's consumer keeps trying on every retriable cause; only
    /// configuration, authorization and fencing errors end it).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::RetriesExhausted { last, .. } => last.is_transient(),
            Error::Bootstrap { attempts } => attempts.iter().any(|(_, e)| e.is_transient()),
            e => e.is_retriable(),
        }
    }

    /// Whether the error means cached metadata (leaders, coordinators) may
    /// be stale: a broker error that says so, or a lost connection.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            Error::Broker { code, .. } => {
                code.invalidates_metadata()
                    || *code == ErrorCode::NOT_COORDINATOR
                    || *code == ErrorCode::COORDINATOR_NOT_AVAILABLE
            }
            Error::Io { .. } | Error::Connect { .. } | Error::Closed { .. } => true,
            // A request timeout closes its connection: a disconnect.
            Error::Timeout { .. } => true,
            Error::UnknownBroker(_) => true,
            _ => false,
        }
    }

    /// Whether the peer is not a working Kafka broker (fail the address at
    /// once instead of retrying it until a timeout hides the cause).
    pub fn is_not_kafka(&self) -> bool {
        matches!(self, Error::NotKafka { .. })
    }

    /// The Kafka error code, for [`Error::Broker`].
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A broker error for `api` with no topic/partition context.
    pub fn broker(api: ApiKey, code: ErrorCode, message: Option<&str>) -> Error {
        Error::Broker {
            api,
            broker: None,
            code,
            topic: None,
            partition: None,
            message: message.map(str::to_owned),
        }
    }
}

impl Error {
    /// Name the broker that answered, for a [`Error::Broker`] built before
    /// the address was at hand; other variants already carry it.
    pub fn from_broker(mut self, addr: &str) -> Error {
        if let Error::Broker { broker, .. } = &mut self {
            if broker.is_none() {
                *broker = Some(addr.to_owned());
            }
        }
        self
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Error {
        Error::UnknownBroker(1)
    }

    fn denied() -> Error {
        Error::broker(
            ApiKey::Metadata,
            ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            None,
        )
    }

    fn exhausted(last: Error) -> Error {
        Error::RetriesExhausted {
            api: ApiKey::OffsetFetch,
            attempts: 3,
            elapsed: Duration::from_secs(5),
            last: Box::new(last),
        }
    }

    /// An outage (a call that ran out of time or found no bootstrap
    /// address, while some cause was retriable) is transient; a refusal is
    /// not, however it was wrapped.
    #[test]
    fn outages_are_transient_and_refusals_are_not() {
        assert!(refused().is_transient());
        assert!(!denied().is_transient());
        assert!(exhausted(refused()).is_transient());
        assert!(!exhausted(denied()).is_transient());
        assert!(
            !exhausted(refused()).is_retriable(),
            "the call itself is over"
        );
        let bootstrap = |errors: Vec<Error>| Error::Bootstrap {
            attempts: errors
                .into_iter()
                .enumerate()
                .map(|(i, e)| (format!("127.0.0.1:{}", 9000 + i), e))
                .collect(),
        };
        assert!(bootstrap(vec![denied(), exhausted(refused())]).is_transient());
        assert!(!bootstrap(vec![denied()]).is_transient());
    }
}
