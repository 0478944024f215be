//! `krust lag serve`'s HTTP side: the latest observation in Prometheus'
//! text exposition format (version 0.0.4) at `GET /metrics`, served by a
//! minimal HTTP/1.1 responder (one request per connection, bounded
//! request size, nothing else routed).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use krust::lag::{GroupStatus, PartitionStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::groups::totals;
use crate::watch::Snapshot;

/// The longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The page served, replaced after each observation.
#[derive(Debug, Clone, Default)]
pub struct Page(Arc<Mutex<String>>);

impl Page {
    /// Serve `text` from now on.
    pub fn set(&self, text: String) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = text;
    }

    fn get(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Accept connections on `listener` until aborted.
pub async fn serve(listener: TcpListener, page: Page) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let page = page.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT, answer(stream, &page)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, page: &Page) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, body, kind) = match (method, path) {
        (b"GET", b"/metrics") => (
            "200 OK",
            page.get(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (b"GET", _) => (
            "404 Not Found",
            "not found: try /metrics\n".to_owned(),
            "text/plain",
        ),
        _ => (
            "405 Method Not Allowed",
            "GET only\n".to_owned(),
            "text/plain",
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A label value escaped as the text format asks (`\\`, `\"`, `\n`).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn partition_code(s: PartitionStatus) -> u8 {
    match s {
        PartitionStatus::Ok => 0,
        PartitionStatus::Warn => 1,
        PartitionStatus::Stall => 2,
        PartitionStatus::Stop => 3,
        PartitionStatus::Rewind => 4,
    }
}

fn group_code(s: GroupStatus) -> u8 {
    match s {
        GroupStatus::Ok => 0,
        GroupStatus::Warn => 1,
        GroupStatus::Err => 2,
    }
}

/// The metric families of one observation; `up`: whether it reached the
/// cluster.
pub fn render(s: &Snapshot, up: bool) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: &mut dyn Iterator<Item = (String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    };
    let part = |f: &dyn Fn(&crate::watch::PartitionView) -> Option<f64>| {
        s.groups
            .iter()
            .flat_map(move |g| {
                g.partitions.iter().filter_map(move |p| {
                    let labels = format!(
                        "group=\"{}\",topic=\"{}\",partition=\"{}\"",
                        escape(&g.group),
                        escape(&p.lag.partition.topic),
                        p.lag.partition.partition
                    );
                    f(p).map(|v| (labels, v))
                })
            })
            .collect::<Vec<_>>()
    };
    #[allow(clippy::cast_precision_loss)]
    let n = |v: i64| v as f64;
    family(
        "krust_group_lag",
        "Records between the group's committed offset (or the log start, where it never committed) and the high watermark; transaction markers alone count as caught up.",
        &mut part(&|p| Some(n(p.lag.lag))).into_iter(),
    );
    family(
        "krust_group_lag_seconds",
        "Age of the record at the committed offset (0 when caught up); absent when it could not be read.",
        &mut part(&|p| p.lag.lag_ms.map(|ms| n(ms) / 1000.0)).into_iter(),
    );
    family(
        "krust_group_committed_offset",
        "The group's committed offset; absent where it never committed.",
        &mut part(&|p| p.lag.committed.map(n)).into_iter(),
    );
    family(
        "krust_group_log_end_offset",
        "The partition's high watermark.",
        &mut part(&|p| Some(n(p.lag.high_watermark))).into_iter(),
    );
    family(
        "krust_group_partition_status",
        "Burrow's evaluation over the window: 0 OK, 1 WARN, 2 STALL, 3 STOP, 4 REWIND.",
        &mut part(&|p| Some(f64::from(partition_code(p.status)))).into_iter(),
    );
    family(
        "krust_group_last_commit_age_seconds",
        "Seconds since the committed offset was last seen to move (at most since this exporter started: Kafka gives no commit times).",
        &mut part(&|p| Some(p.moved_ago.as_secs_f64())).into_iter(),
    );
    let group = |f: &dyn Fn(&crate::watch::GroupView) -> f64| {
        s.groups
            .iter()
            .map(|g| (format!("group=\"{}\"", escape(&g.group)), f(g)))
            .collect::<Vec<_>>()
    };
    family(
        "krust_group_status",
        "The group's worst partition: 0 OK, 1 WARN, 2 ERR (STALL, STOP or REWIND).",
        &mut group(&|g| f64::from(group_code(g.status))).into_iter(),
    );
    #[allow(clippy::cast_precision_loss)]
    let members = |g: &crate::watch::GroupView| g.members as f64;
    family(
        "krust_group_members",
        "Members in the group.",
        &mut group(&members).into_iter(),
    );
    family(
        "krust_group_total_lag",
        "The sum of the group's partitions' lag.",
        &mut group(&|g| {
            let lags: Vec<_> = g.partitions.iter().map(|p| p.lag.clone()).collect();
            n(totals(&lags).0)
        })
        .into_iter(),
    );
    family(
        "krust_lag_up",
        "1 when the last observation reached the cluster, else 0.",
        &mut std::iter::once((String::new(), if up { 1.0 } else { 0.0 })),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }

    #[test]
    fn an_empty_observation_still_says_whether_the_cluster_answered() {
        let text = render(&Snapshot::default(), false);
        assert!(text.contains("# TYPE krust_group_lag gauge"), "{text}");
        assert!(text.contains("krust_lag_up{} 0"), "{text}");
    }
}
