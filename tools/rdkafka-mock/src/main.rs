//! krust-rdkafka-mock: librdkafka 2.12.1's built-in mock Kafka cluster, through
//! rust-rdkafka's `mocking` module, as a process that the krust test fixtures
//! drive over a pipe.
//!
//! Why a separate program: the mock lives inside librdkafka, and no krust
//! library may link librdkafka. The test fixture (crates/krust-testkit,
//! `MockCluster` with `MockVersion::V2_12`) starts this program, reads its
//! address lines, and writes fault commands to its stdin. End of stdin means
//! the owning test process is gone, so the cluster exits with it (no
//! orphans). It speaks exactly the protocol of the librdkafka 2.0.2 program,
//! crates/krust-testkit/mockcluster/mockcluster.c, so one fixture drives both.
//!
//! Built by scripts/setup.sh into .deps/bin/krust-rdkafka-mock.
//!
//! Usage: krust-rdkafka-mock [-b BROKERS] [-t TOPIC:PARTITIONS[:REPLICATION]]...
//!
//! Start-up output, one line each, then "READY":
//!   LIBRDKAFKA=<version>
//!   BROKER=<id> <host:port>        one per broker, ids 1..BROKERS
//!   BOOTSTRAP=<host:port,...>
//!
//! Commands on stdin, one per line; every command gets exactly one answer
//! line, "OK <command>" or "ERR <command>: <reason>":
//!   down ID | up ID                  take broker ID down / bring it back
//!   leader TOPIC PARTITION ID        move a partition leader (-1: none)
//!   follower TOPIC PARTITION ID      set the preferred read replica
//!   coord group|transaction KEY ID   move the coordinator of KEY
//!   err APIKEY ERR [ERR...]          queue error codes for the next requests
//!                                    of APIKEY (any broker); ERR is a number
//!                                    or a librdkafka name (NOT_COORDINATOR)
//!   clear APIKEY                     drop the queued errors of APIKEY
//!   rtt ID MS                        add MS of round-trip delay to broker ID
//!   topic NAME PARTITIONS [REPL]     create a topic
//!   topicerr NAME ERR                error reported for NAME in Metadata
//!   apiversion APIKEY MIN MAX        narrow an advertised version range
//!   quit                             stop the cluster
//!
//! What rust-rdkafka's safe API cannot do, and so this program cannot: an API
//! key it has no `RDKafkaApiKey` for (above 58, e.g. ConsumerGroupHeartbeat)
//! is refused by `err`, `clear` and `apiversion`.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

type Mock = MockCluster<'static, DefaultProducerContext>;

/// Every API key rust-rdkafka names, to map a number from the command line
/// onto one (`RDKafkaApiKey` converts only the other way).
const API_KEYS: &[RDKafkaApiKey] = {
    use RDKafkaApiKey::*;
    &[
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        LeaderAndIsr,
        StopReplica,
        UpdateMetadata,
        ControlledShutdown,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        SaslHandshake,
        ApiVersion,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        OffsetForLeaderEpoch,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        WriteTxnMarkers,
        TxnOffsetCommit,
        DescribeAcls,
        CreateAcls,
        DeleteAcls,
        DescribeConfigs,
        AlterConfigs,
        AlterReplicaLogDirs,
        DescribeLogDirs,
        SaslAuthenticate,
        CreatePartitions,
        CreateDelegationToken,
        RenewDelegationToken,
        ExpireDelegationToken,
        DescribeDelegationToken,
        DeleteGroups,
        ElectLeaders,
        IncrementalAlterConfigs,
        AlterPartitionReassignments,
        ListPartitionReassignments,
        OffsetDelete,
        DescribeClientQuotas,
        AlterClientQuotas,
        DescribeUserScramCredentials,
        AlterUserScramCredentials,
        Vote,
        BeginQuorumEpoch,
        EndQuorumEpoch,
        DescribeQuorum,
        AlterIsr,
        UpdateFeatures,
        Envelope,
    ]
};

/// The prefix of librdkafka's error names (`RD_KAFKA_RESP_ERR_NOT_COORDINATOR`).
const ERR_PREFIX: &str = "RD_KAFKA_RESP_ERR_";

fn api_key(text: &str) -> Result<RDKafkaApiKey, String> {
    let n: i16 = text
        .parse()
        .map_err(|_| "api key must be a number".to_string())?;
    API_KEYS
        .iter()
        .copied()
        .find(|k| i16::from(*k) == n)
        .ok_or_else(|| format!("api key {n} is not one rust-rdkafka's mocking API can name"))
}

/// A decimal code or a librdkafka error name, with or without the
/// `RD_KAFKA_RESP_ERR_` prefix (as mockcluster.c accepts).
fn error_code(text: &str) -> Result<RDKafkaRespErr, String> {
    if let Ok(n) = text.parse::<i32>() {
        return RDKafkaRespErr::try_from(n).map_err(|_| format!("unknown error code {n}"));
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix(ERR_PREFIX).unwrap_or(&upper);
    // librdkafka's codes: internal ones from -200, broker ones up to a few
    // hundred.
    (-200..1000)
        .filter_map(|n| RDKafkaRespErr::try_from(n).ok())
        .find(|e| format!("{e:?}").strip_prefix(ERR_PREFIX) == Some(name))
        .ok_or_else(|| format!("unknown error code {text}"))
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{what} must be a number"))
}

/// The mock's own refusals read like mockcluster.c's (`rd_kafka_err2name`).
fn mock_op(result: rdkafka::error::KafkaResult<()>) -> Result<(), String> {
    result.map_err(|e| match e {
        rdkafka::error::KafkaError::MockCluster(code) => code.to_string(),
        other => other.to_string(),
    })
}

/// Run one command; `Ok(false)` when the cluster should stop.
fn run_command(mock: &Mock, av: &[&str]) -> Result<bool, String> {
    match av {
        ["quit"] => return Ok(false),
        [cmd @ ("down" | "up"), id] => {
            let id = number(id, "broker id")?;
            mock_op(if *cmd == "down" {
                mock.broker_down(id)
            } else {
                mock.broker_up(id)
            })?;
        }
        [cmd @ ("leader" | "follower"), topic, partition, id] => {
            let (partition, id): (i32, i32) = (
                number(partition, "partition and broker id")?,
                number(id, "partition and broker id")?,
            );
            mock_op(if *cmd == "leader" {
                mock.partition_leader(topic, partition, (id >= 0).then_some(id))
            } else {
                mock.partition_follower(topic, partition, id)
            })?;
        }
        ["coord", kind, key, id] => {
            let id = number(id, "broker id")?;
            let coordinator = match *kind {
                "group" => MockCoordinator::Group(key.to_string()),
                "transaction" => MockCoordinator::Transaction(key.to_string()),
                other => return Err(format!("unknown coordinator type {other}")),
            };
            mock_op(mock.coordinator(coordinator, id))?;
        }
        ["err", key, codes @ ..] if !codes.is_empty() => {
            let key = api_key(key)?;
            let codes = codes
                .iter()
                .map(|c| error_code(c))
                .collect::<Result<Vec<_>, _>>()?;
            mock.request_errors(key, &codes);
        }
        ["clear", key] => mock.clear_request_errors(api_key(key)?),
        ["rtt", id, ms] => {
            let (id, ms): (i32, u64) = (
                number(id, "broker id and delay")?,
                number(ms, "broker id and delay")?,
            );
            mock_op(mock.broker_round_trip_time(id, Duration::from_millis(ms)))?;
        }
        ["topic", name, partitions, rest @ ..] if rest.len() <= 1 => {
            let what = "partitions and replication";
            let partitions = number(partitions, what)?;
            let replication = rest.first().map_or(Ok(1), |r| number(r, what))?;
            mock_op(mock.create_topic(name, partitions, replication))?;
        }
        ["topicerr", name, code] => mock_op(mock.topic_error(name, error_code(code)?))?,
        ["apiversion", key, min, max] => {
            let what = "api key and versions";
            let (min, max): (i16, i16) = (number(min, what)?, number(max, what)?);
            mock_op(mock.apiversion(
                api_key(key)?,
                (min >= 0).then_some(min),
                (max >= 0).then_some(max),
            ))?;
        }
        _ => return Err("unknown command or wrong number of arguments".into()),
    }
    Ok(true)
}

/// `-b BROKERS` and `-t TOPIC:PARTITIONS[:REPLICATION]` (repeated).
struct Args {
    brokers: i32,
    topics: Vec<(String, i32, i32)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        brokers: 3,
        topics: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "-b" => match value.parse() {
                Ok(n) if n > 0 => args.brokers = n,
                _ => return Err(format!("bad broker count {value}")),
            },
            "-t" => {
                let mut parts = value.split(':');
                let name = parts.next().unwrap_or_default().to_string();
                let partitions = parts.next().and_then(|p| p.parse().ok());
                let replication = parts.next().map_or(Some(1), |r| r.parse().ok());
                match (partitions, replication, parts.next()) {
                    (Some(p), Some(r), None) if !name.is_empty() => args.topics.push((name, p, r)),
                    _ => return Err(format!("bad topic spec {value}")),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("krust-rdkafka-mock: {e}");
            eprintln!(
                "usage: krust-rdkafka-mock [-b BROKERS] [-t TOPIC:PARTITIONS[:REPLICATION]]..."
            );
            return ExitCode::from(2);
        }
    };
    let mock = match MockCluster::new(args.brokers) {
        Ok(mock) => mock,
        Err(e) => {
            eprintln!("krust-rdkafka-mock: cannot create a mock cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, partitions, replication) in &args.topics {
        if let Err(e) = mock.create_topic(name, *partitions, *replication) {
            eprintln!("krust-rdkafka-mock: bad topic spec {name}:{partitions}:{replication}: {e}");
            return ExitCode::from(2);
        }
    }

    let bootstrap = mock.bootstrap_servers();
    let mut out = io::stdout().lock();
    let mut banner = format!("LIBRDKAFKA={}\n", rdkafka::util::get_rdkafka_version().1);
    // The bootstrap list is in broker id order (1..N); name each.
    for (i, addr) in bootstrap.split(',').enumerate() {
        banner.push_str(&format!("BROKER={} {addr}\n", i + 1));
    }
    banner.push_str(&format!("BOOTSTRAP={bootstrap}\nREADY\n"));
    if out
        .write_all(banner.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }

    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let av: Vec<&str> = line.split_whitespace().collect();
        let Some(cmd) = av.first() else { continue };
        let (answer, go_on) = match run_command(&mock, &av) {
            Ok(go_on) => (format!("OK {cmd}\n"), go_on),
            Err(why) => (format!("ERR {cmd}: {why}\n"), true),
        };
        // The owner is gone when its pipe is: stop with it.
        if out
            .write_all(answer.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
            || !go_on
        {
            break;
        }
    }
    // Dropping the mock destroys the cluster (its listeners and thread).
    drop(mock);
    ExitCode::SUCCESS
}
