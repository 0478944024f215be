//! `krust lag watch` and `krust lag serve`: Burrow's evaluation of each
//! group's partitions over a sliding window, as a live table, a one-shot
//! check with an exit code for alerting, JSON, or Prometheus metrics
//! (docs/ARCHITECTURE.md, "Operating offsets").

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::{Args, Subcommand};
use krust::admin::Admin;

use crate::cluster::ClusterArgs;
use crate::groups::{LAG_COLUMNS, lag_cells, totals};
use crate::json::Json;
use crate::signal::Shutdown;
use crate::table::{Align, Table, ago};
use crate::watch::{Snapshot, Watcher, group_status_name, partition_status_name, sparkline};
use crate::when::parse_duration;
use crate::{CliError, Outcome, prometheus};

/// `krust lag`.
#[derive(Debug, Args)]
pub struct LagArgs {
    #[command(subcommand)]
    command: LagCommand,
}

#[derive(Debug, Subcommand)]
enum LagCommand {
    /// A live table of each partition's lag and status, or with --once an
    /// evaluation whose exit code an alerting system reads.
    Watch(WatchArgs),
    /// Serve the lag and statuses as Prometheus metrics over HTTP.
    Serve(ServeArgs),
}

/// What both subcommands observe and how.
#[derive(Debug, Args)]
struct Observe {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// A group to watch (repeatable); none: every consumer group.
    #[arg(short = 'g', long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Time between observations (250ms, 5s, 1m).
    #[arg(long = "interval", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// Observations per window: a status judges the last this many.
    #[arg(long = "window", value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    window: u32,
}

/// `krust lag watch`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust lag watch -b localhost:9092 -g my-group
  krust lag watch -b localhost:9092 -g my-group --interval 10s --window 30

  # for alerting: observe one window, print it, exit with the status
  krust lag watch -b localhost:9092 -g my-group --once --interval 5s --window 6 --json

Statuses (Burrow's evaluation rules, per partition over the window):
  OK      lag was zero at some point (idle partitions are never alarmed)
  WARN    the group commits, but its lag never went down
  STALL   the committed offset stood still with lag, members in the group
  STOP    the same with no members: nobody consumes
  REWIND  the committed offset went back
A group is its worst partition's: OK, WARN, or ERR (STALL, STOP, REWIND).

Exit codes with --once: 0 OK, 1 WARN, 2 ERR (or a group that could not be
described), 3 the cluster could not be reached. Usage errors exit 2 as well,
with the usage on stderr.")]
struct WatchArgs {
    #[command(flatten)]
    observe: Observe,
    /// Observe one window (N observations, an interval apart), print it and
    /// exit with the status.
    #[arg(long = "once")]
    once: bool,
    /// JSON instead of a table: one object per observation (with --once,
    /// one at the end).
    #[arg(long = "json")]
    json: bool,
}

/// `krust lag serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  krust lag serve -b localhost:9092 --listen 127.0.0.1:9308
  krust lag serve -b localhost:9092 -g my-group --listen 127.0.0.1:9308 --interval 15s

GET /metrics answers in Prometheus' text format with the latest observation:
krust_group_lag, krust_group_lag_seconds, krust_group_committed_offset,
krust_group_log_end_offset, krust_group_partition_status (0 OK, 1 WARN,
2 STALL, 3 STOP, 4 REWIND), krust_group_last_commit_age_seconds,
krust_group_status (0 OK, 1 WARN, 2 ERR), krust_group_members,
krust_group_total_lag, krust_lag_up.")]
struct ServeArgs {
    #[command(flatten)]
    observe: Observe,
    /// The address to listen on (port 0: any free port; the address taken
    /// is printed on stderr).
    #[arg(long = "listen", value_name = "HOST:PORT")]
    listen: String,
}

/// Run `krust lag`.
pub async fn run(args: LagArgs, shutdown: Shutdown) -> Result<Outcome, CliError> {
    match args.command {
        LagCommand::Watch(a) => watch(a, shutdown).await,
        LagCommand::Serve(a) => serve(a, shutdown).await,
    }
}

/// The cluster could not be reached: exit code 3 for `--once`.
fn unreachable(e: &krust::net::Error) -> CliError {
    CliError::with_code(
        3,
        format!("cannot reach the cluster: {}", crate::describe(e)),
    )
}

async fn connect(o: &Observe) -> Result<Admin, CliError> {
    let config = o.cluster.pool_config()?;
    Admin::connect(config).await.map_err(|e| unreachable(&e))
}

async fn watch(args: WatchArgs, mut shutdown: Shutdown) -> Result<Outcome, CliError> {
    let o = &args.observe;
    let admin = connect(o).await?;
    let mut watcher = Watcher::new(o.groups.clone(), o.window as usize);
    let rounds = if args.once { o.window } else { u32::MAX };
    let live = !args.once && !args.json && std::io::stdout().is_terminal();
    let mut last = Snapshot::default();
    for round in 0..rounds {
        if round > 0 {
            tokio::select! {
                () = tokio::time::sleep(o.interval) => {}
                () = shutdown.wait() => return Ok(Outcome::Done),
            }
        }
        match watcher.observe(&admin).await {
            Ok(s) => last = s,
            Err(e) if args.once => return Err(unreachable(&e)),
            Err(e) => {
                eprintln!("krust: warning: {}", crate::describe(&e));
                continue;
            }
        }
        if args.once {
            continue;
        }
        let mut out = std::io::stdout().lock();
        let text = if args.json {
            format!("{}\n", snapshot_json(&last))
        } else {
            snapshot_text(&last, o.window)
        };
        let clear = if live { "\x1b[H\x1b[2J" } else { "" };
        let _ = write!(out, "{clear}{text}");
        if !live && !args.json {
            let _ = writeln!(out);
        }
        let _ = out.flush();
    }
    if args.json {
        println!("{}", snapshot_json(&last));
    } else {
        print!("{}", snapshot_text(&last, o.window));
    }
    for (g, e) in &last.failed {
        eprintln!("krust: error: group {g}: {e}");
    }
    let code = last.status().exit_code();
    Ok(Outcome::Exit(u8::try_from(code).unwrap_or(2)))
}

/// The table of a snapshot with each group's summary line.
fn snapshot_text(s: &Snapshot, window: u32) -> String {
    let columns = [
        &[("GROUP", Align::Left)][..],
        &LAG_COLUMNS,
        &[("STATUS", Align::Left), ("WINDOW", Align::Left)],
    ]
    .concat();
    let mut t = Table::new(&columns);
    for g in &s.groups {
        for p in &g.partitions {
            let status = partition_status_name(p.status).to_owned();
            let cells = [
                vec![g.group.clone()],
                lag_cells(&p.lag),
                vec![status, sparkline(&p.window)],
            ];
            t.row(cells.concat());
        }
    }
    let mut out = t.render();
    for g in &s.groups {
        let lags: Vec<_> = g.partitions.iter().map(|p| p.lag.clone()).collect();
        let (total, max) = totals(&lags);
        let seen = g
            .partitions
            .iter()
            .map(|p| p.window.len())
            .max()
            .unwrap_or(0);
        out.push_str(&format!(
            "group {}: {} (state {}, {} member{}, total lag {total}, max lag in time {}, \
             {seen} of {window} observations)\n",
            g.group,
            group_status_name(g.status),
            g.state,
            g.members,
            if g.members == 1 { "" } else { "s" },
            ago(max)
        ));
    }
    out
}

/// A snapshot for machines; field names and their order are stable.
fn snapshot_json(s: &Snapshot) -> Json {
    let partition = |p: &crate::watch::PartitionView| {
        Json::Object(vec![
            ("topic", Json::str(&p.lag.partition.topic)),
            ("partition", Json::int(p.lag.partition.partition)),
            ("status", Json::str(partition_status_name(p.status))),
            ("committed", Json::opt_int(p.lag.committed)),
            ("log_end", Json::Int(p.lag.high_watermark)),
            ("lag", Json::Int(p.lag.lag)),
            ("lag_ms", Json::opt_int(p.lag.lag_ms)),
            (
                "window",
                Json::Array(p.window.iter().map(|&l| Json::Int(l)).collect()),
            ),
            ("moved_ago_ms", Json::int(p.moved_ago.as_millis())),
        ])
    };
    let group = |g: &crate::watch::GroupView| {
        let lags: Vec<_> = g.partitions.iter().map(|p| p.lag.clone()).collect();
        let (total, max) = totals(&lags);
        Json::Object(vec![
            ("group", Json::str(&g.group)),
            ("state", Json::str(&g.state)),
            ("members", Json::int(g.members)),
            ("status", Json::str(group_status_name(g.status))),
            ("total_lag", Json::Int(total)),
            ("max_lag_ms", Json::opt_int(max)),
            (
                "partitions",
                Json::Array(g.partitions.iter().map(partition).collect()),
            ),
        ])
    };
    Json::Object(vec![
        ("status", Json::str(group_status_name(s.status()))),
        ("groups", Json::Array(s.groups.iter().map(group).collect())),
        (
            "failed",
            Json::Array(
                s.failed
                    .iter()
                    .map(|(g, e)| {
                        Json::Object(vec![("group", Json::str(g)), ("error", Json::str(e))])
                    })
                    .collect(),
            ),
        ),
    ])
}

async fn serve(args: ServeArgs, mut shutdown: Shutdown) -> Result<Outcome, CliError> {
    let o = &args.observe;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| CliError::runtime(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::runtime(format!("cannot listen on {}: {e}", args.listen)))?;
    let admin = connect(o).await?;
    let page = prometheus::Page::default();
    let server = tokio::spawn(prometheus::serve(listener, page.clone()));
    eprintln!("krust: serving metrics on http://{addr}/metrics");
    let mut watcher = Watcher::new(o.groups.clone(), o.window as usize);
    loop {
        match watcher.observe(&admin).await {
            Ok(s) => page.set(prometheus::render(&s, true)),
            Err(e) => {
                eprintln!("krust: warning: {}", crate::describe(&e));
                page.set(prometheus::render(&Snapshot::default(), false));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(o.interval) => {}
            () = shutdown.wait() => break,
        }
    }
    server.abort();
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use krust::lag::GroupStatus;

    #[test]
    fn no_group_is_ok_and_a_failed_one_is_an_error() {
        let mut s = Snapshot::default();
        assert_eq!(s.status(), GroupStatus::Ok);
        assert_eq!(s.status().exit_code(), 0);
        s.failed
            .push(("g".into(), "GROUP_AUTHORIZATION_FAILED".into()));
        assert_eq!(s.status().exit_code(), 2);
        assert_eq!(
            snapshot_json(&s).to_string(),
            r#"{"status":"ERR","groups":[],"failed":[{"group":"g","error":"GROUP_AUTHORIZATION_FAILED"}]}"#
        );
    }
}
