//! Tests of the fetch module: the session state machine, record decoding,
//! and a round trip against a real broker (Tansu).

mod decode;
mod session;
mod tansu;

use krust_group::TopicPartition;

use super::FetchTarget;

fn target(topic: &str, partition: i32, offset: i64) -> FetchTarget {
    FetchTarget {
        tp: TopicPartition::new(topic, partition),
        offset,
        leader_epoch: Some(3),
    }
}
