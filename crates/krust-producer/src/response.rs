//! Handling a Produce answer per partition, as the Java client's
//! `Sender.completeBatch` does: success resolves each record with its
//! partition, offset (base offset + index) and timestamp (the broker's
//! log-append time when it gives one); retriable errors put the batch back
//! in sequence order after a backoff, bounded by `delivery.timeout.ms` and
//! `retries`, with a metadata refresh when the error says the leader moved;
//! anything else fails the batch's records with the topic, partition, API
//! and Kafka error code.

use std::collections::HashMap;

use krust_codec::generated::ProduceResponse;
use krust_codec::{ApiKey, ErrorCode};
use krust_net::Error as NetError;

use crate::accumulator::Batch;
use crate::error::ProduceError;
use crate::idempotence::Verdict;
use crate::sender::Sender;

impl Sender {
    /// Handle the outcome of one Produce request.
    pub(crate) fn on_produced(
        &mut self,
        batches: Vec<Batch>,
        result: Result<Option<ProduceResponse>, NetError>,
    ) {
        let resp = match result {
            Ok(Some(resp)) => resp,
            Ok(None) => {
                // acks=0: written is all we will know.
                for b in batches {
                    b.succeed(-1, None);
                }
                return;
            }
            Err(e) => {
                let retriable = self.pool.note_error(&e);
                if e.invalidates_metadata() {
                    self.need_metadata = true;
                }
                for b in batches {
                    self.idem.on_transport_error(&b);
                    if retriable {
                        self.retry(b, ProduceError::Net(e.clone()));
                    } else {
                        self.idem.on_abandon(&b);
                        b.fail(ProduceError::Net(e.clone()));
                    }
                }
                return;
            }
        };
        let mut answers = HashMap::new();
        for t in &resp.responses {
            for p in &t.partition_responses {
                answers.insert((t.name.as_str(), p.index), p);
            }
        }
        for b in batches {
            let Some(p) = answers.get(&(&*b.tp.0, b.tp.1)).copied() else {
                // A reply that leaves the partition out: try again.
                self.idem.on_transport_error(&b);
                let e = self.broker_error(&b, ErrorCode::UNKNOWN_SERVER_ERROR, None);
                self.retry(b, e);
                continue;
            };
            let code = ErrorCode::from(p.error_code);
            let message = p.error_message.as_ref().map(|m| m.as_str().to_owned());
            match self.idem.on_answer(&b, code, p.log_start_offset) {
                Verdict::Success(offset_known) => {
                    let base = if offset_known { p.base_offset } else { -1 };
                    let append_time = (p.log_append_time_ms >= 0).then_some(p.log_append_time_ms);
                    b.succeed(base, append_time);
                }
                Verdict::Retry | Verdict::ResetAndRetry => {
                    if code.invalidates_metadata() {
                        self.pool.invalidate();
                        self.need_metadata = true;
                    }
                    tracing::debug!(topic = %b.tp.0, partition = b.tp.1, %code, "retrying batch");
                    let e = self.broker_error(&b, code, message);
                    self.retry(b, e);
                }
                Verdict::Fail => {
                    self.idem.on_abandon(&b);
                    let e = self.broker_error(&b, code, message);
                    if code == ErrorCode::PRODUCER_FENCED {
                        b.fail(e.clone());
                        self.set_fatal(e);
                    } else {
                        b.fail(e);
                    }
                }
            }
        }
    }

    fn broker_error(&self, b: &Batch, code: ErrorCode, message: Option<String>) -> ProduceError {
        ProduceError::Broker {
            topic: b.tp.0.to_string(),
            partition: b.tp.1,
            api: ApiKey::Produce,
            code,
            message,
        }
    }
}
