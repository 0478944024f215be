//! `krust`: a kcat-like command line for Kafka on the pure-Rust krust
//! client (docs/ARCHITECTURE.md, "The CLI's conventions"). Exit codes: 0 success, 1 a
//! runtime failure (one line on stderr), 2 a usage error.

mod cluster;
mod consume;
mod format;
mod groups;
mod json;
mod lag;
mod log;
mod metadata;
mod offsets;
mod produce;
mod prometheus;
mod props;
mod reset;
mod signal;
mod start;
mod table;
mod topics;
mod watch;
mod when;

use std::error::Error;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A Kafka client in pure Rust: produce, consume, and operate topics, groups,
/// offsets and lag from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "krust",
    version,
    after_help = "\
Examples:
  printf 'k1:v1\\nk2:v2\\n' | krust produce -b localhost:9092 -t events -K :
  krust consume -b localhost:9092 -t events -e -f '%p %o %k %s\\n'
  krust consume -b localhost:9092 -t events -g my-group --commit each -c 10
  krust metadata -b localhost:9092
  krust groups describe -b localhost:9092 my-group
  krust offsets reset -b localhost:9092 -g my-group --topic events --to-earliest
  krust lag watch -b localhost:9092 -g my-group --once

Settings are Kafka property names given with -X KEY=VALUE, as in kcat.
Run `krust help COMMAND` (or `krust COMMAND --help`) for more."
)]
struct Cli {
    /// Log the client's events on stderr: -v info, -vv debug (RUST_LOG,
    /// when set, chooses instead). Secrets are never logged.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Produce one record per stdin line.
    Produce(produce::ProduceArgs),
    /// Print records with a kcat-style format.
    Consume(consume::ConsumeArgs),
    /// List consumer groups and describe where they stand.
    Groups(groups::GroupsArgs),
    /// Reset or delete a group's committed offsets, plan first.
    Offsets(offsets::OffsetsArgs),
    /// Watch groups' lag and status (Burrow's rules), or serve it to Prometheus.
    Lag(lag::LagArgs),
    /// Brokers, topics, partitions, leaders and replicas (kcat -L).
    Metadata(metadata::MetadataArgs),
    /// List, describe, create and delete topics.
    Topics(topics::TopicsArgs),
}

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked.
    Done,
    /// The command ran to the end but some records failed (already
    /// reported on stderr).
    Failed,
    /// The command ran to the end and exits with this code
    /// (`lag watch --once`: the status).
    Exit(u8),
}

/// A failure that ends the command: one line on stderr and an exit code.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// Bad arguments: exit code 2, as clap's own usage errors.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 2,
        }
    }

    /// Something failed while running: exit code 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 1,
        }
    }

    /// A failure with its own exit code (`lag watch --once`: 3 when the
    /// cluster cannot be reached).
    pub fn with_code(code: u8, message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code,
        }
    }

    /// A library error, with its causes.
    pub fn from_err(e: impl Error) -> Self {
        CliError::runtime(describe(&e))
    }
}

/// An error and its sources on one line, skipping a source whose text the
/// message before it already contains (`#[error(transparent)]`, or
/// messages that embed their cause).
pub fn describe(e: &dyn Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    line.replace('\n', " ")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = log::install(cli.verbose) {
        eprintln!("krust: error: {}", e.message);
        return ExitCode::from(e.code);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("krust: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = signal::Shutdown::install()
            .map_err(|e| CliError::runtime(format!("cannot install signal handlers: {e}")))?;
        match cli.command {
            Command::Produce(args) => produce::run(args, shutdown).await,
            Command::Consume(args) => consume::run(args, shutdown).await,
            Command::Groups(args) => groups::run(args).await,
            Command::Offsets(args) => offsets::run(args).await,
            Command::Lag(args) => lag::run(args, shutdown).await,
            Command::Metadata(args) => metadata::run(args).await,
            Command::Topics(args) => topics::run(args).await,
        }
    });
    // Whatever the runtime's tasks log from here on would follow the
    // command's last line.
    log::close();
    // stdin is read on a blocking thread that may still wait for input:
    // do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        Ok(Outcome::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("krust: error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
