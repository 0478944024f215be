//! How long joining takes, krust next to `confluent-kafka` (librdkafka
//! 2.16), against Tansu and noida-db started through krust-testkit:
//!
//! (a) from starting one member to its first assignment (krust: from before
//!     its connection pool bootstraps to the snapshot that owns all six;
//!     Python: `time.monotonic()` around `subscribe()` → the first
//!     `on_assign` callback);
//! (b) the rebalance when a second member joins: from the second member's
//!     start until both hold their new assignment (three each).
//!
//! Both clients: classic protocol, `range` (and `cooperative-sticky` on
//! Tansu), session.timeout.ms 6000,
//! heartbeat.interval.ms 500, a fresh group per repetition on a 6-partition
//! topic. Five repetitions each; the median is reported.
//!
//! Run: `cargo run --release -p krust-group --example bench_join`
//! (needs `scripts/setup.sh`: the brokers and the Python venv).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use krust_group::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use krust_group::driver::{GroupHandle, MemberSnapshot, group};
use krust_group::membership::State;
use krust_group::{GroupEvent, MembershipConfig};
use krust_net::{Backoff, ConnectionConfig, Pool, PoolConfig, RetryPolicy};
use krust_testkit::{Broker, NoidaDb, Tansu};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const TOPIC: &str = "bench-join";
const REPS: usize = 5;

async fn pool(bootstrap: &str) -> Pool {
    let config = PoolConfig {
        bootstrap: vec![bootstrap.to_owned()],
        bootstrap_timeout: Duration::from_secs(10),
        connection: ConnectionConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(20),
            ..Default::default()
        },
        retry: RetryPolicy {
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(500),
                ..Backoff::default()
            },
            deadline: Duration::from_secs(10),
        },
        ..Default::default()
    };
    Pool::bootstrap(config).await.expect("bootstrap")
}

/// A krust member whose revokes are acked at once by a pump task.
struct Member {
    snapshot: watch::Receiver<MemberSnapshot>,
    pump: JoinHandle<GroupHandle>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Member {
    async fn start(bootstrap: &str, group_id: &str, strategy: &str) -> Member {
        let mut cfg = MembershipConfig::new(group_id, vec![TOPIC.to_owned()]);
        cfg.session_timeout = Duration::from_secs(6);
        cfg.rebalance_timeout = Duration::from_secs(10);
        cfg.heartbeat_interval = Duration::from_millis(500);
        let (mut handle, task) = group(pool(bootstrap).await, cfg, vec![assignor(strategy)]);
        let snapshot = handle.watch();
        let task = tokio::spawn(task.run());
        let (stop, mut stopped) = oneshot::channel();
        let pump = tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = handle.next_event() => match ev {
                        Some(GroupEvent::Revoked { .. }) => handle.revoke_done(),
                        Some(GroupEvent::Fatal(e)) => panic!("fatal: {e}"),
                        Some(_) => {}
                        None => return handle,
                    },
                    _ = &mut stopped => return handle,
                }
            }
        });
        Member {
            snapshot,
            pump,
            stop,
            task,
        }
    }

    async fn close(self) {
        let _ = self.stop.send(());
        if let Ok(h) = self.pump.await {
            let _ = h.close(Duration::from_secs(10)).await;
        }
        let _ = self.task.await;
    }
}

fn assignor(strategy: &str) -> Arc<dyn Assignor> {
    match strategy {
        "range" => Arc::new(RangeAssignor),
        _ => Arc::new(CooperativeStickyAssignor),
    }
}

fn holds(s: &MemberSnapshot, n: usize) -> bool {
    s.state == State::Stable && s.owned.len() == n
}

/// Wait (woken by every snapshot change) until `ok` holds for all of
/// `members`; panics after 60 s.
async fn until(
    members: &mut [watch::Receiver<MemberSnapshot>],
    ok: impl Fn(&[MemberSnapshot]) -> bool,
) {
    let limit = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(limit);
    loop {
        let snaps: Vec<MemberSnapshot> = members
            .iter_mut()
            .map(|m| m.borrow_and_update().clone())
            .collect();
        if ok(&snaps) {
            return;
        }
        let changed = futures_any(members);
        tokio::select! {
            () = changed => {}
            () = &mut limit => panic!("not reached within 60 s: {snaps:#?}"),
        }
    }
}

/// Resolves when any of the receivers sees a change.
async fn futures_any(members: &mut [watch::Receiver<MemberSnapshot>]) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut tasks = Vec::new();
    for m in members.iter() {
        let mut m = m.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            if m.changed().await.is_ok() {
                let _ = tx.send(()).await;
            }
        }));
    }
    drop(tx);
    let _ = rx.recv().await;
    for t in tasks {
        t.abort();
    }
}

/// One krust repetition: (first assignment, rebalance) in seconds.
async fn krust_rep(bootstrap: &str, group_id: &str, strategy: &str) -> (f64, f64) {
    let t0 = Instant::now();
    let a = Member::start(bootstrap, group_id, strategy).await;
    until(&mut [a.snapshot.clone()], |s| holds(&s[0], 6)).await;
    let first = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let b = Member::start(bootstrap, group_id, strategy).await;
    until(&mut [a.snapshot.clone(), b.snapshot.clone()], |s| {
        holds(&s[0], 3)
            && holds(&s[1], 3)
            && s[0].generation == s[1].generation
            && s[0].owned.is_disjoint(&s[1].owned)
    })
    .await;
    let rebalance = t1.elapsed().as_secs_f64();
    a.close().await;
    b.close().await;
    (first, rebalance)
}

/// The Python repetitions, each (first assignment, rebalance) in seconds.
fn python_reps(bootstrap: &str, strategy: &str, prefix: &str) -> Vec<(f64, f64)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(krust_testkit::confluent_python())
        .arg(root.join("tests/interop/group_member.py"))
        .args([
            "bench",
            bootstrap,
            TOPIC,
            strategy,
            &REPS.to_string(),
            prefix,
        ])
        .output()
        .expect("run the Python bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python bench failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| l.contains("\"ev\": \"rep\""))
        .map(|l| {
            let num = |key: &str| -> f64 {
                let rest = l
                    .split_once(&format!("\"{key}\": "))
                    .unwrap_or_else(|| panic!("{key} in {l}"))
                    .1;
                let v = rest.split([',', '}']).next().unwrap_or("");
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{key} is {v:?} in {l}"))
            };
            (num("first_assignment_s"), num("rebalance_s"))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(v: &[f64]) -> String {
    v.iter()
        .map(|s| format!("{:.0}", s * 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

fn report(broker: &str, strategy: &str, client: &str, reps: &[(f64, f64)]) {
    let first: Vec<f64> = reps.iter().map(|r| r.0).collect();
    let rebal: Vec<f64> = reps.iter().map(|r| r.1).collect();
    println!(
        "| {broker} | {strategy} | {client} | {:.0} | {:.0} | {} | {} |",
        median(first.clone()) * 1000.0,
        median(rebal.clone()) * 1000.0,
        ms(&first),
        ms(&rebal)
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn run(name: &str, broker: &dyn Broker, strategy: &str) {
    let b = broker.bootstrap();
    let mut krust = Vec::new();
    for rep in 0..REPS {
        krust.push(krust_rep(&b, &format!("kb-{strategy}-{rep}"), strategy).await);
    }
    report(name, strategy, "krust", &krust);
    let bb = b.clone();
    let st = strategy.to_owned();
    let py = tokio::task::spawn_blocking(move || python_reps(&bb, &st, &format!("pb-{st}")))
        .await
        .expect("python");
    assert_eq!(py.len(), REPS, "python repetitions");
    report(name, strategy, "confluent-kafka 2.16.1", &py);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("load average at start: {}", loadavg());
    println!(
        "| broker | strategy | client | (a) join → first assignment, median ms | (b) second member joins → both hold 3, median ms | (a) all runs | (b) all runs |"
    );
    println!("|---|---|---|---|---|---|---|");
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 6).expect("create topic");
    run("Tansu 0.6.0", &tansu, "range").await;
    run("Tansu 0.6.0", &tansu, "cooperative-sticky").await;
    drop(tansu);
    let noida = NoidaDb::start();
    noida.create_topic(TOPIC, 6).expect("create topic");
    // range only: noida-db 0.2.3 wedges the KIP-429 follow-up rebalance
    // when a second member joins (with librdkafka alone too).
    run("noida-db 0.2.3", &noida, "range").await;
    drop(noida);
    println!("load average at end: {}", loadavg());
}
