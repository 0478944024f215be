//! Tests of the fetch module: the session state machine, record decoding,
//! the driver against a scripted session-keeping broker, and round trips
//! against real brokers (Tansu, then the other local ones).

mod brokers;
mod decode;
mod fake;
mod session;

use krust_group::TopicPartition;

use super::FetchTarget;

fn target(topic: &str, partition: i32, offset: i64) -> FetchTarget {
    FetchTarget {
        tp: TopicPartition::new(topic, partition),
        offset,
        leader_epoch: Some(3),
    }
}
