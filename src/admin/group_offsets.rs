//! A group's offsets as an operator works with them: list them (many
//! groups per OffsetFetch where the broker allows, v8+), alter them
//! (OffsetCommit outside any generation: the broker takes it only while
//! the group has no members), delete them (OffsetDelete), and delete whole
//! groups or remove static members (LeaveGroup by instance id).

use std::collections::BTreeMap;

use krust_codec::generated::leave_group_request::MemberIdentity;
use krust_codec::generated::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use krust_codec::generated::offset_fetch_request::OffsetFetchRequestGroup;
use krust_codec::generated::{
    DeleteGroupsRequest, LeaveGroupRequest, OffsetDeleteRequest, OffsetFetchRequest,
};
use krust_codec::{ApiKey, ErrorCode, KString, Message};
use krust_group::offsets::{self as group_offsets, OffsetError};
use krust_group::{OffsetAndMetadata, TopicPartition};
use krust_net::{Connection, Error};

use super::Admin;

/// A group's committed offsets: every partition it committed.
pub type GroupOffsets = BTreeMap<TopicPartition, OffsetAndMetadata>;

impl Admin {
    /// The committed offsets of each of `groups`, in request order: one
    /// OffsetFetch per coordinator for all its groups (v8+), else one per
    /// group. A group that committed nothing (or does not exist) has none.
    pub async fn list_group_offsets(
        &self,
        groups: &[&str],
    ) -> Result<Vec<(String, Result<GroupOffsets, Error>)>, Error> {
        let mut found = self
            .at_coordinators(groups, |conn, names| async move {
                fetch_at(&conn, &names).await
            })
            .await?;
        Ok(groups
            .iter()
            .map(|g| {
                let r = found.remove(*g).unwrap_or_else(|| Ok(GroupOffsets::new()));
                ((*g).to_owned(), r)
            })
            .collect())
    }

    /// Set `group`'s offsets to `offsets`, as a commit outside any
    /// generation. Kafka accepts it only while the group has no active
    /// members; otherwise the broker's refusal comes back
    /// ([`OffsetError::Partitions`] or [`OffsetError::Request`] naming the
    /// group and the code).
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &GroupOffsets,
    ) -> Result<(), OffsetError> {
        group_offsets::commit_standalone(&self.pool, group, offsets, &self.retry).await
    }

    /// Delete `group`'s committed offsets of `partitions` (OffsetDelete):
    /// per partition, `Ok` or the broker's code (GROUP_SUBSCRIBED_TO_TOPIC
    /// while members consume the topic).
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<(), Error>)>, Error> {
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            topics
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        self.at_coordinator(group, |conn| {
            let (group, topics) = (group.to_owned(), topics.clone());
            async move { delete_offsets_at(&conn, &group, &topics).await }
        })
        .await
    }

    /// Delete `groups` (DeleteGroups per coordinator): per group, `Ok` or
    /// the broker's code (NON_EMPTY_GROUP while it has members,
    /// GROUP_ID_NOT_FOUND).
    pub async fn delete_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<(String, Result<(), Error>)>, Error> {
        let mut found = self
            .at_coordinators(groups, |conn, names| async move {
                delete_at(&conn, &names).await
            })
            .await?;
        Ok(groups
            .iter()
            .map(|g| {
                let r = found.remove(*g).unwrap_or(Ok(()));
                ((*g).to_owned(), r)
            })
            .collect())
    }

    /// Remove static members of `group` by their `group.instance.id`
    /// (LeaveGroup v3+ in their name), so their partitions move now rather
    /// than at their session's end: per instance id, `Ok` or the broker's
    /// code (UNKNOWN_MEMBER_ID for an id not in the group).
    pub async fn remove_static_members(
        &self,
        group: &str,
        instance_ids: &[&str],
    ) -> Result<Vec<(String, Result<(), Error>)>, Error> {
        let ids: Vec<String> = instance_ids.iter().map(|i| (*i).to_owned()).collect();
        self.at_coordinator(group, |conn| {
            let (group, ids) = (group.to_owned(), ids.clone());
            async move { leave_at(&conn, &group, &ids).await }
        })
        .await
    }
}

/// OffsetDelete of `group`'s offsets of `topics` at its coordinator.
async fn delete_offsets_at(
    conn: &Connection,
    group: &str,
    topics: &BTreeMap<String, Vec<i32>>,
) -> Result<Vec<(TopicPartition, Result<(), Error>)>, Error> {
    let v = conn.negotiate(ApiKey::OffsetDelete, OffsetDeleteRequest::VALID_VERSIONS)?;
    let req = OffsetDeleteRequest {
        group_id: KString::from(group),
        topics: topics
            .iter()
            .map(|(t, ps)| OffsetDeleteRequestTopic {
                name: KString::from(t.as_str()),
                partitions: ps
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition {
                        partition_index: *p,
                    })
                    .collect(),
            })
            .collect(),
    };
    let resp = conn.send_at(&req, v).await?;
    group_code(ApiKey::OffsetDelete, group, resp.error_code, None, conn)?;
    let mut out = Vec::new();
    for t in resp.topics {
        for p in t.partitions {
            let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
            let code = ErrorCode::from(p.error_code);
            let r = if code.is_ok() {
                Ok(())
            } else {
                Err(
                    Error::broker(ApiKey::OffsetDelete, code, Some(&format!("group {group}")))
                        .from_broker(conn.addr()),
                )
            };
            out.push((tp, r));
        }
    }
    Ok(out)
}

/// DeleteGroups of `groups` at their coordinator.
async fn delete_at(
    conn: &Connection,
    groups: &[String],
) -> Result<Vec<(String, Result<(), Error>)>, Error> {
    let v = conn.negotiate(ApiKey::DeleteGroups, DeleteGroupsRequest::VALID_VERSIONS)?;
    let req = DeleteGroupsRequest {
        groups_names: groups.iter().map(|g| KString::from(g.as_str())).collect(),
        ..Default::default()
    };
    Ok(conn
        .send_at(&req, v)
        .await?
        .results
        .into_iter()
        .map(|r| {
            let id = r.group_id.as_str().to_owned();
            let message = r.error_message.as_ref().map(|m| m.as_str());
            let outcome = group_code(ApiKey::DeleteGroups, &id, r.error_code, message, conn);
            (id, outcome)
        })
        .collect())
}

/// LeaveGroup of `group`'s static members `ids` at its coordinator.
async fn leave_at(
    conn: &Connection,
    group: &str,
    ids: &[String],
) -> Result<Vec<(String, Result<(), Error>)>, Error> {
    let v = conn.negotiate(ApiKey::LeaveGroup, (3, LeaveGroupRequest::VALID_VERSIONS.1))?;
    let req = LeaveGroupRequest {
        group_id: KString::from(group),
        members: ids
            .iter()
            .map(|i| MemberIdentity {
                group_instance_id: Some(KString::from(i.as_str())),
                reason: Some(KString::from("removed by krust admin")),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp = conn.send_at(&req, v).await?;
    group_code(ApiKey::LeaveGroup, group, resp.error_code, None, conn)?;
    Ok(resp
        .members
        .into_iter()
        .map(|m| {
            let id = m
                .group_instance_id
                .map(|i| i.as_str().to_owned())
                .unwrap_or_default();
            (
                id,
                group_code(ApiKey::LeaveGroup, group, m.error_code, None, conn),
            )
        })
        .collect())
}

/// `Ok` for no error, else the broker's error naming the API, the code,
/// the group (and the broker's message) and the broker.
fn group_code(
    api: ApiKey,
    group: &str,
    code: i16,
    message: Option<&str>,
    conn: &Connection,
) -> Result<(), Error> {
    let code = ErrorCode::from(code);
    if code.is_ok() {
        return Ok(());
    }
    let message = match message {
        Some(m) => format!("group {group}: {m}"),
        None => format!("group {group}"),
    };
    Err(Error::broker(api, code, Some(&message)).from_broker(conn.addr()))
}

/// The offsets of `groups` at their coordinator `conn`.
async fn fetch_at(
    conn: &Connection,
    groups: &[String],
) -> Result<Vec<(String, Result<GroupOffsets, Error>)>, Error> {
    let v = conn.negotiate(
        ApiKey::OffsetFetch,
        (2, OffsetFetchRequest::VALID_VERSIONS.1),
    )?;
    let mut out = Vec::new();
    if v >= 8 {
        let req = OffsetFetchRequest {
            groups: groups
                .iter()
                .map(|g| OffsetFetchRequestGroup {
                    group_id: KString::from(g.as_str()),
                    topics: None,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        for g in conn.send_at(&req, v).await?.groups {
            let id = g.group_id.as_str().to_owned();
            let rows = g.topics.iter().flat_map(|t| {
                let name = t.name.as_str();
                t.partitions.iter().map(move |p| {
                    (
                        name,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_ref(),
                    )
                })
            });
            let offsets = offsets_of(rows);
            let r =
                group_code(ApiKey::OffsetFetch, &id, g.error_code, None, conn).map(|()| offsets);
            out.push((id, r));
        }
        return Ok(out);
    }
    for g in groups {
        let req = OffsetFetchRequest {
            group_id: KString::from(g.as_str()),
            topics: None,
            ..Default::default()
        };
        let resp = conn.send_at(&req, v).await?;
        let rows = resp.topics.iter().flat_map(|t| {
            let name = t.name.as_str();
            t.partitions.iter().map(move |p| {
                (
                    name,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.as_ref(),
                )
            })
        });
        let offsets = offsets_of(rows);
        let r = group_code(ApiKey::OffsetFetch, g, resp.error_code, None, conn).map(|()| offsets);
        out.push((g.clone(), r));
    }
    Ok(out)
}

/// OffsetFetch's rows (topic, partition, offset, leader epoch, metadata)
/// as a group's offsets; offset -1 is "nothing committed", epoch -1 none.
fn offsets_of<'a>(
    rows: impl Iterator<Item = (&'a str, i32, i64, i32, Option<&'a KString>)>,
) -> GroupOffsets {
    rows.filter(|r| r.2 >= 0)
        .map(|(topic, partition, offset, leader_epoch, metadata)| {
            let mut o = OffsetAndMetadata::new(offset);
            o.leader_epoch = (leader_epoch >= 0).then_some(leader_epoch);
            o.metadata = metadata
                .map(|m| m.as_str().to_owned())
                .filter(|m| !m.is_empty());
            (TopicPartition::new(topic, partition), o)
        })
        .collect()
}
