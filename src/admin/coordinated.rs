//! One mechanism for every call made at groups' coordinators: the groups
//! are batched by coordinator, each batch is one call, the batches run
//! concurrently, and a group whose answer says the coordinator moved, is
//! loading its partitions, or could not be reached (NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, a lost
//! connection) has its coordinator looked up again and is asked again,
//! within the retry policy's deadline. Kafka 4's coordinator answers
//! NOT_COORDINATOR until `__consumer_offsets` is loaded, which a fresh
//! cluster's first group call always meets.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use krust_net::{Connection, CoordinatorType, Error};
use tokio::task::JoinSet;

use super::Admin;
use super::groups::joined;

/// A call's outcome per group.
pub(super) type PerGroup<T> = Vec<(String, Result<T, Error>)>;

impl Admin {
    /// Run `call` at the coordinator of `groups` (one call per coordinator
    /// with all its groups, concurrently), retrying the groups whose outcome
    /// is retriable; the result holds every group of `groups` that `call`
    /// answered for, by group id. An error of a whole call that is not
    /// retriable (an unsupported version, a bad request) is the result.
    pub(super) async fn at_coordinators<T, F, Fut>(
        &self,
        groups: &[&str],
        call: F,
    ) -> Result<BTreeMap<String, Result<T, Error>>, Error>
    where
        T: Send + 'static,
        F: Fn(Connection, Vec<String>) -> Fut,
        Fut: Future<Output = Result<PerGroup<T>, Error>> + Send + 'static,
    {
        let deadline = Instant::now() + self.retry.deadline;
        let mut pending: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        pending.sort();
        pending.dedup();
        let mut done: BTreeMap<String, Result<T, Error>> = BTreeMap::new();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            attempt += 1;
            let last_try = Instant::now() + self.retry.backoff.delay(attempt) >= deadline;
            // Groups with a retriable answer this round.
            let mut retry: Vec<(String, Error)> = Vec::new();
            let mut batches: BTreeMap<String, (Connection, Vec<String>)> = BTreeMap::new();
            for g in &pending {
                match self.pool.coordinator(CoordinatorType::Group, g).await {
                    Ok(conn) => batches
                        .entry(conn.addr().to_owned())
                        .or_insert_with(|| (conn, Vec::new()))
                        .1
                        .push(g.clone()),
                    Err(e) if e.is_retriable() => retry.push((g.clone(), e)),
                    Err(e) => {
                        done.insert(g.clone(), Err(e));
                    }
                }
            }
            let mut calls = JoinSet::new();
            for (conn, names) in batches.into_values() {
                let answer = call(conn, names.clone());
                calls.spawn(async move { (names, answer.await) });
            }
            while let Some(finished) = calls.join_next().await {
                let (names, outcome) = joined(finished);
                match outcome {
                    Ok(per_group) => {
                        for (g, r) in per_group {
                            match r {
                                Err(e) if e.is_retriable() => retry.push((g, e)),
                                r => {
                                    done.insert(g, r);
                                }
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        retry.extend(names.into_iter().map(|g| (g, e.clone())));
                    }
                    Err(e) => return Err(e),
                }
            }
            pending.clear();
            for (g, e) in retry {
                if last_try {
                    done.insert(g, Err(e));
                } else {
                    self.forget(&g, &e);
                    pending.push(g);
                }
            }
            if !pending.is_empty() {
                tokio::time::sleep(self.retry.backoff.delay(attempt)).await;
            }
        }
        Ok(done)
    }

    /// Run `call` at `group`'s coordinator, with the retries of
    /// [`Admin::at_coordinators`]; `call`'s error is the result's.
    pub(super) async fn at_coordinator<T, F, Fut>(&self, group: &str, call: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let id = group.to_owned();
        let mut found = self
            .at_coordinators(&[group], |conn, _| {
                let (answer, id) = (call(conn), id.clone());
                async move { Ok(vec![(id, answer.await)]) }
            })
            .await?;
        found
            .remove(group)
            .expect("the one group has an outcome once its retries end")
    }

    /// After `e` from `group`'s coordinator: look it up anew next time (and
    /// the metadata too when `e` says it is stale).
    fn forget(&self, group: &str, e: &Error) {
        self.pool
            .invalidate_coordinator(CoordinatorType::Group, group);
        if e.invalidates_metadata() {
            self.pool.invalidate();
        }
    }
}
