//! Consumer settings: a typed builder and the Java client's property names
//! (`bootstrap.servers`, `group.id`, `enable.auto.commit`,
//! `auto.offset.reset`, `session.timeout.ms`, ...), with the Java client's
//! defaults. A bad key or value is an error naming both.

use std::sync::Arc;
use std::time::Duration;

use krust_group::assignor::{
    Assignor, CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor,
};
use krust_net::SecurityConfig;
use krust_net::props;

use crate::error::ConfigError;
pub use krust_group::GroupProtocol;

/// The classic-only properties, as `build` names them under `consumer`.
const ASSIGNORS: &str = "partition.assignment.strategy";
const SESSION: &str = "session.timeout.ms";
const HEARTBEAT: &str = "heartbeat.interval.ms";
use crate::fetch::{FetchConfig, IsolationLevel};

/// `auto.offset.reset`: where to start when a partition has no committed
/// offset, or its position is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset (Java's default): only records written from now.
    #[default]
    Latest,
    /// No reset: `poll` fails with [`ConsumerError::NoOffset`](crate::ConsumerError::NoOffset)
    /// naming the partitions.
    None,
}

/// `acknowledgement.mode` (named after KIP-932's share-consumer setting):
/// what counts as processed when offsets are committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// Every record handed out by a poll is processed when the application
    /// polls again (the Java consumer's rule); `commit()` commits the
    /// position.
    #[default]
    Implicit,
    /// Only records the application acked count; a partition commits the
    /// end of its contiguous acked prefix. On revoke the consumer waits for
    /// the acks of what it handed out (up to the revoke deadline) and
    /// commits that prefix before letting the partitions go, with or
    /// without `enable.auto.commit`.
    Explicit,
}

/// The settings of a [`Consumer`](crate::Consumer). Build one with
/// [`ConsumerConfig::builder`] or [`ConsumerConfig::from_properties`].
#[derive(Clone)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `group.id`: needed for `subscribe` and for commits.
    pub group_id: Option<String>,
    /// `group.instance.id`: static membership (KIP-345).
    pub group_instance_id: Option<String>,
    /// `group.protocol`: `classic` (default) or `consumer` (KIP-848, Kafka
    /// 4.0+: the broker assigns and owns the session and heartbeat
    /// settings).
    pub group_protocol: GroupProtocol,
    /// `group.remote.assignor` (consumer protocol): the broker's assignor,
    /// `uniform` or `range`; unset, the broker's default.
    pub group_remote_assignor: Option<String>,
    /// The classic-only properties set (refused under `consumer`).
    classic_only: Vec<&'static str>,
    /// `enable.auto.commit` (default true).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (default 5 s).
    pub auto_commit_interval: Duration,
    /// `auto.offset.reset` (default latest).
    pub auto_offset_reset: AutoOffsetReset,
    /// `acknowledgement.mode` (default implicit).
    pub ack_mode: AckMode,
    /// `session.timeout.ms` (default 45 s).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (default 3 s).
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (default 5 min); also the rebalance timeout
    /// sent in JoinGroup, as in Java.
    pub max_poll_interval: Duration,
    /// `max.poll.records` (default 500).
    pub max_poll_records: usize,
    /// `max.unacked.records.per.partition` (krust's own; default 10000;
    /// explicit acks only): at most this many records of one partition are
    /// handed out from its first unacked record on. When the window is
    /// full the partition is not handed out (nor fetched) until acks come,
    /// so one record never acked stops its partition instead of making the
    /// ack ledger grow with every later record; the ledger's memory is
    /// proportional to this window (16 bytes a record).
    pub max_unacked_records_per_partition: usize,
    /// `partition.assignment.strategy` (default `range,cooperative-sticky`,
    /// as Java 3.x+): the assignors offered, by preference.
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// `client.rack`.
    pub client_rack: Option<String>,
    /// The fetch settings (`fetch.min.bytes`, `fetch.max.bytes`,
    /// `max.partition.fetch.bytes`, `fetch.max.wait.ms`, `isolation.level`,
    /// `check.crcs`).
    pub(crate) fetch: FetchConfig,
    /// `request.timeout.ms` (default 30 s).
    pub request_timeout: Duration,
    /// `default.api.timeout.ms` (default 60 s): bound of commits, offset
    /// lookups and `close`.
    pub default_api_timeout: Duration,
    /// `retry.backoff.ms` (default 100 ms).
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms` (default 1 s).
    pub retry_backoff_max: Duration,
    /// `metadata.max.age.ms` (default 5 min).
    pub metadata_max_age: Duration,
    /// `allow.auto.create.topics` (default true, as Java).
    pub allow_auto_create_topics: bool,
    /// `bootstrap.timeout.ms` (krust's own; default 30 s): give up
    /// connecting to the bootstrap servers after this long.
    pub bootstrap_timeout: Duration,
    /// TLS and SASL (`security.protocol`, `sasl.*`, `ssl.*`); its
    /// `Debug` never shows a secret.
    pub security: SecurityConfig,
}

impl std::fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("enable_auto_commit", &self.enable_auto_commit)
            .field("auto_offset_reset", &self.auto_offset_reset)
            .field("ack_mode", &self.ack_mode)
            .field("security", &self.security)
            .field(
                "assignors",
                &self.assignors.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            bootstrap_servers: Vec::new(),
            client_id: "krust".to_owned(),
            group_id: None,
            group_instance_id: None,
            group_protocol: GroupProtocol::Classic,
            group_remote_assignor: None,
            classic_only: Vec::new(),
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            auto_offset_reset: AutoOffsetReset::Latest,
            ack_mode: AckMode::Implicit,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            max_poll_records: 500,
            max_unacked_records_per_partition: 10_000,
            assignors: vec![Arc::new(RangeAssignor), Arc::new(CooperativeStickyAssignor)],
            client_rack: None,
            fetch: FetchConfig::default(),
            request_timeout: Duration::from_secs(30),
            default_api_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            metadata_max_age: Duration::from_secs(300),
            allow_auto_create_topics: true,
            bootstrap_timeout: Duration::from_secs(30),
            security: SecurityConfig::default(),
        }
    }
}

impl ConsumerConfig {
    /// A builder starting from the Java client's defaults.
    pub fn builder() -> ConsumerConfigBuilder {
        ConsumerConfigBuilder {
            config: ConsumerConfig::default(),
        }
    }

    /// Settings from Kafka property names, e.g.
    /// `[("bootstrap.servers", "localhost:9092"), ("group.id", "g")]`.
    pub fn from_properties<K, V>(
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ConsumerConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        props::apply(
            ConsumerConfig::builder(),
            properties,
            ConsumerConfigBuilder::set,
        )?
        .build()
    }

    /// `isolation.level`.
    pub fn isolation_level(&self) -> IsolationLevel {
        self.fetch.isolation
    }
}

/// Builds a [`ConsumerConfig`]; [`set`](Self::set) takes Kafka property
/// names, the other methods typed values.
#[derive(Debug, Clone)]
pub struct ConsumerConfigBuilder {
    config: ConsumerConfig,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl ConsumerConfigBuilder {
    /// `bootstrap.servers`.
    pub fn bootstrap_servers<S: AsRef<str>>(
        mut self,
        servers: impl IntoIterator<Item = S>,
    ) -> Self {
        self.config.bootstrap_servers = servers
            .into_iter()
            .flat_map(|s| props::list(s.as_ref()))
            .collect();
        self
    }

    /// `group.id`.
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.config.group_id = Some(group.into());
        self
    }

    /// `group.instance.id`.
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.config.group_instance_id = Some(id.into());
        self
    }

    /// `isolation.level`.
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.config.fetch.isolation = level;
        self
    }

    /// `partition.assignment.strategy`: custom assignors, by preference
    /// (classic protocol only).
    pub fn assignors(mut self, assignors: Vec<Arc<dyn Assignor>>) -> Self {
        self.config.assignors = assignors;
        self.config.classic_only.push(ASSIGNORS);
        self
    }

    /// `group.protocol`.
    pub fn group_protocol(mut self, protocol: GroupProtocol) -> Self {
        self.config.group_protocol = protocol;
        self
    }

    /// `group.remote.assignor` (consumer protocol).
    pub fn group_remote_assignor(mut self, assignor: impl Into<String>) -> Self {
        self.config.group_remote_assignor = Some(assignor.into());
        self
    }

    /// `session.timeout.ms` (classic protocol only: under `consumer` the
    /// broker's `group.consumer.session.timeout.ms` rules).
    pub fn session_timeout(mut self, value: Duration) -> Self {
        self.config.session_timeout = value;
        self.config.classic_only.push(SESSION);
        self
    }

    /// `heartbeat.interval.ms` (classic protocol only: under `consumer` the
    /// broker dictates the interval).
    pub fn heartbeat_interval(mut self, value: Duration) -> Self {
        self.config.heartbeat_interval = value;
        self.config.classic_only.push(HEARTBEAT);
        self
    }

    setter!(/// `client.id`.
        client_id: String);
    setter!(/// `enable.auto.commit`.
        enable_auto_commit: bool);
    setter!(/// `auto.commit.interval.ms`.
        auto_commit_interval: Duration);
    setter!(/// `auto.offset.reset`.
        auto_offset_reset: AutoOffsetReset);
    setter!(/// `acknowledgement.mode`.
        ack_mode: AckMode);
    setter!(/// `max.poll.interval.ms`.
        max_poll_interval: Duration);
    setter!(/// `max.poll.records`.
        max_poll_records: usize);
    setter!(/// `max.unacked.records.per.partition`.
        max_unacked_records_per_partition: usize);
    setter!(/// `request.timeout.ms`.
        request_timeout: Duration);
    setter!(/// `default.api.timeout.ms`.
        default_api_timeout: Duration);
    setter!(/// `metadata.max.age.ms`.
        metadata_max_age: Duration);
    setter!(/// `bootstrap.timeout.ms`.
        bootstrap_timeout: Duration);

    /// Set one property by its Kafka name.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self, ConfigError> {
        let bad = |reason: &str| ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let v = value.trim();
        let ms = || props::millis(v).map_err(|r| bad(&r));
        let count = || props::positive(v).map_err(|r| bad(&r));
        let bytes = || {
            props::positive(v)
                .map_err(|r| bad(&r))
                .and_then(|n| i32::try_from(n).map_err(|_| bad("at most 2147483647")))
        };
        let flag = || props::boolean(v).map_err(|r| bad(&r));
        let c = &mut self.config;
        if c.security.set(key, value)? {
            return Ok(self);
        }
        match key {
            "bootstrap.servers" | "metadata.broker.list" => {
                if props::list(v).is_empty() {
                    return Err(bad("expected host:port[,host:port...]"));
                }
                c.bootstrap_servers = props::list(v);
            }
            "client.id" => c.client_id = v.to_owned(),
            "group.id" => c.group_id = Some(v.to_owned()).filter(|g| !g.is_empty()),
            "group.instance.id" => {
                c.group_instance_id = Some(v.to_owned()).filter(|g| !g.is_empty());
            }
            "enable.auto.commit" => c.enable_auto_commit = flag()?,
            "auto.commit.interval.ms" => c.auto_commit_interval = ms()?,
            "auto.offset.reset" => {
                c.auto_offset_reset = match v {
                    "earliest" | "smallest" | "beginning" => AutoOffsetReset::Earliest,
                    "latest" | "largest" | "end" => AutoOffsetReset::Latest,
                    "none" | "error" => AutoOffsetReset::None,
                    _ => return Err(bad("expected earliest, latest or none")),
                };
            }
            "acknowledgement.mode" => {
                c.ack_mode = match v {
                    "implicit" => AckMode::Implicit,
                    "explicit" => AckMode::Explicit,
                    _ => return Err(bad("expected implicit or explicit")),
                };
            }
            "session.timeout.ms" => {
                c.session_timeout = ms()?;
                c.classic_only.push(SESSION);
            }
            "heartbeat.interval.ms" => {
                c.heartbeat_interval = ms()?;
                c.classic_only.push(HEARTBEAT);
            }
            "group.protocol" => {
                c.group_protocol = match v.to_ascii_lowercase().as_str() {
                    "classic" => GroupProtocol::Classic,
                    "consumer" => GroupProtocol::Consumer,
                    _ => return Err(bad("expected classic or consumer")),
                };
            }
            "group.remote.assignor" => {
                c.group_remote_assignor = Some(v.to_owned()).filter(|a| !a.is_empty());
            }
            "max.poll.interval.ms" => c.max_poll_interval = ms()?,
            "max.poll.records" => c.max_poll_records = count()?,
            "max.unacked.records.per.partition" => {
                c.max_unacked_records_per_partition = count()?;
            }
            "partition.assignment.strategy" => {
                let mut out: Vec<Arc<dyn Assignor>> = Vec::new();
                for name in props::list(v) {
                    out.push(match assignor_name(&name) {
                        Some(RangeAssignor::NAME) => Arc::new(RangeAssignor),
                        Some(RoundRobinAssignor::NAME) => Arc::new(RoundRobinAssignor),
                        Some(CooperativeStickyAssignor::NAME) => {
                            Arc::new(CooperativeStickyAssignor)
                        }
                        _ => {
                            return Err(bad(
                                "expected range, roundrobin or cooperative-sticky (comma-separated)",
                            ));
                        }
                    });
                }
                if out.is_empty() {
                    return Err(bad("at least one assignor"));
                }
                c.assignors = out;
                c.classic_only.push(ASSIGNORS);
            }
            "client.rack" => {
                c.client_rack = Some(v.to_owned()).filter(|r| !r.is_empty());
                c.fetch.rack_id = c.client_rack.clone();
            }
            "fetch.min.bytes" => c.fetch.min_bytes = bytes()?,
            "fetch.max.bytes" => c.fetch.max_bytes = bytes()?,
            "max.partition.fetch.bytes" => c.fetch.partition_max_bytes = bytes()?,
            "fetch.max.wait.ms" => {
                c.fetch.max_wait = ms()?;
            }
            "isolation.level" => {
                c.fetch.isolation = match v {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => return Err(bad("expected read_uncommitted or read_committed")),
                };
            }
            "check.crcs" => c.fetch.check_crcs = flag()?,
            "request.timeout.ms" => c.request_timeout = ms()?,
            "default.api.timeout.ms" => c.default_api_timeout = ms()?,
            "retry.backoff.ms" => c.retry_backoff = ms()?,
            "retry.backoff.max.ms" => c.retry_backoff_max = ms()?,
            "metadata.max.age.ms" => c.metadata_max_age = ms()?,
            "allow.auto.create.topics" => c.allow_auto_create_topics = flag()?,
            "bootstrap.timeout.ms" => c.bootstrap_timeout = ms()?,
            _ => {
                return Err(ConfigError::UnknownKey {
                    client: "consumer",
                    key: key.to_owned(),
                    value: value.to_owned(),
                });
            }
        }
        Ok(self)
    }

    /// Check the settings hold together and return them.
    pub fn build(self) -> Result<ConsumerConfig, ConfigError> {
        let c = self.config;
        // Refused now rather than at connect: missing credentials, a PEM
        // file that does not read.
        c.security.resolve()?;
        if c.bootstrap_servers.is_empty() {
            return Err(ConfigError::Conflict(
                "bootstrap.servers is required".to_owned(),
            ));
        }
        if c.group_protocol == GroupProtocol::Consumer {
            // As Java: the broker owns these under the consumer protocol.
            if let Some(key) = c.classic_only.first() {
                return Err(ConfigError::Conflict(format!(
                    "{key} is not supported with group.protocol=consumer: the broker assigns \
                     (group.remote.assignor picks its assignor) and sets the session timeout \
                     and heartbeat interval (group.consumer.* on the broker)"
                )));
            }
        } else if c.group_remote_assignor.is_some() {
            return Err(ConfigError::Conflict(
                "group.remote.assignor needs group.protocol=consumer".to_owned(),
            ));
        }
        if c.heartbeat_interval >= c.session_timeout {
            return Err(ConfigError::Conflict(format!(
                "heartbeat.interval.ms ({:?}) must be lower than session.timeout.ms ({:?})",
                c.heartbeat_interval, c.session_timeout
            )));
        }
        if c.fetch.max_wait >= c.request_timeout {
            return Err(ConfigError::Conflict(format!(
                "fetch.max.wait.ms ({:?}) must be lower than request.timeout.ms ({:?})",
                c.fetch.max_wait, c.request_timeout
            )));
        }
        if c.max_poll_records == 0 {
            return Err(ConfigError::Conflict(
                "max.poll.records must be at least 1".to_owned(),
            ));
        }
        if c.max_unacked_records_per_partition == 0 {
            return Err(ConfigError::Conflict(
                "max.unacked.records.per.partition must be at least 1".to_owned(),
            ));
        }
        if c.group_instance_id.is_some() && c.group_id.is_none() {
            return Err(ConfigError::Conflict(
                "group.instance.id needs group.id".to_owned(),
            ));
        }
        Ok(c)
    }
}

/// Java class names are accepted for the built-in assignors, as librdkafka
/// and the Java client users write them.
fn assignor_name(name: &str) -> Option<&'static str> {
    let short = name.rsplit('.').next().unwrap_or(name);
    match short {
        "range" | "RangeAssignor" => Some(RangeAssignor::NAME),
        "roundrobin" | "RoundRobinAssignor" => Some(RoundRobinAssignor::NAME),
        "cooperative-sticky" | "CooperativeStickyAssignor" => Some(CooperativeStickyAssignor::NAME),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> Result<ConsumerConfig, ConfigError> {
        let mut all = vec![("bootstrap.servers", "a:1,b:2"), ("group.id", "g")];
        all.extend_from_slice(extra);
        ConsumerConfig::from_properties(all)
    }

    #[test]
    fn defaults_follow_the_java_client() {
        let c = props(&[]).expect("valid");
        assert_eq!(c.bootstrap_servers, ["a:1", "b:2"]);
        assert!(c.enable_auto_commit);
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Latest);
        assert_eq!(c.max_poll_records, 500);
        assert_eq!(c.max_unacked_records_per_partition, 10_000);
        assert_eq!(c.session_timeout, Duration::from_secs(45));
        let names: Vec<&str> = c.assignors.iter().map(|a| a.name()).collect();
        assert_eq!(names, ["range", "cooperative-sticky"]);
        assert_eq!(c.isolation_level(), IsolationLevel::ReadUncommitted);
    }

    #[test]
    fn the_consumer_protocol_refuses_what_the_broker_owns() {
        let c = props(&[
            ("group.protocol", "consumer"),
            ("group.remote.assignor", "range"),
        ])
        .expect("valid");
        assert_eq!(c.group_protocol, GroupProtocol::Consumer);
        assert_eq!(c.group_remote_assignor.as_deref(), Some("range"));
        for key in [
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "partition.assignment.strategy",
        ] {
            let value = if key.ends_with(".ms") {
                "3000"
            } else {
                "range"
            };
            let e = props(&[("group.protocol", "consumer"), (key, value)]).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
            assert!(
                e.to_string().contains("group.protocol=consumer"),
                "{key}: {e}"
            );
        }
        let e = props(&[("group.remote.assignor", "uniform")]).unwrap_err();
        assert!(e.to_string().contains("group.protocol=consumer"), "{e}");
        let e = props(&[("group.protocol", "eager")]).unwrap_err();
        assert!(
            e.to_string().contains("group.protocol") && e.to_string().contains("eager"),
            "{e}"
        );
        // The typed builder refuses the same.
        let e = ConsumerConfig::builder()
            .bootstrap_servers(["a:1"])
            .group_id("g")
            .group_protocol(GroupProtocol::Consumer)
            .session_timeout(Duration::from_secs(10))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("session.timeout.ms"), "{e}");
    }

    #[test]
    fn kafka_property_names_parse() {
        let c = props(&[
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            (
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
            ),
            ("isolation.level", "read_committed"),
            ("acknowledgement.mode", "explicit"),
            ("max.poll.records", "10"),
            ("max.unacked.records.per.partition", "64"),
        ])
        .expect("valid");
        assert!(!c.enable_auto_commit);
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(c.session_timeout, Duration::from_secs(6));
        assert_eq!(c.assignors[0].name(), "cooperative-sticky");
        assert_eq!(c.isolation_level(), IsolationLevel::ReadCommitted);
        assert_eq!(c.ack_mode, AckMode::Explicit);
        assert_eq!(c.max_poll_records, 10);
        assert_eq!(c.max_unacked_records_per_partition, 64);
    }

    #[test]
    fn bad_input_names_the_key_and_the_value() {
        let e = props(&[("auto.offset.reset", "sometimes")]).unwrap_err();
        assert!(
            e.to_string().contains("auto.offset.reset") && e.to_string().contains("sometimes"),
            "{e}"
        );
        let e = props(&[("no.such.key", "1")]).unwrap_err();
        assert!(e.to_string().contains("no.such.key"), "{e}");
        let e = props(&[
            ("session.timeout.ms", "2000"),
            ("heartbeat.interval.ms", "3000"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("heartbeat.interval.ms"), "{e}");
    }
}
