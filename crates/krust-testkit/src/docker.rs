//! An `apache/kafka` (JVM) container through testcontainers, for machines
//! with a Docker daemon (feature `docker`). [`crate::all_brokers`] includes
//! it only when [`docker_available`] says a daemon answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use testcontainers_modules::kafka::apache::{KAFKA_PORT, Kafka};
use testcontainers_modules::testcontainers::Container;
use testcontainers_modules::testcontainers::runners::SyncRunner;

use crate::broker::{Broker, BrokerKind};
use crate::{Error, Result};

/// Whether a Docker daemon answers `GET /_ping` on `DOCKER_HOST` (unix or
/// tcp) or `/var/run/docker.sock`.
pub fn docker_available() -> bool {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let timeout = Some(Duration::from_secs(2));
    let ping = |stream: &mut dyn ReadWrite| -> bool {
        if stream
            .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer.starts_with(b"HTTP/1.") && answer.windows(6).any(|w| w == b" 200 O")
    };
    if let Some(path) = host.strip_prefix("unix://") {
        let Ok(mut s) = UnixStream::connect(path) else {
            return false;
        };
        let _ = s.set_read_timeout(timeout);
        ping(&mut s)
    } else if let Some(addr) = host.strip_prefix("tcp://") {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return false;
        };
        let _ = s.set_read_timeout(timeout);
        ping(&mut s)
    } else {
        false
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A single-node Apache Kafka (KRaft) in an `apache/kafka` container,
/// removed on drop.
pub struct DockerKafka {
    _container: Container<Kafka>,
    addr: String,
}

impl std::fmt::Debug for DockerKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerKafka")
            .field("addr", &self.addr)
            .finish()
    }
}

impl DockerKafka {
    /// Start the container; panics if Docker is missing or the start fails.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("cannot start the apache/kafka container: {e}"))
    }

    /// Start the container and wait until Kafka reports it has started.
    pub fn try_start() -> Result<Self> {
        if !docker_available() {
            return Err(Error::new(
                "no Docker daemon answers (DOCKER_HOST or /var/run/docker.sock)",
            ));
        }
        let container = Kafka::default()
            .with_jvm_image()
            .start()
            .map_err(|e| Error::new(format!("testcontainers: {e}")))?;
        let port = container
            .get_host_port_ipv4(KAFKA_PORT)
            .map_err(|e| Error::new(format!("testcontainers: {e}")))?;
        Ok(Self {
            _container: container,
            addr: format!("127.0.0.1:{port}"),
        })
    }
}

impl Broker for DockerKafka {
    fn bootstrap(&self) -> String {
        self.addr.clone()
    }

    fn kind(&self) -> BrokerKind {
        BrokerKind::DockerKafka
    }
}
