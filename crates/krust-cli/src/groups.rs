//! `krust groups list` and `krust groups describe`: where every group
//! stands, partition by partition, with the lag in records and in time
//! (docs/ARCHITECTURE.md, "Operating offsets").

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use krust::admin::{GroupDescription, GroupFilter, GroupKind, GroupLag, PartitionLag};

use crate::cluster::ClusterArgs;
use crate::json::Json;
use crate::table::{Align, Table, ago};
use crate::{CliError, Outcome};

/// `krust groups`.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(subcommand)]
    command: GroupsCommand,
}

#[derive(Debug, Subcommand)]
enum GroupsCommand {
    /// Every group of the cluster, its type, state and coordinator.
    List(ListArgs),
    /// Each partition of the groups: committed offset, log end, lag in
    /// records and in time, and who holds it.
    Describe(DescribeArgs),
}

/// `krust groups list`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust groups list -b localhost:9092
  krust groups list -b localhost:9092 --state Empty --state Dead
  krust groups list -b localhost:9092 --type consumer --json")]
struct ListArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Only groups in this state (`Stable`, `Empty`, `PreparingRebalance`,
    /// `Assigning`, `Reconciling`, ...; repeatable; any case).
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
    /// Only groups of this type: `classic` or `consumer` (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// A JSON array of {group, type, protocol_type, state, coordinator}.
    #[arg(long = "json")]
    json: bool,
}

/// `krust groups describe`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust groups describe -b localhost:9092 my-group
  krust groups describe -b localhost:9092 my-group other-group --members
  krust groups describe -b localhost:9092 my-group --json

Columns: COMMITTED is the group's committed offset (`none`: it never
committed there, and LAG counts from the log start), LOG-END the high
watermark, LAG the records between them (transaction markers alone count
as caught up), LAG-TIME the age of the record at the committed offset (0s
when caught up, `?` when it could not be read).")]
struct DescribeArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The groups to describe.
    #[arg(value_name = "GROUP", required = true)]
    groups: Vec<String>,
    /// Also list the members: member id, instance id, client id, host,
    /// epoch and the partitions each holds.
    #[arg(long = "members")]
    members: bool,
    /// A JSON array with one object per group (see the README).
    #[arg(long = "json")]
    json: bool,
}

/// Run `krust groups`.
pub async fn run(args: GroupsArgs) -> Result<Outcome, CliError> {
    match args.command {
        GroupsCommand::List(a) => list(a).await,
        GroupsCommand::Describe(a) => describe(a).await,
    }
}

async fn list(args: ListArgs) -> Result<Outcome, CliError> {
    let admin = args.cluster.admin().await?;
    let filter = GroupFilter {
        states: args.states,
        types: args.types,
    };
    let groups = admin
        .list_groups(&filter)
        .await
        .map_err(CliError::from_err)?;
    if args.json {
        let all: Vec<Json> = groups
            .iter()
            .map(|g| {
                Json::Object(vec![
                    ("group", Json::str(&g.group_id)),
                    ("type", Json::opt_str(g.group_type.as_deref())),
                    ("protocol_type", Json::str(&g.protocol_type)),
                    ("state", Json::opt_str(g.state.as_deref())),
                    ("coordinator", Json::int(g.coordinator)),
                ])
            })
            .collect();
        println!("{}", Json::Array(all));
        return Ok(Outcome::Done);
    }
    let mut t = Table::new(&[
        ("GROUP", Align::Left),
        ("TYPE", Align::Left),
        ("STATE", Align::Left),
        ("PROTOCOL-TYPE", Align::Left),
        ("COORDINATOR", Align::Right),
    ]);
    for g in &groups {
        let or_dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
        t.row(vec![
            g.group_id.clone(),
            or_dash(&g.group_type),
            or_dash(&g.state),
            if g.protocol_type.is_empty() {
                "-".to_owned()
            } else {
                g.protocol_type.clone()
            },
            g.coordinator.to_string(),
        ]);
    }
    print!("{}", t.render());
    Ok(Outcome::Done)
}

async fn describe(args: DescribeArgs) -> Result<Outcome, CliError> {
    let admin = args.cluster.admin().await?;
    let names: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let results = admin.groups_lag(&names).await.map_err(CliError::from_err)?;
    let mut outcome = Outcome::Done;
    let mut json = Vec::new();
    for (i, (group, r)) in results.iter().enumerate() {
        let lag = match r {
            Ok(lag) => lag,
            Err(e) => {
                eprintln!("krust: error: group {group}: {}", crate::describe(e));
                outcome = Outcome::Failed;
                continue;
            }
        };
        if args.json {
            json.push(group_json(lag));
            continue;
        }
        if i > 0 {
            println!();
        }
        print!("{}", group_text(lag, args.members));
    }
    if args.json {
        println!("{}", Json::Array(json));
    }
    Ok(outcome)
}

/// The columns with which every table of a group's partitions shows their
/// lag (`groups describe`, `lag watch`); [`lag_cells`] fills them.
pub const LAG_COLUMNS: [(&str, Align); 6] = [
    ("TOPIC", Align::Left),
    ("PARTITION", Align::Right),
    ("COMMITTED", Align::Right),
    ("LOG-END", Align::Right),
    ("LAG", Align::Right),
    ("LAG-TIME", Align::Right),
];

/// A partition's cells under [`LAG_COLUMNS`]; a partition never committed
/// shows `none`.
pub fn lag_cells(p: &PartitionLag) -> Vec<String> {
    vec![
        p.partition.topic.clone(),
        p.partition.partition.to_string(),
        p.committed
            .map_or_else(|| "none".to_owned(), |c| c.to_string()),
        p.high_watermark.to_string(),
        p.lag.to_string(),
        ago(p.lag_ms),
    ]
}

/// The summary figures of a group: total lag and the largest lag in time
/// (`None` when some lagging partition's time could not be read and no
/// other was larger).
pub fn totals(partitions: &[PartitionLag]) -> (i64, Option<i64>) {
    let total = partitions.iter().map(|p| p.lag).sum();
    let known = partitions.iter().filter_map(|p| p.lag_ms).max();
    let unknown = partitions.iter().any(|p| p.lag_ms.is_none());
    (
        total,
        if unknown && known.is_none() {
            None
        } else {
            known.or(Some(0))
        },
    )
}

fn kind(d: &GroupDescription) -> &'static str {
    match d.kind {
        GroupKind::Classic => "classic",
        GroupKind::Consumer => "consumer",
    }
}

/// One group as people read it: a heading, the partitions table, the
/// members table when asked, and the summary line.
fn group_text(g: &GroupLag, members: bool) -> String {
    let mut out = String::new();
    let state = g.description.as_ref().map_or("Dead", |d| d.state.as_str());
    match &g.description {
        Some(d) => {
            let epoch = d.epoch.map(|e| format!(", epoch {e}")).unwrap_or_default();
            out.push_str(&format!(
                "GROUP {} ({} protocol, assignor {}{epoch}, coordinator {})\n",
                g.group_id,
                kind(d),
                if d.assignor.is_empty() {
                    "-"
                } else {
                    &d.assignor
                },
                d.coordinator
            ));
        }
        None => out.push_str(&format!(
            "GROUP {} (unknown to its coordinator)\n",
            g.group_id
        )),
    }
    let columns = [
        &LAG_COLUMNS[..],
        &[
            ("MEMBER", Align::Left),
            ("CLIENT-ID", Align::Left),
            ("HOST", Align::Left),
        ],
    ]
    .concat();
    let mut t = Table::new(&columns);
    for p in &g.partitions {
        let (member, client, host) = p.member.clone().unwrap_or_else(|| {
            let dash = || "-".to_owned();
            (dash(), dash(), dash())
        });
        t.row([lag_cells(p), vec![member, client, host]].concat());
    }
    if t.is_empty() {
        out.push_str("no committed offsets and no assigned partitions\n");
    } else {
        out.push_str(&t.render());
    }
    if members && let Some(d) = &g.description {
        out.push('\n');
        out.push_str(&members_table(d));
    }
    let (total, max) = totals(&g.partitions);
    let n = g.description.as_ref().map_or(0, |d| d.members.len());
    out.push_str(&format!(
        "total lag {total}, max lag in time {}, state {state}, {n} member{}\n",
        ago(max),
        if n == 1 { "" } else { "s" }
    ));
    if g.partitions.iter().any(|p| p.committed.is_none()) {
        out.push_str("(none: no committed offset; its lag counts from the log start)\n");
    }
    out
}

fn members_table(d: &GroupDescription) -> String {
    let mut t = Table::new(&[
        ("MEMBER", Align::Left),
        ("INSTANCE", Align::Left),
        ("CLIENT-ID", Align::Left),
        ("HOST", Align::Left),
        ("EPOCH", Align::Right),
        ("#PARTITIONS", Align::Right),
        ("ASSIGNMENT", Align::Left),
    ]);
    let mut members: Vec<_> = d.members.iter().collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    for m in members {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &m.assignment {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let assignment: Vec<String> = by_topic
            .iter()
            .map(|(t, ps)| {
                let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                format!("{t}({})", ps.join(","))
            })
            .collect();
        t.row(vec![
            m.member_id.clone(),
            m.instance_id.clone().unwrap_or_else(|| "-".to_owned()),
            m.client_id.clone(),
            m.host.clone(),
            m.epoch.map_or_else(|| "-".to_owned(), |e| e.to_string()),
            m.assignment.len().to_string(),
            if assignment.is_empty() {
                "-".to_owned()
            } else {
                assignment.join(" ")
            },
        ]);
    }
    t.render()
}

/// One group for machines; field names and their order are stable.
pub fn group_json(g: &GroupLag) -> Json {
    let (total, max) = totals(&g.partitions);
    let d = g.description.as_ref();
    let member = |m: &krust::admin::GroupMember| {
        Json::Object(vec![
            ("member_id", Json::str(&m.member_id)),
            ("instance_id", Json::opt_str(m.instance_id.as_deref())),
            ("client_id", Json::str(&m.client_id)),
            ("host", Json::str(&m.host)),
            ("epoch", Json::opt_int(m.epoch.map(i64::from))),
            (
                "assignment",
                Json::Array(
                    m.assignment
                        .iter()
                        .map(|tp| {
                            Json::Object(vec![
                                ("topic", Json::str(&tp.topic)),
                                ("partition", Json::int(tp.partition)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    };
    Json::Object(vec![
        ("group", Json::str(&g.group_id)),
        ("exists", Json::Bool(d.is_some())),
        ("type", Json::opt_str(d.map(kind))),
        ("state", Json::str(d.map_or("Dead", |d| d.state.as_str()))),
        ("assignor", Json::opt_str(d.map(|d| d.assignor.as_str()))),
        (
            "epoch",
            Json::opt_int(d.and_then(|d| d.epoch).map(i64::from)),
        ),
        (
            "coordinator",
            Json::opt_str(d.map(|d| d.coordinator.as_str())),
        ),
        (
            "members",
            Json::Array(d.map_or_else(Vec::new, |d| d.members.iter().map(member).collect())),
        ),
        (
            "partitions",
            Json::Array(g.partitions.iter().map(partition_json).collect()),
        ),
        ("total_lag", Json::Int(total)),
        ("max_lag_ms", Json::opt_int(max)),
    ])
}

fn partition_json(p: &PartitionLag) -> Json {
    let who = p.member.as_ref();
    Json::Object(vec![
        ("topic", Json::str(&p.partition.topic)),
        ("partition", Json::int(p.partition.partition)),
        ("committed", Json::opt_int(p.committed)),
        ("log_start", Json::Int(p.log_start)),
        ("log_end", Json::Int(p.high_watermark)),
        ("last_stable", Json::Int(p.last_stable)),
        ("lag", Json::Int(p.lag)),
        (
            "lag_from",
            Json::str(if p.committed.is_some() {
                "committed"
            } else {
                "log_start"
            }),
        ),
        ("lag_ms", Json::opt_int(p.lag_ms)),
        ("member_id", Json::opt_str(who.map(|w| w.0.as_str()))),
        ("client_id", Json::opt_str(who.map(|w| w.1.as_str()))),
        ("host", Json::opt_str(who.map(|w| w.2.as_str()))),
    ])
}
