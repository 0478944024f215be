//! SIGINT / SIGTERM as a shutdown request the commands check between
//! records (docs/ARCHITECTURE.md, "The CLI's conventions": finish the record in hand,
//! commit per the mode, leave the group, exit 0). A second signal means the
//! user is done waiting: exit at once with 130.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Whether a shutdown was asked for; cheap to clone and check.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Install the handlers (needs a running runtime).
    pub fn install() -> std::io::Result<Shutdown> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut seen = 0u32;
            loop {
                tokio::select! {
                    s = int.recv() => if s.is_none() { return },
                    s = term.recv() => if s.is_none() { return },
                }
                seen += 1;
                if seen > 1 {
                    eprintln!("krust: second signal, exiting without cleanup");
                    std::process::exit(130);
                }
                let _ = tx.send(true);
            }
        });
        Ok(Shutdown { rx })
    }

    /// True once a signal arrived.
    pub fn requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when a signal arrives (at once if one already has).
    pub async fn wait(&mut self) {
        // An error means the sender is gone: no signal can come any more.
        if self.rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
