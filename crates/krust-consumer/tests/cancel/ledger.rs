//! The stress tests' bookkeeping: a seeded RNG, and a ledger of what
//! every member was assigned, revoked and handed out, checked as it
//! happens (the listener and the members write to it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use krust_consumer::{ConsumerError, ConsumerRecord, RebalanceListener, Revoke, TopicPartition};

pub fn parts(s: &BTreeSet<TopicPartition>) -> BTreeSet<i32> {
    s.iter().map(|t| t.partition).collect()
}

/// xorshift64*: the stress tests' only randomness, from one printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

pub fn seed() -> u64 {
    match std::env::var("KRUST_STRESS_SEED") {
        Ok(s) => s.parse().expect("KRUST_STRESS_SEED is a number"),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| {
                    u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(1)
                });
            t | 1
        }
    }
}

/// One partition's current owner run: which member, from which offset
/// it must start, where it is.
#[derive(Debug, Clone)]
pub struct Run {
    member: usize,
    /// The offset the previous owner committed on revoke (exact), or an
    /// upper bound of it (its commit failed), or nothing known (lost).
    start: Option<(i64, bool)>,
    next: Option<i64>,
}

/// What every member did, checked as it happens.
#[derive(Debug, Default)]
pub struct Ledger {
    pub owner: BTreeMap<i32, usize>,
    pub run: BTreeMap<i32, Run>,
    /// Per partition: what the last revoke committed (exact or bound).
    last_commit: BTreeMap<i32, Option<(i64, bool)>>,
    /// Per partition: deliveries of each offset.
    delivered: BTreeMap<i32, Vec<u32>>,
    /// Per member: the partitions of its last revoke (a commit failure
    /// makes their commits bounds).
    last_revoke: BTreeMap<usize, Vec<i32>>,
    pub violations: Vec<String>,
    pub assigned_events: usize,
    pub duplicates: usize,
}

impl Ledger {
    pub fn new(end: &BTreeMap<i32, i64>) -> Ledger {
        let mut l = Ledger::default();
        for (p, e) in end {
            l.last_commit.insert(*p, Some((0, true)));
            l.delivered
                .insert(*p, vec![0; usize::try_from(*e).expect("small")]);
        }
        l
    }

    pub fn complete(&self) -> bool {
        self.delivered.values().all(|d| d.iter().all(|n| *n > 0))
    }

    pub fn missing(&self) -> usize {
        self.delivered
            .values()
            .map(|d| d.iter().filter(|n| **n == 0).count())
            .sum()
    }

    pub fn handed_out(&mut self, member: usize, r: &ConsumerRecord) {
        let (p, o) = (r.partition, r.offset);
        if self.owner.get(&p) != Some(&member) {
            let owner = self.owner.get(&p).copied();
            self.violations.push(format!(
                "member {member} handed out {p}@{o} while the owner is {owner:?}"
            ));
            return;
        }
        let Some(run) = self.run.get_mut(&p).filter(|r| r.member == member) else {
            self.violations
                .push(format!("member {member}: {p}@{o} outside a run of its own"));
            return;
        };
        match (run.next, run.start) {
            (Some(n), _) if o != n => self.violations.push(format!(
                "member {member}: {p}@{o} after {p}@{} (a gap or a repeat within one owner)",
                n - 1
            )),
            (None, Some((c, true))) if o != c => self.violations.push(format!(
                "member {member}: {p} starts at {o}, the previous owner committed {c}"
            )),
            (None, Some((c, false))) if o > c => self.violations.push(format!(
                "member {member}: {p} starts at {o}, past the previous owner's commit bound {c}"
            )),
            _ => {}
        }
        run.next = Some(o + 1);
        let d = self.delivered.get_mut(&p).expect("partition");
        let slot = usize::try_from(o).expect("offset");
        if d[slot] > 0 {
            self.duplicates += 1;
        }
        d[slot] += 1;
    }
}

pub type Shared = Arc<Mutex<Ledger>>;

pub struct Listener {
    pub member: usize,
    pub ledger: Shared,
}

impl RebalanceListener for Listener {
    fn on_assigned(&mut self, partitions: &BTreeSet<TopicPartition>) {
        let mut l = self.ledger.lock().expect("ledger");
        l.assigned_events += 1;
        for p in parts(partitions) {
            if let Some(other) = l.owner.get(&p).copied().filter(|o| *o != self.member) {
                l.violations.push(format!(
                    "{p} assigned to member {} while member {other} owns it",
                    self.member
                ));
            }
            l.owner.insert(p, self.member);
            let start = l.last_commit.get(&p).copied().flatten();
            l.run.insert(
                p,
                Run {
                    member: self.member,
                    start,
                    next: None,
                },
            );
        }
    }

    fn on_revoked(&mut self, revoke: &mut Revoke) {
        let mut l = self.ledger.lock().expect("ledger");
        let mut revoked = Vec::new();
        for tp in revoke.partitions() {
            let p = tp.partition;
            if l.owner.get(&p) != Some(&self.member) {
                let owner = l.owner.get(&p).copied();
                l.violations.push(format!(
                    "{p} revoked from member {} but owned by {owner:?}",
                    self.member
                ));
            }
            l.owner.remove(&p);
            let run = l.run.remove(&p);
            // What this revoke commits (every member commits on revoke:
            // explicit acks always, implicit ones with auto-commit); when
            // the consumer does not say, what the run reached bounds it.
            let c = match revoke.committable(tp) {
                Some(c) => Some((c, true)),
                None => run
                    .and_then(|r| r.next.or(r.start.map(|s| s.0)))
                    .map(|n| (n, false)),
            };
            l.last_commit.insert(p, c);
            revoked.push(p);
        }
        l.last_revoke.insert(self.member, revoked);
    }

    fn on_lost(&mut self, partitions: &BTreeSet<TopicPartition>) {
        let mut l = self.ledger.lock().expect("ledger");
        for p in parts(partitions) {
            if l.owner.get(&p) == Some(&self.member) {
                l.owner.remove(&p);
                l.run.remove(&p);
            }
            // Auto-commits the test does not see may have moved it.
            l.last_commit.insert(p, None);
        }
    }

    fn on_commit_failed(&mut self, error: &ConsumerError) {
        let mut l = self.ledger.lock().expect("ledger");
        eprintln!("member {}: commit failed: {error}", self.member);
        let ps = l.last_revoke.get(&self.member).cloned().unwrap_or_default();
        for p in ps {
            // Only if no other owner started since.
            if !l.owner.contains_key(&p)
                && let Some(Some((c, _))) = l.last_commit.get(&p).copied()
            {
                l.last_commit.insert(p, Some((c, false)));
            }
        }
    }
}
