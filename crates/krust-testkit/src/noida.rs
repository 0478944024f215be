//! The noida-db 0.2.3 Kafka emulator, its data in a temp dir that survives
//! [`NoidaDb::restart`].

use std::path::{Path, PathBuf};

use crate::broker::{Broker, BrokerKind, create_topic_raw};
use crate::process::{Launch, Proc, TempDir, free_port, locate};
use crate::{Error, Result};

/// A noida-db server (Kafka only) on 127.0.0.1, stopped on drop.
#[derive(Debug)]
pub struct NoidaDb {
    // Declared before `dir`: the server stops (and saves) before its data
    // directory is removed.
    proc: Option<Proc>,
    binary: PathBuf,
    port: u16,
    addr: String,
    starts: u32,
    dir: TempDir,
}

impl NoidaDb {
    /// Start a server; panics (naming `scripts/setup.sh` when the binary is
    /// missing) if it cannot.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("cannot start noida-db: {e}"))
    }

    /// Start a server on a free port with a fresh data dir and wait until it
    /// accepts connections.
    pub fn try_start() -> Result<Self> {
        let binary = locate("noida-db", "KRUST_NOIDA_DB")?;
        let dir = TempDir::new("noida")?;
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            match spawn(&binary, port, dir.path(), 0) {
                Ok(proc) => {
                    return Ok(Self {
                        proc: Some(proc),
                        binary,
                        port,
                        addr: format!("127.0.0.1:{port}"),
                        starts: 1,
                        dir,
                    });
                }
                Err(e) if e.is_early_exit() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three attempts"))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The data directory (kept across [`restart`](Self::restart)).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stop the server gracefully (it saves its data) and start it again on
    /// the same port with the same data dir: topics, records and committed
    /// offsets survive.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut proc) = self.proc.take() {
            proc.stop();
        }
        let proc = spawn(&self.binary, self.port, self.dir.path(), self.starts)?;
        self.starts += 1;
        self.proc = Some(proc);
        Ok(())
    }
}

fn spawn(binary: &Path, port: u16, data_dir: &Path, start: u32) -> Result<Proc> {
    let args = vec![
        "start".to_string(),
        "--only".into(),
        "kafka".into(),
        "--kafka-port".into(),
        port.to_string(),
        "--host".into(),
        "127.0.0.1".into(),
        "--data-dir".into(),
        data_dir
            .to_str()
            .ok_or_else(|| Error::new("temp dir path is not UTF-8"))?
            .to_string(),
    ];
    // The log sits beside the data dir's contents: one file per start.
    let log = data_dir.join(format!("noida-db-{start}.log"));
    let (mut proc, _) = Proc::spawn("noida-db", binary, &args, &log, Launch::Lifeline)?;
    proc.wait_accepting(&format!("127.0.0.1:{port}"))?;
    Ok(proc)
}

impl Broker for NoidaDb {
    fn bootstrap(&self) -> String {
        self.addr.clone()
    }

    fn kind(&self) -> BrokerKind {
        BrokerKind::NoidaDb
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        create_topic_raw(&self.addr, name, partitions, 1)
    }
}
