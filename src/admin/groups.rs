//! Consumer groups: list them (ListGroups on every broker, each lists the
//! groups it coordinates) and describe them with their members and the
//! partitions each holds. A group of the consumer protocol (KIP-848) is
//! described by ConsumerGroupDescribe, a classic one by DescribeGroups with
//! its members' assignments decoded; groups are batched per coordinator,
//! as Java's admin client does.

use std::collections::BTreeSet;

use krust_codec::consumer_protocol::decode_assignment;
use krust_codec::generated::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, DescribeGroupsRequest,
    ListGroupsRequest,
};
use krust_codec::{ApiKey, ErrorCode, KString, Message};
use krust_group::TopicPartition;
use krust_net::{Connection, Error};
use tokio::task::JoinSet;

use super::Admin;

/// Which groups [`Admin::list_groups`] returns; empty lists mean all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    /// States as the broker names them (`Stable`, `Empty`,
    /// `PreparingRebalance`, ...), matched without regard to case
    /// (ListGroups v4+).
    pub states: Vec<String>,
    /// Group types: `classic`, `consumer` (ListGroups v5+, Kafka 3.8+).
    pub types: Vec<String>,
}

/// A group as ListGroups gives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer` for consumer groups (both protocols), else what the
    /// members use (`connect`, ...; empty for a group that only stores
    /// offsets).
    pub protocol_type: String,
    /// Its state, when the broker says (v4+).
    pub state: Option<String>,
    /// `classic` or `consumer`, when the broker says (v5+).
    pub group_type: Option<String>,
    /// The coordinator's broker id.
    pub coordinator: i32,
}

/// Which protocol a described group's members speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// JoinGroup / SyncGroup: the members assign.
    Classic,
    /// KIP-848: the broker assigns.
    Consumer,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The host the broker saw it connect from.
    pub host: String,
    /// The partitions it holds.
    pub assignment: BTreeSet<TopicPartition>,
    /// Its member epoch (consumer protocol only).
    pub epoch: Option<i32>,
}

/// A group, its state and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Which protocol it runs.
    pub kind: GroupKind,
    /// Its state as the broker names it (`Stable`, `Empty`, ...).
    pub state: String,
    /// The assignor: the protocol the classic members chose (`range`,
    /// `cooperative-sticky`, ...) or the broker's (`uniform`, `range`).
    pub assignor: String,
    /// The group epoch (consumer protocol only).
    pub epoch: Option<i32>,
    /// The coordinator's address.
    pub coordinator: String,
    /// Its members, by member id.
    pub members: Vec<GroupMember>,
}

/// The outcome for each group of a describe call, in request order.
pub type GroupResults = Vec<(String, Result<GroupDescription, Error>)>;

impl Admin {
    /// Every group of the cluster that `filter` lets through, sorted by id:
    /// ListGroups to every broker at once. A filter a broker's version
    /// cannot apply (types before v5, states before v4) is an
    /// [`Error::UnsupportedVersion`] naming ListGroups and the broker.
    pub async fn list_groups(&self, filter: &GroupFilter) -> Result<Vec<GroupListing>, Error> {
        let brokers: Vec<i32> = self.pool.metadata().await.brokers.keys().copied().collect();
        let mut calls = JoinSet::new();
        for id in brokers {
            let (admin, filter) = (self.clone(), filter.clone());
            calls.spawn(async move { admin.list_groups_of(id, &filter).await });
        }
        let mut all = Vec::new();
        while let Some(done) = calls.join_next().await {
            all.extend(joined(done)?);
        }
        all.sort();
        Ok(all)
    }

    async fn list_groups_of(
        &self,
        id: i32,
        filter: &GroupFilter,
    ) -> Result<Vec<GroupListing>, Error> {
        self.retry
            .run(
                ApiKey::ListGroups,
                |_| async {
                    let conn = self.pool.broker(id).await?;
                    let v =
                        conn.negotiate(ApiKey::ListGroups, ListGroupsRequest::VALID_VERSIONS)?;
                    let needs = if filter.types.is_empty() { 0 } else { 5 };
                    let needs = needs.max(if filter.states.is_empty() { 0 } else { 4 });
                    if v < needs {
                        return Err(Error::UnsupportedVersion {
                            api: ApiKey::ListGroups,
                            broker: Some(conn.addr().to_owned()),
                            ours: (needs, ListGroupsRequest::VALID_VERSIONS.1),
                            theirs: conn.api_versions().range(ApiKey::ListGroups),
                        });
                    }
                    let req = ListGroupsRequest {
                        states_filter: filter
                            .states
                            .iter()
                            .map(|s| KString::from(s.as_str()))
                            .collect(),
                        types_filter: filter
                            .types
                            .iter()
                            .map(|s| KString::from(s.as_str()))
                            .collect(),
                        ..Default::default()
                    };
                    let resp = conn.send_at(&req, v).await?;
                    let code = ErrorCode::from(resp.error_code);
                    if !code.is_ok() {
                        return Err(
                            Error::broker(ApiKey::ListGroups, code, None).from_broker(conn.addr())
                        );
                    }
                    Ok(resp
                        .groups
                        .into_iter()
                        .map(|g| GroupListing {
                            group_id: g.group_id.as_str().to_owned(),
                            protocol_type: g.protocol_type.as_str().to_owned(),
                            state: (v >= 4).then(|| g.group_state.as_str().to_owned()),
                            group_type: (v >= 5).then(|| g.group_type.as_str().to_owned()),
                            coordinator: id,
                        })
                        .collect())
                },
                |e| {
                    if e.invalidates_metadata() {
                        self.pool.invalidate();
                    }
                },
            )
            .await
    }

    /// Describe `groups`: each group's coordinator is looked up, and each
    /// coordinator gets one request for all its groups (ConsumerGroupDescribe
    /// first where the broker has it, DescribeGroups for the classic groups
    /// it does not describe). A group that does not exist is
    /// GROUP_ID_NOT_FOUND in its own result; the others are unaffected.
    pub async fn describe_groups(&self, groups: &[&str]) -> Result<GroupResults, Error> {
        let mut found = self
            .at_coordinators(groups, |conn, names| async move {
                describe_at(&conn, &names).await
            })
            .await?;
        Ok(groups
            .iter()
            .map(|g| {
                let r = found.remove(*g).unwrap_or_else(|| Err(not_found(g, "")));
                ((*g).to_owned(), r)
            })
            .collect())
    }
}

/// A call's result; a call that panicked panics here (nothing aborts them).
pub(super) fn joined<T>(done: Result<T, tokio::task::JoinError>) -> T {
    done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn not_found(group: &str, broker: &str) -> Error {
    let e = Error::broker(
        ApiKey::DescribeGroups,
        ErrorCode::GROUP_ID_NOT_FOUND,
        Some(&format!("group {group} does not exist")),
    );
    if broker.is_empty() {
        e
    } else {
        e.from_broker(broker)
    }
}

/// Describe `groups` at their coordinator `conn`.
async fn describe_at(
    conn: &Connection,
    groups: &[String],
) -> Result<Vec<(String, Result<GroupDescription, Error>)>, Error> {
    let mut out = Vec::new();
    let mut classic: Vec<String> = groups.to_vec();
    if let Ok(v) = conn.negotiate(
        ApiKey::ConsumerGroupDescribe,
        ConsumerGroupDescribeRequest::VALID_VERSIONS,
    ) {
        let req = ConsumerGroupDescribeRequest {
            group_ids: groups.iter().map(|g| KString::from(g.as_str())).collect(),
            ..Default::default()
        };
        let resp: ConsumerGroupDescribeResponse = conn.send_at(&req, v).await?;
        classic.clear();
        for g in resp.groups {
            let id = g.group_id.as_str().to_owned();
            match ErrorCode::from(g.error_code) {
                // Not a consumer-protocol group (or none at all): classic.
                ErrorCode::GROUP_ID_NOT_FOUND => classic.push(id),
                ErrorCode::NONE => out.push((id, Ok(consumer_group(conn, g)))),
                code => {
                    let message = g
                        .error_message
                        .map(|m| format!("group {id}: {}", m.as_str()));
                    let e = Error::broker(ApiKey::ConsumerGroupDescribe, code, message.as_deref())
                        .from_broker(conn.addr());
                    out.push((id, Err(e)));
                }
            }
        }
    }
    if classic.is_empty() {
        return Ok(out);
    }
    let v = conn.negotiate(
        ApiKey::DescribeGroups,
        DescribeGroupsRequest::VALID_VERSIONS,
    )?;
    let req = DescribeGroupsRequest {
        groups: classic.iter().map(|g| KString::from(g.as_str())).collect(),
        ..Default::default()
    };
    let resp = conn.send_at(&req, v).await?;
    for g in resp.groups {
        let id = g.group_id.as_str().to_owned();
        let code = ErrorCode::from(g.error_code);
        let dead = g.group_state.as_str() == "Dead" && g.members.is_empty();
        let r = if code == ErrorCode::GROUP_ID_NOT_FOUND || (code.is_ok() && dead) {
            Err(not_found(&id, conn.addr()))
        } else if !code.is_ok() {
            let message = g
                .error_message
                .map(|m| format!("group {id}: {}", m.as_str()));
            Err(
                Error::broker(ApiKey::DescribeGroups, code, message.as_deref())
                    .from_broker(conn.addr()),
            )
        } else {
            let consumer = g.protocol_type.as_str() == "consumer";
            Ok(GroupDescription {
                group_id: id.clone(),
                kind: GroupKind::Classic,
                state: g.group_state.as_str().to_owned(),
                assignor: g.protocol_data.as_str().to_owned(),
                epoch: None,
                coordinator: conn.addr().to_owned(),
                members: g
                    .members
                    .into_iter()
                    .map(|m| {
                        // Only consumer groups' assignments are the
                        // consumer protocol's; an undecodable one is shown
                        // empty rather than failing the group.
                        let assignment = if consumer {
                            decode_assignment(m.member_assignment.clone())
                                .map(|(_, a)| {
                                    a.assigned_partitions
                                        .iter()
                                        .flat_map(|t| {
                                            t.partitions
                                                .iter()
                                                .map(|p| TopicPartition::new(t.topic.as_str(), *p))
                                        })
                                        .collect()
                                })
                                .unwrap_or_default()
                        } else {
                            BTreeSet::new()
                        };
                        let who = [&m.member_id, &m.client_id, &m.client_host];
                        member(who, m.group_instance_id.as_ref(), assignment, None)
                    })
                    .collect(),
            })
        };
        out.push((id, r));
    }
    Ok(out)
}

fn consumer_group(
    conn: &Connection,
    g: krust_codec::generated::consumer_group_describe_response::DescribedGroup,
) -> GroupDescription {
    GroupDescription {
        group_id: g.group_id.as_str().to_owned(),
        kind: GroupKind::Consumer,
        state: g.group_state.as_str().to_owned(),
        assignor: g.assignor_name.as_str().to_owned(),
        epoch: Some(g.group_epoch),
        coordinator: conn.addr().to_owned(),
        members: g
            .members
            .into_iter()
            .map(|m| {
                let assignment = m
                    .assignment
                    .topic_partitions
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| TopicPartition::new(t.topic_name.as_str(), *p))
                    })
                    .collect();
                let who = [&m.member_id, &m.client_id, &m.client_host];
                member(
                    who,
                    m.instance_id.as_ref(),
                    assignment,
                    Some(m.member_epoch),
                )
            })
            .collect(),
    }
}

/// A member from what both describe responses give: member id, client id
/// and host, instance id, the partitions it holds, its epoch.
fn member(
    [id, client, host]: [&KString; 3],
    instance: Option<&KString>,
    assignment: BTreeSet<TopicPartition>,
    epoch: Option<i32>,
) -> GroupMember {
    GroupMember {
        member_id: id.as_str().to_owned(),
        instance_id: instance.map(|i| i.as_str().to_owned()),
        client_id: client.as_str().to_owned(),
        host: host.as_str().to_owned(),
        assignment,
        epoch,
    }
}
