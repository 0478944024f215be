//! Coordinator lookup (FindCoordinator; KIP-699 batches several keys in one
//! request from v4 on, older versions take one key per request), cached
//! per (type, key) and dropped on NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE.

use krust_codec::generated::{FindCoordinatorRequest, FindCoordinatorResponse};
use krust_codec::{ApiKey, ErrorCode, KString, Message};

use crate::connection::Connection;
use crate::error::Error;
use crate::metadata::BrokerInfo;
use crate::pool::{Lane, Pool, lock};

/// What a coordinator coordinates (FindCoordinator `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CoordinatorType {
    /// A consumer group (key: group id).
    Group,
    /// A transactional producer (key: transactional id).
    Transaction,
}

impl CoordinatorType {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        }
    }
}

/// Where one key's coordinator is, or why it is not known.
pub type CoordinatorResult = Result<i32, Error>;

fn lookup_error(key: &str, code: i16, message: Option<&KString>) -> Option<Error> {
    let code = ErrorCode::from(code);
    (!code.is_ok()).then(|| Error::Broker {
        api: ApiKey::FindCoordinator,
        broker: None,
        code,
        topic: Some(key.to_owned()),
        partition: None,
        message: message.map(|m| m.as_str().to_owned()),
    })
}

impl Pool {
    /// The connection to the coordinator of `key` on its broker's
    /// [`Lane::Group`] (a request it holds delays no Metadata, ListOffsets
    /// or Produce to that broker; JoinGroup goes on [`Lane::Join`]), looked
    /// up (with retries) when not cached.
    pub async fn coordinator(&self, kind: CoordinatorType, key: &str) -> Result<Connection, Error> {
        self.coordinator_lane(kind, key, Lane::Group).await
    }

    /// [`Pool::coordinator`] on another of its lanes ([`Lane::Join`] for
    /// JoinGroup).
    pub async fn coordinator_lane(
        &self,
        kind: CoordinatorType,
        key: &str,
        lane: Lane,
    ) -> Result<Connection, Error> {
        let id = self.coordinator_id(kind, key).await?;
        self.broker_lane(id, lane).await
    }

    /// The broker id of the coordinator of `key`, looked up (with retries)
    /// when not cached.
    pub async fn coordinator_id(&self, kind: CoordinatorType, key: &str) -> Result<i32, Error> {
        let cached = lock(&self.inner.coordinators)
            .get(&(kind, key.to_owned()))
            .map(|b| b.id);
        if let Some(id) = cached {
            return Ok(id);
        }
        self.inner
            .config
            .retry
            .run(
                ApiKey::FindCoordinator,
                |_| async {
                    let mut found = self.find_coordinators(kind, &[key]).await?;
                    found.pop().map(|(_, r)| r).unwrap_or_else(|| {
                        Err(Error::broker(
                            ApiKey::FindCoordinator,
                            ErrorCode::COORDINATOR_NOT_AVAILABLE,
                            None,
                        ))
                    })
                },
                |e| {
                    self.note_error(e);
                },
            )
            .await
    }

    /// Forget the cached coordinator of `key` (on NOT_COORDINATOR or
    /// COORDINATOR_NOT_AVAILABLE from it).
    pub fn invalidate_coordinator(&self, kind: CoordinatorType, key: &str) {
        lock(&self.inner.coordinators).remove(&(kind, key.to_owned()));
    }

    /// Look up the coordinators of `keys` in one request where the broker
    /// supports batching (v4+), else one request per key; caches the ones
    /// found. One result per key, in order.
    pub async fn find_coordinators(
        &self,
        kind: CoordinatorType,
        keys: &[&str],
    ) -> Result<Vec<(String, CoordinatorResult)>, Error> {
        let conn = self.any_connection().await?;
        let min = if kind == CoordinatorType::Group { 0 } else { 1 };
        let (_, ours_max) = FindCoordinatorRequest::VALID_VERSIONS;
        let version = conn.negotiate(ApiKey::FindCoordinator, (min, ours_max))?;
        let mut out = Vec::with_capacity(keys.len());
        if version >= 4 {
            let req = FindCoordinatorRequest {
                key_type: kind.key_type(),
                coordinator_keys: keys.iter().map(|k| KString::from(*k)).collect(),
                ..Default::default()
            };
            let resp: FindCoordinatorResponse = conn.send_at(&req, version).await?;
            for key in keys {
                let found = resp.coordinators.iter().find(|c| c.key.as_str() == *key);
                let r = match found {
                    None => Err(Error::broker(
                        ApiKey::FindCoordinator,
                        ErrorCode::COORDINATOR_NOT_AVAILABLE,
                        Some("the broker's reply does not mention this key"),
                    )),
                    Some(c) => match lookup_error(key, c.error_code, c.error_message.as_ref()) {
                        Some(e) => Err(e.from_broker(conn.addr())),
                        None => Ok(self.remember(kind, key, c.node_id, &c.host, c.port)),
                    },
                };
                out.push(((*key).to_owned(), r));
            }
        } else {
            for key in keys {
                let req = FindCoordinatorRequest {
                    key: KString::from(*key),
                    key_type: kind.key_type(),
                    ..Default::default()
                };
                let resp: FindCoordinatorResponse = conn.send_at(&req, version).await?;
                let r = match lookup_error(key, resp.error_code, resp.error_message.as_ref()) {
                    Some(e) => Err(e.from_broker(conn.addr())),
                    None => Ok(self.remember(kind, key, resp.node_id, &resp.host, resp.port)),
                };
                out.push(((*key).to_owned(), r));
            }
        }
        Ok(out)
    }

    fn remember(
        &self,
        kind: CoordinatorType,
        key: &str,
        id: i32,
        host: &KString,
        port: i32,
    ) -> i32 {
        // With its address: the coordinator may be a broker the metadata
        // does not list yet (see `PoolInner::coordinators`).
        let broker = BrokerInfo {
            id,
            host: host.as_str().to_owned(),
            port,
            rack: None,
        };
        lock(&self.inner.coordinators).insert((kind, key.to_owned()), broker);
        id
    }
}
