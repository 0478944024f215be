//! librdkafka's mock cluster, in two versions, each run by a program of ours
//! that `scripts/setup.sh` builds into `.deps/bin`, with its fault injection
//! as methods:
//!
//! - librdkafka 2.0.2 (Debian's librdkafka-dev): `mockcluster/mockcluster.c`,
//!   built into `krust-mockcluster`;
//! - librdkafka 2.12.1, the mock rust-rdkafka's `mocking` module runs (what
//!   many Rust projects test against): `tools/rdkafka-mock`, a Rust program
//!   on the `rdkafka` crate, which builds librdkafka from source, built into
//!   `krust-rdkafka-mock`.
//!
//! Both programs speak one protocol: start-up lines (`LIBRDKAFKA=`,
//! `BROKER=`, `BOOTSTRAP=`, `READY`), then one command per line on stdin,
//! each answered with `OK ...` or `ERR ...`; end of stdin stops them, so
//! they die with the test process that owns the pipe. So one fixture,
//! [`MockCluster`], drives either ([`MockVersion`]).

use std::io::{BufRead, BufReader, Write};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use crate::broker::{Broker, BrokerKind};
use crate::process::{Launch, Proc, START_TIMEOUT, TempDir, locate};
use crate::{Error, Result};

/// How long a fault command may take to be acknowledged.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Which librdkafka a [`MockCluster`] comes from. They deviate from Kafka
/// in different ways (docs/ARCHITECTURE.md, "Test brokers"), so each is a
/// [`BrokerKind`] of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MockVersion {
    /// librdkafka 2.0.2 (Debian's librdkafka-dev), [`BrokerKind::MockCluster`].
    V2_0,
    /// librdkafka 2.12.1 (the `rdkafka` crate 0.39.0's bundled source),
    /// [`BrokerKind::MockCluster212`].
    V2_12,
}

impl MockVersion {
    /// Every version, oldest first.
    pub const ALL: [MockVersion; 2] = [MockVersion::V2_0, MockVersion::V2_12];

    /// The broker kind of this version's mock.
    pub fn kind(self) -> BrokerKind {
        match self {
            MockVersion::V2_0 => BrokerKind::MockCluster,
            MockVersion::V2_12 => BrokerKind::MockCluster212,
        }
    }

    /// The librdkafka version the mock must report (`2.0.2`, `2.12.1`): a
    /// program built against another one is refused at start, since the
    /// capabilities and quirks recorded for the kind would not hold.
    pub fn librdkafka(self) -> &'static str {
        match self {
            MockVersion::V2_0 => "2.0.2",
            MockVersion::V2_12 => "2.12.1",
        }
    }

    /// `(api key, highest version)` the fixture narrows the mock to at start
    /// (its `apiversion` command), because above them it does not do what
    /// Kafka does:
    ///
    /// - JoinGroup v6+, SyncGroup v4+, LeaveGroup v3+: 2.12.1 advertises
    ///   them but does not parse them. It reads JoinGroup v6's and SyncGroup
    ///   v4's compact (flexible) arrays as 4-byte counts and closes the
    ///   connection, and answers LeaveGroup v3+ (batch leave) without its
    ///   Members array. librdkafka's own client never sends them (JoinGroup
    ///   v5, SyncGroup v3, LeaveGroup v1 are its highest); Java's would
    ///   negotiate the same broken versions, and krust, which follows the
    ///   advertised ranges, could not join a group on it at all.
    /// - OffsetCommit v6+: 2.12.1 refuses a partition whose
    ///   CommittedLeaderEpoch (KIP-320: the epoch of the last record
    ///   consumed) is not the partition's current leader epoch, with
    ///   FENCED_LEADER_EPOCH. Kafka's group coordinator stores that epoch
    ///   and checks nothing against it, so after any leader change every
    ///   commit of records written before it fails there, forever, for
    ///   every client that sends the epoch (krust and Java do). At v5 the
    ///   field does not exist.
    pub fn narrowed_versions(self) -> &'static [(i16, i16)] {
        match self {
            MockVersion::V2_0 => &[],
            // JoinGroup, SyncGroup, LeaveGroup, OffsetCommit.
            MockVersion::V2_12 => &[(11, 5), (14, 3), (13, 2), (8, 5)],
        }
    }

    /// The program in `.deps/bin` and the variable that overrides its path.
    fn program(self) -> (&'static str, &'static str) {
        match self {
            MockVersion::V2_0 => ("krust-mockcluster", "KRUST_MOCKCLUSTER"),
            MockVersion::V2_12 => ("krust-rdkafka-mock", "KRUST_RDKAFKA_MOCK"),
        }
    }
}

/// A librdkafka mock cluster of several brokers (ids `1..=n`) on 127.0.0.1,
/// stopped on drop.
#[derive(Debug)]
pub struct MockCluster {
    inner: Mutex<Inner>,
    brokers: Vec<(i32, String)>,
    bootstrap: String,
    version: MockVersion,
    librdkafka: String,
    _dir: TempDir,
}

#[derive(Debug)]
struct Inner {
    proc: Proc,
    lines: Receiver<String>,
}

impl MockCluster {
    /// Start a librdkafka 2.0.2 cluster of `brokers` brokers with `topics` as
    /// `(name, partitions)` (replication factor 1); panics (naming
    /// `scripts/setup.sh` when the program is missing) if it cannot.
    pub fn start(brokers: usize, topics: &[(&str, i32)]) -> Self {
        Self::start_version(MockVersion::V2_0, brokers, topics)
    }

    /// [`start`](Self::start) with the mock of librdkafka `version`.
    pub fn start_version(version: MockVersion, brokers: usize, topics: &[(&str, i32)]) -> Self {
        Self::try_start_version(version, brokers, topics).unwrap_or_else(|e| {
            panic!(
                "cannot start the librdkafka {} mock cluster: {e}",
                version.librdkafka()
            )
        })
    }

    /// Start a librdkafka 2.0.2 cluster and wait for its `READY` line.
    pub fn try_start(brokers: usize, topics: &[(&str, i32)]) -> Result<Self> {
        Self::try_start_version(MockVersion::V2_0, brokers, topics)
    }

    /// Start the mock of librdkafka `version` and wait for its `READY` line.
    pub fn try_start_version(
        version: MockVersion,
        brokers: usize,
        topics: &[(&str, i32)],
    ) -> Result<Self> {
        let (program, env_override) = version.program();
        let binary = locate(program, env_override)?;
        let dir = TempDir::new("mock")?;
        let mut args = vec!["-b".to_string(), brokers.to_string()];
        for (name, partitions) in topics {
            args.push("-t".into());
            args.push(format!("{name}:{partitions}"));
        }
        let (mut proc, stdout) = Proc::spawn(
            program,
            &binary,
            &args,
            &dir.path().join("mock.log"),
            Launch::Piped,
        )?;
        let stdout = stdout.expect("piped stdout");
        let (tx, lines) = channel();
        thread::Builder::new()
            .name(format!("{program}-stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("spawning the stdout reader", e))?;

        let deadline = Instant::now() + START_TIMEOUT;
        let (mut ids, mut bootstrap, mut librdkafka) = (Vec::new(), None, String::new());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line == "READY" => break,
                Ok(line) => {
                    if let Some(v) = line.strip_prefix("LIBRDKAFKA=") {
                        librdkafka = v.to_string();
                    } else if let Some(v) = line.strip_prefix("BOOTSTRAP=") {
                        bootstrap = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("BROKER=") {
                        let (id, addr) = v.split_once(' ').unwrap_or((v, ""));
                        let id = id
                            .parse()
                            .map_err(|_| Error::new(format!("bad line from the mock: {line}")))?;
                        ids.push((id, addr.to_string()));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::new(format!(
                        "{program} printed no READY within {START_TIMEOUT:?}\n{}",
                        proc.log_tail()
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = proc.exited().map(|s| s.to_string()).unwrap_or_default();
                    return Err(Error::new(format!(
                        "{program} exited before READY {status}\n{}",
                        proc.log_tail()
                    )));
                }
            }
        }
        let bootstrap =
            bootstrap.ok_or_else(|| Error::new(format!("{program} printed no BOOTSTRAP line")))?;
        if librdkafka != version.librdkafka() {
            return Err(Error::new(format!(
                "{} runs librdkafka {librdkafka:?}, not {}: rebuild it with `scripts/setup.sh`",
                binary.display(),
                version.librdkafka()
            )));
        }
        let mock = Self {
            inner: Mutex::new(Inner { proc, lines }),
            brokers: ids,
            bootstrap,
            version,
            librdkafka,
            _dir: dir,
        };
        for (api_key, max) in version.narrowed_versions() {
            mock.command(&format!("apiversion {api_key} 0 {max}"))?;
        }
        Ok(mock)
    }

    /// The broker ids with their `host:port`, in id order.
    pub fn brokers(&self) -> &[(i32, String)] {
        &self.brokers
    }

    /// The `host:port` of broker `id`.
    pub fn broker_addr(&self, id: i32) -> Option<&str> {
        self.brokers
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, a)| a.as_str())
    }

    /// The librdkafka version the mock comes from, as the program reported
    /// it (always [`MockVersion::librdkafka`] of [`version`](Self::version)).
    pub fn librdkafka_version(&self) -> &str {
        &self.librdkafka
    }

    /// Which mock this is.
    pub fn version(&self) -> MockVersion {
        self.version
    }

    /// Send one command line and wait for its `OK` / `ERR` answer.
    pub fn command(&self, line: &str) -> Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Inner { proc, lines } = &mut *inner;
        let stdin = proc
            .stdin()
            .ok_or_else(|| Error::new("the mock cluster is stopped"))?;
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            return Err(proc.io_error(&format!("sending {line:?}"), e));
        }
        match lines.recv_timeout(COMMAND_TIMEOUT) {
            Ok(answer) if answer.starts_with("OK") => Ok(()),
            Ok(answer) => Err(Error::new(format!(
                "mock cluster refused {line:?}: {answer}"
            ))),
            Err(_) => Err(Error::new(format!(
                "mock cluster did not answer {line:?} within {COMMAND_TIMEOUT:?}\n{}",
                proc.log_tail()
            ))),
        }
    }

    /// Take broker `id` down: its connections are closed and new ones are
    /// refused until [`broker_up`](Self::broker_up).
    pub fn broker_down(&self, id: i32) -> Result<()> {
        self.command(&format!("down {id}"))
    }

    /// Bring broker `id` back up.
    pub fn broker_up(&self, id: i32) -> Result<()> {
        self.command(&format!("up {id}"))
    }

    /// Move the leader of `topic`/`partition` to broker `id` (-1: no leader).
    pub fn set_leader(&self, topic: &str, partition: i32, id: i32) -> Result<()> {
        self.command(&format!("leader {topic} {partition} {id}"))
    }

    /// Make broker `id` the coordinator of consumer group `group`.
    pub fn set_coordinator(&self, group: &str, id: i32) -> Result<()> {
        self.command(&format!("coord group {group} {id}"))
    }

    /// Make broker `id` the coordinator of transactional id `txn_id`.
    pub fn set_txn_coordinator(&self, txn_id: &str, id: i32) -> Result<()> {
        self.command(&format!("coord transaction {txn_id} {id}"))
    }

    /// Queue `codes` for the next requests of `api_key` (one code per
    /// request, on any broker; 0 lets a request through).
    pub fn push_errors(&self, api_key: i16, codes: &[i16]) -> Result<()> {
        if codes.is_empty() {
            return Ok(());
        }
        let codes: Vec<String> = codes.iter().map(i16::to_string).collect();
        self.command(&format!("err {api_key} {}", codes.join(" ")))
    }

    /// Drop the errors still queued for `api_key`.
    pub fn clear_errors(&self, api_key: i16) -> Result<()> {
        self.command(&format!("clear {api_key}"))
    }

    /// Delay every response of broker `id` by `ms` milliseconds.
    pub fn set_rtt(&self, id: i32, ms: u32) -> Result<()> {
        self.command(&format!("rtt {id} {ms}"))
    }

    /// Create `topic` with `partitions` partitions (replication factor 1).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.command(&format!("topic {topic} {partitions}"))
    }
}

impl Broker for MockCluster {
    fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    fn kind(&self) -> BrokerKind {
        self.version.kind()
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        MockCluster::create_topic(self, name, partitions)
    }
}
