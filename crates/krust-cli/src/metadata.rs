//! `krust metadata`: what the cluster says about itself, as kcat's `-L`:
//! the brokers (id, address, rack, which is the controller) and, per
//! topic, each partition's leader, replicas, in-sync replicas and offline
//! replicas, from the admin client's Metadata calls (`describe_cluster`,
//! then `list_topics` or, with `-t`, `describe_topics`).
//!
//! The views of a topic here (its JSON object, its partition rows) are
//! also what `krust topics describe` prints.

use std::io::{self, Write};

use clap::Args;
use krust::admin::{ClusterDescription, PartitionInfo, TopicInfo};
use krust::codec::ErrorCode;

use crate::cluster::ClusterArgs;
use crate::json::Json;
use crate::table::{self, Align, Table};
use crate::{CliError, Outcome};

/// `krust metadata`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # brokers, then every topic's partitions, aligned for reading
  krust metadata -b localhost:9092

  # only two topics
  krust metadata -b localhost:9092 -t events -t audit

  # one JSON object, for scripts: the leader of events/0
  krust metadata -b localhost:9092 -t events --json |
      jq '.topics[0].partitions[0].leader'

The JSON object has cluster_id, controller, brokers [{id, host, port, rack,
controller}] and topics [{name, id, internal, error, partitions [{partition,
leader, leader_epoch, replicas, isr, offline_replicas, error}]}]; an absent
value is null, an error the broker's code name (e.g. LEADER_NOT_AVAILABLE).
Field names and order are stable.")]
pub struct MetadataArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only these topics (repeatable, or a comma list); an unknown one is
    /// an error. Default: every topic, internal ones included.
    #[arg(
        short = 't',
        long = "topic",
        value_name = "TOPIC",
        value_delimiter = ','
    )]
    pub topics: Vec<String>,
    /// One JSON object on one line instead of tables.
    #[arg(short = 'J', long = "json")]
    pub json: bool,
}

/// Run `krust metadata`.
pub async fn run(args: MetadataArgs) -> Result<Outcome, CliError> {
    let admin = args.cluster.admin().await?;
    let cluster = admin.describe_cluster().await.map_err(CliError::from_err)?;
    let topics = if args.topics.is_empty() {
        admin.list_topics().await
    } else {
        let names: Vec<&str> = args.topics.iter().map(String::as_str).collect();
        admin.describe_topics(&names).await
    }
    .map_err(CliError::from_err)?;
    let mut out = io::stdout().lock();
    let written = if args.json {
        cluster_json(&cluster, &topics).write_line(&mut out)
    } else {
        write_human(&mut out, &cluster, &topics)
    };
    crate::topics::finish(written.and_then(|()| out.flush()))
}

/// The whole answer as one JSON object.
fn cluster_json(cluster: &ClusterDescription, topics: &[TopicInfo]) -> Json {
    let mut brokers = cluster.brokers.clone();
    brokers.sort_by_key(|b| b.id);
    Json::Object(vec![
        ("cluster_id", Json::opt_str(cluster.cluster_id.as_deref())),
        (
            "controller",
            Json::opt_int(cluster.controller.map(i64::from)),
        ),
        (
            "brokers",
            Json::Array(
                brokers
                    .iter()
                    .map(|b| {
                        Json::Object(vec![
                            ("id", Json::Int(i64::from(b.id))),
                            ("host", Json::Str(b.host.clone())),
                            ("port", Json::Int(i64::from(b.port))),
                            ("rack", Json::opt_str(b.rack.as_deref())),
                            ("controller", Json::Bool(cluster.controller == Some(b.id))),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "topics",
            Json::Array(topics.iter().map(topic_json).collect()),
        ),
    ])
}

/// An error code as its name, `null` for none.
fn error_json(code: ErrorCode) -> Json {
    if code.is_ok() {
        Json::Null
    } else {
        Json::Str(code.name().to_owned())
    }
}

/// One topic: name, id, internal, error, partitions.
pub fn topic_json(t: &TopicInfo) -> Json {
    let id = (t.id != krust::codec::Uuid::ZERO).then(|| t.id.to_string());
    Json::Object(vec![
        ("name", Json::Str(t.name.clone())),
        ("id", Json::opt_str(id.as_deref())),
        ("internal", Json::Bool(t.is_internal)),
        ("error", error_json(t.error)),
        (
            "partitions",
            Json::Array(t.partitions.iter().map(partition_json).collect()),
        ),
    ])
}

fn partition_json(p: &PartitionInfo) -> Json {
    Json::Object(vec![
        ("partition", Json::Int(i64::from(p.partition))),
        ("leader", Json::opt_int(p.leader.map(i64::from))),
        (
            "leader_epoch",
            Json::opt_int((p.leader_epoch >= 0).then_some(i64::from(p.leader_epoch))),
        ),
        ("replicas", Json::ints(&p.replicas)),
        ("isr", Json::ints(&p.isr)),
        ("offline_replicas", Json::ints(&p.offline_replicas)),
        ("error", error_json(p.error)),
    ])
}

/// The replication factor: the most replicas any partition has.
pub fn replication_factor(t: &TopicInfo) -> usize {
    t.partitions
        .iter()
        .map(|p| p.replicas.len())
        .max()
        .unwrap_or(0)
}

/// One row per partition of each topic (one row with the topic's error
/// for a topic the broker answered without partitions).
pub fn partition_table(topics: &[TopicInfo]) -> Table {
    let mut t = Table::new(&[
        ("TOPIC", Align::Left),
        ("PARTITION", Align::Right),
        ("LEADER", Align::Right),
        ("REPLICAS", Align::Left),
        ("ISR", Align::Left),
        ("OFFLINE", Align::Left),
        ("ERROR", Align::Left),
    ]);
    let error = |code: ErrorCode| {
        if code.is_ok() {
            String::new()
        } else {
            code.name().to_owned()
        }
    };
    for topic in topics {
        if topic.partitions.is_empty() {
            let dash = || "-".to_owned();
            t.row(vec![
                topic.name.clone(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                error(topic.error),
            ]);
        }
        for p in &topic.partitions {
            t.row(vec![
                topic.name.clone(),
                p.partition.to_string(),
                p.leader.map_or_else(|| "-".to_owned(), |l| l.to_string()),
                table::ids(&p.replicas),
                table::ids(&p.isr),
                table::ids(&p.offline_replicas),
                error(p.error),
            ]);
        }
    }
    t
}

/// Brokers, then partitions, for people.
fn write_human(
    out: &mut dyn Write,
    cluster: &ClusterDescription,
    topics: &[TopicInfo],
) -> io::Result<()> {
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
    writeln!(
        out,
        "cluster {}: {} broker{}, {} topic{}, {partitions} partition{}",
        cluster.cluster_id.as_deref().unwrap_or("(no id)"),
        cluster.brokers.len(),
        plural(cluster.brokers.len()),
        topics.len(),
        plural(topics.len()),
        plural(partitions),
    )?;
    writeln!(out)?;
    let mut brokers = cluster.brokers.clone();
    brokers.sort_by_key(|b| b.id);
    let mut t = Table::new(&[
        ("BROKER", Align::Right),
        ("ADDRESS", Align::Left),
        ("RACK", Align::Left),
        ("ROLE", Align::Left),
    ]);
    for b in &brokers {
        t.row(vec![
            b.id.to_string(),
            b.addr(),
            b.rack.clone().unwrap_or_else(|| "-".to_owned()),
            if cluster.controller == Some(b.id) {
                "controller".to_owned()
            } else {
                String::new()
            },
        ]);
    }
    t.write(out)?;
    if !topics.is_empty() {
        writeln!(out)?;
        partition_table(topics).write(out)?;
    }
    Ok(())
}

/// `s` for counts other than one.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krust::net::BrokerInfo;

    fn topic() -> TopicInfo {
        TopicInfo {
            name: "events".into(),
            id: krust::codec::Uuid::ZERO,
            is_internal: false,
            error: ErrorCode::NONE,
            partitions: vec![
                PartitionInfo {
                    partition: 0,
                    leader: Some(1),
                    leader_epoch: 4,
                    replicas: vec![1, 2],
                    isr: vec![1],
                    offline_replicas: vec![2],
                    error: ErrorCode::NONE,
                },
                PartitionInfo {
                    partition: 1,
                    leader: None,
                    leader_epoch: -1,
                    replicas: vec![2],
                    isr: vec![],
                    offline_replicas: vec![2],
                    error: ErrorCode::LEADER_NOT_AVAILABLE,
                },
            ],
        }
    }

    fn cluster() -> ClusterDescription {
        ClusterDescription {
            cluster_id: Some("c1".into()),
            controller: Some(1),
            brokers: vec![
                BrokerInfo {
                    id: 2,
                    host: "b".into(),
                    port: 9093,
                    rack: Some("r2".into()),
                },
                BrokerInfo {
                    id: 1,
                    host: "a".into(),
                    port: 9092,
                    rack: None,
                },
            ],
        }
    }

    #[test]
    fn json_has_the_documented_fields_in_order() {
        let mut out = Vec::new();
        cluster_json(&cluster(), &[topic()])
            .write(&mut out)
            .expect("writes");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"cluster_id":"c1","controller":1,"brokers":[{"id":1,"host":"a","port":9092,"rack":null,"controller":true},{"id":2,"host":"b","port":9093,"rack":"r2","controller":false}],"topics":[{"name":"events","id":null,"internal":false,"error":null,"partitions":[{"partition":0,"leader":1,"leader_epoch":4,"replicas":[1,2],"isr":[1],"offline_replicas":[2],"error":null},{"partition":1,"leader":null,"leader_epoch":null,"replicas":[2],"isr":[],"offline_replicas":[2],"error":"LEADER_NOT_AVAILABLE"}]}]}"#
        );
    }

    #[test]
    fn tables_for_people() {
        let mut out = Vec::new();
        write_human(&mut out, &cluster(), &[topic()]).expect("writes");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            [
                "cluster c1: 2 brokers, 1 topic, 2 partitions",
                "",
                "BROKER  ADDRESS  RACK  ROLE",
                "     1  a:9092   -     controller",
                "     2  b:9093   r2",
                "",
                "TOPIC   PARTITION  LEADER  REPLICAS  ISR  OFFLINE  ERROR",
                "events          0       1  1,2       1    2",
                "events          1       -  2         -    2        LEADER_NOT_AVAILABLE",
                "",
            ]
            .join("\n")
        );
        assert_eq!(replication_factor(&topic()), 2);
    }
}
