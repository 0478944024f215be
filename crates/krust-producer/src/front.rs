//! What `send` and the producer's task share: the accumulator, the
//! partitioner, the count of records taken and a fatal error, behind one
//! lock. `send` appends in the caller's thread, as the Java client's
//! `RecordAccumulator.append` does, so a record costs no channel hop and no
//! wake-up of the task; the task is woken only when it has something to do
//! (a batch opened, whose linger starts, or a batch sealed, which can go).
//! The task seals, drains and re-queues under the same lock, never across
//! an `.await`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::accumulator::Accumulator;
use crate::config::ProducerConfig;
use crate::delivery::DeliveryFuture;
use crate::error::ProduceError;
use crate::partitioner::Partitioner;
use crate::record::ProducerRecord;

/// The state behind the lock.
pub(crate) struct Front {
    pub acc: Accumulator,
    partitioner: Box<dyn Partitioner>,
    /// Records taken so far; numbers them in `send` order (`flush` waits
    /// for the records numbered below its mark).
    pub records: u64,
    /// Set once the producer cannot go on: every later record fails with it.
    pub fatal: Option<ProduceError>,
}

/// The lock and the task's wake-up.
pub(crate) struct Shared {
    front: Mutex<Front>,
    /// Wakes the producer's task. A permit is stored when the task is
    /// busy, so no wake-up is lost.
    pub wake: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // try_lock: a Debug print from under the lock must not deadlock.
        let mut d = f.debug_struct("Shared");
        if let Ok(front) = self.front.try_lock() {
            d.field("records", &front.records)
                .field("fatal", &front.fatal);
        }
        d.finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(config: &ProducerConfig) -> Arc<Self> {
        Arc::new(Shared {
            front: Mutex::new(Front {
                acc: Accumulator::new(config.batch_size, config.linger, config.compression),
                partitioner: config.partitioner.make(),
                records: 0,
                fatal: None,
            }),
            wake: Notify::new(),
        })
    }

    /// The state. A panic while it was held (in an application's
    /// partitioner) leaves it consistent: every change under the lock is
    /// completed before anything that could panic is called.
    pub fn lock(&self) -> MutexGuard<'_, Front> {
        self.front.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take `record` (see [`Front::take`]) and wake the task if it should
    /// look.
    pub fn send(
        &self,
        record: &ProducerRecord,
        timestamp: i64,
        num_partitions: i32,
        permit: OwnedSemaphorePermit,
    ) -> DeliveryFuture {
        let (future, wake) = self.lock().take(record, timestamp, num_partitions, permit);
        if wake {
            self.wake.notify_one();
        }
        future
    }
}

impl Front {
    /// Number `record`, choose its partition and append it. Returns its
    /// future and whether the task should be woken.
    pub fn take(
        &mut self,
        record: &ProducerRecord,
        timestamp: i64,
        n: i32,
        permit: OwnedSemaphorePermit,
    ) -> (DeliveryFuture, bool) {
        let number = self.records;
        self.records += 1;
        if let Some(e) = &self.fatal {
            return (DeliveryFuture::failed(e.clone()), false);
        }
        let topic = &record.topic;
        let mut tp = (Arc::clone(topic), 0);
        tp.1 = match record.partition {
            Some(p) => p,
            None => {
                let (k, v) = (record.key.as_deref(), record.value.as_deref());
                tp.1 = self.partitioner.partition(topic, k, v, n);
                if !self.acc.would_start_batch(&tp, record, timestamp) {
                    tp.1
                } else {
                    let p = tp.1;
                    // KIP-480: a new batch is due; a sticky partitioner moves on.
                    self.partitioner.on_new_batch(topic, n, p);
                    self.partitioner.partition(topic, k, v, n)
                }
            }
        };
        if !(0..n).contains(&tp.1) {
            let e = ProduceError::InvalidPartition {
                topic: topic.to_string(),
                partition: tp.1,
                partitions: usize::try_from(n).unwrap_or(0),
            };
            return (DeliveryFuture::failed(e), false);
        }
        self.acc.append(&tp, number, record, timestamp, permit)
    }
}
