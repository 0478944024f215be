//! What a test asks a Kafka cluster besides serving clients: Kafka's own
//! command-line tools (the classes behind `kafka-consumer-groups.sh`,
//! `kafka-topics.sh`, ...) run with `java -cp`, and where a group's
//! coordinator is.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use krust_codec::KString;
use krust_codec::generated::FindCoordinatorRequest;

use super::KafkaCluster;
use super::node::java;
use crate::{Error, Result, raw};

/// `kafka-consumer-groups.sh`.
pub const CONSUMER_GROUP_COMMAND: &str =
    "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
/// `kafka-topics.sh`.
pub const TOPIC_COMMAND: &str = "org.apache.kafka.tools.TopicCommand";
/// `kafka-leader-election.sh` (preferred or unclean elections).
pub const LEADER_ELECTION_COMMAND: &str = "org.apache.kafka.tools.LeaderElectionCommand";

impl KafkaCluster {
    /// Run Kafka's tool `class` (e.g. [`CONSUMER_GROUP_COMMAND`]) with
    /// `--bootstrap-server` set to the serving nodes, then `args`; returns
    /// its standard output, or an error with its exit status and standard
    /// error.
    pub fn tool(&self, class: &str, args: &[&str]) -> Result<String> {
        let libs = self.spec().version.libs()?;
        let bootstrap = self.serving_addrs().join(",");
        let out = Command::new(java()?)
            .args([
                "-Xmx256m",
                "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC",
                "-cp",
            ])
            .arg(format!("{}/*", libs.display()))
            .arg(class)
            .args(["--bootstrap-server", &bootstrap])
            .args(args)
            .output()
            .map_err(|e| Error::io(&format!("running {class}"), e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::new(format!(
                "{class} {args:?} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// The node that coordinates `group`, asked of the serving nodes with
    /// FindCoordinator (retried while the offsets topic is being created or
    /// the coordinator is moving, up to 30 s).
    pub fn coordinator(&self, group: &str) -> Result<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.ask_serving(|addr| find_coordinator(addr, group)) {
                Ok(id) => return Ok(id),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

fn find_coordinator(addr: &str, group: &str) -> Result<i32> {
    let mut conn = raw::Connection::connect_with_timeout(addr, Duration::from_secs(2))?;
    let version = conn.version_for::<FindCoordinatorRequest>()?;
    // The group is `key` up to v3 and one of `coordinator_keys` from v4.
    let request = if version >= 4 {
        FindCoordinatorRequest {
            coordinator_keys: vec![KString::from(group)],
            ..Default::default()
        }
    } else {
        FindCoordinatorRequest {
            key: KString::from(group),
            ..Default::default()
        }
    };
    let response = conn.send(version, &request)?;
    let (code, node) = if version >= 4 {
        let c = response.coordinators.first().ok_or_else(|| {
            Error::new(format!("{addr}: FindCoordinator answered no coordinator"))
        })?;
        (c.error_code, c.node_id)
    } else {
        (response.error_code, response.node_id)
    };
    if code == 0 {
        Ok(node)
    } else {
        Err(Error::new(format!(
            "FindCoordinator {group} on {addr}: error {code}"
        )))
    }
}
