//! `delivery.timeout.ms`: the upper bound on the time to report success or
//! failure of a record after `send` returned (KIP-91), for queued batches
//! and for batches whose request is in flight alike, as in the Java
//! client's `Sender.getExpiredInflightBatches`.
//!
//! A batch in flight travels with its request task, so a handle on its
//! completion stays here ([`Sender::hold`]) while it is away: when its time
//! is up its records fail at once with [`ProduceError::DeliveryTimeout`],
//! and when its answer comes later it is dropped whatever it says (the
//! broker may have written it, as it may have for any timed-out record).
//! With idempotence, sequences then restart under a new epoch, as for a
//! queued batch given up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accumulator::{Batch, TopicPartition};
use crate::delivery::Completion;
use crate::error::ProduceError;
use crate::sender::Sender;

/// The completion of a batch in flight, and what its timeout error says.
pub(crate) struct Held {
    tp: TopicPartition,
    created: Instant,
    attempts: u32,
    last_error: Option<String>,
    completion: Arc<Completion>,
}

impl Sender {
    /// Fail the queued batches and the records of batches in flight older
    /// than `delivery.timeout.ms`.
    pub(crate) fn expire(&mut self, now: Instant) {
        let timeout = self.config.delivery_timeout;
        let mut gone = Vec::new();
        for q in self.shared.lock().acc.queues_mut() {
            let mut i = 0;
            while i < q.sealed.len() {
                if q.sealed[i].expired(now, timeout) {
                    gone.extend(q.sealed.remove(i));
                } else {
                    i += 1;
                }
            }
        }
        for b in gone {
            self.idem.on_abandon(&b);
            let e = b.timeout_error();
            b.fail(e);
        }
        let due: Vec<u64> = self
            .held
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.created) >= timeout)
            .map(|(&first, _)| first)
            .collect();
        for first in due {
            let Some(h) = self.held.remove(&first) else {
                continue;
            };
            let e = ProduceError::DeliveryTimeout {
                topic: h.tp.0.to_string(),
                partition: h.tp.1,
                elapsed: h.created.elapsed(),
                attempts: h.attempts,
                last: Some(h.last_error.map_or_else(
                    || "the request was still in flight".to_owned(),
                    |e| format!("{e}; the last request was still in flight"),
                )),
            };
            h.completion.fail(e);
            self.expired_in_flight.insert(first);
            // Completed, as far as `flush` is concerned.
            self.flight_done(first);
        }
    }

    /// Keep a handle on the completions of `batches` while their request
    /// is away.
    pub(crate) fn hold(&mut self, batches: &[Batch]) {
        for b in batches {
            let held = Held {
                tp: b.tp.clone(),
                created: b.created,
                attempts: b.attempts,
                last_error: b.last_error.clone(),
                completion: b.completion(),
            };
            self.held.insert(b.first, held);
        }
    }

    /// The batches of an answered request that are still live; those that
    /// expired in flight are dropped (their records have been failed), with
    /// a new epoch to follow when they had a sequence.
    pub(crate) fn returned(&mut self, batches: Vec<Batch>) -> Vec<Batch> {
        let mut live = Vec::with_capacity(batches.len());
        for b in batches {
            if self.expired_in_flight.remove(&b.first) {
                self.idem.on_transport_error(&b);
                self.idem.on_abandon(&b);
                continue;
            }
            self.held.remove(&b.first);
            self.flight_done(b.first);
            live.push(b);
        }
        live
    }

    /// The earliest instant a held batch expires.
    pub(crate) fn next_held_expiry(&self) -> Option<Instant> {
        let timeout: Duration = self.config.delivery_timeout;
        self.held.values().map(|h| h.created + timeout).min()
    }
}
