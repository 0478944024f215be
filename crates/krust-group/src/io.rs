//! The inputs and outputs of the membership state machine
//! ([`crate::membership::Membership`]): its settings, states, timers, the
//! requests it asks the driver to send and the replies it is fed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use krust_codec::Uuid;
use krust_codec::generated::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use krust_net::Backoff;

pub use crate::assignor::{MemberSubscription, RebalanceProtocol};
use crate::events::GroupEvent;
use crate::tp::TopicPartition;
/// `group.protocol`: which group protocol a member speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// JoinGroup / SyncGroup / Heartbeat, assignment by the group leader.
    #[default]
    Classic,
    /// KIP-848's ConsumerGroupHeartbeat, assignment by the broker
    /// (Kafka 4.0 and later).
    Consumer,
}

/// The settings of one member.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// `group.protocol`.
    pub group_protocol: GroupProtocol,
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: static membership (KIP-345) when set.
    pub group_instance_id: Option<String>,
    /// The topics subscribed to.
    pub topics: Vec<String>,
    /// The assignors offered, by preference, with their protocol; the group
    /// is cooperative only when every one of them is.
    pub assignors: Vec<(String, RebalanceProtocol)>,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `rebalance.timeout.ms` (Java: `max.poll.interval.ms`).
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: when set, the member leaves the group if the
    /// application does not poll within it.
    pub max_poll_interval: Option<Duration>,
    /// How long the application may take to finish revoked partitions.
    pub revoke_budget: Duration,
    /// Delays between retries (`retry.backoff.ms` / `retry.backoff.max.ms`).
    pub retry_backoff: Backoff,
    /// `client.rack`, sent in the subscription (KIP-881).
    pub rack_id: Option<String>,
    /// `metadata.max.age.ms`: how often the leader refreshes the metadata
    /// of the subscribed topics to see whether their partition counts
    /// changed since it assigned (then it rejoins).
    pub metadata_max_age: Duration,
    /// `group.remote.assignor` (consumer protocol only): the broker-side
    /// assignor (`uniform`, `range`); `None` leaves the broker's default.
    pub remote_assignor: Option<String>,
    /// A broker-side subscription pattern (consumer protocol only, RE2
    /// syntax, whole-name match: Java's `SubscriptionPattern`), resolved by
    /// the coordinator against every topic; added to `topics`.
    pub topic_regex: Option<String>,
}

impl MembershipConfig {
    /// Defaults of the Java client for `group_id` subscribing to `topics`.
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> Self {
        MembershipConfig {
            group_protocol: GroupProtocol::Classic,
            group_id: group_id.into(),
            group_instance_id: None,
            topics,
            assignors: vec![("range".into(), RebalanceProtocol::Eager)],
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: None,
            revoke_budget: Duration::from_secs(10),
            retry_backoff: Backoff::default(),
            rack_id: None,
            metadata_max_age: Duration::from_secs(300),
            remote_assignor: None,
            topic_regex: None,
        }
    }

    /// The protocol of this member: cooperative when every assignor is.
    pub fn protocol(&self) -> RebalanceProtocol {
        let all = self
            .assignors
            .iter()
            .all(|(_, p)| *p == RebalanceProtocol::Cooperative);
        if all && !self.assignors.is_empty() {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }
}

/// Where the member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started, or left after a poll timeout.
    Unjoined,
    /// Looking up the coordinator (or waiting to retry the lookup).
    FindingCoordinator,
    /// Waiting for the application to finish revoked partitions.
    Revoking,
    /// JoinGroup in flight or about to be sent.
    Joining,
    /// Leader: waiting for the assignor's result.
    Assigning,
    /// SyncGroup in flight.
    Syncing,
    /// In the group with an assignment; heartbeating.
    Stable,
    /// LeaveGroup in flight.
    Leaving,
    /// Left for good (closed).
    Left,
    /// Stopped by a fatal error.
    Fatal,
}

/// A timer the driver keeps for the machine; setting one replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// Send the next heartbeat.
    Heartbeat,
    /// No heartbeat succeeded within `session.timeout.ms`.
    Session,
    /// Retry after a backoff (coordinator lookup, JoinGroup).
    Retry,
    /// The application's revoke budget is up.
    Revoke,
    /// `max.poll.interval.ms` passed without a poll.
    Poll,
    /// The leader's metadata refresh (`metadata.max.age.ms`) is due.
    Metadata,
    /// The last-resort deadline of the JoinGroup, SyncGroup or LeaveGroup
    /// awaited, or of the leader's assignment: `rebalance.timeout.ms` +
    /// `session.timeout.ms`, past which the coordinator has given up on the
    /// member anyway. Replies normally come (or time out in the
    /// connection) well before; this is for the ones that never do.
    Reply,
}

/// Why the leader has no assignment to send.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AssignFailure {
    /// The metadata of the subscribed topics could not be read: retriable
    /// causes (a broker down, a timeout) make the leader rejoin after a
    /// backoff, others end the membership.
    Metadata(krust_net::Error),
    /// The assignor refused, or the group chose one this member does not
    /// offer: the membership ends.
    Assignor(String),
}

/// A request for the coordinator.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Request {
    /// JoinGroup.
    Join(JoinGroupRequest),
    /// SyncGroup.
    Sync(SyncGroupRequest),
    /// Heartbeat.
    Heartbeat(HeartbeatRequest),
    /// LeaveGroup (both the v0-2 `member_id` and the v3+ `members` are
    /// filled; the driver keeps the one of the negotiated version).
    Leave(LeaveGroupRequest),
    /// ConsumerGroupHeartbeat (KIP-848): joining, heartbeating, acking an
    /// assignment and leaving are all this one request.
    ConsumerHeartbeat(ConsumerGroupHeartbeatRequest),
}

/// The coordinator's reply to a [`Request`].
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// JoinGroup.
    Join(JoinGroupResponse),
    /// SyncGroup.
    Sync(SyncGroupResponse),
    /// Heartbeat.
    Heartbeat(HeartbeatResponse),
    /// LeaveGroup.
    Leave(LeaveGroupResponse),
    /// ConsumerGroupHeartbeat.
    ConsumerHeartbeat(ConsumerGroupHeartbeatResponse),
}

/// Assignments computed by the leader, by member id.
pub type Assignments = BTreeMap<String, BTreeSet<TopicPartition>>;

/// What the machine is told.
#[derive(Debug)]
pub enum Input {
    /// The application wants to be in the group.
    Start,
    /// The application closes the member (revoke, LeaveGroup, stop).
    Close,
    /// The application polled (resets `max.poll.interval.ms`).
    Poll,
    /// The application finished the partitions of the last `Revoked`.
    RevokeDone,
    /// The coordinator lookup finished.
    Coordinator(Result<i32, krust_net::Error>),
    /// The reply to the request sent with `seq`, or why none came.
    Reply {
        /// The `seq` of the [`Action::Send`].
        seq: u64,
        /// The reply.
        reply: Result<Reply, krust_net::Error>,
    },
    /// The leader's assignor finished for `generation`.
    Assignment {
        /// The generation of the [`Action::Assign`].
        generation: i32,
        /// The assignments, or why there are none.
        result: Result<Assignments, AssignFailure>,
    },
    /// A task the driver ran for the machine panicked; what it owed (a
    /// reply, an assignment) will never come.
    Panicked {
        /// What it was doing (e.g. `the assignor "x"`).
        task: String,
        /// The panic's message.
        message: String,
    },
    /// A timer fired.
    Timer(TimerKind),
    /// The partition count of each subscribed topic the metadata holds: the
    /// snapshot the leader assigns with (while assigning), or a later
    /// refresh to compare with it (Java's metadata snapshot check).
    Metadata(BTreeMap<String, i32>),
    /// The names of the topic ids of an [`Action::ResolveTopicIds`] that
    /// the metadata knows (consumer protocol: assignments name topics by
    /// id); ids it does not know are left out.
    TopicNames(BTreeMap<Uuid, String>),
}

/// What the driver must do.
#[derive(Debug)]
pub enum Action {
    /// Look up the group's coordinator, then report with [`Input::Coordinator`].
    FindCoordinator,
    /// Forget the cached coordinator.
    InvalidateCoordinator,
    /// Send `request` to the coordinator; report with [`Input::Reply`].
    Send {
        /// Identifies the reply.
        seq: u64,
        /// The request.
        request: Request,
    },
    /// Run the assignor `protocol` over `members`; report with
    /// [`Input::Assignment`].
    Assign {
        /// The generation being assigned.
        generation: i32,
        /// The assignor the coordinator chose.
        protocol: String,
        /// Every member and its subscription.
        members: Vec<MemberSubscription>,
    },
    /// Refresh the metadata of `topics`; report with [`Input::Metadata`].
    RefreshMetadata {
        /// The subscribed topics.
        topics: Vec<String>,
    },
    /// Look up the names of these topic ids in the metadata (refreshing
    /// it for ids not cached); report with [`Input::TopicNames`].
    ResolveTopicIds {
        /// The ids assigned but not named yet.
        ids: Vec<Uuid>,
    },
    /// Hand an event to the application.
    Emit(GroupEvent),
    /// Arm (`Some`) or disarm (`None`) a timer.
    Timer(TimerKind, Option<Instant>),
    /// The machine is done (left or fatal); the driver may stop.
    Stop,
}
