//! ListOffsets for many partitions at once: the logic lives in
//! [`krust_consumer::list_offsets`] (grouped per leader, concurrent,
//! retried after a metadata refresh); the admin client calls it with
//! read_uncommitted isolation and its own retry policy.

use krust_consumer::IsolationLevel;
use krust_net::Error;

use super::Admin;

pub use krust_consumer::list_offsets::{ListedOffset, OffsetSpec};

impl Admin {
    /// Look up offsets of many partitions at once, returned in request
    /// order. A partition may be asked several times (several timestamps).
    ///
    /// Partitions are grouped by their leader and each leader gets one
    /// ListOffsets request (one more per repeat of a partition), all sent
    /// concurrently. Retriable errors (a moved
    /// leader, an unknown partition, a lost connection) invalidate the
    /// metadata and the affected partitions are asked again until the retry
    /// deadline, after which [`Error::RetriesExhausted`] carries the last
    /// cause; other broker errors fail the call at once with an
    /// [`Error::Broker`] naming ListOffsets, the code, the topic and the
    /// partition.
    pub async fn list_offsets(
        &self,
        requests: &[(&str, i32, OffsetSpec)],
    ) -> Result<Vec<ListedOffset>, Error> {
        krust_consumer::list_offsets(
            &self.pool,
            requests,
            IsolationLevel::ReadUncommitted,
            &self.retry,
        )
        .await
    }
}
