//! Backoff and retries. Retriable errors (`Error::is_retriable`, which
//! follows the Java client's `RetriableException` classes) are retried with
//! exponential backoff and jitter until a deadline; anything else is
//! returned at once.
//!
//! Broker throttling (KIP-219) is not an error and never reaches this
//! module: a reply carrying `throttle_time_ms` is a success, and the
//! connection delays its next request instead (see `connection.rs`).

use std::future::Future;
use std::time::{Duration, Instant};

use krust_codec::ApiKey;

use crate::error::Error;

/// Exponential backoff with jitter (`retry.backoff.ms` /
/// `retry.backoff.max.ms`, `reconnect.backoff.ms` / `reconnect.backoff.max.ms`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Each delay is the previous one times this.
    pub multiplier: f64,
    /// Each delay is moved randomly by up to this fraction (0.2 = ±20%), so
    /// that clients that failed together do not retry together.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exp.min(64));
        let capped = base.min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter + 2.0 * jitter * fastrand::f64();
        Duration::try_from_secs_f64(capped * factor).unwrap_or(self.max)
    }
}

/// How long past its deadline [`RetryPolicy::run`] may end: only the time
/// the runtime takes to wake the task when the deadline's timer fires and
/// to drop the attempt in progress (a millisecond on an idle machine; this
/// leaves room for a loaded one). Nothing is waited for after the deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// How a request is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delays between attempts.
    pub backoff: Backoff,
    /// The whole operation, every attempt included, ends within this
    /// (`delivery.timeout.ms` / `default.api.timeout.ms`), give or take
    /// [`DEADLINE_MARGIN`]: an attempt still running when it comes is
    /// dropped.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Backoff::default(),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Run `attempt` (given the attempt number, from 0) until it succeeds,
    /// fails with an error that is not retriable, or the deadline comes.
    /// `on_error` runs after each retriable failure, before the backoff
    /// (invalidate metadata, drop a coordinator, ...).
    ///
    /// Each attempt gets only the time left before the deadline: one still
    /// running then is dropped (so `attempt` must be cancel-safe, as every
    /// request of this crate is), and the run ends within
    /// [`DEADLINE_MARGIN`] of the deadline. A retry whose backoff would end
    /// past the deadline is not made. On giving up, the error is
    /// [`Error::RetriesExhausted`] with the last error an attempt returned
    /// (the cause being retried), or [`Error::DeadlineExceeded`] when the
    /// only attempt was cut short.
    pub async fn run<T, F, Fut>(
        &self,
        api: ApiKey,
        mut attempt: F,
        mut on_error: impl FnMut(&Error),
    ) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let mut last: Option<Error> = None;
        let mut n = 0u32;
        let exhausted = |attempts: u32, last: Option<Error>| Error::RetriesExhausted {
            api,
            attempts,
            elapsed: started.elapsed(),
            last: Box::new(last.unwrap_or(Error::DeadlineExceeded {
                api,
                deadline: self.deadline,
            })),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = tokio::time::timeout(left, attempt(n)).await;
            n = n.saturating_add(1);
            let e = match outcome {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => e,
                Err(_) => {
                    tracing::debug!(%api, attempt = n, "deadline came during an attempt");
                    return Err(exhausted(n, last));
                }
            };
            if !e.is_retriable() {
                return Err(e);
            }
            on_error(&e);
            let delay = self.backoff.delay(n);
            if Instant::now() + delay >= deadline {
                return Err(exhausted(n, Some(e)));
            }
            tracing::debug!(%api, attempt = n, ?delay, error = %e, "retrying");
            last = Some(e);
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krust_codec::ErrorCode;

    #[test]
    fn delays_grow_are_capped_and_jittered() {
        let b = Backoff::default();
        for _ in 0..100 {
            let d1 = b.delay(1);
            assert!(d1 >= Duration::from_millis(80) && d1 <= Duration::from_millis(120));
            let d3 = b.delay(3);
            assert!(d3 >= Duration::from_millis(320) && d3 <= Duration::from_millis(480));
            assert!(b.delay(50) <= Duration::from_millis(1200));
            assert!(b.delay(u32::MAX) <= Duration::from_millis(1200));
        }
    }

    #[tokio::test]
    async fn retriable_errors_are_retried_until_success() {
        let policy = RetryPolicy {
            backoff: Backoff {
                initial: Duration::from_millis(1),
                ..Backoff::default()
            },
            deadline: Duration::from_secs(5),
        };
        let mut invalidations = 0;
        let r = policy
            .run(
                ApiKey::Metadata,
                |n| async move {
                    if n < 3 {
                        Err(Error::broker(
                            ApiKey::Metadata,
                            ErrorCode::NOT_LEADER_OR_FOLLOWER,
                            None,
                        ))
                    } else {
                        Ok(n)
                    }
                },
                |e| {
                    if e.invalidates_metadata() {
                        invalidations += 1;
                    }
                },
            )
            .await;
        assert_eq!(r.expect("succeeds"), 3);
        assert_eq!(invalidations, 3);
    }

    /// The deadline bounds every attempt, not only the pauses between them:
    /// an attempt still running when the time is up is dropped (all of
    /// krust-net's requests are cancel-safe), and the run ends within
    /// [`DEADLINE_MARGIN`] of the deadline, carrying the error the earlier
    /// attempt met.
    #[tokio::test]
    async fn an_attempt_still_running_at_the_deadline_is_cut_short() {
        let policy = RetryPolicy {
            backoff: Backoff {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(10),
                ..Backoff::default()
            },
            deadline: Duration::from_millis(300),
        };
        // The first attempt fails at once, the second hangs (a broker that
        // accepted the request and never answers, with a request timeout
        // far longer than the deadline).
        let started = Instant::now();
        let r: Result<(), _> = policy
            .run(
                ApiKey::Metadata,
                |n| async move {
                    if n == 0 {
                        return Err(Error::Timeout {
                            api: ApiKey::Metadata,
                            broker: "b:1".into(),
                            elapsed: Duration::ZERO,
                        });
                    }
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(())
                },
                |_| {},
            )
            .await;
        let elapsed = started.elapsed();
        assert!(elapsed >= policy.deadline, "{elapsed:?}");
        assert!(
            elapsed < policy.deadline + DEADLINE_MARGIN,
            "ran {elapsed:?} with a deadline of {:?}",
            policy.deadline
        );
        let e = r.expect_err("the deadline passed");
        let Error::RetriesExhausted { attempts, last, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(*attempts, 2);
        assert!(matches!(**last, Error::Timeout { .. }), "{last:?}");
        assert!(e.to_string().contains("b:1"), "{e}");

        // Cut short on the first attempt: nothing else to report.
        let started = Instant::now();
        let r: Result<(), _> = policy
            .run(
                ApiKey::Metadata,
                |_| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(())
                },
                |_| {},
            )
            .await;
        assert!(started.elapsed() < policy.deadline + DEADLINE_MARGIN);
        let e = r.expect_err("the deadline passed");
        let Error::RetriesExhausted { attempts, last, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(*attempts, 1);
        assert!(
            matches!(
                **last,
                Error::DeadlineExceeded {
                    api: ApiKey::Metadata,
                    ..
                }
            ),
            "{last:?}"
        );
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried_and_the_deadline_names_the_api() {
        let policy = RetryPolicy {
            backoff: Backoff {
                initial: Duration::from_millis(20),
                ..Backoff::default()
            },
            deadline: Duration::from_millis(100),
        };
        let mut calls = 0;
        let r: Result<(), _> = policy
            .run(
                ApiKey::Fetch,
                |_| {
                    calls += 1;
                    async {
                        Err(Error::broker(
                            ApiKey::Fetch,
                            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                            None,
                        ))
                    }
                },
                |_| {},
            )
            .await;
        assert_eq!(calls, 1);
        assert!(!r.expect_err("fatal").is_retriable());

        let started = Instant::now();
        let r: Result<(), _> = policy
            .run(
                ApiKey::Fetch,
                |_| async {
                    Err(Error::Timeout {
                        api: ApiKey::Fetch,
                        broker: "b:1".into(),
                        elapsed: Duration::ZERO,
                    })
                },
                |_| {},
            )
            .await;
        let e = r.expect_err("deadline");
        assert!(started.elapsed() < Duration::from_millis(300));
        assert!(matches!(e, Error::RetriesExhausted { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("Fetch") && msg.contains("b:1"), "{msg}");
    }
}
