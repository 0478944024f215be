//! Configuration errors name the property and the value.

use krust_producer::{ConfigError, ProducerConfig};

#[test]
fn unknown_key_and_bad_value_name_key_and_value() {
    let e = ProducerConfig::from_properties([("bootstrap.servers", "b:1"), ("acks.level", "all")])
        .expect_err("unknown key");
    assert!(matches!(e, ConfigError::UnknownKey { .. }), "{e:?}");
    assert!(
        e.to_string().contains("acks.level") && e.to_string().contains("all"),
        "{e}"
    );

    let e = ProducerConfig::from_properties([("bootstrap.servers", "b:1"), ("linger.ms", "soon")])
        .expect_err("bad value");
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
    assert!(
        e.to_string().contains("linger.ms") && e.to_string().contains("soon"),
        "{e}"
    );
}
