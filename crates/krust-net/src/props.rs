//! Parsing the values of Kafka client properties (`linger.ms=5`,
//! `bootstrap.servers=a:9092,b:9092`, `enable.auto.commit=true`), shared by
//! the producer's and the consumer's configurations. Each parser returns
//! the reason a value is refused; [`ConfigError`] names the key and the
//! value.

use std::time::Duration;

/// A client property that is unknown, has a value that does not parse, or
/// conflicts with another. The value of a secret property (a password, a
/// JAAS configuration, a private key) is never shown, in `Display` or in
/// `Debug` ([`crate::security::is_secret_key`]).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No property of this client has this name.
    #[error("unknown {client} property `{key}` (value `{}`)", shown_unknown(.key, .value))]
    UnknownKey {
        /// Which client was configured (`producer`, `consumer`).
        client: &'static str,
        /// The property name as given.
        key: String,
        /// The value given with it.
        value: String,
    },
    /// The value does not parse or is out of range.
    #[error("bad value `{}` for `{key}`: {reason}", shown(.key, .value))]
    BadValue {
        /// The property name.
        key: String,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// Settings that cannot hold together (e.g. `enable.idempotence=true`
    /// with `acks=1`).
    #[error("conflicting settings: {0}")]
    Conflict(String),
}

/// The value as errors show it: `[redacted]` for a secret.
fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if crate::security::is_secret_key(key) {
        "[redacted]"
    } else {
        value
    }
}

/// The value of an unknown key as errors show it: redacted too when the
/// key is a security one (`sasl.pasword` is a typo of a secret's name).
fn shown_unknown<'a>(key: &str, value: &'a str) -> &'a str {
    if key.starts_with("sasl.") || key.starts_with("ssl.") {
        "[redacted]"
    } else {
        shown(key, value)
    }
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::UnknownKey { client, key, value } => f
                .debug_struct("UnknownKey")
                .field("client", client)
                .field("key", key)
                .field("value", &shown_unknown(key, value))
                .finish(),
            ConfigError::BadValue { key, value, reason } => f
                .debug_struct("BadValue")
                .field("key", key)
                .field("value", &shown(key, value))
                .field("reason", reason)
                .finish(),
            ConfigError::Conflict(why) => f.debug_tuple("Conflict").field(why).finish(),
        }
    }
}

/// Feed `(key, value)` properties one by one to a builder's `set`.
pub fn apply<B, K, V>(
    mut builder: B,
    properties: impl IntoIterator<Item = (K, V)>,
    set: impl Fn(B, &str, &str) -> Result<B, ConfigError>,
) -> Result<B, ConfigError>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    for (k, v) in properties {
        builder = set(builder, k.as_ref(), v.as_ref())?;
    }
    Ok(builder)
}

/// A comma-separated list, entries trimmed, empty entries dropped.
pub fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A non-negative number of milliseconds.
pub fn millis(v: &str) -> Result<Duration, String> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| "expected milliseconds as an integer".to_owned())?;
    u64::try_from(n)
        .map(Duration::from_millis)
        .map_err(|_| "must not be negative".to_owned())
}

/// A positive size or count.
pub fn positive(v: &str) -> Result<usize, String> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| "expected a positive integer".to_owned())?;
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "must be positive".to_owned())
}

/// `true` or `false`.
pub fn boolean(v: &str) -> Result<bool, String> {
    match v.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

impl crate::PoolConfig {
    /// Settings of a pool (what an admin client needs) from Kafka property
    /// names: `bootstrap.servers`, `client.id`, `request.timeout.ms`,
    /// `socket.connection.setup.timeout.ms`, `metadata.max.age.ms`,
    /// `connections.max.idle.ms`, `reconnect.backoff.ms`,
    /// `reconnect.backoff.max.ms`, `bootstrap.timeout.ms`, and the security
    /// properties (`security.protocol`, `sasl.*`, `ssl.*`).
    pub fn from_properties<K, V>(
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Result<crate::PoolConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = crate::PoolConfig::default();
        let mut security = crate::SecurityConfig::default();
        for (k, v) in properties {
            let (key, value) = (k.as_ref(), v.as_ref());
            if security.set(key, value)? {
                continue;
            }
            let bad = |reason: String| ConfigError::BadValue {
                key: key.to_owned(),
                value: value.to_owned(),
                reason,
            };
            let v = value.trim();
            match key {
                "bootstrap.servers" | "metadata.broker.list" => {
                    c.bootstrap = list(v);
                    if c.bootstrap.is_empty() {
                        return Err(bad("expected host:port[,host:port...]".into()));
                    }
                }
                "client.id" => c.connection.client_id = Some(v.to_owned()),
                "request.timeout.ms" => c.connection.request_timeout = millis(v).map_err(bad)?,
                "socket.connection.setup.timeout.ms" => {
                    c.connection.connect_timeout = millis(v).map_err(bad)?;
                }
                "metadata.max.age.ms" => c.metadata_max_age = millis(v).map_err(bad)?,
                "connections.max.idle.ms" => c.idle_timeout = millis(v).map_err(bad)?,
                "reconnect.backoff.ms" => c.reconnect_backoff.initial = millis(v).map_err(bad)?,
                "reconnect.backoff.max.ms" => c.reconnect_backoff.max = millis(v).map_err(bad)?,
                "bootstrap.timeout.ms" => c.bootstrap_timeout = millis(v).map_err(bad)?,
                _ => {
                    return Err(ConfigError::UnknownKey {
                        client: "admin",
                        key: key.to_owned(),
                        value: value.to_owned(),
                    });
                }
            }
        }
        if c.bootstrap.is_empty() {
            return Err(ConfigError::Conflict(
                "bootstrap.servers is required".into(),
            ));
        }
        c.connection.security = security.resolve()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_configured_by_kafka_property_names() {
        let c = crate::PoolConfig::from_properties([
            ("bootstrap.servers", "a:1, b:2"),
            ("request.timeout.ms", "5000"),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ])
        .unwrap();
        assert_eq!(c.bootstrap, ["a:1", "b:2"]);
        assert_eq!(c.connection.request_timeout, Duration::from_millis(5000));
        assert_eq!(
            c.connection.security.protocol(),
            crate::SecurityProtocol::SaslPlaintext
        );
        let e =
            crate::PoolConfig::from_properties([("bootstrap.servers", "a:1"), ("lingr.ms", "5")])
                .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::UnknownKey {
                    client: "admin",
                    ..
                }
            ),
            "{e}"
        );
        assert!(crate::PoolConfig::from_properties([("client.id", "x")]).is_err());
    }

    #[test]
    fn values_parse_and_refusals_say_why() {
        assert_eq!(list(" a:1, ,b:2 "), ["a:1", "b:2"]);
        assert_eq!(millis("250"), Ok(Duration::from_millis(250)));
        assert_eq!(millis("-1").unwrap_err(), "must not be negative");
        assert!(millis("1s").is_err());
        assert_eq!(positive("16384"), Ok(16384));
        assert_eq!(positive("0").unwrap_err(), "must be positive");
        assert_eq!(boolean("false"), Ok(false));
        assert!(boolean("yes").is_err());
    }

    #[test]
    fn errors_never_repeat_a_secret_value() {
        let bad = ConfigError::BadValue {
            key: "sasl.password".into(),
            value: "hunter2".into(),
            reason: "r".into(),
        };
        let unknown = ConfigError::UnknownKey {
            client: "consumer",
            key: "sasl.pasword".into(),
            value: "hunter2".into(),
        };
        for e in [bad, unknown] {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        let plain = ConfigError::BadValue {
            key: "linger.ms".into(),
            value: "5s".into(),
            reason: "r".into(),
        };
        assert!(format!("{plain} {plain:?}").matches("5s").count() == 2);
    }
}
