//! ListOffsets (interface stand-in; the implementation moves here next).
#![allow(missing_docs)]

use std::collections::BTreeMap;

use krust_group::TopicPartition;
use krust_net::{Pool, RetryPolicy};

use crate::fetch::IsolationLevel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    Timestamp(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffset {
    pub offset: Option<i64>,
}

pub async fn list_offsets(
    _pool: &Pool,
    _asked: &[(TopicPartition, OffsetSpec)],
    _isolation: IsolationLevel,
    _retry: &RetryPolicy,
) -> Result<BTreeMap<TopicPartition, ListedOffset>, krust_net::Error> {
    Ok(BTreeMap::new())
}
