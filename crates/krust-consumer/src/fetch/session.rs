//! KIP-227 incremental fetch sessions, sans-io.
//!
//! The first request to a broker is a full one (session id 0, epoch 0:
//! "full, and create a session if you can"). When the broker answers a
//! session id, later requests are incremental: they carry only the
//! partitions that are new or whose fetch offset, leader epoch or max bytes
//! changed, list the partitions to drop in `forgotten_topics_data`, and
//! count the epoch up (wrapping to 1 after `i32::MAX`, since 0 means "new
//! session" and -1 "close"). Any top-level error, a failed request or a
//! request built and never answered resets the session: the next request is
//! full again and the broker evicts the stale session from its cache.
//!
//! A broker that answers session id 0 keeps no session for us: every
//! request stays full with session id 0 and epoch 0, as the Java client
//! does (epoch -1 would say "no session" too, but 0 lets a broker whose
//! session cache has room again start one). Fetch v4–v6 predate sessions
//! and are always full.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use krust_codec::generated::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use krust_codec::generated::{FetchRequest, FetchResponse};
use krust_codec::{ErrorCode, KString, Uuid};
use krust_group::TopicPartition;

use super::{FetchConfig, FetchTarget};

/// The first Fetch version with sessions.
const SESSIONS_SINCE: i16 = 7;
/// The first Fetch version that names topics by id.
const TOPIC_IDS_SINCE: i16 = 13;

/// What a Fetch response meant for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionReply {
    /// The response is good: read its partitions.
    Ok,
    /// FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH or
    /// FETCH_SESSION_TOPIC_ID_ERROR: the session was reset, the response
    /// carries nothing; fetch again (fully).
    SessionError,
    /// Another top-level error: the session was reset; report the code.
    Error,
}

/// What the broker's session holds for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    offset: i64,
    leader_epoch: i32,
    max_bytes: i32,
}

/// A KIP-227 fetch session with one broker.
#[derive(Debug, Clone)]
pub(crate) struct FetchSession {
    broker: i32,
    /// The broker's session id; 0 for none.
    id: i32,
    /// The epoch of the next request; 0 means the next request is full.
    epoch: i32,
    /// The session's partitions as the broker holds them once the last
    /// request built is processed.
    partitions: BTreeMap<TopicPartition, Sent>,
    /// Topic ids of the session's topics (v13+), and the way back.
    ids: HashMap<String, Uuid>,
    names: HashMap<Uuid, String>,
    /// Whether the session's requests name topics by id.
    uses_ids: bool,
    /// Whether the last request built used a session-capable version.
    sessions: bool,
    /// Whether the last request built was a full one.
    last_full: bool,
    /// A request was built and not yet handled.
    in_flight: bool,
}

impl FetchSession {
    /// No session yet with broker `broker`: the first request is full.
    pub fn new(broker: i32) -> Self {
        FetchSession {
            broker,
            id: 0,
            epoch: 0,
            partitions: BTreeMap::new(),
            ids: HashMap::new(),
            names: HashMap::new(),
            uses_ids: false,
            sessions: false,
            last_full: true,
            in_flight: false,
        }
    }

    /// The broker id.
    pub fn broker(&self) -> i32 {
        self.broker
    }

    /// The broker's session id (0: none).
    #[cfg(test)]
    pub fn session_id(&self) -> i32 {
        self.id
    }

    /// The epoch the next request carries (0: a full request).
    #[cfg(test)]
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// Whether the next request will be a full one.
    pub fn next_is_full(&self) -> bool {
        self.id == 0 || self.epoch == 0
    }

    /// Forget the session: the next request is full. Call after a request
    /// failed (connection lost, timeout, undecodable answer).
    pub fn reset(&mut self) {
        self.id = 0;
        self.epoch = 0;
        self.in_flight = false;
    }

    /// Build the request for exactly `targets`, the partitions wanted from
    /// this broker now; partitions of the session not listed are forgotten.
    /// `topic_id` gives each topic's id (used at v13+, where every target's
    /// topic must have one).
    pub fn build(
        &mut self,
        version: i16,
        targets: &[FetchTarget],
        cfg: &FetchConfig,
        topic_id: impl Fn(&str) -> Uuid,
    ) -> FetchRequest {
        let sessions = version >= SESSIONS_SINCE;
        let uses_ids = version >= TOPIC_IDS_SINCE;
        // A request never answered leaves the broker's view unknown; and a
        // session cannot switch between topic names and ids (that is
        // FETCH_SESSION_TOPIC_ID_ERROR), nor survive a topic recreated
        // under a new id.
        let ids_changed = uses_ids
            && targets.iter().any(|t| {
                self.ids
                    .get(&t.tp.topic)
                    .is_some_and(|id| *id != topic_id(&t.tp.topic))
            });
        if self.in_flight || !sessions || uses_ids != self.uses_ids || ids_changed {
            self.reset();
        }
        self.uses_ids = uses_ids;
        self.sessions = sessions;
        self.in_flight = true;
        let full = self.next_is_full();
        self.last_full = full;

        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        let mut forgotten: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        if full {
            self.partitions.clear();
            self.ids.clear();
            self.names.clear();
        }
        let wanted: BTreeSet<&TopicPartition> = targets.iter().map(|t| &t.tp).collect();
        if !full {
            self.partitions.retain(|tp, _| {
                let keep = wanted.contains(tp);
                if !keep {
                    forgotten
                        .entry(tp.topic.clone())
                        .or_default()
                        .push(tp.partition);
                }
                keep
            });
        }
        for t in targets {
            let sent = Sent {
                offset: t.offset,
                leader_epoch: t.leader_epoch.unwrap_or(-1),
                max_bytes: cfg.partition_max_bytes,
            };
            if self.partitions.insert(t.tp.clone(), sent) == Some(sent) && !full {
                continue;
            }
            if uses_ids && !self.ids.contains_key(&t.tp.topic) {
                let id = topic_id(&t.tp.topic);
                self.ids.insert(t.tp.topic.clone(), id);
                self.names.insert(id, t.tp.topic.clone());
            }
            topics.entry(&t.tp.topic).or_default().push(FetchPartition {
                partition: t.tp.partition,
                // KIP-320: the broker fences a fetch from a stale leader view.
                current_leader_epoch: sent.leader_epoch,
                fetch_offset: t.offset,
                // Only followers have a log start offset to report.
                log_start_offset: -1,
                partition_max_bytes: cfg.partition_max_bytes,
                ..FetchPartition::default()
            });
        }
        let id_of = |name: &str| self.ids.get(name).copied().unwrap_or(Uuid::ZERO);
        let topics = topics
            .into_iter()
            .map(|(name, partitions)| FetchTopic {
                topic: KString::from(name),
                topic_id: id_of(name),
                partitions,
                ..FetchTopic::default()
            })
            .collect();
        let forgotten_topics_data = forgotten
            .into_iter()
            .map(|(name, partitions)| ForgottenTopic {
                topic_id: id_of(&name),
                topic: KString::from(name.as_str()),
                partitions,
                ..ForgottenTopic::default()
            })
            .collect();
        FetchRequest {
            // A consumer, not a follower (replica_state keeps -1 too).
            replica_id: -1,
            max_wait_ms: cfg.max_wait_ms(),
            min_bytes: cfg.min_bytes,
            max_bytes: cfg.max_bytes,
            isolation_level: cfg.isolation.wire(),
            session_id: if sessions { self.id } else { 0 },
            session_epoch: if sessions { self.epoch } else { -1 },
            topics,
            forgotten_topics_data,
            rack_id: KString::from(cfg.rack_id.as_deref().unwrap_or("")),
            ..FetchRequest::default()
        }
    }

    /// Feed the response to the last request built: adopt the session id
    /// the broker gave, count the epoch up, or reset on errors.
    pub fn handle(&mut self, resp: &FetchResponse) -> SessionReply {
        self.in_flight = false;
        let code = ErrorCode::from(resp.error_code);
        if !code.is_ok() {
            self.reset();
            return if matches!(
                code,
                ErrorCode::FETCH_SESSION_ID_NOT_FOUND
                    | ErrorCode::INVALID_FETCH_SESSION_EPOCH
                    | ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR
            ) {
                SessionReply::SessionError
            } else {
                SessionReply::Error
            };
        }
        if !self.sessions {
            return SessionReply::Ok;
        }
        if self.last_full {
            // 0: the broker keeps no session; stay with full requests.
            self.id = resp.session_id;
            self.epoch = if resp.session_id == 0 { 0 } else { 1 };
        } else if resp.session_id != self.id {
            // The broker closed (0) or replaced the session: start over.
            self.reset();
        } else {
            self.epoch = next_epoch(self.epoch);
        }
        SessionReply::Ok
    }

    /// Jump to `epoch` (to test the wrap-around without `i32::MAX` requests).
    #[cfg(test)]
    pub fn set_epoch(&mut self, epoch: i32) {
        self.epoch = epoch;
    }

    /// The name of a response topic: by id at v13+, else as named.
    pub fn topic_name<'a>(&'a self, name: &'a KString, id: Uuid) -> Option<&'a str> {
        if id != Uuid::ZERO {
            return self.names.get(&id).map(String::as_str);
        }
        (!name.as_str().is_empty()).then_some(name.as_str())
    }
}

/// The epoch after `epoch`: 0 is "create a session" and -1 "close it", so
/// after `i32::MAX` comes 1.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}
