//! Any broker named by `KAFKA_BOOTSTRAP` (a real Kafka, Redpanda, ...).

use crate::broker::{Broker, BrokerKind, Capability};

/// The broker given by the `KAFKA_BOOTSTRAP` environment variable. Nothing
/// is started or stopped; it is assumed to behave like Apache Kafka.
#[derive(Clone, Debug)]
pub struct External {
    bootstrap: String,
}

impl External {
    /// `KAFKA_BOOTSTRAP` when it is set and not empty.
    pub fn from_env() -> Option<Self> {
        let bootstrap = std::env::var("KAFKA_BOOTSTRAP").ok()?;
        let bootstrap = bootstrap.trim();
        (!bootstrap.is_empty()).then(|| Self {
            bootstrap: bootstrap.to_string(),
        })
    }
}

impl Broker for External {
    fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    fn kind(&self) -> BrokerKind {
        BrokerKind::External
    }

    fn supports(&self, cap: Capability) -> bool {
        BrokerKind::External.supports(cap)
    }
}
