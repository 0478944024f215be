//! Child processes that never outlive their fixture.
//!
//! Every broker runs in its own process group, so that a drop can signal the
//! broker and anything it forked at once. Brokers that do not read stdin are
//! started under a small `sh` wrapper holding the read end of a pipe whose
//! write end only this process has (a *lifeline*): when the test process
//! ends in any way, even `SIGKILL` or an abort, the pipe closes and the
//! wrapper stops the broker with `SIGTERM` (noida-db then saves its data),
//! so no broker is ever orphaned. The wrapper writes the broker's own pid
//! to a file, so that a fixture can signal the broker alone (`SIGSTOP` to
//! hang it, `SIGKILL` to crash it) while the wrapper keeps watching the
//! lifeline; it sends `SIGCONT` after `SIGTERM`, so a hung broker still
//! stops when the test process ends.
//!
//! Temporary directories carry the test process's pid; a fixture that was
//! never dropped (a broker shared by a whole test binary, in a `static`)
//! leaves its directory behind, so each new one first removes those of
//! processes that are gone.

use std::fs::{self, File};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::{Error, Result};

/// How long a broker may take to accept connections.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a broker may take to exit after `SIGTERM` before `SIGKILL`.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `"$@"` with stdin from /dev/null, and stops it with SIGTERM as soon
/// as the wrapper's own stdin (the lifeline) reaches end of file. Exits with
/// the broker's status, so an early crash is visible to `try_wait`.
const LIFELINE: &str = r#"exec 3<&0 0</dev/null
"$@" 3<&- &
pid=$!
[ -n "${KRUST_PIDFILE:-}" ] && echo "$pid" >"$KRUST_PIDFILE.tmp" && mv "$KRUST_PIDFILE.tmp" "$KRUST_PIDFILE"
( read -r _ <&3; kill -TERM "$pid" 2>/dev/null; kill -CONT "$pid" 2>/dev/null ) &
reader=$!
exec 3<&-
wait "$pid"; rc=$?
kill "$reader" 2>/dev/null; wait "$reader" 2>/dev/null
exit "$rc""#;

/// The directory where `scripts/setup.sh` puts the broker binaries.
pub(crate) fn deps_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root).join(".deps/bin")
}

/// The binary `name` from `.deps/bin` (or the path in environment variable
/// `env_override`), or an error naming the command that installs it.
pub(crate) fn locate(name: &str, env_override: &str) -> Result<PathBuf> {
    let path = match std::env::var_os(env_override) {
        Some(p) => PathBuf::from(p),
        None => deps_bin().join(name),
    };
    let runnable = fs::metadata(&path)
        .map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        })
        .unwrap_or(false);
    if runnable {
        Ok(path)
    } else {
        Err(Error::new(format!(
            "{name} is not installed (looked for an executable at {}); install it with `scripts/setup.sh` \
             from the repository root (or set {env_override} to its path)",
            path.display()
        )))
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("binding 127.0.0.1:0", e))?;
    Ok(listener
        .local_addr()
        .map_err(|e| Error::io("local_addr", e))?
        .port())
}

/// Whether something accepts TCP connections on `addr` right now.
pub fn accepts(addr: &str) -> bool {
    let Ok(sa) = addr.parse::<SocketAddr>() else {
        return false;
    };
    TcpStream::connect_timeout(&sa, Duration::from_millis(500)).is_ok()
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            remove_stale_dirs();
        }
        let path =
            std::env::temp_dir().join(format!("krust-testkit-{prefix}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .map_err(|e| Error::io(&format!("creating {}", path.display()), e))?;
        Ok(Self(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Remove the `krust-testkit-*-PID-N` directories of processes that no
/// longer run (fixtures kept in a `static` are never dropped).
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("krust-testkit-") {
            continue;
        }
        let mut parts = name.rsplit('-');
        let (Some(_n), Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// How a broker is started.
pub(crate) enum Launch {
    /// Under the lifeline wrapper; stdout and stderr go to the log file.
    Lifeline,
    /// Directly, with stdin and stdout piped to us (the mock cluster, whose
    /// stdin is its command channel and whose EOF stops it); stderr goes to
    /// the log file.
    Piped,
}

/// A running broker process (group), stopped on drop.
#[derive(Debug)]
pub(crate) struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    /// Where the lifeline wrapper writes the broker's pid.
    pidfile: Option<PathBuf>,
}

impl Proc {
    /// Start `program args` as the leader of a new process group, logging
    /// to `log`.
    pub(crate) fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        how: Launch,
    ) -> Result<(Self, Option<ChildStdout>)> {
        let log_file =
            File::create(log).map_err(|e| Error::io(&format!("creating {}", log.display()), e))?;
        let log_err = log_file.try_clone().map_err(|e| Error::io("dup log", e))?;
        let mut pidfile = None;
        let mut cmd = match how {
            Launch::Lifeline => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg(LIFELINE)
                    .arg("krust-testkit-lifeline")
                    .arg(program)
                    .args(args);
                c.stdout(log_file);
                let path = log.with_extension("pid");
                let _ = fs::remove_file(&path);
                c.env("KRUST_PIDFILE", &path);
                pidfile = Some(path);
                c
            }
            Launch::Piped => {
                let mut c = Command::new(program);
                c.args(args).stdout(Stdio::piped());
                drop(log_file);
                c
            }
        };
        cmd.stdin(Stdio::piped()).stderr(log_err).process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(&format!("starting {}", program.display()), e))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        Ok((
            Self {
                name: name.to_string(),
                child,
                stdin,
                log: log.to_path_buf(),
                pidfile,
            },
            stdout,
        ))
    }

    /// The broker's own pid (not its wrapper's), once the wrapper wrote it.
    fn broker_pid(&mut self) -> Result<Pid> {
        let path = self
            .pidfile
            .clone()
            .ok_or_else(|| Error::new(format!("{}: not started under the lifeline", self.name)))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(pid) = fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                return Ok(Pid::from_raw(pid));
            }
            if self.exited().is_some() || Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "{}: no pid in {}\n{}",
                    self.name,
                    path.display(),
                    self.log_tail()
                )));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Send `signal` to the broker alone (`SIGSTOP` hangs it, `SIGCONT`
    /// resumes it, `SIGKILL` crashes it); the wrapper stays.
    ///
    /// `SIGSTOP` returns once every thread of the broker is stopped: the
    /// kernel stops a process only when one of its threads takes the
    /// signal, and until then the others run on (on a loaded machine a
    /// broker answered a ListOffsets 3 ms after `kill` returned).
    pub(crate) fn signal_broker(&mut self, signal: Signal) -> Result<()> {
        let pid = self.broker_pid()?;
        nix::sys::signal::kill(pid, signal)
            .map_err(|e| Error::new(format!("{}: kill -{signal} {pid}: {e}", self.name)))?;
        if signal == Signal::SIGSTOP {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while !all_threads_stopped(pid) {
                if Instant::now() >= deadline {
                    return Err(Error::new(format!(
                        "{}: not every thread of {pid} stopped within {STOP_TIMEOUT:?} of SIGSTOP",
                        self.name
                    )));
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    }

    /// Crash the broker (`SIGKILL` to the whole group) and reap it: nothing
    /// is saved, nothing is shut down cleanly.
    pub(crate) fn kill(&mut self) {
        drop(self.stdin.take());
        let broker = self.pidfile.as_ref().and_then(|path| {
            fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
        });
        if let Ok(id) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(id), Signal::SIGKILL);
        }
        let _ = self.child.wait();
        // Reaping the wrapper does not wait for the broker, its child (a JVM
        // takes a moment to go): wait until the broker's pid is gone too, so
        // that its ports are closed when this returns.
        if let Some(pid) = broker {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(5));
            }
        }
    }

    pub(crate) fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.stdin.as_mut()
    }

    /// The exit status, if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of the broker's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }

    /// Wait until `addr` accepts connections, the process exits, or the
    /// start timeout passes.
    pub(crate) fn wait_accepting(&mut self, addr: &str) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if accepts(addr) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(Error::exited(format!(
                    "{} exited ({status}) before accepting connections on {addr}\n{}",
                    self.name,
                    self.log_tail()
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "{} did not accept connections on {addr} within {START_TIMEOUT:?}\n{}",
                    self.name,
                    self.log_tail()
                )));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stop gracefully: closing the lifeline (or the mock's command pipe)
    /// makes the broker exit on its own, after saving what it saves; the
    /// wrapper reaps it before exiting, so its exit means the broker is gone.
    /// A group that has not exited in time gets `SIGKILL`.
    pub(crate) fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        if let Ok(id) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(id), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }

    pub(crate) fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::new(format!("{}: {what}: {e}\n{}", self.name, self.log_tail()))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether every thread of `pid` is in the stopped state (`T` in
/// `/proc/PID/task/TID/stat`); false when it cannot tell.
fn all_threads_stopped(pid: Pid) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let Ok(stat) = fs::read_to_string(task.path().join("stat")) else {
            // A thread that ended meanwhile.
            continue;
        };
        // `PID (COMM) STATE ...`: COMM may hold spaces and parentheses.
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        match state {
            Some("T") => any = true,
            // Exiting threads never run again.
            Some("Z" | "X") => {}
            _ => return false,
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_install_command() {
        let err = locate("no-such-broker", "KRUST_TESTKIT_NO_SUCH_VARIABLE").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("scripts/setup.sh"), "{msg}");
        assert!(msg.contains(".deps/bin/no-such-broker"), "{msg}");
    }

    #[test]
    fn the_installed_brokers_are_found() {
        for (name, var) in [
            ("tansu", "KRUST_TANSU"),
            ("noida-db", "KRUST_NOIDA_DB"),
            ("krust-mockcluster", "KRUST_MOCKCLUSTER"),
        ] {
            locate(name, var).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
