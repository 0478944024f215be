//! Topic-partitions and the by-topic grouping the wire formats use.

use std::collections::{BTreeMap, BTreeSet};

pub use crate::assignor::TopicPartition;

/// Group partitions by topic, topics and partitions in order.
pub fn by_topic<'a>(
    parts: impl IntoIterator<Item = &'a TopicPartition>,
) -> BTreeMap<&'a str, Vec<i32>> {
    let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in parts {
        out.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    for v in out.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    out
}

/// The set of partitions listed per topic.
pub fn from_topics<'a>(
    topics: impl IntoIterator<Item = (&'a str, &'a [i32])>,
) -> BTreeSet<TopicPartition> {
    topics
        .into_iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| TopicPartition::new(t, *p)))
        .collect()
}
