//! Bootstrap: try the configured addresses in order until one gives a Kafka
//! connection (docs/ARCHITECTURE.md, Connections: Bootstrap).
//!
//! An address whose peer showed that it is not a working Kafka broker
//! (HTTP, an oversized frame or TLS record, undecodable bytes, a wrong
//! correlation id, a handshake reply cut mid-frame or never completed)
//! fails at once and is not tried again; unreachable addresses are retried
//! with backoff until the bootstrap timeout. The error then names, for each
//! address, the most specific cause it showed ([`stage`]), not the last:
//! a peer that answered garbage and then stopped listening is reported for
//! the garbage, not as "Connection refused".

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::time::Instant;

use crate::connection::Connection;
use crate::error::Error;
use crate::pool::PoolConfig;

/// How far into a Kafka conversation an attempt got, so that the error
/// reports the furthest (most specific) one per address. Higher is more
/// specific; documented for users on [`Error::Bootstrap`].
///
/// 5. the peer answered and the answer rules it out (not Kafka, no common
///    version, an error code, anything not retriable);
/// 4. it accepted, then closed or reset the connection without a reply;
/// 3. it accepted and did not answer within the request timeout;
/// 2. the connection was refused or the host unreachable (a host answered:
///    nothing listens there);
/// 1. the TCP connect timed out (nothing answered at all);
/// 0. the name did not resolve, or anything else.
fn stage(e: &Error) -> u8 {
    match e {
        _ if !e.is_retriable() => 5,
        Error::Broker { .. } => 5,
        Error::Io { source, .. } if source.kind() == ErrorKind::TimedOut => 3,
        Error::Io { .. } | Error::Closed { .. } => 4,
        Error::Timeout { .. } | Error::DeadlineExceeded { .. } => 3,
        Error::Tls { .. } => 3,
        Error::Connect { source, .. } => match source.kind() {
            ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::AddrNotAvailable => 2,
            ErrorKind::TimedOut => 1,
            _ => 0,
        },
        _ => 0,
    }
}

/// Try the bootstrap addresses in order until one gives a Kafka connection.
pub(crate) async fn bootstrap_connect(config: &PoolConfig) -> Result<Connection, Error> {
    let deadline = Instant::now() + config.bootstrap_timeout;
    let mut worst: HashMap<&str, Error> = HashMap::new();
    let mut failed_for_good: HashSet<&str> = HashSet::new();
    let mut round = 0u32;
    let distinct: HashSet<&str> = config.bootstrap.iter().map(String::as_str).collect();
    let attempts = |worst: &mut HashMap<&str, Error>| Error::Bootstrap {
        attempts: config
            .bootstrap
            .iter()
            .filter_map(|a| worst.remove(a.as_str()).map(|e| (a.clone(), e)))
            .collect(),
    };
    loop {
        for addr in &config.bootstrap {
            let addr = addr.as_str();
            if failed_for_good.contains(addr) || Instant::now() >= deadline {
                continue;
            }
            match Connection::probe(addr, &config.connection, deadline).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!(broker = addr, error = %e, "bootstrap address failed");
                    // Not Kafka, or a broker that refuses us: retrying hides the cause.
                    if !e.is_retriable() {
                        failed_for_good.insert(addr);
                    }
                    if worst.get(addr).is_none_or(|seen| stage(&e) >= stage(seen)) {
                        worst.insert(addr, e);
                    }
                }
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if failed_for_good.len() >= distinct.len() || remaining.is_zero() {
            return Err(attempts(&mut worst));
        }
        round = round.saturating_add(1);
        tokio::time::sleep(config.reconnect_backoff.delay(round).min(remaining)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use krust_codec::frame::FrameError;
    use krust_codec::{ApiKey, ErrorCode};

    use super::*;
    use crate::error::ProtocolViolation;

    fn io(kind: ErrorKind) -> Arc<std::io::Error> {
        Arc::new(std::io::Error::new(kind, "x"))
    }

    #[test]
    fn the_stages_order_as_documented() {
        let broker = "b".to_owned();
        let ordered = [
            Error::Connect {
                broker: broker.clone(),
                source: io(ErrorKind::NotFound),
            },
            Error::Connect {
                broker: broker.clone(),
                source: io(ErrorKind::TimedOut),
            },
            Error::Connect {
                broker: broker.clone(),
                source: io(ErrorKind::ConnectionRefused),
            },
            Error::Timeout {
                api: ApiKey::ApiVersions,
                broker: broker.clone(),
                elapsed: Duration::from_secs(1),
            },
            Error::Io {
                broker: broker.clone(),
                source: io(ErrorKind::UnexpectedEof),
            },
            Error::NotKafka {
                broker: broker.clone(),
                cause: ProtocolViolation::Frame(FrameError::TooLarge { size: 1, max: 0 }),
            },
        ];
        let stages: Vec<u8> = ordered.iter().map(stage).collect();
        assert_eq!(stages, [0, 1, 2, 3, 4, 5]);
        let refused = Error::broker(ApiKey::ApiVersions, ErrorCode::UNSUPPORTED_VERSION, None);
        assert_eq!(stage(&refused), 5);
    }
}
