//! The one error type of the fixtures: a message meant for a person reading
//! a failed test, with the broker's log tail where there is one.

use std::fmt;
use std::io;

/// A fixture failed to start, to answer, or to carry out a command.
#[derive(Debug)]
pub struct Error {
    message: String,
    exited: bool,
}

/// `Result` with the fixtures' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exited: false,
        }
    }

    /// The broker process ended early (a start can be retried on another
    /// port: the one picked may have been taken in the meantime).
    pub(crate) fn exited(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exited: true,
        }
    }

    pub(crate) fn io(what: &str, e: io::Error) -> Self {
        Self::new(format!("{what}: {e}"))
    }

    pub(crate) fn is_early_exit(&self) -> bool {
        self.exited
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
