//! What `send` and the producer's task share: the accumulator, the
//! partitioner, the count of records taken and a fatal error, behind one
//! lock. `send` appends in the caller's thread, as the Java client's
//! `RecordAccumulator.append` does, so a record costs no channel hop and no
//! wake-up of the task; the task is woken only when it has something to do
//! (a batch opened, whose linger starts, or a batch sealed, which can go).
//! The task seals, drains and re-queues under the same lock, never across
//! an `.await`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use crate::accumulator::Accumulator;
use crate::config::ProducerConfig;
use crate::delivery::DeliveryFuture;
use crate::error::ProduceError;
use crate::fast_hash::FastMap;
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
    /// Partition counts of topics, valid for one metadata generation.
    partition_counts: PartitionCounts,
}

/// Partition counts read from one generation of the pool's metadata, so
/// that `send` reads them without the pool's lock; the last topic is
/// recognised by its `Arc`, without hashing its name.
#[derive(Default)]
struct PartitionCounts {
    generation: u64,
    last: Option<(std::sync::Arc<str>, i32)>,
    counts: FastMap<std::sync::Arc<str>, i32>,
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
    pub fn new(config: &ProducerConfig, memory: Arc<Semaphore>) -> Arc<Self> {
        Arc::new(Shared {
            front: Mutex::new(Front {
                acc: Accumulator::new(config.batch_size, config.linger, config.compression, memory),
                partitioner: config.partitioner.make(),
                records: 0,
                fatal: None,
                partition_counts: PartitionCounts::default(),
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

    /// Wake the task if `wake` says it should look.
    pub fn woken<T>(&self, (value, wake): (T, bool)) -> T {
        if wake {
            self.wake.notify_one();
        }
        value
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
        permit: SemaphorePermit<'_>,
    ) -> (DeliveryFuture, bool) {
        let number = self.records;
        self.records += 1;
        if let Some(e) = &self.fatal {
            return (DeliveryFuture::failed(e.clone()), false);
        }
        let topic = &record.topic;
        let (k, v) = (record.key.as_deref(), record.value.as_deref());
        let mut permit = permit;
        let partition = match record.partition {
            Some(p) => p,
            None => {
                let p = self.partitioner.partition(topic, k, v, n);
                if !(0..n).contains(&p) {
                    p
                } else {
                    match self
                        .acc
                        .append((topic, p), number, record, timestamp, permit, true)
                    {
                        Ok(done) => return done,
                        Err(back) => permit = back,
                    }
                    // KIP-480: a new batch is due; a sticky partitioner moves on.
                    self.partitioner.on_new_batch(topic, n, p);
                    self.partitioner.partition(topic, k, v, n)
                }
            }
        };
        if !(0..n).contains(&partition) {
            let e = ProduceError::InvalidPartition {
                topic: topic.to_string(),
                partition,
                partitions: usize::try_from(n).unwrap_or(0),
            };
            return (DeliveryFuture::failed(e), false);
        }
        match self
            .acc
            .append((topic, partition), number, record, timestamp, permit, false)
        {
            Ok(done) => done,
            Err(_) => unreachable!("a record that is not sticky is always taken"),
        }
    }

    /// The partition count of `topic` if known for metadata `generation`.
    pub fn partition_count(&mut self, generation: u64, topic: &Arc<str>) -> Option<i32> {
        let c = &mut self.partition_counts;
        if c.generation != generation {
            return None;
        }
        if let Some((t, n)) = &c.last
            && Arc::ptr_eq(t, topic)
        {
            return Some(*n);
        }
        let n = *c.counts.get(&**topic)?;
        c.last = Some((Arc::clone(topic), n));
        Some(n)
    }

    /// Remember `topic`'s partition count from metadata `generation`.
    pub fn set_partition_count(&mut self, generation: u64, topic: &Arc<str>, n: i32) {
        let c = &mut self.partition_counts;
        if c.generation != generation {
            c.counts.clear();
            c.last = None;
            c.generation = generation;
        }
        c.counts.insert(Arc::clone(topic), n);
    }
}
