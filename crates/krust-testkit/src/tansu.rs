//! Tansu 0.6.0 (a Kafka-compatible broker in Rust), in-memory storage.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::broker::{Broker, BrokerKind};
use crate::process::{Launch, Proc, TempDir, free_port, locate};
use crate::{Error, Result};

/// A Tansu broker on 127.0.0.1, stopped on drop.
#[derive(Debug)]
pub struct Tansu {
    proc: Proc,
    binary: PathBuf,
    addr: String,
    _dir: TempDir,
}

impl Tansu {
    /// Start a broker; panics (naming `scripts/setup.sh` when the binary is
    /// missing) if it cannot.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("cannot start Tansu: {e}"))
    }

    /// Start a broker on a free port and wait until it accepts connections.
    pub fn try_start() -> Result<Self> {
        Self::try_start_advertising(None)
    }

    /// Start a broker on a free port that tells clients to connect to
    /// `advertised` instead (e.g. a fault-injecting proxy in front of it);
    /// [`Tansu::addr`] stays the port it listens on. Panics like
    /// [`Tansu::start`].
    pub fn start_advertising(advertised: &str) -> Self {
        Self::try_start_advertising(Some(advertised))
            .unwrap_or_else(|e| panic!("cannot start Tansu: {e}"))
    }

    fn try_start_advertising(advertised: Option<&str>) -> Result<Self> {
        let binary = locate("tansu", "KRUST_TANSU")?;
        let mut last = None;
        // A port found free can be taken before Tansu binds it: retry then.
        for _ in 0..3 {
            match Self::start_on(&binary, free_port()?, advertised) {
                Err(e) if e.is_early_exit() => last = Some(e),
                other => return other,
            }
        }
        Err(last.expect("three attempts"))
    }

    fn start_on(binary: &Path, port: u16, advertised: Option<&str>) -> Result<Self> {
        let dir = TempDir::new("tansu")?;
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
            // Explicit, so that a STORAGE_ENGINE in the environment cannot
            // point tests at a real database.
            "--storage-engine",
            "memory://tansu/",
        ]
        .map(String::from)
        .to_vec();
        let (mut proc, _) = Proc::spawn(
            "tansu",
            binary,
            &args,
            &dir.path().join("tansu.log"),
            Launch::Lifeline,
        )?;
        let addr = format!("127.0.0.1:{port}");
        proc.wait_accepting(&addr)?;
        Ok(Self {
            proc,
            binary: binary.to_path_buf(),
            addr,
            _dir: dir,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Create a topic with `tansu topic create`.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let started = Instant::now();
        let out = Command::new(&self.binary)
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
                "--broker",
            ])
            .arg(format!("tcp://{}", self.addr))
            .output()
            .map_err(|e| Error::io("running tansu topic create", e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::new(format!(
                "tansu topic create {name} --partitions {partitions} failed after {:?} ({}): {}{}\n{}",
                started.elapsed(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.proc.log_tail()
            )))
        }
    }
}

impl Broker for Tansu {
    fn bootstrap(&self) -> String {
        self.addr.clone()
    }

    fn kind(&self) -> BrokerKind {
        BrokerKind::Tansu
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        Tansu::create_topic(self, name, partitions)
    }
}
