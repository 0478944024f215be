//! One Produce request: the batches the task drained for one broker,
//! encoded and sent on the connection the task holds to it, in drain
//! order.

use std::future::Future;
use std::task::Poll;

use krust_codec::ApiKey;
use krust_codec::generated::ProduceRequest;
use krust_codec::generated::produce_request::{PartitionProduceData, TopicProduceData};
use krust_net::{Connection, Error as NetError};
use tokio::sync::oneshot;

use crate::accumulator::Batch;
use crate::config::Acks;
use crate::sender::Event;

/// Produce versions krust speaks: v3 is the first with RecordBatch v2.
const PRODUCE_VERSIONS: (i16, i16) = (3, 11);

/// Keeps requests to one broker in drain order: wait for the previous
/// request to be queued on the connection, queue ours, then let the next
/// one go (dropping `queued` signals it, on every path).
pub(crate) struct Order {
    pub after: Option<oneshot::Receiver<()>>,
    pub queued: oneshot::Sender<()>,
}

/// One Produce request to `broker` carrying `batches`, on `conn` and no
/// other: when it is closed the request fails, unsent or with its outcome
/// unknown, and so does every later one on it (`link.rs`).
pub(crate) async fn produce(
    conn: Connection,
    broker: i32,
    mut batches: Vec<Batch>,
    acks: Acks,
    timeout_ms: i32,
    order: Order,
) -> Event {
    let Order { after, queued } = order;
    if let Some(after) = after {
        let _ = after.await;
    }
    let encoding = &mut batches;
    let result = async move {
        let version = conn.negotiate(ApiKey::Produce, PRODUCE_VERSIONS)?;
        let mut topic_data: Vec<TopicProduceData> = Vec::new();
        for b in encoding.iter_mut() {
            let records = b.encoded().map_err(|source| NetError::Encode {
                api: ApiKey::Produce,
                source,
            })?;
            let part = PartitionProduceData {
                index: b.tp.1,
                records: Some(records),
                ..Default::default()
            };
            match topic_data.iter_mut().find(|t| t.name.as_str() == &*b.tp.0) {
                Some(t) => t.partition_data.push(part),
                None => topic_data.push(TopicProduceData {
                    name: (&*b.tp.0).into(),
                    partition_data: vec![part],
                    ..Default::default()
                }),
            }
        }
        let req = ProduceRequest {
            transactional_id: None,
            acks: acks.wire(),
            timeout_ms,
            topic_data,
            ..Default::default()
        };
        if acks == Acks::None {
            conn.send_no_response(&req, version).await?;
            drop(queued);
            return Ok(None);
        }
        // The first poll puts the frame on the connection's queue (it has
        // room: max.in.flight is below its depth); then the next may go.
        let mut reply = std::pin::pin!(conn.send_at(&req, version));
        let first = std::future::poll_fn(|cx| Poll::Ready(reply.as_mut().poll(cx))).await;
        drop(queued);
        match first {
            Poll::Ready(r) => r.map(Some),
            Poll::Pending => reply.await.map(Some),
        }
    }
    .await;
    Event::Produced {
        broker,
        batches,
        result,
    }
}
