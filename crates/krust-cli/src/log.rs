//! `-v` / `-vv` and `RUST_LOG`: the library's `tracing` events on stderr.
//!
//! Without either nothing is installed and stderr carries only the
//! command's own lines (docs/ARCHITECTURE.md, "The CLI's conventions": one
//! `krust: error:` line on failure). `-v` shows the krust crates' events at
//! info, `-vv` at debug, `-vvv` at trace; a non-empty `RUST_LOG` (the
//! `tracing-subscriber` directive syntax, e.g. `krust_net=debug`) replaces
//! what the flag would have chosen. Events go to stderr so that stdout
//! stays the records or the `--json` output. Secrets are never in them:
//! the library's configuration types print passwords and keys as
//! `[redacted]`.
//!
//! When the command has ended, [`close`] stops the events, so that a
//! connection task the runtime is still tearing down cannot print after
//! the command's last line.

use std::io::{self, Write};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::CliError;

/// The filter for `verbose` (the number of `-v`); `None` when nothing
/// should be logged.
pub fn directives(verbose: u8, rust_log: Option<&str>) -> Option<String> {
    if let Some(env) = rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        return Some(env.to_owned());
    }
    // A target directive matches every target it prefixes: `krust`
    // covers krust_net, krust_consumer, krust_group, ... and this binary.
    match verbose {
        0 => None,
        1 => Some("krust=info".to_owned()),
        2 => Some("krust=debug".to_owned()),
        _ => Some("krust=trace".to_owned()),
    }
}

/// Install the stderr subscriber the flags and `RUST_LOG` ask for. A
/// `RUST_LOG` that does not parse is a usage error naming it.
pub fn install(verbose: u8) -> Result<(), CliError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let Some(directives) = directives(verbose, rust_log.as_deref()) else {
        return Ok(());
    };
    let filter = EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| CliError::usage(format!("RUST_LOG `{directives}`: {e}")))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .try_init()
        .map_err(|e| CliError::runtime(format!("cannot install the log subscriber: {e}")))
}

/// Stop writing events; an event being written when this is called is
/// finished first. Called once the command's outcome is known, before
/// its last line is printed.
pub fn close() {
    STDERR.close();
}

/// The gate of the events' way to stderr.
static STDERR: Gate = Gate::new();

/// Stderr through [`STDERR`]: events until [`close`], none after.
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Gated<'static, io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        STDERR.writer(io::stderr())
    }
}

/// Lets writes through while open. Each event holds the read side while
/// it is written, so closing (the write side) waits for it.
struct Gate {
    open: RwLock<bool>,
}

impl Gate {
    const fn new() -> Self {
        Gate {
            open: RwLock::new(true),
        }
    }

    fn writer<W: Write>(&self, inner: W) -> Gated<'_, W> {
        Gated {
            open: self.open.read().unwrap_or_else(PoisonError::into_inner),
            inner,
        }
    }

    fn close(&self) {
        *self.open.write().unwrap_or_else(PoisonError::into_inner) = false;
    }
}

/// One event's writer: `inner` while the gate was open when it was made,
/// nowhere after.
struct Gated<'a, W> {
    open: RwLockReadGuard<'a, bool>,
    inner: W,
}

impl<W: Write> Write for Gated<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if *self.open {
            self.inner.write(buf)
        } else {
            Ok(buf.len())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if *self.open {
            self.inner.flush()
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_picks_the_level_and_rust_log_wins() {
        assert_eq!(directives(0, None), None);
        assert_eq!(directives(1, None).as_deref(), Some("krust=info"));
        assert_eq!(directives(2, None).as_deref(), Some("krust=debug"));
        assert_eq!(directives(5, None).as_deref(), Some("krust=trace"));
        assert_eq!(
            directives(0, Some("krust_net=trace")).as_deref(),
            Some("krust_net=trace")
        );
        assert_eq!(
            directives(2, Some("warn")).as_deref(),
            Some("warn"),
            "RUST_LOG overrides -vv"
        );
        assert_eq!(directives(1, Some("  ")).as_deref(), Some("krust=info"));
    }

    #[test]
    fn nothing_is_written_after_close_and_close_waits_for_a_write() {
        let gate = Gate::new();
        let mut out = Vec::new();
        gate.writer(&mut out).write_all(b"before\n").unwrap();
        assert_eq!(out, b"before\n");

        // An event being written holds the gate open: close waits for it.
        let closed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let mut w = gate.writer(Vec::new());
            let closer = s.spawn(|| {
                gate.close();
                closed.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!closed.load(std::sync::atomic::Ordering::SeqCst));
            w.write_all(b"during\n").unwrap();
            assert_eq!(w.inner, b"during\n");
            drop(w);
            closer.join().unwrap();
        });

        let mut after = Vec::new();
        gate.writer(&mut after).write_all(b"after\n").unwrap();
        assert!(after.is_empty(), "written after close");
    }
}
