//! Producer settings: a typed builder and the Java client's property names
//! (`bootstrap.servers`, `acks`, `linger.ms`, ...), with the Java client's
//! validation rules for idempotence (KIP-679: on by default since 3.0, and
//! quietly turned off only when the user did not ask for it but chose
//! settings it cannot work with).

use std::collections::BTreeSet;
use std::time::Duration;

use krust_codec::records::Compression;
use krust_net::SecurityConfig;
use krust_net::props;

use crate::error::ConfigError;
use crate::partitioner::PartitionerChoice;

/// `acks`: how many replicas must have a batch before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: no answer at all; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all` (`-1`): every in-sync replica has it.
    #[default]
    All,
}

impl Acks {
    /// The value of the Produce request's `acks` field.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// The settings of a [`Producer`](crate::Producer). Build one with
/// [`ProducerConfig::builder`] or [`ProducerConfig::from_properties`].
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `acks` (default all).
    pub acks: Acks,
    /// `linger.ms` (default 5 ms, as in Java 4.0, KIP-1030).
    pub linger: Duration,
    /// `batch.size` in bytes (default 16384).
    pub batch_size: usize,
    /// `max.request.size` in bytes (default 1 MiB).
    pub max_request_size: usize,
    /// `buffer.memory` in bytes (default 32 MiB).
    pub buffer_memory: usize,
    /// `max.block.ms` (default 60 s): how long `send` waits for memory or metadata.
    pub max_block: Duration,
    /// `compression.type` (default none).
    pub compression: Compression,
    /// `enable.idempotence` as resolved (see the module doc).
    pub enable_idempotence: bool,
    /// Whether the user asked for idempotence explicitly: then a broker
    /// without InitProducerId is an error rather than a debug log.
    pub idempotence_required: bool,
    /// `max.in.flight.requests.per.connection` (default 5).
    pub max_in_flight: usize,
    /// `retries` (default `i32::MAX`).
    pub retries: u32,
    /// `retry.backoff.ms` (default 100 ms).
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms` (default 1 s).
    pub retry_backoff_max: Duration,
    /// `request.timeout.ms` (default 30 s).
    pub request_timeout: Duration,
    /// `delivery.timeout.ms` (default 120 s).
    pub delivery_timeout: Duration,
    /// `metadata.max.age.ms` (default 5 min).
    pub metadata_max_age: Duration,
    /// `partitioner`: murmur2 for keys and sticky otherwise, or a custom one.
    pub partitioner: PartitionerChoice,
    /// `allow.auto.create.topics` (default true, as in Java): the Metadata
    /// requests for the topics records are sent to ask the broker to create
    /// a missing one (it does when `auto.create.topics.enable=true`, Kafka's
    /// default); `send` waits for it up to `max.block.ms`.
    pub allow_auto_create_topics: bool,
    /// TLS and SASL (`security.protocol`, `sasl.*`, `ssl.*`); its
    /// `Debug` never shows a secret.
    pub security: SecurityConfig,
}

impl ProducerConfig {
    /// A builder with the Java client's defaults.
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfigBuilder::default()
    }

    /// Settings from Kafka property names and values, e.g.
    /// `[("bootstrap.servers", "b:9092"), ("acks", "1")]`.
    pub fn from_properties<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ProducerConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        props::apply(ProducerConfig::builder(), props, ProducerConfigBuilder::set)?.build()
    }

    /// Check the rules that tie settings together (also run by `build`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.security.resolve()?;
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::Conflict(
                "bootstrap.servers is empty".to_owned(),
            ));
        }
        if self.enable_idempotence {
            if let Some(why) = idempotence_conflict(self.acks, self.max_in_flight, self.retries) {
                return Err(ConfigError::Conflict(format!(
                    "enable.idempotence=true requires {why}"
                )));
            }
        }
        if self.delivery_timeout < self.linger + self.request_timeout {
            return Err(ConfigError::Conflict(format!(
                "delivery.timeout.ms ({:?}) must be at least linger.ms + request.timeout.ms ({:?})",
                self.delivery_timeout,
                self.linger + self.request_timeout
            )));
        }
        Ok(())
    }
}

fn idempotence_conflict(acks: Acks, max_in_flight: usize, retries: u32) -> Option<String> {
    if acks != Acks::All {
        Some("acks=all".to_owned())
    } else if max_in_flight > 5 {
        Some(format!(
            "max.in.flight.requests.per.connection <= 5 (it is {max_in_flight})"
        ))
    } else if retries == 0 {
        Some("retries > 0".to_owned())
    } else {
        None
    }
}

/// Builds a [`ProducerConfig`]; remembers which settings were given
/// explicitly, as the Java client does for its idempotence rules.
#[derive(Debug, Clone)]
pub struct ProducerConfigBuilder {
    config: ProducerConfig,
    explicit: BTreeSet<&'static str>,
}

impl Default for ProducerConfigBuilder {
    fn default() -> Self {
        ProducerConfigBuilder {
            config: ProducerConfig {
                bootstrap_servers: Vec::new(),
                client_id: "krust-producer".to_owned(),
                acks: Acks::All,
                linger: Duration::from_millis(5),
                batch_size: 16_384,
                max_request_size: 1_048_576,
                buffer_memory: 33_554_432,
                max_block: Duration::from_secs(60),
                compression: Compression::None,
                enable_idempotence: true,
                idempotence_required: false,
                max_in_flight: 5,
                retries: i32::MAX.unsigned_abs(),
                retry_backoff: Duration::from_millis(100),
                retry_backoff_max: Duration::from_secs(1),
                request_timeout: Duration::from_secs(30),
                delivery_timeout: Duration::from_secs(120),
                metadata_max_age: Duration::from_secs(300),
                partitioner: PartitionerChoice::default(),
                allow_auto_create_topics: true,
                security: SecurityConfig::default(),
            },
            explicit: BTreeSet::new(),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $field:ident: $ty:ty, $key:literal) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$field = value;
            self.explicit.insert($key);
            self
        }
    };
}

impl ProducerConfigBuilder {
    /// `bootstrap.servers`: `host:port` entries.
    pub fn bootstrap_servers<S: AsRef<str>>(
        mut self,
        servers: impl IntoIterator<Item = S>,
    ) -> Self {
        self.config.bootstrap_servers = servers
            .into_iter()
            .flat_map(|s| props::list(s.as_ref()))
            .collect();
        self.explicit.insert("bootstrap.servers");
        self
    }

    setter!(/// `client.id`.
        client_id, client_id: String, "client.id");
    setter!(/// `acks`.
        acks, acks: Acks, "acks");
    setter!(/// `linger.ms`: how long a batch waits for more records.
        linger, linger: Duration, "linger.ms");
    setter!(/// `batch.size` in bytes.
        batch_size, batch_size: usize, "batch.size");
    setter!(/// `max.request.size` in bytes.
        max_request_size, max_request_size: usize, "max.request.size");
    setter!(/// `buffer.memory` in bytes.
        buffer_memory, buffer_memory: usize, "buffer.memory");
    setter!(/// `max.block.ms`.
        max_block, max_block: Duration, "max.block.ms");
    setter!(/// `compression.type`.
        compression, compression: Compression, "compression.type");
    setter!(/// `enable.idempotence`.
        enable_idempotence, enable_idempotence: bool, "enable.idempotence");
    setter!(/// `max.in.flight.requests.per.connection`.
        max_in_flight, max_in_flight: usize, "max.in.flight.requests.per.connection");
    setter!(/// `retries`.
        retries, retries: u32, "retries");
    setter!(/// `retry.backoff.ms`.
        retry_backoff, retry_backoff: Duration, "retry.backoff.ms");
    setter!(/// `retry.backoff.max.ms`.
        retry_backoff_max, retry_backoff_max: Duration, "retry.backoff.max.ms");
    setter!(/// `request.timeout.ms`.
        request_timeout, request_timeout: Duration, "request.timeout.ms");
    setter!(/// `delivery.timeout.ms`.
        delivery_timeout, delivery_timeout: Duration, "delivery.timeout.ms");
    setter!(/// `metadata.max.age.ms`.
        metadata_max_age, metadata_max_age: Duration, "metadata.max.age.ms");
    setter!(/// `partitioner`.
        partitioner, partitioner: PartitionerChoice, "partitioner");
    setter!(/// `allow.auto.create.topics`.
        allow_auto_create_topics, allow_auto_create_topics: bool, "allow.auto.create.topics");

    /// Set a property by its Kafka name. An unknown name or a value that
    /// does not parse is an error naming both.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self, ConfigError> {
        let v = value.trim();
        let bad = |reason: &str| ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let ms = || props::millis(v).map_err(|r| bad(&r));
        let size = || props::positive(v).map_err(|r| bad(&r));
        if self.config.security.set(key, value)? {
            return Ok(self);
        }
        Ok(match key {
            "bootstrap.servers" => {
                if props::list(v).is_empty() {
                    return Err(bad("expected host:port[,host:port...]"));
                }
                self.bootstrap_servers([v])
            }
            "client.id" => self.client_id(v.to_owned()),
            "acks" | "request.required.acks" => self.acks(match v {
                "0" => Acks::None,
                "1" => Acks::Leader,
                "all" | "-1" => Acks::All,
                _ => return Err(bad("expected 0, 1, all or -1")),
            }),
            "linger.ms" => self.linger(ms()?),
            "batch.size" => self.batch_size(size()?),
            "max.request.size" => self.max_request_size(size()?),
            "buffer.memory" => self.buffer_memory(size()?),
            "max.block.ms" => self.max_block(ms()?),
            "compression.type" | "compression.codec" => {
                let c = Compression::ALL
                    .into_iter()
                    .find(|c| c.name() == v)
                    .ok_or_else(|| bad("expected none, gzip, snappy, lz4 or zstd"))?;
                self.compression(c)
            }
            "enable.idempotence" => {
                self.enable_idempotence(props::boolean(v).map_err(|r| bad(&r))?)
            }
            "max.in.flight.requests.per.connection" | "max.in.flight" => {
                self.max_in_flight(size()?)
            }
            "retries" => {
                let n: i64 = v.parse().map_err(|_| bad("expected an integer"))?;
                let n = u32::try_from(n).map_err(|_| bad("expected 0 to 2147483647"))?;
                self.retries(n.min(i32::MAX.unsigned_abs()))
            }
            "retry.backoff.ms" => self.retry_backoff(ms()?),
            "retry.backoff.max.ms" => self.retry_backoff_max(ms()?),
            "request.timeout.ms" => self.request_timeout(ms()?),
            "delivery.timeout.ms" => self.delivery_timeout(ms()?),
            "metadata.max.age.ms" => self.metadata_max_age(ms()?),
            "allow.auto.create.topics" => {
                self.allow_auto_create_topics(props::boolean(v).map_err(|r| bad(&r))?)
            }
            "partitioner" | "partitioner.class" => {
                let choice = PartitionerChoice::from_name(v).ok_or_else(|| {
                    bad("expected murmur2_random, default or sticky (or set a custom Partitioner through the builder)")
                })?;
                self.partitioner(choice)
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    client: "producer",
                    key: key.to_owned(),
                    value: value.to_owned(),
                });
            }
        })
    }

    /// Validate and resolve: idempotence is on by default and is turned off
    /// quietly when the user did not ask for it but set `acks`,
    /// `retries` or `max.in.flight.requests.per.connection` to values it
    /// cannot work with; asked for explicitly, the conflict is an error.
    pub fn build(self) -> Result<ProducerConfig, ConfigError> {
        let mut c = self.config;
        let explicit = self.explicit.contains("enable.idempotence");
        if c.enable_idempotence && !explicit {
            if let Some(why) = idempotence_conflict(c.acks, c.max_in_flight, c.retries) {
                tracing::debug!(%why, "idempotence disabled: not requested and the settings conflict");
                c.enable_idempotence = false;
            }
        }
        c.idempotence_required = c.enable_idempotence && explicit;
        if c.batch_size == 0 || c.max_request_size == 0 || c.buffer_memory == 0 {
            return Err(ConfigError::Conflict(
                "batch.size, max.request.size and buffer.memory must be positive".to_owned(),
            ));
        }
        if c.max_in_flight == 0 {
            return Err(ConfigError::Conflict(
                "max.in.flight.requests.per.connection must be at least 1".to_owned(),
            ));
        }
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> Result<ProducerConfig, ConfigError> {
        let mut all = vec![("bootstrap.servers", "a:1, b:2")];
        all.extend_from_slice(extra);
        ProducerConfig::from_properties(all)
    }

    #[test]
    fn defaults_follow_the_java_client() {
        let c = props(&[]).expect("valid");
        assert_eq!(c.bootstrap_servers, ["a:1", "b:2"]);
        assert_eq!(c.acks, Acks::All);
        assert!(c.enable_idempotence && !c.idempotence_required);
        assert_eq!((c.batch_size, c.max_in_flight), (16_384, 5));
        assert_eq!(c.delivery_timeout, Duration::from_secs(120));
        assert!(c.allow_auto_create_topics);
    }

    #[test]
    fn properties_parse() {
        let c = props(&[
            ("acks", "1"),
            ("linger.ms", "20"),
            ("compression.type", "zstd"),
            ("batch.size", "1000"),
            ("partitioner", "murmur2_random"),
            ("allow.auto.create.topics", "false"),
        ])
        .expect("valid");
        assert!(!c.allow_auto_create_topics);
        assert_eq!(c.acks, Acks::Leader);
        assert_eq!(c.linger, Duration::from_millis(20));
        assert_eq!(c.compression, Compression::Zstd);
        assert!(!c.enable_idempotence, "quietly off: acks=1 was explicit");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_key_and_value() {
        let e = props(&[("lingr.ms", "5")]).expect_err("unknown");
        assert!(
            matches!(&e, ConfigError::UnknownKey { key, value, .. } if key == "lingr.ms" && value == "5")
        );
        assert!(e.to_string().contains("lingr.ms") && e.to_string().contains('5'));
        for (k, v) in [
            ("acks", "2"),
            ("linger.ms", "-3"),
            ("compression.type", "brotli"),
            ("enable.idempotence", "yes"),
            ("batch.size", "0"),
            ("retries", "x"),
        ] {
            let e = props(&[(k, v)]).expect_err("bad value");
            let ConfigError::BadValue { key, value, reason } = &e else {
                panic!("{k}={v}: {e:?}");
            };
            assert_eq!((key.as_str(), value.as_str()), (k, v));
            assert!(!reason.is_empty());
            assert!(
                e.to_string().contains(k) && e.to_string().contains(v),
                "{e}"
            );
        }
    }

    #[test]
    fn explicit_idempotence_conflicts_are_errors() {
        for extra in [
            ("acks", "1"),
            ("max.in.flight.requests.per.connection", "6"),
            ("retries", "0"),
        ] {
            let e = props(&[("enable.idempotence", "true"), extra]).expect_err("conflict");
            assert!(matches!(e, ConfigError::Conflict(_)), "{e:?}");
            // Not asked for: quietly off.
            let c = props(&[extra]).expect("valid");
            assert!(!c.enable_idempotence, "{extra:?}");
        }
        let c = props(&[("enable.idempotence", "true")]).expect("valid");
        assert!(c.enable_idempotence && c.idempotence_required);
    }
}
