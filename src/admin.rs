//! Admin basics: create, delete and list topics, describe the cluster and
//! topics, and list offsets (earliest, latest, by timestamp) for many
//! partitions at once, one ListOffsets request per leader, sent
//! concurrently; consumer groups (list, describe with their members'
//! partitions, both protocols) and their offsets (list, alter, delete;
//! delete groups, remove static members), batched per coordinator.
//!
//! Everything goes through a [`Pool`]: its metadata cache finds leaders and
//! the controller, and errors that mean stale metadata
//! (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER,
//! lost connections) invalidate it before a bounded retry
//! ([`RetryPolicy`]). Errors are [`krust_net::Error`]s; a broker's error
//! code arrives as [`Error::Broker`] naming the API, the code, the topic and
//! the partition.
//!
//! ```no_run
//! # async fn run() -> Result<(), krust::net::Error> {
//! use std::time::Duration;
//! use krust::admin::{Admin, NewTopic, OffsetSpec};
//!
//! let admin = Admin::bootstrap("127.0.0.1:9092").await?;
//! for (name, result) in admin
//!     .create_topics(&[NewTopic::new("events", 3)], Duration::from_secs(10))
//!     .await?
//! {
//!     println!("{name}: {result:?}");
//! }
//! let offsets = admin
//!     .list_offsets(&[("events", 0, OffsetSpec::Latest)])
//!     .await?;
//! println!("{offsets:?}");
//! # Ok(()) }
//! ```

mod coordinated;
mod group_lag;
mod group_offsets;
mod groups;
mod offsets;

use std::sync::Mutex;
use std::time::Duration;

use krust_codec::generated::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use krust_codec::generated::delete_topics_request::DeleteTopicState;
use krust_codec::generated::metadata_request::MetadataRequest;
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::{CreateTopicsRequest, DeleteTopicsRequest};
use krust_codec::{ApiKey, ErrorCode, KString, Message};
use krust_net::{BrokerInfo, ClusterMetadata, Connection, Error, Pool, PoolConfig, RetryPolicy};

pub use group_lag::{GroupLag, PartitionLag};
pub use group_offsets::GroupOffsets;
pub use groups::{
    GroupDescription, GroupFilter, GroupKind, GroupListing, GroupMember, GroupResults,
};
pub use krust_net::{PartitionInfo, TopicInfo};
pub use offsets::{ListedOffset, OffsetSpec};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic name.
    pub name: String,
    /// The number of partitions; -1 for the broker's default.
    pub partitions: i32,
    /// The replication factor; -1 for the broker's default.
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions, the broker's default
    /// replication factor and no configs.
    pub fn new(name: impl Into<String>, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }
}

/// What Metadata says about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id, when the broker sends one.
    pub cluster_id: Option<String>,
    /// The controller's broker id, when known.
    pub controller: Option<i32>,
    /// The brokers, by id.
    pub brokers: Vec<BrokerInfo>,
}

/// The outcome for each topic of a create or delete call, in request order.
pub type TopicResults = Vec<(String, Result<(), Error>)>;

/// An admin client over a broker [`Pool`]. Clones share the pool.
#[derive(Debug, Clone)]
pub struct Admin {
    pool: Pool,
    retry: RetryPolicy,
}

impl Admin {
    /// Bootstrap a pool with `config` and wrap it. Settings by Kafka
    /// property names, security included: [`PoolConfig::from_properties`].
    pub async fn connect(config: PoolConfig) -> Result<Admin, Error> {
        Ok(Admin::from_pool(Pool::bootstrap(config).await?))
    }

    /// Bootstrap from `bootstrap.servers` (`host:port[,host:port...]`) with
    /// the default settings.
    pub async fn bootstrap(servers: &str) -> Result<Admin, Error> {
        Admin::connect(PoolConfig {
            bootstrap: servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            ..PoolConfig::default()
        })
        .await
    }

    /// Use an existing pool; retries follow the pool's retry policy.
    pub fn from_pool(pool: Pool) -> Admin {
        let retry = pool.config().retry;
        Admin { pool, retry }
    }

    /// Retry retriable errors with `retry` instead of the pool's policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Admin {
        self.retry = retry;
        self
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A connection to the controller, or to any broker when the cluster
    /// names none.
    async fn controller(&self) -> Result<Connection, Error> {
        match self.pool.metadata().await.controller {
            Some(id) => self.pool.broker(id).await,
            None => self.pool.any_connection().await,
        }
    }

    /// Create topics on the controller, waiting up to `timeout` for the
    /// broker to finish. The outer error is a request that failed for good;
    /// each topic then has its own result, e.g. an [`Error::Broker`] with
    /// TOPIC_ALREADY_EXISTS naming the topic. Topics the broker refused with
    /// NOT_CONTROLLER are sent again, after a metadata refresh, within the
    /// retry deadline.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        timeout: Duration,
    ) -> Result<TopicResults, Error> {
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        self.per_topic(ApiKey::CreateTopics, &names, |conn, pending| {
            let req = CreateTopicsRequest {
                topics: topics
                    .iter()
                    .filter(|t| pending.contains(&t.name))
                    .map(|t| CreatableTopic {
                        name: KString::from(t.name.as_str()),
                        num_partitions: t.partitions,
                        replication_factor: t.replication_factor,
                        configs: t
                            .configs
                            .iter()
                            .map(|(k, v)| CreatableTopicConfig {
                                name: KString::from(k.as_str()),
                                value: Some(KString::from(v.as_str())),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                timeout_ms,
                validate_only: false,
                ..Default::default()
            };
            async move {
                let resp = conn.send(&req).await?;
                Ok(resp
                    .topics
                    .into_iter()
                    .map(|t| {
                        let msg = t.error_message.map(|m| m.as_str().to_owned());
                        (t.name.as_str().to_owned(), t.error_code, msg)
                    })
                    .collect())
            }
        })
        .await
    }

    /// Delete topics by name on the controller, waiting up to `timeout`.
    /// Per-topic results as for [`Admin::create_topics`]; an unknown topic
    /// is an [`Error::Broker`] with UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn delete_topics(
        &self,
        names: &[&str],
        timeout: Duration,
    ) -> Result<TopicResults, Error> {
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        self.per_topic(ApiKey::DeleteTopics, &names, |conn, pending| {
            // v0-5 carry names, v6+ topic states; the encoder writes the
            // field of the negotiated version.
            let req = DeleteTopicsRequest {
                topics: pending
                    .iter()
                    .map(|n| DeleteTopicState {
                        name: Some(KString::from(n.as_str())),
                        ..Default::default()
                    })
                    .collect(),
                topic_names: pending.iter().map(|n| KString::from(n.as_str())).collect(),
                timeout_ms,
                ..Default::default()
            };
            async move {
                let resp = conn.send(&req).await?;
                Ok(resp
                    .responses
                    .into_iter()
                    .map(|t| {
                        let name = t.name.map(|n| n.as_str().to_owned()).unwrap_or_default();
                        let msg = t.error_message.map(|m| m.as_str().to_owned());
                        (name, t.error_code, msg)
                    })
                    .collect())
            }
        })
        .await
    }

    /// Send a per-topic controller request for the topics still pending
    /// until each has a final result or the retry deadline passes.
    async fn per_topic<F, Fut>(
        &self,
        api: ApiKey,
        names: &[String],
        send: F,
    ) -> Result<TopicResults, Error>
    where
        F: Fn(Connection, Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<(String, i16, Option<String>)>, Error>>,
    {
        let pending = Mutex::new(names.to_vec());
        let done: Mutex<Vec<(String, Result<(), Error>)>> = Mutex::new(Vec::new());
        let (pending_ref, done_ref, send) = (&pending, &done, &send);
        let run = self.retry.run(
            api,
            move |_| async move {
                let (pending, done) = (pending_ref, done_ref);
                let todo = lock(pending).clone();
                let conn = self.controller().await?;
                let replies = send(conn, todo).await?;
                let mut retry = None;
                let mut still = Vec::new();
                for (name, code, message) in replies {
                    let code = ErrorCode::from(code);
                    if code.is_ok() {
                        lock(done).push((name, Ok(())));
                        continue;
                    }
                    let e = Error::Broker {
                        api,
                        broker: None,
                        code,
                        topic: Some(name.clone()),
                        partition: None,
                        message,
                    };
                    if code == ErrorCode::NOT_CONTROLLER {
                        still.push(name);
                        retry = Some(e);
                    } else {
                        lock(done).push((name, Err(e)));
                    }
                }
                *lock(pending) = still;
                retry.map_or(Ok(()), Err)
            },
            |e| {
                self.pool.note_error(e);
                if e.code() == Some(ErrorCode::NOT_CONTROLLER) {
                    self.pool.invalidate();
                }
            },
        );
        let outcome = run.await;
        // The topic list changed: cached metadata is stale.
        self.pool.invalidate();
        let mut done = std::mem::take(&mut *lock(&done));
        match outcome {
            Ok(()) => {}
            // Every topic failed the same way: report the request's error.
            Err(e) if done.is_empty() => return Err(e),
            Err(e) => {
                for name in lock(&pending).drain(..) {
                    done.push((name, Err(e.clone())));
                }
            }
        }
        // Request order; a topic the broker did not answer is an error.
        let mut ordered = Vec::with_capacity(names.len());
        for name in names {
            let result = match done.iter().position(|(n, _)| n == name) {
                Some(i) => done.swap_remove(i).1,
                None => Err(Error::Broker {
                    api,
                    broker: None,
                    code: ErrorCode::UNKNOWN_SERVER_ERROR,
                    topic: Some(name.clone()),
                    partition: None,
                    message: Some("the broker's reply does not mention the topic".into()),
                }),
            };
            ordered.push((name.clone(), result));
        }
        Ok(ordered)
    }

    /// One Metadata request for `topics` (`None`: every topic; an empty
    /// list: none, brokers only), retried within the deadline.
    async fn metadata_for(&self, topics: Option<&[&str]>) -> Result<ClusterMetadata, Error> {
        self.retry
            .run(
                ApiKey::Metadata,
                move |_| self.metadata_once(topics),
                |e| {
                    self.pool.note_error(e);
                },
            )
            .await
    }

    /// One Metadata request for `topics` (`None`: every topic), not
    /// retried.
    async fn metadata_once(&self, topics: Option<&[&str]>) -> Result<ClusterMetadata, Error> {
        let conn = self.pool.any_connection().await?;
        let version = conn.negotiate(ApiKey::Metadata, MetadataRequest::VALID_VERSIONS)?;
        let req = MetadataRequest {
            // A null list asks for every topic (Metadata v1+).
            topics: topics.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some(KString::from(*n)),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let resp = conn.send_at(&req, version).await?;
        Ok(ClusterMetadata::from_response(&resp))
    }

    /// The brokers, the controller and the cluster id, from a fresh
    /// Metadata request.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, Error> {
        let m = self.metadata_for(Some(&[])).await?;
        Ok(ClusterDescription {
            cluster_id: m.cluster_id,
            controller: m.controller,
            brokers: m.brokers.into_values().collect(),
        })
    }

    /// Every topic the cluster lists, internal ones (`__consumer_offsets`)
    /// included and marked, by name, with partitions, leaders, replicas and
    /// in-sync replicas, from one fresh Metadata request for all topics. A
    /// topic keeps the error the broker gave it (e.g. LEADER_NOT_AVAILABLE
    /// while it is being created): this is a listing of the cluster's
    /// state, not a wait for it.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>, Error> {
        let m = self.metadata_for(None).await?;
        Ok(m.topics.into_values().collect())
    }

    /// Partitions, leaders, replicas, in-sync replicas and leader epochs of
    /// `topics`, in request order, from a fresh Metadata request. A topic
    /// the cluster does not know is an [`Error::Broker`] with
    /// UNKNOWN_TOPIC_OR_PARTITION naming it (not retried: the answer is the
    /// cluster's current state); a topic whose leaders are being elected
    /// (LEADER_NOT_AVAILABLE) is asked again within the retry deadline.
    pub async fn describe_topics(&self, topics: &[&str]) -> Result<Vec<TopicInfo>, Error> {
        self.retry
            .run(
                ApiKey::Metadata,
                move |_| async move {
                    let mut m = self.metadata_once(Some(topics)).await?;
                    let mut out = Vec::with_capacity(topics.len());
                    for name in topics {
                        let err = |code| Error::Broker {
                            api: ApiKey::Metadata,
                            broker: None,
                            code,
                            topic: Some((*name).to_owned()),
                            partition: None,
                            message: None,
                        };
                        let Some(t) = m.topics.remove(*name) else {
                            return Ok(Err(err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)));
                        };
                        match t.error {
                            ErrorCode::NONE => out.push(t),
                            ErrorCode::LEADER_NOT_AVAILABLE => {
                                return Err(err(ErrorCode::LEADER_NOT_AVAILABLE));
                            }
                            code => return Ok(Err(err(code))),
                        }
                    }
                    Ok(Ok(out))
                },
                |e| {
                    self.pool.note_error(e);
                },
            )
            .await?
    }
}

/// Lock a std mutex; a panic elsewhere does not make the data unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
