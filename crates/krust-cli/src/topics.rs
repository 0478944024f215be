//! `krust topics list|describe|create|delete`, over the admin client
//! (`list_topics`, `describe_topics`, `create_topics`, `delete_topics`).
//!
//! Create and delete answer per topic: each success is a line on stdout,
//! each failure a `krust: error:` line on stderr naming the topic and the
//! broker's error code (e.g. TOPIC_ALREADY_EXISTS), and the command exits
//! 1 if any topic failed (docs/ARCHITECTURE.md, "The CLI's conventions").
//! Topic configs are not shown by `describe`: the admin client has no
//! DescribeConfigs yet.

use std::io::{self, Write};
use std::time::Duration;

use clap::{Args, Subcommand};
use krust::admin::{NewTopic, TopicResults};

use crate::cluster::ClusterArgs;
use crate::json::Json;
use crate::metadata::{partition_table, plural, replication_factor, topic_json};
use crate::props::{self, Property};
use crate::table::{Align, Table};
use crate::{CliError, Outcome};

/// How long the controller may take to create or delete the topics
/// (the request's `timeout_ms`).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// `krust topics`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust topics list -b localhost:9092
  krust topics describe -b localhost:9092 events
  krust topics create -b localhost:9092 events --partitions 6 --replication-factor 3 \\
      --config retention.ms=86400000 --config cleanup.policy=compact
  krust topics delete -b localhost:9092 events audit

Run `krust topics help SUBCOMMAND` for each one's flags.")]
pub struct TopicsArgs {
    #[command(subcommand)]
    pub command: TopicsCommand,
}

/// The `topics` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Topic names, partition counts and replication factors.
    List(ListArgs),
    /// Partitions, leaders, replicas and in-sync replicas of topics.
    Describe(DescribeArgs),
    /// Create topics.
    Create(CreateArgs),
    /// Delete topics.
    Delete(DeleteArgs),
}

/// `krust topics list`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust topics list -b localhost:9092
  krust topics list -b localhost:9092 --internal

  # names only, for scripts
  krust topics list -b localhost:9092 --json | jq -r .name

With --json, one object per topic and line: name, partitions,
replication_factor, internal. Field names and order are stable.")]
pub struct ListArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Include internal topics (`__consumer_offsets`, ...).
    #[arg(long = "internal")]
    pub internal: bool,
    /// One JSON object per topic and line.
    #[arg(short = 'J', long = "json")]
    pub json: bool,
}

/// `krust topics describe`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust topics describe -b localhost:9092 events audit
  krust topics describe -b localhost:9092 events --json

With --json, one object per topic and line, as in `krust metadata --json`:
name, id, internal, error, partitions [{partition, leader, leader_epoch,
replicas, isr, offline_replicas, error}]. Topic configs are not shown (the
admin client has no DescribeConfigs yet). An unknown topic is an error.")]
pub struct DescribeArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The topics to describe.
    #[arg(value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,
    /// One JSON object per topic and line.
    #[arg(short = 'J', long = "json")]
    pub json: bool,
}

/// `krust topics create`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust topics create -b localhost:9092 events --partitions 6
  krust topics create -b localhost:9092 events --partitions 6 --replication-factor 3 \\
      --config min.insync.replicas=2 --config retention.ms=86400000

Without --partitions or --replication-factor the broker's defaults apply
(num.partitions, default.replication.factor). A topic that exists already
is an error naming it and TOPIC_ALREADY_EXISTS; the others are still
created, and the exit code is 1.")]
pub struct CreateArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The topics to create.
    #[arg(value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,
    /// Partitions of each topic [default: the broker's num.partitions].
    #[arg(
        long = "partitions",
        value_name = "N",
        value_parser = clap::value_parser!(i32).range(1..)
    )]
    pub partitions: Option<i32>,
    /// Replicas of each partition [default: the broker's
    /// default.replication.factor].
    #[arg(
        long = "replication-factor",
        value_name = "N",
        value_parser = clap::value_parser!(i16).range(1..)
    )]
    pub replication_factor: Option<i16>,
    /// A topic config (repeatable), e.g. `--config retention.ms=86400000`.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = props::parse)]
    pub configs: Vec<Property>,
}

/// `krust topics delete`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust topics delete -b localhost:9092 events
  krust topics delete -b localhost:9092 events audit

An unknown topic is an error naming it (UNKNOWN_TOPIC_OR_PARTITION); the
others are still deleted, and the exit code is 1.")]
pub struct DeleteArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The topics to delete.
    #[arg(value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,
}

/// Run `krust topics ...`.
pub async fn run(args: TopicsArgs) -> Result<Outcome, CliError> {
    match args.command {
        TopicsCommand::List(a) => list(a).await,
        TopicsCommand::Describe(a) => describe(a).await,
        TopicsCommand::Create(a) => create(a).await,
        TopicsCommand::Delete(a) => delete(a).await,
    }
}

/// The end of a command that printed to stdout: a closed pipe (`| head`)
/// is no failure, another write error is.
pub fn finish(written: io::Result<()>) -> Result<Outcome, CliError> {
    match written {
        Ok(()) => Ok(Outcome::Done),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Outcome::Done),
        Err(e) => Err(CliError::runtime(format!("writing to stdout: {e}"))),
    }
}

async fn list(args: ListArgs) -> Result<Outcome, CliError> {
    let admin = args.cluster.admin().await?;
    let mut topics = admin.list_topics().await.map_err(CliError::from_err)?;
    topics.retain(|t| args.internal || !t.is_internal);
    let mut out = io::stdout().lock();
    let written = (|| {
        if args.json {
            for t in &topics {
                Json::Object(vec![
                    ("name", Json::Str(t.name.clone())),
                    (
                        "partitions",
                        Json::Int(i64::try_from(t.partitions.len()).unwrap_or(i64::MAX)),
                    ),
                    (
                        "replication_factor",
                        Json::Int(i64::try_from(replication_factor(t)).unwrap_or(i64::MAX)),
                    ),
                    ("internal", Json::Bool(t.is_internal)),
                ])
                .write_line(&mut out)?;
            }
        } else {
            let mut table = Table::new(&[
                ("TOPIC", Align::Left),
                ("PARTITIONS", Align::Right),
                ("REPLICATION", Align::Right),
            ]);
            for t in &topics {
                table.row(vec![
                    t.name.clone(),
                    t.partitions.len().to_string(),
                    replication_factor(t).to_string(),
                ]);
            }
            table.write(&mut out)?;
        }
        out.flush()
    })();
    finish(written)
}

async fn describe(args: DescribeArgs) -> Result<Outcome, CliError> {
    let admin = args.cluster.admin().await?;
    let names: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    let topics = admin
        .describe_topics(&names)
        .await
        .map_err(CliError::from_err)?;
    let mut out = io::stdout().lock();
    let written = (|| {
        if args.json {
            for t in &topics {
                topic_json(t).write_line(&mut out)?;
            }
        } else {
            let mut summary = Table::new(&[
                ("TOPIC", Align::Left),
                ("ID", Align::Left),
                ("PARTITIONS", Align::Right),
                ("REPLICATION", Align::Right),
                ("INTERNAL", Align::Left),
            ]);
            for t in &topics {
                summary.row(vec![
                    t.name.clone(),
                    t.id.to_string(),
                    t.partitions.len().to_string(),
                    replication_factor(t).to_string(),
                    if t.is_internal { "yes" } else { "no" }.to_owned(),
                ]);
            }
            summary.write(&mut out)?;
            writeln!(out)?;
            partition_table(&topics).write(&mut out)?;
        }
        out.flush()
    })();
    finish(written)
}

async fn create(args: CreateArgs) -> Result<Outcome, CliError> {
    let admin = args.cluster.admin().await?;
    let configs: Vec<(String, String)> = props::merge(Vec::new(), &args.configs);
    let new: Vec<NewTopic> = args
        .topics
        .iter()
        .map(|name| NewTopic {
            name: name.clone(),
            partitions: args.partitions.unwrap_or(-1),
            replication_factor: args.replication_factor.unwrap_or(-1),
            configs: configs.clone(),
        })
        .collect();
    let results = admin
        .create_topics(&new, CHANGE_TIMEOUT)
        .await
        .map_err(CliError::from_err)?;
    let partitions = args.partitions.map_or_else(
        || "the broker's default partitions".to_owned(),
        |n| {
            let n = usize::try_from(n).unwrap_or_default();
            format!("{n} partition{}", plural(n))
        },
    );
    report(results, |topic| {
        format!("created topic {topic} ({partitions})")
    })
}

async fn delete(args: DeleteArgs) -> Result<Outcome, CliError> {
    let admin = args.cluster.admin().await?;
    let names: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    let results = admin
        .delete_topics(&names, CHANGE_TIMEOUT)
        .await
        .map_err(CliError::from_err)?;
    report(results, |topic| format!("deleted topic {topic}"))
}

/// A line per topic: `done` on stdout for a success, the error on stderr
/// for a failure; `Failed` (exit 1) if any failed.
fn report(results: TopicResults, done: impl Fn(&str) -> String) -> Result<Outcome, CliError> {
    let mut out = io::stdout().lock();
    let mut failed = false;
    let mut written = Ok(());
    for (topic, result) in results {
        match result {
            Ok(()) => {
                if written.is_ok() {
                    written = writeln!(out, "{}", done(&topic));
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("krust: error: {}", crate::describe(&e));
            }
        }
    }
    let outcome = finish(written.and_then(|()| out.flush()))?;
    Ok(if failed { Outcome::Failed } else { outcome })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        command: TopicsCommand,
    }

    #[test]
    fn create_takes_several_topics_and_repeatable_configs() {
        let t = T::parse_from([
            "t",
            "create",
            "-b",
            "h:1",
            "a",
            "b",
            "--partitions",
            "3",
            "--config",
            "retention.ms=1000",
            "--config",
            "cleanup.policy=compact",
        ]);
        let TopicsCommand::Create(c) = t.command else {
            panic!("create")
        };
        assert_eq!(c.topics, ["a", "b"]);
        assert_eq!(c.partitions, Some(3));
        assert_eq!(c.replication_factor, None);
        assert_eq!(c.configs.len(), 2);
        assert_eq!(c.configs[1].key, "cleanup.policy");
    }

    #[test]
    fn counts_below_one_are_usage_errors() {
        for bad in [
            ["t", "create", "-b", "h:1", "a", "--partitions", "0"],
            ["t", "create", "-b", "h:1", "a", "--replication-factor", "0"],
        ] {
            assert!(T::try_parse_from(bad).is_err(), "{bad:?}");
        }
        assert!(T::try_parse_from(["t", "delete", "-b", "h:1"]).is_err());
    }

    #[test]
    fn a_closed_pipe_is_no_failure() {
        assert_eq!(finish(Ok(())).ok(), Some(Outcome::Done));
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(finish(Err(pipe)).ok(), Some(Outcome::Done));
        let other = io::Error::other("disk full");
        assert_eq!(finish(Err(other)).err().map(|e| e.code), Some(1));
    }
}
