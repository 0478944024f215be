//! The order of a consumer's commits: each runs as a task of its own and
//! sends nothing before every commit started before it has ended.
//!
//! A commit retries a retriable failure (a coordinator moving or loading,
//! a connection lost, a request timing out) until `default.api.timeout.ms`.
//! Two commits of one consumer in flight at once could therefore land in
//! either order, and an earlier one landing last moves the group's offsets
//! back: an auto-commit retrying through an outage behind a `commit_async`
//! of later positions, and the records between are delivered again after a
//! restart though they were committed. Kafka orders the requests of one
//! connection, not the retries of two futures, so the order is kept here,
//! for every commit the consumer makes (auto-commit, `commit`,
//! `commit_async`, `commit_offsets`, a revoke's): a chain in which each
//! commit waits for the one before it.
//!
//! Each commit is a spawned task, not a future the caller must drive, so a
//! commit waiting for its predecessor never depends on the consumer being
//! polled (an auto-commit is otherwise driven only by `poll`), and a
//! `commit_async` future dropped unpolled still commits, in its place in
//! the chain.

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::ConsumerError;
use crate::metrics::CommitMetrics;

/// The chain of a consumer's commits (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct CommitChain {
    /// Closed when the last commit started has ended.
    last: Option<oneshot::Receiver<()>>,
}

impl CommitChain {
    /// Start `commit` once every commit started before it has ended;
    /// `within` bounds the whole, waiting included (a commit that must end
    /// by a deadline: the revoke's), as a [`ConsumerError::Timeout`] of
    /// `what`. `metrics` is told when it starts and how it ended. Needs a
    /// Tokio runtime, as every consumer call does.
    pub(crate) fn start<F>(
        &mut self,
        commit: F,
        within: Option<(Duration, &'static str)>,
        metrics: CommitMetrics,
    ) -> impl Future<Output = Result<(), ConsumerError>> + Send + 'static + use<F>
    where
        F: Future<Output = Result<(), ConsumerError>> + Send + 'static,
    {
        let (ended, next) = oneshot::channel::<()>();
        let before = self.last.replace(next);
        let deadline = within.map(|(bound, _)| tokio::time::Instant::now() + bound);
        let task = tokio::spawn(async move {
            let result = match within {
                None => {
                    if let Some(before) = before {
                        // Closed (an error) when that commit's task ends,
                        // however it ends.
                        let _ = before.await;
                    }
                    let started = metrics.start();
                    let result = commit.await;
                    metrics.ended(started, &result);
                    result
                }
                Some((bound, what)) => {
                    let deadline = deadline.unwrap_or_else(tokio::time::Instant::now);
                    let timed_out = || ConsumerError::Timeout {
                        what,
                        timeout: bound,
                    };
                    if let Some(mut before) = before
                        && tokio::time::timeout_at(deadline, &mut before)
                            .await
                            .is_err()
                    {
                        // Given up, but the chain goes on only once the
                        // commit before has ended: the next one must not
                        // overtake it.
                        tokio::spawn(async move {
                            let _ = before.await;
                            drop(ended);
                        });
                        let e = timed_out();
                        metrics.failed(&e);
                        return Err(e);
                    }
                    let started = metrics.start();
                    let result = tokio::time::timeout_at(deadline, commit)
                        .await
                        .unwrap_or_else(|_| Err(timed_out()));
                    metrics.ended(started, &result);
                    result
                }
            };
            drop(ended);
            result
        });
        async move {
            task.await.unwrap_or_else(|e| {
                Err(ConsumerError::Aborted {
                    what: "a commit",
                    cause: e.to_string(),
                })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A commit that records when it starts and ends, taking `ms`.
    fn step(
        log: &Arc<Mutex<Vec<String>>>,
        name: &'static str,
        ms: u64,
    ) -> impl Future<Output = Result<(), ConsumerError>> + Send + 'static {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(format!("{name} starts"));
            tokio::time::sleep(Duration::from_millis(ms)).await;
            log.lock().unwrap().push(format!("{name} ends"));
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_commit_waits_for_the_ones_started_before_it() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut chain = CommitChain::default();
        // The slow first one would end last if they ran side by side.
        let a = chain.start(step(&log, "a", 300), None, CommitMetrics::none());
        let b = chain.start(step(&log, "b", 10), None, CommitMetrics::none());
        let c = chain.start(step(&log, "c", 100), None, CommitMetrics::none());
        // Awaited out of order, and the first one never: each still runs
        // in its place.
        c.await.expect("c");
        b.await.expect("b");
        drop(a);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "a starts", "a ends", "b starts", "b ends", "c starts", "c ends"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bound_covers_the_wait_for_the_commits_before() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut chain = CommitChain::default();
        let slow = chain.start(step(&log, "slow", 1_000), None, CommitMetrics::none());
        let bounded = chain.start(
            step(&log, "bounded", 10),
            Some((Duration::from_millis(500), "the bounded commit")),
            CommitMetrics::none(),
        );
        let after = chain.start(step(&log, "after", 10), None, CommitMetrics::none());
        match bounded.await {
            Err(ConsumerError::Timeout { what, timeout }) => {
                // At its bound, while the slow one still runs.
                assert_eq!(*log.lock().unwrap(), ["slow starts"]);
                assert_eq!(what, "the bounded commit");
                assert_eq!(timeout, Duration::from_millis(500));
            }
            other => panic!("expected the bound to end it: {other:?}"),
        }
        slow.await.expect("slow");
        after.await.expect("after");
        // The bounded one never started; the one after it did, after the
        // slow one.
        assert_eq!(
            *log.lock().unwrap(),
            ["slow starts", "slow ends", "after starts", "after ends"]
        );
    }

    #[tokio::test]
    async fn a_commit_that_panics_ends_with_an_error_and_frees_the_chain() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut chain = CommitChain::default();
        let broken = chain.start(
            async { panic!("a broken commit") },
            None,
            CommitMetrics::none(),
        );
        let next = chain.start(step(&log, "next", 1), None, CommitMetrics::none());
        match broken.await {
            Err(ConsumerError::Aborted { what, cause }) => {
                assert_eq!(what, "a commit");
                assert!(cause.contains("panic"), "{cause}");
            }
            other => panic!("expected Aborted: {other:?}"),
        }
        next.await.expect("next");
        assert_eq!(*log.lock().unwrap(), ["next starts", "next ends"]);
    }
}
