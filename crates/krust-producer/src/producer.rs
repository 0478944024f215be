//! The producer handle: `send` (partition count from the metadata, room in
//! `buffer.memory`, both within `max.block.ms`, then the append in the
//! caller's thread, `front.rs`), `flush`, `close`. The rest of the state
//! lives in the task (`sender.rs`); this handle holds the shared front, a
//! channel to the task, the memory semaphore and the pool. Dropping it
//! never blocks: the task is told to stop and pending delivery futures fail
//! with [`ProduceError::Closed`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use krust_codec::ErrorCode;
use krust_net::{Backoff, ConnectionConfig, Pool, PoolConfig, RetryPolicy};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::config::{ProducerConfig, ProducerConfigBuilder};
use crate::delivery::DeliveryFuture;
use crate::error::{ProduceError, Result};
use crate::front::Shared;
use crate::idempotence::{ProducerId, init_producer_id};
use crate::record::ProducerRecord;
use crate::sender::{Msg, Sender};

/// Bytes a record costs beyond its key, value and headers (record framing
/// plus a share of the batch header), for the memory and size limits.
const RECORD_OVERHEAD: usize = 32;
/// The RecordBatch v2 header.
const BATCH_OVERHEAD: usize = krust_codec::records::BATCH_HEADER_LEN;

/// A Kafka producer. Share it behind an `Arc` to send from several tasks.
#[derive(Debug)]
pub struct Producer {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
    pool: Pool,
    memory: Arc<Semaphore>,
    config: Arc<ProducerConfig>,
    producer_id: Option<(i64, i16)>,
}

impl ProducerConfigBuilder {
    /// Validate the settings and start a producer with them.
    pub async fn create(self) -> Result<Producer> {
        Producer::new(self.build()?).await
    }
}

impl Producer {
    /// A settings builder; finish with
    /// [`create`](ProducerConfigBuilder::create).
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfig::builder()
    }

    /// Bootstrap, get a producer id when idempotence is on and the broker
    /// supports it, and start the producer's task.
    pub async fn new(config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let backoff = Backoff {
            initial: config.retry_backoff,
            max: config.retry_backoff_max.max(config.retry_backoff),
            ..Backoff::default()
        };
        let pool = Pool::bootstrap(PoolConfig {
            bootstrap: config.bootstrap_servers.clone(),
            connection: ConnectionConfig {
                client_id: Some(config.client_id.clone()),
                request_timeout: config.request_timeout,
                max_in_flight: config.max_in_flight.max(1) + 4,
                security: config.security.resolve()?,
                ..ConnectionConfig::default()
            },
            bootstrap_timeout: config.max_block.min(Duration::from_secs(30)),
            metadata_max_age: config.metadata_max_age,
            reconnect_backoff: backoff,
            retry: RetryPolicy {
                backoff,
                deadline: config.max_block.min(config.request_timeout),
            },
            allow_auto_topic_creation: config.allow_auto_create_topics,
            ..PoolConfig::default()
        })
        .await?;
        let id = if config.enable_idempotence {
            match init_producer_id(&pool, None).await {
                Ok(Some(id)) => Some(id),
                Ok(None) if config.idempotence_required => {
                    return Err(ProduceError::Fatal(
                        "enable.idempotence=true but the broker does not support InitProducerId"
                            .to_owned(),
                    ));
                }
                Err(e) if config.idempotence_required => return Err(e.into()),
                other => {
                    tracing::debug!(?other, "idempotence off: no producer id from the broker");
                    None
                }
            }
        } else {
            None
        };
        let config = Arc::new(config);
        let (tx, rx) = mpsc::unbounded_channel();
        let memory = Arc::new(Semaphore::new(config.buffer_memory));
        let shared = Shared::new(&config, Arc::clone(&memory));
        let sender = Sender::new(config.clone(), pool.clone(), Arc::clone(&shared), id);
        tokio::spawn(sender.run(rx));
        Ok(Producer {
            shared,
            tx,
            pool,
            memory,
            producer_id: id.map(|ProducerId { id, epoch }| (id, epoch)),
            config,
        })
    }

    /// Queue `record`; the future resolves when the broker acknowledges it.
    /// Waits up to `max.block.ms` for the topic's metadata and for room in
    /// `buffer.memory`, then fails with [`ProduceError::MaxBlockExceeded`].
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let size = estimate(&record);
        for (max, limit) in [
            (self.config.max_request_size, "max.request.size"),
            (self.config.buffer_memory, "buffer.memory"),
        ] {
            if size > max {
                return Err(ProduceError::RecordTooLarge { size, max, limit });
            }
        }
        // A task that is gone (it panicked) would never complete the record.
        if self.tx.is_closed() {
            return Err(ProduceError::Closed);
        }
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let generation = self.pool.metadata_generation();
        // The usual case: the partition count known for this generation of
        // the metadata and room in buffer.memory at once. Then a record
        // costs no deadline, no timer, no await and one lock.
        match self.memory.try_acquire_many(permits) {
            Ok(permit) => {
                let timestamp = record.timestamp.unwrap_or_else(now_ms);
                let mut front = self.shared.lock();
                if let Some(n) = front.partition_count(generation, &record.topic) {
                    check_partition(&record, n)?;
                    let done = front.take(&record, timestamp, n, permit);
                    drop(front);
                    return Ok(self.shared.woken(done));
                }
            }
            Err(tokio::sync::TryAcquireError::Closed) => return Err(ProduceError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {}
        }
        self.send_waiting(record, size, permits).await
    }

    /// [`send`](Self::send) when it must look up the topic or wait for
    /// room, within `max.block.ms`.
    async fn send_waiting(
        &self,
        record: ProducerRecord,
        size: usize,
        permits: u32,
    ) -> Result<DeliveryFuture> {
        let started = Instant::now();
        let deadline = started + self.config.max_block;
        let (num_partitions, generation) = self.partitions(&record.topic, deadline).await?;
        check_partition(&record, num_partitions)?;
        // Room in buffer.memory at once is the usual case: no timer for it.
        let permit = match self.memory.try_acquire_many(permits) {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(ProduceError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let wait = self.memory.acquire_many(permits);
                tokio::time::timeout(left, wait)
                    .await
                    .map_err(|_| ProduceError::MaxBlockExceeded {
                        what: format!("{size} bytes of buffer.memory"),
                        waited: started.elapsed(),
                    })?
                    .map_err(|_| ProduceError::Closed)?
            }
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let mut front = self.shared.lock();
        front.set_partition_count(generation, &record.topic, num_partitions);
        let done = front.take(&record, timestamp, num_partitions, permit);
        drop(front);
        Ok(self.shared.woken(done))
    }

    /// The topic's partition count, waiting for it to appear in the
    /// metadata until `deadline` (Java's `waitOnMetadata`), and the
    /// generation of the metadata it was read from.
    async fn partitions(&self, topic: &str, deadline: Instant) -> Result<(i32, u64)> {
        let mut attempt = 0u32;
        loop {
            let generation = self.pool.metadata_generation();
            let m = self.pool.cached_metadata();
            let code = match m.topic(topic) {
                Some(t) if t.error.is_ok() && !t.partitions.is_empty() => {
                    let n = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
                    return Ok((n, generation));
                }
                Some(t) if !t.error.is_ok() => t.error,
                _ => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if attempt > 0 && left.is_zero() {
                return Err(ProduceError::UnknownTopic {
                    topic: topic.to_owned(),
                    code,
                });
            }
            if attempt > 0 {
                let pause = Duration::from_millis(50u64 << attempt.min(5)).min(left);
                tokio::time::sleep(pause).await;
            }
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let topics = [topic];
            let refresh = self.pool.refresh_metadata(&topics);
            if let Ok(Err(error)) = tokio::time::timeout(left, refresh).await {
                tracing::debug!(%error, topic, "metadata for send failed");
            }
        }
    }

    /// Wait until every record sent before this call is acknowledged or
    /// has failed, as Java's `flush`: records sent while it waits are sent
    /// without lingering but not waited for. Linger is cut short.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        // Every record taken before this point is numbered below the mark.
        let mark = self.shared.lock().records;
        self.tx
            .send(Msg::Flush(mark, tx))
            .map_err(|_| ProduceError::Closed)?;
        rx.await.map_err(|_| ProduceError::Closed)
    }

    /// Deliver what is queued, waiting up to `timeout`, then stop. Records
    /// not delivered by then fail with [`ProduceError::Closed`] and the
    /// error says how long was waited.
    pub async fn close(self, timeout: Duration) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Close(tx))
            .map_err(|_| ProduceError::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ProduceError::Closed),
            Err(_) => Err(ProduceError::MaxBlockExceeded {
                what: "close to deliver the queued records".to_owned(),
                waited: timeout,
            }),
        }
    }

    /// Bytes of `buffer.memory` held by records not yet completed.
    pub fn buffered_bytes(&self) -> usize {
        self.config
            .buffer_memory
            .saturating_sub(self.memory.available_permits())
    }

    /// The idempotent producer id and epoch this producer started with,
    /// `None` when idempotence is off.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        self.producer_id
    }

    /// The settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// The broker pool (metadata, connections) the producer uses.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// An explicit partition must exist.
fn check_partition(record: &ProducerRecord, num_partitions: i32) -> Result<()> {
    match record.partition {
        Some(p) if !(0..num_partitions).contains(&p) => Err(ProduceError::InvalidPartition {
            topic: record.topic.to_string(),
            partition: p,
            partitions: usize::try_from(num_partitions).unwrap_or(0),
        }),
        _ => Ok(()),
    }
}

/// What a record counts against `max.request.size` and `buffer.memory`.
fn estimate(r: &ProducerRecord) -> usize {
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(0, |b| b.len());
    let headers: usize = r
        .headers
        .iter()
        .map(|h| h.key.len() + len(&h.value) + 10)
        .sum();
    BATCH_OVERHEAD + RECORD_OVERHEAD + len(&r.key) + len(&r.value) + headers
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
