//! One-shot questions a fixture puts to a node over a blocking
//! connection: which brokers it lists, who leads a topic's partitions,
//! whether a leader serves a partition.

use std::time::Duration;

use krust_codec::KString;
use krust_codec::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::{ListOffsetsRequest, MetadataRequest};

use crate::{Error, Result, raw};

/// The broker ids `addr` lists in Metadata.
pub(crate) fn listed_brokers(addr: &str) -> Result<Vec<i32>> {
    let mut conn = raw::Connection::connect_with_timeout(addr, Duration::from_secs(2))?;
    let version = conn.version_for::<MetadataRequest>()?;
    let response = conn.send(version, &MetadataRequest::default())?;
    Ok(response.brokers.iter().map(|b| b.node_id).collect())
}

/// One partition as a node's Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The partition.
    pub partition: i32,
    /// Its leader (`-1` while there is none).
    pub leader: i32,
    /// Its leader epoch.
    pub leader_epoch: i32,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Every replica.
    pub replicas: Vec<i32>,
}

/// Every partition of `topic` as `addr` sees it.
pub(crate) fn partitions(addr: &str, topic: &str) -> Result<Vec<PartitionState>> {
    let mut conn = raw::Connection::connect_with_timeout(addr, Duration::from_secs(2))?;
    let version = conn.version_for::<MetadataRequest>()?;
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(KString::from(topic)),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let response = conn.send(version, &request)?;
    let t = response
        .topics
        .first()
        .ok_or_else(|| Error::new(format!("{addr}: no topic in the Metadata answer")))?;
    if t.error_code != 0 {
        return Err(Error::new(format!(
            "{addr}: Metadata for {topic}: error {}",
            t.error_code
        )));
    }
    Ok(t.partitions
        .iter()
        .map(|p| PartitionState {
            partition: p.partition_index,
            leader: p.leader_id,
            leader_epoch: p.leader_epoch,
            isr: p.isr_nodes.clone(),
            replicas: p.replica_nodes.clone(),
        })
        .collect())
}

/// `(partition, leader)` of `topic` as `addr` sees it.
pub(crate) fn leaders(addr: &str, topic: &str) -> Result<Vec<(i32, i32)>> {
    Ok(partitions(addr, topic)?
        .into_iter()
        .map(|p| (p.partition, p.leader))
        .collect())
}

/// Whether the broker at `addr` answers ListOffsets(latest) for the
/// partition without error, i.e. leads it and serves it.
pub(crate) fn serves(addr: &str, topic: &str, partition: i32) -> Result<()> {
    let mut conn = raw::Connection::connect_with_timeout(addr, Duration::from_secs(2))?;
    let version = conn.version_for::<ListOffsetsRequest>()?;
    let request = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: KString::from(topic),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = conn.send(version, &request)?;
    let code = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.error_code)
        .ok_or_else(|| Error::new(format!("{addr}: empty ListOffsets answer")))?;
    if code == 0 {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{addr}: ListOffsets {topic}-{partition}: error {code}"
        )))
    }
}
