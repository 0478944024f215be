//! The async driver of the membership machine: one task owns the
//! [`Membership`], sends its requests to the coordinator through the
//! [`Pool`], keeps its timers and hands its events to the application.
//!
//! The task is returned to the caller, who spawns it (no hidden spawn);
//! dropping the [`GroupHandle`] stops it at once without a LeaveGroup (the
//! session timeout removes the member), and [`GroupHandle::close`] leaves
//! the group within a bound. Events go through a bounded channel; the task
//! queues them while the application is slow rather than stop heartbeating.
//! A task it runs for the machine that panics (a custom assignor) is not
//! dropped silently: the machine is told, and the membership ends with
//! [`GroupError::Panicked`](crate::GroupError::Panicked).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use krust_codec::generated::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, SyncGroupRequest,
};
use krust_codec::{ApiKey, KString, Message};
use krust_net::{Connection, CoordinatorType, Error, Lane, Pool};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::{Id, JoinError, JoinSet};

use crate::assignor::{Assignor, ClusterView};
use crate::events::GroupEvent;
use crate::io::GroupProtocol;
use crate::kip848::ConsumerMembership;
use crate::membership::{
    Action, AssignFailure, Assignments, Input, MemberSubscription, Membership, MembershipConfig,
    Reply, Request, State, TimerKind,
};
use crate::tp::TopicPartition;

/// What the application can see of the membership at any time (the
/// fields a commit carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSnapshot {
    /// The group id.
    pub group_id: String,
    /// The member id (empty before the first join).
    pub member_id: String,
    /// The generation of `owned` (-1: none).
    pub generation: i32,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// The partitions this member owns.
    pub owned: BTreeSet<TopicPartition>,
    /// The partitions being revoked (still committable until the
    /// application acks the revoke).
    pub revoking: BTreeSet<TopicPartition>,
    /// Where the member is.
    pub state: State,
}

impl MemberSnapshot {
    fn of(m: &Machine) -> Self {
        let (cfg, member_id, generation, owned, revoking, state) = match m {
            Machine::Classic(m) => (
                m.config(),
                m.member_id(),
                m.generation(),
                m.owned(),
                m.revoking(),
                m.state(),
            ),
            // Commits carry the member epoch where the classic protocol
            // has the generation (OffsetCommit v9's
            // GenerationIdOrMemberEpoch); -1 while not a member.
            Machine::Consumer(m) => (
                m.config(),
                m.member_id(),
                if m.epoch() > 0 { m.epoch() } else { -1 },
                m.owned(),
                m.revoking(),
                m.state(),
            ),
        };
        MemberSnapshot {
            group_id: cfg.group_id.clone(),
            member_id: member_id.to_owned(),
            generation,
            group_instance_id: cfg.group_instance_id.clone(),
            owned: owned.clone(),
            revoking: revoking.clone(),
            state,
        }
    }
}

/// The membership machine of the protocol the member speaks.
#[derive(Debug)]
enum Machine {
    Classic(Membership),
    Consumer(ConsumerMembership),
}

impl Machine {
    fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        match self {
            Machine::Classic(m) => m.handle(input, now),
            Machine::Consumer(m) => m.handle(input, now),
        }
    }

    fn state(&self) -> State {
        match self {
            Machine::Classic(m) => m.state(),
            Machine::Consumer(m) => m.state(),
        }
    }

    fn config(&self) -> &MembershipConfig {
        match self {
            Machine::Classic(m) => m.config(),
            Machine::Consumer(m) => m.config(),
        }
    }
}

/// `close` did not finish within its timeout (the task is stopped anyway).
#[derive(Debug, Clone, thiserror::Error)]
#[error("group {group}: close did not finish within {timeout:?}")]
pub struct CloseTimeout {
    /// The group id.
    pub group: String,
    /// The bound that passed.
    pub timeout: Duration,
}

/// Capacity of the event channel.
const EVENTS: usize = 32;

/// Create a member of `cfg.group_id` speaking `cfg.group_protocol`: under
/// the classic protocol offering `assignors` (by preference; they replace
/// `cfg.assignors`), under the consumer protocol (KIP-848) with the broker
/// assigning (`cfg.remote_assignor`); spawn [`GroupTask::run`] to start it.
pub fn group(
    pool: Pool,
    cfg: MembershipConfig,
    assignors: Vec<Arc<dyn Assignor>>,
) -> (GroupHandle, GroupTask) {
    let machine = match cfg.group_protocol {
        GroupProtocol::Classic => {
            Machine::Classic(Membership::with_assignors(cfg, assignors.clone()))
        }
        GroupProtocol::Consumer => Machine::Consumer(ConsumerMembership::new(cfg)),
    };
    let (cmd_tx, cmd_rx) = mpsc::channel(4);
    let (events_tx, events_rx) = mpsc::channel(EVENTS);
    let (snap_tx, snap_rx) = watch::channel(MemberSnapshot::of(&machine));
    let (ack_tx, ack_rx) = watch::channel(0u64);
    let poll = Arc::new(Notify::new());
    let handle = GroupHandle {
        group_id: machine.config().group_id.clone(),
        cmd: cmd_tx,
        events: events_rx,
        snapshot: snap_rx,
        revokes_seen: 0,
        ack: ack_tx,
        poll: poll.clone(),
    };
    let task = GroupTask {
        pool,
        machine,
        assignors,
        cmd: cmd_rx,
        events: events_tx,
        pending: VecDeque::new(),
        snapshot: snap_tx,
        ack: ack_rx,
        revokes_emitted: 0,
        poll,
        timers: HashMap::new(),
        inflight: JoinSet::new(),
        owed: HashMap::new(),
        stopped: false,
        closers: Vec::new(),
    };
    (handle, task)
}

enum Command {
    Close(oneshot::Sender<()>),
}

/// What woke the task.
enum Wake {
    Command(Option<Command>),
    Done(Result<(Id, Vec<Input>), JoinError>),
    Timers,
    Ack,
    Poll,
    Delivered,
}

/// The application's side of a group member.
#[derive(Debug)]
pub struct GroupHandle {
    group_id: String,
    cmd: mpsc::Sender<Command>,
    events: mpsc::Receiver<GroupEvent>,
    snapshot: watch::Receiver<MemberSnapshot>,
    revokes_seen: u64,
    ack: watch::Sender<u64>,
    poll: Arc<Notify>,
}

impl GroupHandle {
    /// The next event; `None` once the task has stopped and every event
    /// was delivered.
    pub async fn next_event(&mut self) -> Option<GroupEvent> {
        let e = self.events.recv().await?;
        if matches!(e, GroupEvent::Revoked { .. }) {
            self.revokes_seen += 1;
        }
        Some(e)
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_next_event(&mut self) -> Option<GroupEvent> {
        let e = self.events.try_recv().ok()?;
        if matches!(e, GroupEvent::Revoked { .. }) {
            self.revokes_seen += 1;
        }
        Some(e)
    }

    /// The application finished the partitions of every `Revoked` event
    /// received so far; the rebalance proceeds.
    pub fn revoke_done(&self) {
        self.ack.send_replace(self.revokes_seen);
    }

    /// The application polled (resets `max.poll.interval.ms`; after a poll
    /// timeout, rejoins).
    pub fn poll(&self) {
        self.poll.notify_one();
    }

    /// The membership as it is now.
    pub fn membership(&self) -> MemberSnapshot {
        self.snapshot.borrow().clone()
    }

    /// A receiver that sees every change of the membership.
    pub fn watch(&self) -> watch::Receiver<MemberSnapshot> {
        self.snapshot.clone()
    }

    /// Revoke what is owned (closing counts as the application's ack),
    /// send LeaveGroup (dynamic members), and stop, within `timeout`.
    pub async fn close(self, timeout: Duration) -> Result<(), CloseTimeout> {
        let (tx, rx) = oneshot::channel();
        let done = async {
            if self.cmd.send(Command::Close(tx)).await.is_ok() {
                let _ = rx.await;
            }
        };
        tokio::time::timeout(timeout, done)
            .await
            .map_err(|_| CloseTimeout {
                group: self.group_id.clone(),
                timeout,
            })
    }
}

/// The task that runs one member; spawn [`GroupTask::run`].
pub struct GroupTask {
    pool: Pool,
    machine: Machine,
    assignors: Vec<Arc<dyn Assignor>>,
    cmd: mpsc::Receiver<Command>,
    events: mpsc::Sender<GroupEvent>,
    pending: VecDeque<GroupEvent>,
    snapshot: watch::Sender<MemberSnapshot>,
    ack: watch::Receiver<u64>,
    revokes_emitted: u64,
    poll: Arc<Notify>,
    timers: HashMap<TimerKind, Instant>,
    inflight: JoinSet<Vec<Input>>,
    /// What each task in `inflight` does, to name it if it panics: what
    /// it owed the machine never comes, and the machine is told so.
    owed: HashMap<Id, String>,
    stopped: bool,
    closers: Vec<oneshot::Sender<()>>,
}

impl std::fmt::Debug for GroupTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupTask")
            .field("machine", &self.machine)
            .finish_non_exhaustive()
    }
}

impl GroupTask {
    /// Join the group and keep the membership until closed, fenced by a
    /// fatal error, or the handle is dropped.
    pub async fn run(mut self) {
        self.feed(Input::Start);
        loop {
            if self.stopped && self.pending.is_empty() {
                break;
            }
            let next = self.timers.values().min().copied();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let poll = self.poll.clone();
            let wake = tokio::select! {
                cmd = self.cmd.recv() => Wake::Command(cmd),
                Some(done) = self.inflight.join_next_with_id(), if !self.inflight.is_empty() => {
                    Wake::Done(done)
                }
                () = sleep, if !self.stopped => Wake::Timers,
                Ok(()) = self.ack.changed(), if !self.stopped => Wake::Ack,
                () = poll.notified(), if !self.stopped => Wake::Poll,
                permit = self.events.reserve(), if !self.pending.is_empty() => match permit {
                    Ok(p) => {
                        if let Some(e) = self.pending.pop_front() {
                            p.send(e);
                        }
                        Wake::Delivered
                    }
                    // The handle is gone.
                    Err(_) => Wake::Command(None),
                },
            };
            match wake {
                // The handle is gone: stop now, no LeaveGroup.
                Wake::Command(None) => break,
                Wake::Command(Some(Command::Close(tx))) => {
                    self.closers.push(tx);
                    self.feed(Input::Close);
                    // Closing is the application's ack of the last revoke.
                    if self.machine.state() == State::Revoking {
                        self.feed(Input::RevokeDone);
                    }
                    if self.stopped {
                        self.release_closers();
                    }
                }
                Wake::Done(Ok((id, inputs))) => {
                    self.owed.remove(&id);
                    for input in inputs {
                        self.feed(input);
                    }
                }
                Wake::Done(Err(e)) => {
                    let task = self.owed.remove(&e.id());
                    if let (Ok(payload), Some(task)) = (e.try_into_panic(), task) {
                        let message = panic_message(&*payload);
                        self.feed(Input::Panicked { task, message });
                    }
                    // Cancelled: aborted at Stop, nothing is owed.
                }
                Wake::Delivered => {}
                Wake::Timers => {
                    let now = Instant::now();
                    let due: Vec<TimerKind> = self
                        .timers
                        .iter()
                        .filter(|(_, at)| **at <= now)
                        .map(|(k, _)| *k)
                        .collect();
                    for k in due {
                        self.timers.remove(&k);
                        self.feed(Input::Timer(k));
                    }
                }
                Wake::Ack => {
                    let acked = *self.ack.borrow_and_update();
                    if acked >= self.revokes_emitted && self.machine.state() == State::Revoking {
                        self.feed(Input::RevokeDone);
                    }
                }
                Wake::Poll => self.feed(Input::Poll),
            }
        }
        self.release_closers();
    }

    fn release_closers(&mut self) {
        for tx in self.closers.drain(..) {
            let _ = tx.send(());
        }
    }

    fn feed(&mut self, input: Input) {
        let actions = self.machine.handle(input, Instant::now());
        for a in actions {
            self.apply(a);
        }
        let snap = MemberSnapshot::of(&self.machine);
        self.snapshot.send_if_modified(|s| {
            let changed = *s != snap;
            *s = snap;
            changed
        });
    }

    /// Run `task` for the machine; `what` names it if it panics.
    fn spawn(
        &mut self,
        what: String,
        task: impl std::future::Future<Output = Vec<Input>> + Send + 'static,
    ) {
        let id = self.inflight.spawn(task).id();
        self.owed.insert(id, what);
    }

    fn apply(&mut self, action: Action) {
        let group = self.machine.config().group_id.clone();
        match action {
            Action::FindCoordinator => {
                let pool = self.pool.clone();
                self.spawn("the coordinator lookup".into(), async move {
                    vec![Input::Coordinator(
                        pool.coordinator_id(CoordinatorType::Group, &group).await,
                    )]
                });
            }
            Action::InvalidateCoordinator => {
                self.pool
                    .invalidate_coordinator(CoordinatorType::Group, &group);
            }
            Action::Send { seq, request } => {
                let pool = self.pool.clone();
                let what = format!("the {} request", request_api(&request));
                self.spawn(what, async move {
                    let reply = send(&pool, &group, request).await;
                    vec![Input::Reply { seq, reply }]
                });
            }
            Action::Assign {
                generation,
                protocol,
                members,
            } => {
                let pool = self.pool.clone();
                let assignor = self
                    .assignors
                    .iter()
                    .find(|a| a.name() == protocol)
                    .cloned();
                let what = format!("the assignor {protocol:?}");
                self.spawn(what, async move {
                    let result = match assignor {
                        Some(a) => leader_assign(&pool, &*a, &members).await,
                        None => Err(AssignFailure::Assignor(format!(
                            "the group chose {protocol:?}, which this member does not offer"
                        ))),
                    };
                    match result {
                        // The snapshot first: the machine keeps it while assigning.
                        Ok((result, counts)) => vec![
                            Input::Metadata(counts),
                            Input::Assignment {
                                generation,
                                result: Ok(result),
                            },
                        ],
                        Err(e) => vec![Input::Assignment {
                            generation,
                            result: Err(e),
                        }],
                    }
                });
            }
            Action::RefreshMetadata { topics } => {
                let pool = self.pool.clone();
                self.spawn("the metadata refresh".into(), async move {
                    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                    match pool.refresh_metadata(&names).await {
                        Ok(meta) => vec![Input::Metadata(partition_counts(&meta, &names))],
                        Err(e) => {
                            // The next refresh tries again.
                            tracing::info!(%group, error = %e, "metadata refresh failed");
                            Vec::new()
                        }
                    }
                });
            }
            Action::ResolveTopicIds { ids } => {
                let pool = self.pool.clone();
                self.spawn("the topic id lookup".into(), async move {
                    vec![Input::TopicNames(topic_names(&pool, &group, &ids).await)]
                });
            }
            Action::Emit(e) => {
                if matches!(e, GroupEvent::Revoked { .. }) {
                    self.revokes_emitted += 1;
                }
                self.pending.push_back(e);
            }
            Action::Timer(kind, Some(at)) => {
                self.timers.insert(kind, at);
            }
            Action::Timer(kind, None) => {
                self.timers.remove(&kind);
            }
            Action::Stop => {
                self.stopped = true;
                self.timers.clear();
                self.inflight.abort_all();
                self.owed.clear();
                self.release_closers();
            }
        }
    }
}

/// The partition count of each of `topics` the metadata knows without error.
fn partition_counts(meta: &krust_net::ClusterMetadata, topics: &[&str]) -> BTreeMap<String, i32> {
    let mut counts = BTreeMap::new();
    for t in topics {
        let Some(info) = meta.topic(t) else { continue };
        let Ok(n) = i32::try_from(info.partitions.len()) else {
            continue;
        };
        if info.error.is_ok() && n > 0 {
            counts.insert((*t).to_owned(), n);
        }
    }
    counts
}

/// The names of `ids` from the cached metadata, refreshed for every topic
/// when one is missing (an assignment can name a topic this member has not
/// seen: a pattern's, or one just created).
async fn topic_names(
    pool: &Pool,
    group: &str,
    ids: &[krust_codec::Uuid],
) -> BTreeMap<krust_codec::Uuid, String> {
    let name_all = |meta: &krust_net::ClusterMetadata| -> BTreeMap<_, _> {
        ids.iter()
            .filter_map(|id| meta.topic_by_id(*id).map(|t| (*id, t.name.clone())))
            .collect()
    };
    let cached = name_all(&pool.cached_metadata());
    if cached.len() == ids.len() {
        return cached;
    }
    let all = match pool.all_topic_names().await {
        Ok(names) => names,
        Err(e) => {
            // The machine asks again with its next assignment or heartbeat.
            tracing::info!(%group, error = %e, "topic id lookup failed");
            return cached;
        }
    };
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    match pool.refresh_metadata(&names).await {
        Ok(meta) => name_all(&meta),
        Err(e) => {
            // The machine asks again with its next assignment or heartbeat.
            tracing::info!(%group, error = %e, "topic id lookup failed");
            cached
        }
    }
}

/// Run the assignor over fresh metadata; returns the assignments and the
/// partition counts they were computed with.
async fn leader_assign(
    pool: &Pool,
    assignor: &dyn Assignor,
    members: &[MemberSubscription],
) -> Result<(Assignments, BTreeMap<String, i32>), AssignFailure> {
    let topics: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter().map(|t| t.as_str()))
        .collect();
    let names: Vec<&str> = topics.iter().copied().collect();
    let meta = pool
        .refresh_metadata(&names)
        .await
        .map_err(AssignFailure::Metadata)?;
    let counts = partition_counts(&meta, &names);
    let mut view = ClusterView::new();
    for (t, n) in &counts {
        view = view.with_topic(t.as_str(), *n);
    }
    let result = assignor
        .assign(&view, members)
        .map_err(|e| AssignFailure::Assignor(e.to_string()))?;
    let result = result
        .into_iter()
        .map(|(m, ps)| (m, ps.into_iter().collect()))
        .collect();
    Ok((result, counts))
}

/// The message a panic carried (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn request_api(request: &Request) -> ApiKey {
    match request {
        Request::Join(_) => ApiKey::JoinGroup,
        Request::Sync(_) => ApiKey::SyncGroup,
        Request::Heartbeat(_) => ApiKey::Heartbeat,
        Request::Leave(_) => ApiKey::LeaveGroup,
        Request::ConsumerHeartbeat(_) => ApiKey::ConsumerGroupHeartbeat,
    }
}

/// Send one request to the group's coordinator at the highest common
/// version.
async fn send(pool: &Pool, group: &str, request: Request) -> Result<Reply, Error> {
    // JoinGroup alone on its lane: the coordinator holds it for the round,
    // and the group's commits and offset fetches must not wait behind it.
    let lane = match request {
        Request::Join(_) => Lane::Join,
        _ => Lane::Group,
    };
    let conn = pool
        .coordinator_lane(CoordinatorType::Group, group, lane)
        .await?;
    match request {
        Request::Join(r) => send_join(pool, &conn, &r).await.map(Reply::Join),
        Request::Sync(r) => {
            let v = conn.negotiate(ApiKey::SyncGroup, SyncGroupRequest::VALID_VERSIONS)?;
            conn.send_at(&r, v).await.map(Reply::Sync)
        }
        Request::Heartbeat(r) => {
            let v = conn.negotiate(ApiKey::Heartbeat, HeartbeatRequest::VALID_VERSIONS)?;
            conn.send_at(&r, v).await.map(Reply::Heartbeat)
        }
        Request::Leave(mut r) => {
            let v = conn.negotiate(ApiKey::LeaveGroup, LeaveGroupRequest::VALID_VERSIONS)?;
            if v >= 3 {
                r.member_id = KString::default();
            } else {
                r.members.clear();
            }
            conn.send_at(&r, v).await.map(Reply::Leave)
        }
        Request::ConsumerHeartbeat(r) => {
            // v1: client-generated member ids and SubscribedTopicRegex
            // (KIP-1082, Kafka 4.0); v0 was the 3.7-3.9 preview.
            let v = conn.negotiate(ApiKey::ConsumerGroupHeartbeat, (1, 1))?;
            conn.send_at(&r, v).await.map(Reply::ConsumerHeartbeat)
        }
    }
}

/// JoinGroup: the coordinator holds it until every member rejoined or the
/// rebalance timeout passed, so it waits `rebalance.timeout.ms` + 5 s (at
/// least the request timeout), as Java's `AbstractCoordinator` does, not
/// the request timeout alone: a JoinGroup held past the request timeout
/// would otherwise close the coordinator's connection and start over.
async fn send_join(
    pool: &Pool,
    conn: &Connection,
    req: &JoinGroupRequest,
) -> Result<JoinGroupResponse, Error> {
    let v = conn.negotiate(ApiKey::JoinGroup, JoinGroupRequest::VALID_VERSIONS)?;
    let rebalance = Duration::from_millis(u64::try_from(req.rebalance_timeout_ms).unwrap_or(0));
    let timeout = (rebalance + JOIN_MARGIN).max(pool.config().connection.request_timeout);
    conn.send_at_with_timeout(req, v, timeout).await
}

/// What a JoinGroup waits beyond the rebalance timeout (Java's
/// `JOIN_GROUP_TIMEOUT_LAPSE`).
const JOIN_MARGIN: Duration = Duration::from_secs(5);
