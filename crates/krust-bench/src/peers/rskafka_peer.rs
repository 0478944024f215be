//! rskafka 0.6: no consumer groups and no batching, partitioning producer
//! of its own (its `BatchProducer` sits on one `PartitionClient`, one
//! partition). So, as the table did: produce sends caller-built
//! batches of ~1 MB, batch `k` to partition `k % partitions`, each
//! partition's batches one after the other and the partitions at once;
//! consume assigns every partition by hand (a `StreamConsumer` each, from
//! the earliest offset) and merges the streams.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::try_join_all;
use rskafka::chrono::DateTime;
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

use super::child::{self, Args, CONSUME_TIMEOUT, Delivered, Seen, Window};

/// Records per caller-built batch: ~1,000,000 bytes with the record
/// overhead, under the broker's default `message.max.bytes` (1 MiB).
pub fn batch_records(size: usize) -> usize {
    (1_000_000 / (size + 20)).max(1)
}

/// Now, as rskafka's record timestamp (its chrono has no clock feature).
fn now() -> DateTime<rskafka::chrono::Utc> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

async fn client(a: &Args) -> Result<Client, String> {
    ClientBuilder::new(vec![a.bootstrap.clone()])
        .build()
        .await
        .map_err(|e| e.to_string())
}

pub fn produce(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let value = child::value(a.size);
    let per_batch = batch_records(a.size) as u64;
    let batches = a.records.div_ceil(per_batch);
    let window = Window::start();
    let per_partition = rt.block_on(async {
        let client = client(a).await?;
        let sends = (0..a.partitions).map(|p| {
            let client = &client;
            let value = &value;
            async move {
                let pc = client
                    .partition_client(a.topic.as_str(), p, UnknownTopicHandling::Retry)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut offsets = Vec::new();
                for k in (p as u64..batches).step_by(a.partitions as usize) {
                    let n = per_batch.min(a.records - k * per_batch);
                    // Each record stamped when it is made, as every other
                    // client stamps each record at send.
                    let records: Vec<Record> = (0..n)
                        .map(|_| Record {
                            key: None,
                            value: Some(value.clone()),
                            headers: Default::default(),
                            timestamp: now(),
                        })
                        .collect();
                    let got = pc
                        .produce(records, Compression::NoCompression)
                        .await
                        .map_err(|e| format!("produce to partition {p}: {e}"))?;
                    offsets.extend(got);
                }
                Ok::<_, String>((p, offsets))
            }
        });
        try_join_all(sends).await
    })?;
    let measured = window.stop();
    let mut d = Delivered::default();
    for (p, offsets) in per_partition {
        for o in offsets {
            d.ok(p, o);
        }
    }
    d.finish("rskafka", a.records, measured)
}

pub fn consume(a: &Args) -> Result<(f64, f64), String> {
    let rt = child::runtime();
    let mut seen = Seen::new(a.size);
    let window = Window::start();
    rt.block_on(async {
        let client = client(a).await?;
        let mut streams = Vec::new();
        for p in 0..a.partitions {
            let pc = client
                .partition_client(a.topic.as_str(), p, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| e.to_string())?;
            let stream = StreamConsumerBuilder::new(Arc::new(pc), StartOffset::Earliest)
                .with_max_wait_ms(500)
                .build();
            streams.push(stream.map(move |r| (p, r)).boxed());
        }
        let mut all = futures::stream::select_all(streams);
        while seen.distinct < a.records {
            let next =
                tokio::time::timeout(CONSUME_TIMEOUT.saturating_sub(window.elapsed()), all.next());
            match next.await {
                Err(_) => {
                    return Err(format!(
                        "timeout after {CONSUME_TIMEOUT:?}: seen {}",
                        seen.summary()
                    ));
                }
                Ok(None) => return Err("every partition stream ended".to_owned()),
                Ok(Some((p, Err(e)))) => return Err(format!("partition {p}: {e}")),
                Ok(Some((p, Ok((r, _high_watermark))))) => {
                    seen.add(p, r.offset, r.record.value.as_ref().map_or(0, Vec::len));
                }
            }
        }
        Ok::<_, String>(())
    })?;
    let measured = window.stop();
    seen.finish("rskafka", a.records, measured)
}
