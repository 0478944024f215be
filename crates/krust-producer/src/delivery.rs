//! Delivery futures: one completion per batch, shared by the futures of all
//! its records. A record costs its future a reference count and an index,
//! not a channel of its own; the batch's outcome (base offset and
//! log-append time, or the error) is set once and each future derives its
//! record's metadata from it when polled.
//!
//! The batch owns the [`Resolver`]: if the batch is dropped without an
//! outcome (the producer was dropped, its task aborted), the resolver
//! fails the futures with [`ProduceError::Closed`]. The first outcome set
//! wins: a batch failed by `delivery.timeout.ms` while its request was in
//! flight (`expiry.rs`) stays failed whatever the late answer says.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::ProduceError;
use crate::record::RecordMetadata;

/// Where a batch landed.
#[derive(Debug, Clone, Copy)]
struct Landed {
    partition: i32,
    /// -1: unknown (acks=0, or a duplicate whose offset the broker did not
    /// keep).
    base_offset: i64,
    log_append_time: Option<i64>,
}

/// The outcome of one batch, shared by its records' futures. Once set it
/// is read without a lock (a future polled after its batch completed, the
/// usual case, costs one atomic load); the lock guards only the wakers of
/// futures polled before.
#[derive(Default)]
pub(crate) struct Completion {
    outcome: OnceLock<Result<Landed, ProduceError>>,
    /// Futures polled before the outcome, woken when it is set.
    wakers: Mutex<Vec<Waker>>,
}

impl Completion {
    fn wakers(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Set the outcome unless one is set already, and wake the waiters.
    /// Set under the wakers' lock, so a future that found no outcome and
    /// registers under it is either seen here or sees the outcome there.
    fn set(&self, outcome: Result<Landed, ProduceError>) {
        let wakers = {
            let mut w = self.wakers();
            if self.outcome.set(outcome).is_err() {
                return;
            }
            std::mem::take(&mut *w)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Fail the batch's records (first outcome wins).
    pub(crate) fn fail(&self, error: ProduceError) {
        self.set(Err(error));
    }

    /// Whether an outcome is set.
    #[cfg(test)]
    pub(crate) fn is_set(&self) -> bool {
        self.outcome.get().is_some()
    }
}

/// The batch's side of a [`Completion`]: it sets the outcome, and fails the
/// records with [`ProduceError::Closed`] if dropped without one.
pub(crate) struct Resolver {
    completion: Arc<Completion>,
    partition: i32,
}

impl Resolver {
    pub(crate) fn new(partition: i32) -> Self {
        Resolver {
            completion: Arc::default(),
            partition,
        }
    }

    /// The future of the record at `index` in the batch.
    pub(crate) fn future(&self, index: u32, timestamp: i64) -> DeliveryFuture {
        DeliveryFuture(Inner::Batch {
            completion: Arc::clone(&self.completion),
            index,
            timestamp,
            slot: None,
        })
    }

    /// The completion, for whoever may fail the batch while it is away
    /// (the expiry of batches in flight).
    pub(crate) fn completion(&self) -> Arc<Completion> {
        Arc::clone(&self.completion)
    }

    /// Resolve every record: offsets from `base_offset` (-1: unknown).
    pub(crate) fn succeed(&self, base_offset: i64, log_append_time: Option<i64>) {
        self.completion.set(Ok(Landed {
            partition: self.partition,
            base_offset,
            log_append_time,
        }));
    }

    /// Fail every record with `error`.
    pub(crate) fn fail(&self, error: ProduceError) {
        self.completion.fail(error);
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.completion.fail(ProduceError::Closed);
    }
}

/// Resolves when the record is acknowledged or has failed. Dropping it does
/// not cancel the delivery.
pub struct DeliveryFuture(Inner);

enum Inner {
    /// A record in a batch.
    Batch {
        completion: Arc<Completion>,
        index: u32,
        /// The record's create time, reported unless the topic uses
        /// log-append time.
        timestamp: i64,
        /// Where this future's waker sits in the completion's list.
        slot: Option<usize>,
    },
    /// A record refused before it reached a batch.
    Ready(Option<Result<RecordMetadata, ProduceError>>),
}

impl DeliveryFuture {
    /// A future that fails at once with `error`.
    pub(crate) fn failed(error: ProduceError) -> Self {
        DeliveryFuture(Inner::Ready(Some(Err(error))))
    }
}

impl fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Batch {
                index, timestamp, ..
            } => f
                .debug_struct("DeliveryFuture")
                .field("index", index)
                .field("timestamp", timestamp)
                .finish_non_exhaustive(),
            Inner::Ready(r) => f.debug_tuple("DeliveryFuture").field(r).finish(),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProduceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.0 {
            Inner::Ready(r) => Poll::Ready(r.take().unwrap_or(Err(ProduceError::Closed))),
            Inner::Batch {
                completion,
                index,
                timestamp,
                slot,
            } => {
                let outcome = match completion.outcome.get() {
                    Some(o) => o,
                    None => {
                        let mut w = completion.wakers();
                        match completion.outcome.get() {
                            Some(o) => o,
                            None => {
                                match slot.and_then(|i| w.get_mut(i)) {
                                    Some(old) => old.clone_from(cx.waker()),
                                    None => {
                                        *slot = Some(w.len());
                                        w.push(cx.waker().clone());
                                    }
                                }
                                return Poll::Pending;
                            }
                        }
                    }
                };
                Poll::Ready(match outcome {
                    Ok(l) => {
                        let offset = if l.base_offset < 0 {
                            -1
                        } else {
                            l.base_offset.saturating_add(i64::from(*index))
                        };
                        Ok(RecordMetadata {
                            partition: l.partition,
                            offset,
                            timestamp: l.log_append_time.unwrap_or(*timestamp),
                        })
                    }
                    Err(e) => Err(e.clone()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(f).poll(&mut cx)
    }

    #[test]
    fn every_record_of_a_batch_gets_its_own_offset_and_timestamp() {
        let r = Resolver::new(3);
        let mut a = r.future(0, 100);
        let mut b = r.future(1, 200);
        assert!(now(&mut a).is_pending());
        r.succeed(40, None);
        let (Poll::Ready(Ok(a)), Poll::Ready(Ok(b))) = (now(&mut a), now(&mut b)) else {
            panic!("both resolved");
        };
        assert_eq!((a.partition, a.offset, a.timestamp), (3, 40, 100));
        assert_eq!((b.partition, b.offset, b.timestamp), (3, 41, 200));
        let mut c = r.future(2, 300);
        r.succeed(-1, Some(9));
        let Poll::Ready(Ok(c)) = now(&mut c) else {
            panic!("resolved")
        };
        assert_eq!(c.offset, 42, "the first outcome stands");
    }

    #[test]
    fn unknown_offsets_and_log_append_time() {
        let r = Resolver::new(0);
        let mut f = r.future(5, 100);
        r.succeed(-1, Some(7));
        let Poll::Ready(Ok(m)) = now(&mut f) else {
            panic!("resolved")
        };
        assert_eq!((m.offset, m.timestamp), (-1, 7));
    }

    #[test]
    fn a_dropped_batch_fails_its_records_with_closed_and_a_failure_stands() {
        let r = Resolver::new(0);
        let mut f = r.future(0, 0);
        drop(r);
        assert!(matches!(
            now(&mut f),
            Poll::Ready(Err(ProduceError::Closed))
        ));

        let r = Resolver::new(0);
        let mut f = r.future(0, 0);
        r.completion().fail(ProduceError::Fatal("x".to_owned()));
        r.succeed(10, None);
        drop(r);
        assert!(matches!(
            now(&mut f),
            Poll::Ready(Err(ProduceError::Fatal(_)))
        ));
    }

    #[test]
    fn a_waiting_future_is_woken_once_per_outcome() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let r = Resolver::new(0);
        let mut f = r.future(0, 0);
        // Polled twice before the outcome: one registration.
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert!(!r.completion().is_set());
        r.succeed(0, None);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(Pin::new(&mut f).poll(&mut cx).is_ready());
    }
}
