//! The offset demo: commit after processing, crash, resume from the
//! committed offsets, nothing lost and nothing consumed twice.
//!
//! ```text
//! cargo run --release --example offset_demo                  # starts a local Tansu broker
//! cargo run --release --example offset_demo -- --kafka       # starts a local Apache Kafka 4.4.0
//! cargo run --release --example offset_demo -- -b HOST:PORT  # uses your broker
//! cargo run --release --example offset_demo -- --kafka --group-protocol consumer  # KIP-848
//! ```
//!
//! Produces 10 messages to `my-topic` (3 partitions); consumer A of group
//! `my-group` processes 4 of them, committing after each, and crashes;
//! consumer B of the same group reads the rest, starting exactly after A's
//! commits. Prints what each read, the committed offsets and the lag per
//! partition, then checks that every message was consumed exactly once and
//! exits non-zero if not. Against your broker (`-b`) the group, and the
//! topic if `my-topic` exists already, get a fresh suffix so reruns work.
//! The scenario itself is `offset_demo/scenario.rs`, which
//! `tests/offset_scenario.rs` runs against every local test broker.

#[path = "offset_demo/scenario.rs"]
mod scenario;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use krust::admin::{Admin, NewTopic};
use krust::codec::ErrorCode;
use krust::consumer::GroupProtocol;
use krust_testkit::{Broker, Kafka, Tansu};

use scenario::{BoxError, Setup};

const TOPIC: &str = "my-topic";
const GROUP: &str = "my-group";
const PARTITIONS: i32 = 3;

fn usage() -> ! {
    eprintln!(
        "usage: offset_demo [--kafka | -b HOST:PORT] [--group-protocol classic|consumer]\n\n\
         Without arguments, starts a local Tansu broker; with --kafka, a local Apache Kafka 4.4.0\n\
         KRaft node (both installed by scripts/setup.sh); either is stopped at the end.\n\
         --group-protocol consumer runs both consumers with KIP-848's protocol (Kafka 4.0+)."
    );
    std::process::exit(2)
}

/// A broker the demo starts itself.
enum Local {
    Tansu,
    Kafka,
}

/// Start the local broker (krust-testkit's fixtures: free 127.0.0.1 ports,
/// stopped with their whole process group on drop and when this process
/// dies).
fn start(local: Local) -> Result<Box<dyn Broker>, String> {
    let broker: Box<dyn Broker> = match local {
        Local::Tansu => {
            println!("starting a local Tansu broker (krust-testkit) ...");
            Box::new(Tansu::try_start().map_err(|e| format!("cannot start Tansu: {e}"))?)
        }
        Local::Kafka => {
            println!("starting a local Apache Kafka 4.4.0 KRaft node (krust-testkit) ...");
            let started = Instant::now();
            let kafka = Kafka::builder()
                .try_start()
                .map_err(|e| format!("cannot start Apache Kafka: {e}"))?;
            println!(
                "   Kafka {} ready in {:.1} s",
                kafka.version(),
                started.elapsed().as_secs_f64()
            );
            Box::new(kafka)
        }
    };
    println!("   {} listening on {}", broker.name(), broker.bootstrap());
    Ok(broker)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut protocol = GroupProtocol::Classic;
    if let Some(i) = args.iter().position(|a| a == "--group-protocol") {
        protocol = match args.get(i + 1).map(String::as_str) {
            Some("classic") => GroupProtocol::Classic,
            Some("consumer") => GroupProtocol::Consumer,
            _ => usage(),
        };
        args.drain(i..i + 2);
    }
    let which = match args.as_slice() {
        [] => Ok(Local::Tansu),
        [flag] if flag == "--kafka" => Ok(Local::Kafka),
        [flag, addr] if flag == "-b" || flag == "--bootstrap" => Err(addr.clone()),
        _ => usage(),
    };
    let (local, bootstrap) = match which {
        Err(external) => (None, external),
        Ok(which) => {
            let broker = start(which).unwrap_or_else(|e| {
                eprintln!("error: {e}");
                std::process::exit(1)
            });
            let bootstrap = broker.bootstrap();
            (Some(broker), bootstrap)
        }
    };
    let code = match demo(&bootstrap, local.is_some(), protocol).await {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    // Stop the broker we started (its whole process group) before exiting:
    // process::exit skips destructors.
    drop(local);
    std::process::exit(code)
}

async fn demo(bootstrap: &str, local: bool, protocol: GroupProtocol) -> Result<bool, BoxError> {
    let admin = Admin::bootstrap(bootstrap)
        .await
        .map_err(|e| format!("connecting to {bootstrap}: {e}"))?;
    let suffix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let topic = create_topic(&admin, bootstrap, suffix).await?;
    // A fresh group against someone else's broker, so reruns start clean.
    let group = if local {
        GROUP.to_owned()
    } else {
        format!("{GROUP}-{suffix}")
    };
    let setup = Setup {
        partitions: PARTITIONS,
        group_protocol: protocol,
        ..Setup::new(bootstrap, &topic, &group)
    };
    let outcome = scenario::run(&setup).await?;
    print!("{}", scenario::render(&setup, &outcome));
    println!("{}", scenario::verdict(&setup, &outcome));
    Ok(outcome.passed())
}

/// Create `my-topic` (or, if it exists already, `my-topic-SUFFIX`) and wait
/// until every partition has a leader.
async fn create_topic(admin: &Admin, bootstrap: &str, suffix: u128) -> Result<String, BoxError> {
    let mut topic = TOPIC.to_owned();
    for attempt in 0..2 {
        let results = admin
            .create_topics(
                &[NewTopic::new(&topic, PARTITIONS)],
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| format!("creating {topic} on {bootstrap}: {e}"))?;
        match results.into_iter().next().map(|(_, r)| r) {
            Some(Ok(())) => break,
            Some(Err(e)) if attempt == 0 && e.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
                let fresh = format!("{TOPIC}-{suffix}");
                println!("topic {topic} already exists on {bootstrap}; using {fresh} instead");
                topic = fresh;
            }
            Some(Err(e)) => return Err(format!("creating {topic} on {bootstrap}: {e}").into()),
            None => return Err(format!("creating {topic} on {bootstrap}: no answer for it").into()),
        }
    }
    let started = Instant::now();
    loop {
        match admin.describe_topics(&[topic.as_str()]).await {
            Ok(d)
                if d[0].partitions.len() == PARTITIONS as usize
                    && d[0].partitions.iter().all(|p| p.leader.is_some()) =>
            {
                break;
            }
            r if started.elapsed() > Duration::from_secs(15) => {
                return Err(format!("topic {topic} has no leaders after 15 s: {r:?}").into());
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    println!("created topic {topic} with {PARTITIONS} partitions on {bootstrap}");
    Ok(topic)
}
