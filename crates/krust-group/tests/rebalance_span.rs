//! One tracing span per rebalance: opened when the member starts to (re)join,
//! carrying group, member id, generation and protocol, and closed with its
//! duration (a debug event) when the member reaches Stable. Checked on the
//! sans-io machine with constructed replies, and on every broker with
//! classic groups (Apache Kafka 4.4.0 first, the node this binary shares).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use krust_codec::consumer_protocol::{self, AssignedPartitions, Assignment};
use krust_codec::generated::{HeartbeatResponse, JoinGroupResponse, SyncGroupResponse};
use krust_codec::{ErrorCode, KString};
use krust_group::membership::{Action, Input, Reply, State, TimerKind};
use krust_group::{Membership, MembershipConfig};
use krust_testkit::{Capability, unique};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Default)]
struct Seen {
    /// Span id to (name, fields).
    spans: BTreeMap<u64, (String, BTreeMap<String, String>)>,
    /// (parent span id, message, fields) of every event.
    events: Vec<(Option<u64>, BTreeMap<String, String>)>,
}

struct Capture {
    seen: Arc<Mutex<Seen>>,
    next: AtomicU64,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        self.seen
            .lock()
            .unwrap()
            .spans
            .insert(id, (span.metadata().name().to_owned(), fields));
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut seen = self.seen.lock().unwrap();
        if let Some((_, fields)) = seen.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let parent = event.parent().map(Id::into_u64);
        self.seen.lock().unwrap().events.push((parent, fields));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn assignment(ps: &[i32]) -> Bytes {
    let a = Assignment {
        assigned_partitions: vec![AssignedPartitions {
            topic: KString::from_static("t"),
            partitions: ps.to_vec(),
        }],
        user_data: None,
    };
    consumer_protocol::encode_assignment(&a, 3).unwrap()
}

fn last_seq(actions: &[Action]) -> u64 {
    actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::Send { seq, .. } => Some(*seq),
            _ => None,
        })
        .expect("a request")
}

fn join(m: &mut Membership, seq: u64, generation: i32, now: Instant) -> Vec<Action> {
    m.handle(
        Input::Reply {
            seq,
            reply: Ok(Reply::Join(JoinGroupResponse {
                generation_id: generation,
                protocol_name: Some(KString::from_static("range")),
                leader: KString::from_static("other"),
                member_id: KString::from_static("m1"),
                ..Default::default()
            })),
        },
        now,
    )
}

fn sync(m: &mut Membership, seq: u64, now: Instant) -> Vec<Action> {
    m.handle(
        Input::Reply {
            seq,
            reply: Ok(Reply::Sync(SyncGroupResponse {
                assignment: assignment(&[0, 1]),
                ..Default::default()
            })),
        },
        now,
    )
}

#[test]
fn each_rebalance_has_a_span_closed_with_its_duration_at_stable() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sub = Capture {
        seen: seen.clone(),
        next: AtomicU64::new(0),
    };
    tracing::subscriber::with_default(sub, || {
        let mut c = MembershipConfig::new("g-span", vec!["t".into()]);
        c.heartbeat_interval = Duration::from_secs(1);
        let mut m = Membership::new(c);
        let t0 = Instant::now();
        m.handle(Input::Start, t0);
        let a = m.handle(Input::Coordinator(Ok(1)), t0);
        let a = join(&mut m, last_seq(&a), 3, t0 + Duration::from_millis(40));
        sync(&mut m, last_seq(&a), t0 + Duration::from_millis(250));
        assert_eq!(m.state(), State::Stable);
        // A second rebalance: the coordinator says one is in progress.
        let t1 = t0 + Duration::from_secs(2);
        let a = m.handle(Input::Timer(TimerKind::Heartbeat), t1);
        let a = m.handle(
            Input::Reply {
                seq: last_seq(&a),
                reply: Ok(Reply::Heartbeat(HeartbeatResponse {
                    error_code: ErrorCode::REBALANCE_IN_PROGRESS.code(),
                    ..Default::default()
                })),
            },
            t1,
        );
        // Eager: revoke first, then join.
        assert_eq!(m.state(), State::Revoking);
        let _ = a;
        let a = m.handle(Input::RevokeDone, t1 + Duration::from_millis(10));
        let a = join(&mut m, last_seq(&a), 4, t1 + Duration::from_millis(20));
        sync(&mut m, last_seq(&a), t1 + Duration::from_millis(100));
        assert_eq!(m.state(), State::Stable);
    });
    let seen = seen.lock().unwrap();
    let spans: Vec<(&u64, &BTreeMap<String, String>)> = seen
        .spans
        .iter()
        .filter(|(_, (name, _))| name == "rebalance")
        .map(|(id, (_, f))| (id, f))
        .collect();
    assert_eq!(spans.len(), 2, "one span per rebalance: {:#?}", seen.spans);
    for ((id, fields), (generation, ms)) in spans.iter().zip([("3", "250"), ("4", "100")]) {
        assert_eq!(fields["group"], "g-span");
        assert_eq!(fields["member_id"], "m1");
        assert_eq!(fields["generation"], generation);
        assert_eq!(fields["protocol"], "range");
        assert_eq!(fields["duration_ms"], ms);
        let done = seen
            .events
            .iter()
            .filter(|(p, f)| {
                *p == Some(**id)
                    && f.get("message").map(String::as_str) == Some("rebalance finished")
            })
            .count();
        assert_eq!(done, 1, "a 'rebalance finished' event in span {id}");
    }
}

/// The same on real coordinators (Apache Kafka 4.4.0 first): a member that
/// joins alone and then rebalances when a second member joins has exactly
/// one `rebalance` span per generation it was assigned in, each carrying
/// that generation, the group, its member id, the protocol and a duration
/// no longer than the member has existed, each closed by one "rebalance
/// finished" event. The member's tasks run on a current-thread runtime
/// inside the capturing subscriber, so every span they open is seen.
#[test]
fn each_rebalance_on_a_real_coordinator_has_one_span() {
    for broker in common::brokers(Capability::ClassicGroups, &[]) {
        let name = broker.name();
        let topic = common::topic(&*broker, "krust-span", 6);
        let group = unique("g-span");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sub = Capture {
            seen: seen.clone(),
            next: AtomicU64::new(0),
        };
        let tracker = common::Tracker::default();
        let (a_id, lived) = tracing::subscriber::with_default(sub, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let b = broker.bootstrap();
                let started = Instant::now();
                let a =
                    common::Member::start("a", &b, common::config(&group, &topic), tracker.clone())
                        .await;
                common::wait_for(
                    &[&a],
                    Duration::from_secs(60),
                    "a alone",
                    common::balanced(6, 6),
                )
                .await;
                let c =
                    common::Member::start("c", &b, common::config(&group, &topic), tracker.clone())
                        .await;
                common::wait_for(
                    &[&a, &c],
                    Duration::from_secs(60),
                    "a and c",
                    common::balanced(3, 6),
                )
                .await;
                let id = a.snap().member_id;
                let lived = started.elapsed();
                assert!(a.close().await);
                assert!(c.close().await);
                (id, lived)
            })
        });
        let assigned: Vec<String> = tracker
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| l.member == "a")
            .filter_map(|l| match l.event {
                common::Seen::Assigned { generation, .. } => Some(generation.to_string()),
                _ => None,
            })
            .collect();
        let seen = seen.lock().unwrap();
        let spans: Vec<(&u64, &BTreeMap<String, String>)> = seen
            .spans
            .iter()
            .filter(|(_, (n, f))| n == "rebalance" && f.get("member_id") == Some(&a_id))
            .map(|(id, (_, f))| (id, f))
            .collect();
        let generations: Vec<String> = spans.iter().map(|(_, f)| f["generation"].clone()).collect();
        eprintln!("{name}: a's spans at generations {generations:?}, assignments at {assigned:?}");
        assert_eq!(
            generations, assigned,
            "{name}: one span per generation a was assigned in"
        );
        for (id, fields) in &spans {
            assert_eq!(fields["group"], group, "{name}");
            assert_eq!(fields["protocol"], "range", "{name}");
            let ms: u64 = fields["duration_ms"].parse().expect("a duration");
            assert!(
                u128::from(ms) <= lived.as_millis(),
                "{name}: {ms} ms, longer than the member lived ({lived:?})"
            );
            let done = seen
                .events
                .iter()
                .filter(|(p, f)| {
                    *p == Some(**id)
                        && f.get("message").map(String::as_str) == Some("rebalance finished")
                })
                .count();
            assert_eq!(done, 1, "{name}: a 'rebalance finished' event in span {id}");
        }
    }
}
