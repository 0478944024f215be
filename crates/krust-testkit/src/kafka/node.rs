//! One Apache Kafka KRaft node (broker and controller in one JVM): its
//! configuration, its storage, its process and the faults a test can cause
//! it (crash, hang, restart on the same port and data).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::Signal;

use super::KafkaVersion;
use crate::process::{Launch, Proc, TempDir};
use crate::{Error, Result};

/// Settings shared by every node of one cluster.
#[derive(Clone, Debug)]
pub(crate) struct ClusterSpec {
    pub(crate) version: KafkaVersion,
    pub(crate) cluster_id: String,
    /// `id@127.0.0.1:port` for every controller.
    pub(crate) voters: String,
    /// Replication factor of the internal topics and of new topics.
    pub(crate) replication: u16,
    pub(crate) min_insync: u16,
    pub(crate) heap: String,
    pub(crate) jvm_options: Vec<String>,
    /// Broker properties that override (or add to) the defaults.
    pub(crate) overrides: Vec<(String, String)>,
    /// Listeners besides PLAINTEXT and CONTROLLER: name and security
    /// protocol (each node gives each a port of its own).
    pub(crate) listeners: Vec<(String, String)>,
    /// Arguments added to `StorageTool format` (e.g. `--add-scram`).
    pub(crate) format_args: Vec<String>,
}

/// A node's identity: what stays the same across restarts.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) id: i32,
    pub(crate) port: u16,
    pub(crate) controller_port: u16,
    proc: Option<Proc>,
    /// Stopped with `SIGSTOP` and not resumed: running, but answering
    /// nothing.
    paused: bool,
    starts: u32,
    dir: TempDir,
    /// The port of each extra listener, in the order of
    /// [`ClusterSpec::listeners`].
    pub(crate) listener_ports: Vec<u16>,
}

impl Node {
    /// A node with its ports and directory, not yet started.
    pub(crate) fn new(
        id: i32,
        port: u16,
        controller_port: u16,
        listener_ports: Vec<u16>,
    ) -> Result<Self> {
        Ok(Self {
            id,
            port,
            controller_port,
            proc: None,
            paused: false,
            starts: 0,
            dir: TempDir::new(&format!("kafka{id}"))?,
            listener_ports,
        })
    }

    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("server.properties")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Write the configuration and start the JVM; the first start formats
    /// the storage first (in the same shell, so that the nodes of a cluster
    /// format in parallel). Returns once the process runs, not once it is
    /// ready.
    pub(crate) fn spawn(&mut self, spec: &ClusterSpec) -> Result<()> {
        let libs = spec.version.libs()?;
        let java = java()?;
        self.write_config(spec)?;
        let classpath = format!("{}/*", libs.display());
        let log4j2 = self.dir.path().join("log4j2.properties");
        let log4j1 = self.dir.path().join("log4j.properties");
        fs::write(&log4j2, LOG4J2).map_err(|e| Error::io("writing log4j2.properties", e))?;
        fs::write(&log4j1, LOG4J1).map_err(|e| Error::io("writing log4j.properties", e))?;
        let mut jvm = vec![
            format!("-Xmx{}", spec.heap),
            "-Djava.awt.headless=true".to_string(),
            format!("-Dlog4j2.configurationFile={}", log4j2.display()),
            format!("-Dlog4j.configuration=file:{}", log4j1.display()),
        ];
        jvm.extend(spec.jvm_options.iter().cloned());
        let config = self.config_path();
        // One argument per line, read by xargs (POSIX sh has no arrays).
        let format_args = self.dir.path().join("format.args");
        let mut lines = String::new();
        for a in &spec.format_args {
            let _ = writeln!(lines, "{a}");
        }
        fs::write(&format_args, lines).map_err(|e| Error::io("writing format.args", e))?;
        // sh -c SCRIPT kafka-node JAVA CLASSPATH CONFIG CLUSTER_ID FORMAT FORMAT_ARGS JVM...
        let script = r#"java=$1 cp=$2 config=$3 cluster=$4 format=$5 fargs=$6; shift 6
if [ "$format" = 1 ]; then
  xargs -d '\n' -a "$fargs" "$java" "$@" -cp "$cp" kafka.tools.StorageTool format -t "$cluster" -c "$config" || exit 90
fi
exec "$java" "$@" -cp "$cp" kafka.Kafka "$config""#;
        let mut args = vec![
            "-c".to_string(),
            script.to_string(),
            "kafka-node".to_string(),
            java.display().to_string(),
            classpath,
            config.display().to_string(),
            spec.cluster_id.clone(),
            if self.starts == 0 { "1" } else { "0" }.to_string(),
            format_args.display().to_string(),
        ];
        args.extend(jvm);
        let log = self.dir.path().join(format!("kafka-{}.log", self.starts));
        let name = format!("kafka {} node {}", spec.version, self.id);
        let (proc, _) = Proc::spawn(&name, Path::new("/bin/sh"), &args, &log, Launch::Lifeline)?;
        self.proc = Some(proc);
        self.paused = false;
        self.starts += 1;
        Ok(())
    }

    fn write_config(&self, spec: &ClusterSpec) -> Result<()> {
        let mut listeners = format!(
            "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            self.port, self.controller_port
        );
        let mut advertised = format!("PLAINTEXT://127.0.0.1:{}", self.port);
        let mut protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string();
        for ((name, protocol), port) in spec.listeners.iter().zip(&self.listener_ports) {
            let _ = write!(listeners, ",{name}://127.0.0.1:{port}");
            let _ = write!(advertised, ",{name}://127.0.0.1:{port}");
            let _ = write!(protocols, ",{name}:{protocol}");
        }
        let mut props: Vec<(String, String)> = vec![
            ("process.roles".into(), "broker,controller".into()),
            ("node.id".into(), self.id.to_string()),
            ("controller.quorum.voters".into(), spec.voters.clone()),
            ("listeners".into(), listeners),
            ("advertised.listeners".into(), advertised),
            ("controller.listener.names".into(), "CONTROLLER".into()),
            ("listener.security.protocol.map".into(), protocols),
            ("inter.broker.listener.name".into(), "PLAINTEXT".into()),
            ("log.dirs".into(), self.data_dir().display().to_string()),
            ("num.partitions".into(), "1".into()),
            (
                "default.replication.factor".into(),
                spec.replication.to_string(),
            ),
            ("min.insync.replicas".into(), spec.min_insync.to_string()),
            (
                "offsets.topic.replication.factor".into(),
                spec.replication.to_string(),
            ),
            // Fewer than the default 50: created on the first FindCoordinator,
            // they are most of what a fresh broker's first group waits for.
            ("offsets.topic.num.partitions".into(), "10".into()),
            (
                "transaction.state.log.replication.factor".into(),
                spec.replication.to_string(),
            ),
            (
                "transaction.state.log.min.isr".into(),
                spec.min_insync.to_string(),
            ),
            ("transaction.state.log.num.partitions".into(), "5".into()),
            // A test's first member should not wait 3 s for company.
            ("group.initial.rebalance.delay.ms".into(), "0".into()),
            // A crashed or hung broker is fenced (its leaderships moved)
            // after 3 s instead of 9 s; a hung follower leaves the ISR after
            // 5 s instead of 30 s. Production behaviour, at test speed.
            ("broker.heartbeat.interval.ms".into(), "500".into()),
            ("broker.session.timeout.ms".into(), "3000".into()),
            ("replica.lag.time.max.ms".into(), "5000".into()),
            ("num.network.threads".into(), "2".into()),
            ("num.io.threads".into(), "4".into()),
            ("log.cleaner.threads".into(), "1".into()),
        ];
        if spec.version.major() >= 4 {
            // KIP-848 groups at test speed (docs/ARCHITECTURE.md): the
            // broker dictates a 500 ms heartbeat, expires a session after
            // 6 s, and assigns as soon as a member changes.
            for (k, v) in [
                ("group.consumer.min.heartbeat.interval.ms", "100"),
                ("group.consumer.heartbeat.interval.ms", "500"),
                ("group.consumer.min.session.timeout.ms", "2000"),
                ("group.consumer.session.timeout.ms", "6000"),
                ("group.consumer.assignment.interval.ms", "0"),
            ] {
                props.push((k.into(), v.into()));
            }
            props.push((
                "share.coordinator.state.topic.replication.factor".into(),
                spec.replication.to_string(),
            ));
            props.push((
                "share.coordinator.state.topic.min.isr".into(),
                spec.min_insync.to_string(),
            ));
        }
        for (k, v) in &spec.overrides {
            props.retain(|(key, _)| key != k);
            props.push((k.clone(), v.clone()));
        }
        let mut text = String::new();
        for (k, v) in props {
            let _ = writeln!(text, "{k}={v}");
        }
        fs::write(self.config_path(), text)
            .map_err(|e| Error::io(&format!("writing {}", self.config_path().display()), e))
    }

    pub(crate) fn proc_mut(&mut self) -> Result<&mut Proc> {
        let id = self.id;
        self.proc
            .as_mut()
            .ok_or_else(|| Error::new(format!("kafka node {id} is not running")))
    }

    pub(crate) fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// Running and not hung: the nodes a question can be put to.
    pub(crate) fn is_serving(&self) -> bool {
        self.proc.is_some() && !self.paused
    }

    /// `SIGKILL`: the node dies at once, as in a power cut.
    pub(crate) fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
        self.paused = false;
    }

    /// `SIGSTOP`: the node hangs with its sockets open.
    pub(crate) fn pause(&mut self) -> Result<()> {
        self.proc_mut()?.signal_broker(Signal::SIGSTOP)?;
        self.paused = true;
        Ok(())
    }

    /// `SIGCONT` after [`Node::pause`].
    pub(crate) fn resume(&mut self) -> Result<()> {
        self.proc_mut()?.signal_broker(Signal::SIGCONT)?;
        self.paused = false;
        Ok(())
    }

    /// `SIGTERM` and wait: a controlled shutdown.
    pub(crate) fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.stop();
        }
        self.paused = false;
    }

    pub(crate) fn log_tail(&self) -> String {
        self.proc.as_ref().map(Proc::log_tail).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Test data is thrown away: no need for a controlled shutdown.
        self.kill();
    }
}

/// The `java` to run: `$JAVA_HOME/bin/java`, else the one on `PATH`.
pub(crate) fn java() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let java = PathBuf::from(home).join("bin/java");
        if java.is_file() {
            return Ok(java);
        }
    }
    let found = Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(PathBuf::from("java"))
    } else {
        Err(Error::new(
            "no java on PATH (and no JAVA_HOME): Apache Kafka needs Java 17 or newer; \
             on Debian `apt-get install openjdk-17-jdk-headless`, then `scripts/setup.sh`",
        ))
    }
}

/// Broker logs at INFO for Kafka's own classes, WARN for the libraries,
/// on stdout (the fixture's log file). Kafka 4 logs through log4j 2.
const LOG4J2: &str = "\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
logger.kafkaconfig.name = kafka.server.KafkaConfig
logger.kafkaconfig.level = WARN
";

/// The same for Kafka 3.9 (reload4j, log4j 1 syntax).
const LOG4J1: &str = "\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.org.apache.kafka.common.config=WARN
log4j.logger.kafka.server.KafkaConfig=WARN
";

/// A random cluster id: 16 bytes, URL-safe base64 without padding (22
/// characters), as `kafka-storage random-uuid` prints.
pub(crate) fn cluster_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in &bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cluster_id;

    #[test]
    fn cluster_ids_are_22_url_safe_characters() {
        let a = cluster_id();
        assert_eq!(a.len(), 22, "{a}");
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(a, cluster_id());
    }
}
