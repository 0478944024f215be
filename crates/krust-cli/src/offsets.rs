//! `krust offsets reset` and `krust offsets delete`: move or remove a
//! group's committed offsets while the group is empty, with the plan
//! printed first (docs/ARCHITECTURE.md, "Operating offsets").

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args, Subcommand};
use krust::admin::{Admin, GroupDescription, OffsetSpec};
use krust::codec::ErrorCode;
use krust::consumer::OffsetAndMetadata;
use krust::group::TopicPartition;

use crate::cluster::ClusterArgs;
use crate::reset::{self, Known, Row, Target};
use crate::table::{Align, Table};
use crate::when::{parse_datetime, parse_duration};
use crate::{CliError, Outcome};

/// `krust offsets`.
#[derive(Debug, Args)]
pub struct OffsetsArgs {
    #[command(subcommand)]
    command: OffsetsCommand,
}

#[derive(Debug, Subcommand)]
enum OffsetsCommand {
    /// Plan (and with --execute apply) new committed offsets for a group.
    Reset(ResetArgs),
    /// Delete a group's committed offsets of topics.
    Delete(DeleteArgs),
}

/// `krust offsets reset`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("scope").args(["topics", "all_topics"]).multiple(false)),
    group(ArgGroup::new("target").required(true).multiple(false).args([
        "to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime",
        "by_duration", "to_current", "from_file",
    ])),
    after_help = "\
Examples:
  # the plan only: where each partition would move, and what that skips or replays
  krust offsets reset -b localhost:9092 -g my-group --topic events --to-earliest

  # apply it (the group must have no members: stop its consumers first)
  krust offsets reset -b localhost:9092 -g my-group --topic events --to-earliest --execute

  # back one hour on partitions 0 and 2 of a topic
  krust offsets reset -b localhost:9092 -g my-group --topic events:0,2 --by-duration 1h

  # every partition the group committed, to a point in time
  krust offsets reset -b localhost:9092 -g my-group --all-topics \\
      --to-datetime 2026-12-03T10:00:00Z

  # save a plan, edit it, apply it later
  krust offsets reset -b localhost:9092 -g my-group --all-topics --to-current --export > plan.csv
  krust offsets reset -b localhost:9092 -g my-group --from-file plan.csv --execute

Numbers (--to-offset, --shift-by, --from-file) are clamped to the log start and
end; a time no record reaches moves to the log end; --to-current of a partition
never committed is the log end. The plan equals kafka-consumer-groups.sh
--reset-offsets --dry-run's, and --export writes its CSV (topic,partition,offset)."
)]
struct ResetArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The group.
    #[arg(short = 'g', long = "group")]
    group: String,
    /// A topic, or some of its partitions as TOPIC:P[,P...] (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,...]")]
    topics: Vec<String>,
    /// Every partition the group has committed offsets for.
    #[arg(long = "all-topics")]
    all_topics: bool,
    /// To the log start.
    #[arg(long = "to-earliest")]
    to_earliest: bool,
    /// To the log end.
    #[arg(long = "to-latest")]
    to_latest: bool,
    /// To this offset.
    #[arg(long = "to-offset", value_name = "N")]
    to_offset: Option<i64>,
    /// By N from the committed offset (negative: back).
    #[arg(long = "shift-by", value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// To the first record at or after this time (2026-12-03T10:00:00Z,
    /// with an offset like +01:00, without a zone: UTC; or ms since the
    /// epoch).
    #[arg(long = "to-datetime", value_name = "TS")]
    to_datetime: Option<String>,
    /// To the first record at most this long ago (30m, 2h, 1d, PT1H30M).
    #[arg(long = "by-duration", value_name = "DURATION")]
    by_duration: Option<String>,
    /// To where the group stands (the log end where it never committed).
    #[arg(long = "to-current")]
    to_current: bool,
    /// To the offsets of a CSV plan (topic,partition,offset lines, as
    /// --export writes); its partitions are the scope.
    #[arg(long = "from-file", value_name = "CSV")]
    from_file: Option<std::path::PathBuf>,
    /// Apply the plan (without it nothing changes).
    #[arg(long = "execute", conflicts_with_all = ["dry_run", "export"])]
    execute: bool,
    /// Only print the plan (the default).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Print the plan as CSV (topic,partition,offset) instead of a table.
    #[arg(long = "export")]
    export: bool,
}

/// `krust offsets delete`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust offsets delete -b localhost:9092 -g my-group --topic old-events
  krust offsets delete -b localhost:9092 -g my-group --topic events:3,4

The broker refuses (GROUP_SUBSCRIBED_TO_TOPIC) while members of the group
consume the topic.")]
struct DeleteArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The group.
    #[arg(short = 'g', long = "group")]
    group: String,
    /// A topic, or some of its partitions as TOPIC:P[,P...] (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,...]", required = true)]
    topics: Vec<String>,
}

/// Run `krust offsets`.
pub async fn run(args: OffsetsArgs) -> Result<Outcome, CliError> {
    match args.command {
        OffsetsCommand::Reset(a) => reset_offsets(a).await,
        OffsetsCommand::Delete(a) => delete(a).await,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ResetArgs {
    fn target(&self) -> Result<Target, CliError> {
        Ok(if self.to_earliest {
            Target::Earliest
        } else if self.to_latest {
            Target::Latest
        } else if let Some(n) = self.to_offset {
            Target::Offset(n)
        } else if let Some(n) = self.shift_by {
            Target::ShiftBy(n)
        } else if let Some(ts) = &self.to_datetime {
            Target::Timestamp(parse_datetime(ts).map_err(CliError::usage)?)
        } else if let Some(d) = &self.by_duration {
            let d = parse_duration(d).map_err(CliError::usage)?;
            let back = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            Target::Timestamp(now_ms().saturating_sub(back))
        } else if self.to_current {
            Target::Current
        } else if let Some(path) = &self.from_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::runtime(format!("cannot read {}: {e}", path.display())))?;
            let plan = reset::from_csv(&text, &self.group)
                .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
            if plan.is_empty() {
                return Err(CliError::usage(format!(
                    "{}: no offsets for group {}",
                    path.display(),
                    self.group
                )));
            }
            Target::Plan(plan)
        } else {
            unreachable!("clap requires one target")
        })
    }
}

/// `TOPIC` or `TOPIC:P[,P...]` into a topic and its partitions (`None`:
/// every partition).
fn parse_scope(s: &str) -> Result<(String, Option<Vec<i32>>), CliError> {
    match s.split_once(':') {
        None => Ok((s.to_owned(), None)),
        Some((t, ps)) => {
            let parts: Result<Vec<i32>, _> = ps.split(',').map(|p| p.trim().parse()).collect();
            match parts {
                Ok(p) if !t.is_empty() && !p.is_empty() => Ok((t.to_owned(), Some(p))),
                _ => Err(CliError::usage(format!(
                    "bad --topic `{s}`: expected TOPIC or TOPIC:P[,P...]"
                ))),
            }
        }
    }
}

/// The partitions `--topic` names: listed ones as given, whole topics from
/// metadata (an unknown topic is an error naming it).
async fn scoped(admin: &Admin, topics: &[String]) -> Result<BTreeSet<TopicPartition>, CliError> {
    let mut out = BTreeSet::new();
    let mut whole = Vec::new();
    for s in topics {
        match parse_scope(s)? {
            (t, Some(ps)) => out.extend(ps.into_iter().map(|p| TopicPartition::new(&t, p))),
            (t, None) => whole.push(t),
        }
    }
    if !whole.is_empty() {
        let names: Vec<&str> = whole.iter().map(String::as_str).collect();
        for t in admin
            .describe_topics(&names)
            .await
            .map_err(CliError::from_err)?
        {
            out.extend(
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(&t.name, p.partition)),
            );
        }
    }
    Ok(out)
}

/// The plan: every partition in scope, where it is and where it goes.
async fn plan(admin: &Admin, args: &ResetArgs, target: &Target) -> Result<Vec<Row>, CliError> {
    let committed: BTreeMap<TopicPartition, i64> = match admin
        .list_group_offsets(&[&args.group])
        .await
        .map_err(CliError::from_err)?
        .pop()
    {
        Some((_, r)) => r
            .map_err(CliError::from_err)?
            .into_iter()
            .map(|(tp, o)| (tp, o.offset))
            .collect(),
        None => BTreeMap::new(),
    };
    let partitions: BTreeSet<TopicPartition> = match target {
        Target::Plan(p) => p.keys().cloned().collect(),
        _ if args.all_topics => committed.keys().cloned().collect(),
        _ if !args.topics.is_empty() => scoped(admin, &args.topics).await?,
        _ => {
            return Err(CliError::usage(
                "say which partitions: --topic TOPIC[:P,...] or --all-topics",
            ));
        }
    };
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let ask = |spec: OffsetSpec| -> Vec<(&str, i32, OffsetSpec)> {
        partitions
            .iter()
            .map(|tp| (tp.topic.as_str(), tp.partition, spec))
            .collect()
    };
    let list = |spec| {
        let asked = ask(spec);
        async move { admin.list_offsets(&asked).await.map_err(CliError::from_err) }
    };
    let starts = list(OffsetSpec::Earliest).await?;
    let ends = list(OffsetSpec::Latest).await?;
    let by_time = match target {
        Target::Timestamp(ts) => Some(list(OffsetSpec::Timestamp(*ts)).await?),
        _ => None,
    };
    let mut rows = Vec::with_capacity(partitions.len());
    for (i, tp) in partitions.iter().enumerate() {
        let known = Known {
            current: committed.get(tp).copied(),
            log_start: starts[i].offset.unwrap_or(0),
            log_end: ends[i].offset.unwrap_or(0),
            by_time: by_time.as_ref().and_then(|b| b[i].offset),
        };
        let new = reset::new_offset(target, tp, known).map_err(CliError::runtime)?;
        rows.push(Row {
            partition: tp.clone(),
            current: known.current,
            new,
            log_start: known.log_start,
            log_end: known.log_end,
        });
    }
    Ok(rows)
}

fn plan_table(group: &str, rows: &[Row]) -> String {
    let mut t = Table::new(&[
        ("GROUP", Align::Left),
        ("TOPIC", Align::Left),
        ("PARTITION", Align::Right),
        ("CURRENT", Align::Right),
        ("NEW", Align::Right),
        ("LOG-START", Align::Right),
        ("LOG-END", Align::Right),
        ("CHANGE", Align::Left),
    ]);
    for r in rows {
        t.row(vec![
            group.to_owned(),
            r.partition.topic.clone(),
            r.partition.partition.to_string(),
            r.current
                .map_or_else(|| "none".to_owned(), |c| c.to_string()),
            r.new.to_string(),
            r.log_start.to_string(),
            r.log_end.to_string(),
            r.change(),
        ]);
    }
    t.render()
}

/// Why `group` cannot be reset now, naming its members, or `None` when it
/// is empty (or unknown, i.e. dead).
fn busy(d: Option<&GroupDescription>) -> Option<String> {
    let d = d?;
    if d.members.is_empty() {
        return None;
    }
    let who: Vec<String> = d
        .members
        .iter()
        .map(|m| format!("{} (client {}, host {})", m.member_id, m.client_id, m.host))
        .collect();
    Some(format!(
        "group {} is not empty (state {}, {} member{}): offsets can only be reset \
         once every member has left; stop these consumers first: {}",
        d.group_id,
        d.state,
        d.members.len(),
        if d.members.len() == 1 { "" } else { "s" },
        who.join(", ")
    ))
}

async fn describe_one(admin: &Admin, group: &str) -> Result<Option<GroupDescription>, CliError> {
    match admin
        .describe_groups(&[group])
        .await
        .map_err(CliError::from_err)?
        .pop()
    {
        Some((_, Ok(d))) => Ok(Some(d)),
        Some((_, Err(e))) if e.code() == Some(ErrorCode::GROUP_ID_NOT_FOUND) => Ok(None),
        Some((_, Err(e))) => Err(CliError::from_err(e)),
        None => Ok(None),
    }
}

async fn reset_offsets(args: ResetArgs) -> Result<Outcome, CliError> {
    let target = args.target()?;
    let admin = args.cluster.admin().await?;
    let rows = plan(&admin, &args, &target).await?;
    let refusal = busy(describe_one(&admin, &args.group).await?.as_ref());
    if args.export {
        print!("{}", reset::to_csv(&rows));
    } else if rows.is_empty() {
        println!(
            "nothing to reset: no partitions in scope for group {}",
            args.group
        );
    } else {
        print!("{}", plan_table(&args.group, &rows));
    }
    if let Some(why) = refusal {
        if args.execute {
            return Err(CliError::runtime(why));
        }
        eprintln!("krust: warning: {why}; --execute would be refused");
        return Ok(Outcome::Done);
    }
    if !args.execute {
        if !args.export {
            eprintln!("dry run: nothing changed; add --execute to apply this plan");
        }
        return Ok(Outcome::Done);
    }
    if rows.is_empty() {
        return Ok(Outcome::Done);
    }
    let offsets = rows
        .iter()
        .map(|r| (r.partition.clone(), OffsetAndMetadata::new(r.new)))
        .collect();
    admin
        .alter_group_offsets(&args.group, &offsets)
        .await
        .map_err(CliError::from_err)?;
    eprintln!(
        "reset {} partition{} of group {}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        args.group
    );
    Ok(Outcome::Done)
}

async fn delete(args: DeleteArgs) -> Result<Outcome, CliError> {
    let admin = args.cluster.admin().await?;
    let partitions: Vec<TopicPartition> = scoped(&admin, &args.topics).await?.into_iter().collect();
    let results = admin
        .delete_group_offsets(&args.group, &partitions)
        .await
        .map_err(CliError::from_err)?;
    let mut t = Table::new(&[
        ("TOPIC", Align::Left),
        ("PARTITION", Align::Right),
        ("STATUS", Align::Left),
    ]);
    let mut outcome = Outcome::Done;
    for (tp, r) in &results {
        let status = match r {
            Ok(()) => "deleted".to_owned(),
            Err(e) => {
                outcome = Outcome::Failed;
                e.code()
                    .map_or_else(|| crate::describe(e), |c| c.name().to_owned())
            }
        };
        t.row(vec![tp.topic.clone(), tp.partition.to_string(), status]);
    }
    print!("{}", t.render());
    if outcome == Outcome::Failed {
        eprintln!(
            "krust: error: some offsets of group {} were not deleted (see STATUS)",
            args.group
        );
    }
    Ok(outcome)
}
