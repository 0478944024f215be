//! `krust consume`: print records with a kcat-style format.
//!
//! With `-g` the consumer joins the group (`subscribe` to every `-t`);
//! without it the partitions (all, or those of `-p`) are assigned by hand,
//! placed per `-o` (`start.rs`), and nothing can be committed.
//! Commit modes (docs/ARCHITECTURE.md, "Offset semantics": a committed offset is the
//! next record to consume, and only what was printed counts as consumed):
//!
//! - `each`: after a record is printed, stdout is flushed and
//!   `{partition: offset + 1}` is committed synchronously;
//! - `auto` (the default with `-g`): `enable.auto.commit=true` with
//!   explicit acknowledgements, each record acked once printed, so the
//!   periodic commit and the one `close()` makes cover exactly what was
//!   printed even when `-c`, `-e` or a signal stops in the middle of a
//!   batch;
//! - `none`: nothing is committed.
//!
//! The consumer is polled with a short timeout and the shutdown flag is
//! checked between polls and between records, so a signal finishes the
//! record in hand, commits per the mode, leaves the group and exits 0
//! without cancelling a poll half-way.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};
use krust::codec::ErrorCode;
use krust::consumer::{
    Consumer, ConsumerConfig, ConsumerError, ConsumerRecord, OffsetAndMetadata, TopicPartition,
};

use crate::format::{Fields, Format, HeaderFn};
use crate::props::{self, Property};
use crate::signal::Shutdown;
use crate::start::{self, StartOffset};
use crate::{CliError, Outcome};

/// How long one poll waits: the latency of noticing a signal when idle.
const POLL: Duration = Duration::from_millis(200);
/// How long leaving the group may take after a failure.
const CLOSE_AFTER_ERROR: Duration = Duration::from_secs(5);

/// `krust consume`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # everything in the topic, then exit (no group, nothing committed)
  krust consume -b localhost:9092 -t events -o beginning -e

  # the last 10 records of each partition of two topics
  krust consume -b localhost:9092 -t events -t audit -o -10 -e -f '%t %p %o %s\n'

  # partitions 0 and 2 from offset 1000; from a point in time (ms)
  krust consume -b localhost:9092 -t events -p 0,2 -o 1000
  krust consume -b localhost:9092 -t events -o s@1700000000000 -e

  # kcat-style format: partition, offset, key, value
  krust consume -b localhost:9092 -t events -e -f '%p %o %k %s\\n'

  # as a group member, committing each record once printed, 10 records
  krust consume -b localhost:9092 -t events -g my-group --commit each -c 10

  # one JSON object per record, for scripts
  krust consume -b localhost:9092 -t events -e --json

  # any consumer property by its Kafka name
  krust consume -b localhost:9092 -t events -g my-group \\
      -X session.timeout.ms=6000 -X partition.assignment.strategy=cooperative-sticky

Start offsets (-o), as kcat's: beginning, end, stored (the group's
committed offset, else --from; needs -g), OFFSET (absolute), -N (N before
the end of each partition, not before its start), s@TIMESTAMP (the first
record at or after it, ms since the epoch; the end if none). An offset
outside the log falls back to --from. With -g the group decides where its
members start: -o other than stored, and -p, are refused (drop -g to read
from elsewhere without touching the group's offsets).

Format fields: %t topic, %p partition, %o offset, %k key, %s value,
%K / %S key / value length (-1: null), %T timestamp (ms), %h headers
(k=v,...), %% percent; escapes \\n \\t \\r \\\\. Nulls print as nothing.")]
pub struct ConsumeArgs {
    /// Bootstrap broker(s), `host:port[,host:port...]`.
    #[arg(short = 'b', long = "brokers", value_name = "HOST:PORT")]
    pub brokers: String,
    /// The topic(s) to consume (repeatable, or a comma list).
    #[arg(
        short = 't',
        long = "topic",
        value_name = "TOPIC",
        required = true,
        value_delimiter = ','
    )]
    pub topics: Vec<String>,
    /// Only these partitions of each topic (repeatable, or a comma list);
    /// not with -g.
    #[arg(
        short = 'p',
        long = "partition",
        value_name = "PARTITION",
        value_delimiter = ',',
        value_parser = clap::value_parser!(i32).range(0..)
    )]
    pub partitions: Vec<i32>,
    /// Where each partition starts: beginning, end, stored, OFFSET, -N or
    /// s@TIMESTAMP (see below) [default: --from, or stored with -g].
    #[arg(
        short = 'o',
        long = "offset",
        value_name = "OFFSET",
        allow_hyphen_values = true,
        value_parser = start::parse
    )]
    pub offset: Option<StartOffset>,
    /// Join this consumer group (subscribe); without it the partitions
    /// are assigned by hand and nothing is committed.
    #[arg(short = 'g', long = "group")]
    pub group: Option<String>,
    /// Where to start when there is no committed offset, or `-o` points
    /// outside the log (`auto.offset.reset`).
    #[arg(long = "from", value_enum, default_value_t = From::Earliest)]
    pub from: From,
    /// When to commit [default: auto with -g, none without].
    #[arg(long = "commit", value_enum)]
    pub commit: Option<CommitMode>,
    /// Stop after COUNT records.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Exit once every assigned partition is at its end (lag 0).
    #[arg(short = 'e', long = "exit-at-end")]
    pub exit_at_end: bool,
    /// Output format (kcat's -f); default: the value and a newline.
    #[arg(
        short = 'f',
        long = "format",
        value_name = "FORMAT",
        conflicts_with = "json"
    )]
    pub format: Option<String>,
    /// One JSON object per record and line: topic, partition, offset,
    /// timestamp, key, value (strings or null), headers ([key, value]
    /// pairs). Stable for scripts.
    #[arg(short = 'J', long = "json")]
    pub json: bool,
    /// A consumer property by its Kafka name (repeatable), applied after
    /// the flags, e.g. `-X session.timeout.ms=6000`,
    /// `-X bootstrap.timeout.ms=5000`.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = props::parse)]
    pub props: Vec<Property>,
}

/// `--from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum From {
    /// The first offset still in the log.
    Earliest,
    /// Only records produced from now on.
    Latest,
}

/// `--commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CommitMode {
    /// Commit each record synchronously once printed.
    Each,
    /// Periodic commits of what was printed (enable.auto.commit=true).
    Auto,
    /// Commit nothing.
    None,
}

impl Fields for ConsumerRecord {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn partition(&self) -> i32 {
        self.partition
    }
    fn offset(&self) -> i64 {
        self.offset
    }
    fn timestamp(&self) -> i64 {
        self.timestamp
    }
    fn key(&self) -> Option<&[u8]> {
        ConsumerRecord::key(self)
    }
    fn value(&self) -> Option<&[u8]> {
        ConsumerRecord::value(self)
    }
    fn each_header(&self, f: &mut HeaderFn<'_>) -> io::Result<()> {
        for h in self.headers() {
            f(h.key.as_bytes(), h.value)?;
        }
        Ok(())
    }
}

/// Why the loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Signal,
    Count,
    End,
    /// stdout is gone (e.g. `| head`): nothing more can be printed.
    Pipe,
}

/// The client properties the flags stand for, then `-X`.
fn properties(args: &ConsumeArgs, commit: CommitMode) -> Vec<(String, String)> {
    let mut base = vec![
        ("bootstrap.servers".to_owned(), args.brokers.clone()),
        ("client.id".to_owned(), "krust-cli".to_owned()),
        // A mistyped topic is an error, not a new topic (kcat's default).
        ("allow.auto.create.topics".to_owned(), "false".to_owned()),
        (
            "auto.offset.reset".to_owned(),
            match args.from {
                From::Earliest => "earliest",
                From::Latest => "latest",
            }
            .to_owned(),
        ),
        (
            "enable.auto.commit".to_owned(),
            (commit == CommitMode::Auto).to_string(),
        ),
    ];
    if let Some(g) = &args.group {
        base.push(("group.id".to_owned(), g.clone()));
    }
    if commit == CommitMode::Auto {
        base.push(("acknowledgement.mode".to_owned(), "explicit".to_owned()));
    }
    props::merge(base, &args.props)
}

/// Check the flags that depend on each other; the commit mode in force.
fn commit_mode(args: &ConsumeArgs) -> Result<CommitMode, CliError> {
    match (args.commit, &args.group) {
        (Some(m @ (CommitMode::Each | CommitMode::Auto)), None) => Err(CliError::usage(format!(
            "--commit {} needs a group (-g): without one nothing can be committed",
            match m {
                CommitMode::Each => "each",
                _ => "auto",
            }
        ))),
        (Some(m), _) => Ok(m),
        (None, Some(_)) => Ok(CommitMode::Auto),
        (None, None) => Ok(CommitMode::None),
    }
}

/// Every assigned partition has a known high watermark and no lag.
fn at_end(consumer: &Consumer) -> bool {
    let lag = consumer.lag();
    !lag.is_empty()
        && lag
            .values()
            .all(|l| l.high_watermark.is_some() && l.lag == Some(0))
}

/// Run `krust consume`.
pub async fn run(args: ConsumeArgs, shutdown: Shutdown) -> Result<Outcome, CliError> {
    let commit = commit_mode(&args)?;
    start::check(args.group.is_some(), args.offset, &args.partitions)?;
    let format = match &args.format {
        Some(f) => Format::parse(f).map_err(|e| CliError::usage(e.to_string()))?,
        None if args.json => Format::json(),
        None => Format::default(),
    };
    let config =
        ConsumerConfig::from_properties(properties(&args, commit)).map_err(CliError::from_err)?;
    let mut consumer = Consumer::new(config).await.map_err(CliError::from_err)?;
    let started = if args.group.is_some() {
        consumer.subscribe(&args.topics)
    } else {
        let partitions = match start::partitions(&consumer, &args.topics, &args.partitions).await {
            Ok(ps) => ps,
            Err(e) => {
                let _ = tokio::time::timeout(CLOSE_AFTER_ERROR, consumer.close()).await;
                return Err(e);
            }
        };
        match consumer.assign(partitions.iter().cloned()) {
            Ok(()) => match args.offset {
                Some(at) => start::seek(&mut consumer, &partitions, at).await,
                None => Ok(()),
            },
            Err(e) => Err(e),
        }
    };
    if let Err(e) = started {
        return Err(fail(consumer, e).await);
    }

    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut printed = 0u64;
    let looped = consume(
        &mut consumer,
        &args,
        commit,
        &format,
        &shutdown,
        &mut out,
        &mut printed,
    )
    .await;
    // Records acked above were printed into the buffer: get them out
    // before close() commits them.
    let flushed = out.flush();
    drop(out);
    let stop = match looped {
        Ok(stop) => stop,
        Err(e) => return Err(fail(consumer, e).await),
    };
    let stop = match flushed {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Stop::Pipe,
        Err(e) => {
            let _ = tokio::time::timeout(CLOSE_AFTER_ERROR, consumer.close()).await;
            return Err(CliError::runtime(format!("writing to stdout: {e}")));
        }
        Ok(()) => stop,
    };
    consumer.close().await.map_err(CliError::from_err)?;
    let why = match stop {
        Stop::Signal => "interrupted",
        Stop::Count => "count reached",
        Stop::End => "end of every partition",
        Stop::Pipe => "stdout closed",
    };
    eprintln!(
        "krust: consumed {printed} records from {} ({why})",
        args.topics.join(",")
    );
    Ok(Outcome::Done)
}

/// The poll-print-commit loop.
async fn consume(
    consumer: &mut Consumer,
    args: &ConsumeArgs,
    commit: CommitMode,
    format: &Format,
    shutdown: &Shutdown,
    out: &mut impl Write,
    printed: &mut u64,
) -> Result<Stop, ConsumerError> {
    if args.count == Some(0) {
        return Ok(Stop::Count);
    }
    // `--commit each` offsets refused while the group rebalanced: each is
    // committed with the next commit while its partition is still held (a
    // revoked one was committed on revoke: it was acked).
    let mut pending: BTreeMap<TopicPartition, OffsetAndMetadata> = BTreeMap::new();
    loop {
        if shutdown.requested() {
            return Ok(Stop::Signal);
        }
        let records = consumer.poll(POLL).await?;
        for r in &records {
            if shutdown.requested() {
                return Ok(Stop::Signal);
            }
            if let Err(e) = format.write(out, r) {
                return pipe_or(e);
            }
            if commit == CommitMode::Each {
                if let Err(e) = out.flush() {
                    return pipe_or(e);
                }
                let tp = TopicPartition::new(&*r.topic, r.partition);
                let held = consumer.assignment();
                pending.retain(|tp, _| held.contains(tp));
                pending.insert(tp, OffsetAndMetadata::new(r.next_offset()));
                match consumer.commit_offsets(pending.clone()).await {
                    Ok(()) => pending.clear(),
                    Err(e) if e.code() == Some(ErrorCode::REBALANCE_IN_PROGRESS) => {}
                    Err(e) => return Err(e),
                }
            }
            r.ack();
            *printed += 1;
            if args.count.is_some_and(|c| *printed >= c) {
                return Ok(Stop::Count);
            }
        }
        // Interactive use sees each batch as it comes.
        if !records.is_empty()
            && let Err(e) = out.flush()
        {
            return pipe_or(e);
        }
        if args.exit_at_end && at_end(consumer) {
            return Ok(Stop::End);
        }
    }
}

/// A closed stdout ends consumption quietly; other write errors are fatal.
fn pipe_or(e: io::Error) -> Result<Stop, ConsumerError> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(Stop::Pipe)
    } else {
        Err(ConsumerError::Usage(format!("writing to stdout: {e}")))
    }
}

/// Report `e`, leaving the group within a short bound first.
async fn fail(consumer: Consumer, e: ConsumerError) -> CliError {
    let _ = tokio::time::timeout(CLOSE_AFTER_ERROR, consumer.close()).await;
    CliError::from_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: ConsumeArgs,
    }

    fn args(extra: &[&str]) -> ConsumeArgs {
        let mut v = vec!["t", "-b", "h:1", "-t", "topic"];
        v.extend(extra);
        T::parse_from(v).args
    }

    #[test]
    fn commits_need_a_group() {
        assert!(commit_mode(&args(&["--commit", "each"])).is_err());
        assert!(commit_mode(&args(&["--commit", "auto"])).is_err());
        assert_eq!(
            commit_mode(&args(&["--commit", "none"])).ok(),
            Some(CommitMode::None)
        );
        assert_eq!(commit_mode(&args(&[])).ok(), Some(CommitMode::None));
        assert_eq!(
            commit_mode(&args(&["-g", "g"])).ok(),
            Some(CommitMode::Auto)
        );
    }

    #[test]
    fn topics_partitions_and_offsets_as_kcat_takes_them() {
        let a = args(&["-t", "a,b", "-t", "c", "-p", "0,2", "-p", "3", "-o", "-5"]);
        assert_eq!(a.topics, ["topic", "a", "b", "c"]);
        assert_eq!(a.partitions, [0, 2, 3]);
        assert_eq!(a.offset, Some(StartOffset::FromEnd(5)));
        assert_eq!(args(&["-o-7"]).offset, Some(StartOffset::FromEnd(7)));
        assert_eq!(
            args(&["-o", "s@1000"]).offset,
            Some(StartOffset::Timestamp(1000))
        );
        for bad in [&["-o", "soon"][..], &["-p", "-1"], &["-p", "x"]] {
            let mut v = vec!["t", "-b", "h:1", "-t", "topic"];
            v.extend(bad);
            assert!(T::try_parse_from(v).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_become_properties_and_x_comes_last() {
        let a = args(&[
            "-g",
            "g",
            "--from",
            "latest",
            "-X",
            "auto.offset.reset=earliest",
        ]);
        let p = properties(&a, CommitMode::Auto);
        assert_eq!(props::last(&p, "group.id"), Some("g"));
        assert_eq!(props::last(&p, "enable.auto.commit"), Some("true"));
        assert_eq!(props::last(&p, "acknowledgement.mode"), Some("explicit"));
        assert_eq!(props::last(&p, "auto.offset.reset"), Some("earliest"));
        let p = properties(&args(&[]), CommitMode::None);
        assert_eq!(props::last(&p, "enable.auto.commit"), Some("false"));
        assert_eq!(props::last(&p, "group.id"), None);
    }
}
