//! Shared by the broker tests: a pool per member, the range assignor, and
//! members whose events are pumped by a task that records who owns what, so a test can
//! assert that no partition is ever owned by two members at once.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use krust_group::assignor::{Assignor, RangeAssignor};
use krust_group::driver::{MemberSnapshot, group};
use krust_group::membership::State;
use krust_group::{GroupEvent, MembershipConfig, TopicPartition};
use krust_net::{Backoff, ConnectionConfig, Pool, PoolConfig, RetryPolicy};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SESSION: Duration = Duration::from_secs(6);

pub async fn pool(bootstrap: &str) -> Pool {
    let config = PoolConfig {
        bootstrap: bootstrap.split(',').map(str::to_owned).collect(),
        bootstrap_timeout: Duration::from_secs(10),
        connection: ConnectionConfig {
            connect_timeout: Duration::from_secs(2),
            // JoinGroup is held by the coordinator up to the rebalance timeout.
            request_timeout: Duration::from_secs(20),
            ..Default::default()
        },
        reconnect_backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..Backoff::default()
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

pub fn config(group: &str, topic: &str) -> MembershipConfig {
    let mut c = MembershipConfig::new(group, vec![topic.to_owned()]);
    c.session_timeout = SESSION;
    c.rebalance_timeout = Duration::from_secs(10);
    c.heartbeat_interval = Duration::from_millis(500);
    c.revoke_budget = Duration::from_secs(2);
    c.retry_backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        ..Backoff::default()
    };
    c
}

/// Who owns what according to the events, and every violation seen.
#[derive(Default)]
pub struct Ownership {
    pub owner: BTreeMap<TopicPartition, String>,
    pub violations: Vec<String>,
    pub fatal: Vec<String>,
    pub lost: usize,
    /// Every Revoked event: member, partitions.
    pub revoked: Vec<(String, BTreeSet<TopicPartition>)>,
}

pub type Tracker = Arc<Mutex<Ownership>>;

pub struct Member {
    pub name: String,
    pub snapshot: tokio::sync::watch::Receiver<MemberSnapshot>,
    pub task: JoinHandle<()>,
    pump: JoinHandle<()>,
    close: Option<oneshot::Sender<oneshot::Sender<bool>>>,
}

impl Member {
    pub async fn start(
        name: &str,
        bootstrap: &str,
        cfg: MembershipConfig,
        tracker: Tracker,
    ) -> Member {
        Self::start_with(name, bootstrap, cfg, vec![Arc::new(RangeAssignor)], tracker).await
    }

    pub async fn start_with(
        name: &str,
        bootstrap: &str,
        cfg: MembershipConfig,
        assignors: Vec<Arc<dyn Assignor>>,
        tracker: Tracker,
    ) -> Member {
        let (mut handle, task) = group(pool(bootstrap).await, cfg, assignors);
        let snapshot = handle.watch();
        let task = tokio::spawn(task.run());
        let (close_tx, mut close_rx) = oneshot::channel::<oneshot::Sender<bool>>();
        let me = name.to_owned();
        let pump = tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = handle.next_event() => {
                        let Some(ev) = ev else { return };
                        let revoked = matches!(ev, GroupEvent::Revoked { .. });
                        track(&tracker, &me, &ev);
                        if revoked {
                            handle.revoke_done();
                        }
                    }
                    req = &mut close_rx => {
                        // Closing acks any revoke; what it revokes is let go.
                        let owned = handle.membership().owned;
                        {
                            let mut t = tracker.lock().unwrap();
                            t.owner.retain(|tp, o| !(o == &me && owned.contains(tp)));
                        }
                        let ok = handle.close(Duration::from_secs(5)).await.is_ok();
                        let mut t = tracker.lock().unwrap();
                        t.owner.retain(|_, o| o != &me);
                        drop(t);
                        if let Ok(tx) = req {
                            let _ = tx.send(ok);
                        }
                        return;
                    }
                }
            }
        });
        Member {
            name: name.to_owned(),
            snapshot,
            task,
            pump,
            close: Some(close_tx),
        }
    }

    pub fn owned(&self) -> BTreeSet<TopicPartition> {
        self.snapshot.borrow().owned.clone()
    }

    pub fn snap(&self) -> MemberSnapshot {
        self.snapshot.borrow().clone()
    }

    /// Close with LeaveGroup; true when it finished within its bound.
    pub async fn close(mut self) -> bool {
        let (tx, rx) = oneshot::channel();
        if let Some(c) = self.close.take() {
            let _ = c.send(tx);
        }
        rx.await.unwrap_or(false)
    }

    /// Die without a LeaveGroup.
    pub fn kill(self, tracker: &Tracker) {
        self.task.abort();
        self.pump.abort();
        tracker.lock().unwrap().owner.retain(|_, o| o != &self.name);
    }
}

fn track(tracker: &Tracker, me: &str, ev: &GroupEvent) {
    if std::env::var_os("KRUST_TEST_EVENTS").is_some() {
        eprintln!("{:?} {me}: {ev:?}", Instant::now());
    }
    let mut t = tracker.lock().unwrap();
    match ev {
        GroupEvent::Assigned { partitions, .. } => {
            for tp in partitions {
                if let Some(other) = t.owner.get(tp).filter(|o| o.as_str() != me).cloned() {
                    t.violations
                        .push(format!("{tp} assigned to {me} while {other} owns it"));
                }
                t.owner.insert(tp.clone(), me.to_owned());
            }
        }
        GroupEvent::Revoked { partitions, .. } | GroupEvent::Lost { partitions } => {
            if matches!(ev, GroupEvent::Lost { .. }) {
                t.lost += 1;
            } else {
                t.revoked.push((me.to_owned(), partitions.clone()));
            }
            for tp in partitions {
                if t.owner.get(tp).is_some_and(|o| o == me) {
                    t.owner.remove(tp);
                }
            }
        }
        GroupEvent::Fatal(e) => {
            eprintln!("{me}: fatal: {e}");
            t.fatal.push(format!("{me}: {e}"));
        }
        _ => {}
    }
}

/// Wait until `ok` holds for the members' snapshots, or panic after `bound`
/// naming what was seen.
pub async fn wait_for(
    members: &[&Member],
    bound: Duration,
    what: &str,
    ok: impl Fn(&[MemberSnapshot]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let snaps: Vec<MemberSnapshot> = members.iter().map(|m| m.snap()).collect();
        if ok(&snaps) {
            return started.elapsed();
        }
        if started.elapsed() > bound {
            let seen: Vec<String> = snaps
                .iter()
                .map(|s| {
                    format!(
                        "{} gen {} {:?} owns {:?}",
                        s.member_id, s.generation, s.state, s.owned
                    )
                })
                .collect();
            panic!("{what}: not reached within {bound:?}: {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every member stable in one generation with `n` partitions, all disjoint,
/// covering `total`.
pub fn balanced(n: usize, total: usize) -> impl Fn(&[MemberSnapshot]) -> bool {
    move |s| {
        let gen0 = s[0].generation;
        let all: BTreeSet<_> = s.iter().flat_map(|m| m.owned.iter().cloned()).collect();
        s.iter()
            .all(|m| m.state == State::Stable && m.generation == gen0 && m.owned.len() == n)
            && all.len() == total
    }
}
