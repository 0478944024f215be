//! A cluster of Apache Kafka KRaft nodes, each a broker and a voter of the
//! controller quorum, with the faults production sees: a node crashed
//! (`SIGKILL`), hung (`SIGSTOP`, then `SIGCONT`) or restarted on the same
//! port and data. Leaderships and group coordinators move as they do on a
//! real cluster, because it is one.

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::KafkaVersion;
use super::node::{ClusterSpec, Node, cluster_id};
use super::probe::{PartitionState, leaders, listed_brokers, partitions, serves};
use crate::broker::{Broker, BrokerKind, create_topic_raw};
use crate::process::free_port;
use crate::{Error, Result};

/// How long a cluster (or a restarted node) may take to be ready. A JVM
/// starts in 2–5 s alone; three at once on two cores take longer.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Apache Kafka nodes on 127.0.0.1 (ids `1..=n`), stopped on drop.
///
/// At most one cluster of several nodes that a test started for itself runs
/// per test process at a time: [`KafkaClusterBuilder::start`] waits for the
/// previous one to be dropped (three JVMs per cluster, two cores). The
/// shared cluster does not count.
#[derive(Debug)]
pub struct KafkaCluster {
    // Declared first: the nodes stop before the next cluster may start.
    nodes: Mutex<Vec<Node>>,
    spec: ClusterSpec,
    ids: Vec<i32>,
    _permit: Option<Permit>,
}

/// One of the clusters a test process may run at once (see
/// [`KafkaCluster`]); released on drop.
#[derive(Debug)]
struct Permit;

static RUNNING: Mutex<bool> = Mutex::new(false);
static RELEASED: Condvar = Condvar::new();

impl Permit {
    fn acquire() -> Permit {
        let mut busy = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = RELEASED.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy = true;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = false;
        RELEASED.notify_one();
    }
}

/// Settings for a [`KafkaCluster`].
#[derive(Debug)]
pub struct KafkaClusterBuilder {
    nodes: usize,
    version: KafkaVersion,
    replication: Option<(u16, u16)>,
    heap: String,
    jvm_options: Vec<String>,
    overrides: Vec<(String, String)>,
    listeners: Vec<(String, String)>,
    format_args: Vec<String>,
    shared: bool,
}

impl KafkaClusterBuilder {
    /// How many nodes (default 3); each is a broker and a controller voter.
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n.max(1);
        self
    }

    /// The release (default 4.4.0).
    pub fn version(mut self, version: KafkaVersion) -> Self {
        self.version = version;
        self
    }

    /// Replication factor of new and internal topics and
    /// `min.insync.replicas` (default: 3 and 2 on three or more nodes, else
    /// the number of nodes and 1).
    pub fn replication(mut self, factor: u16, min_insync: u16) -> Self {
        self.replication = Some((factor, min_insync));
        self
    }

    /// The JVM heap of each node (`-Xmx`, default `512m`).
    pub fn heap(mut self, heap: &str) -> Self {
        self.heap = heap.to_string();
        self
    }

    /// Replace the extra JVM options (default: C1 only and the serial
    /// collector, which start fastest and cost least CPU on small machines).
    pub fn jvm_options(mut self, options: &[&str]) -> Self {
        self.jvm_options = options.iter().map(|s| s.to_string()).collect();
        self
    }

    /// A broker property for every node (wins over the fixture's defaults).
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.overrides.retain(|(k, _)| k != key);
        self.overrides.push((key.to_string(), value.to_string()));
        self
    }

    /// A listener besides PLAINTEXT (which the brokers keep for each
    /// other), e.g. `("SASL_SSL", "SASL_SSL")` or `("EXPIRED", "SSL")`, on
    /// a free port of each node, advertised ([`KafkaCluster::listener_addr`]).
    /// Its settings go in with [`KafkaClusterBuilder::config`]
    /// (`listener.name.NAME.…`).
    pub fn listener(mut self, name: &str, protocol: &str) -> Self {
        self.listeners
            .push((name.to_string(), protocol.to_string()));
        self
    }

    /// An argument added to the storage format of a first start, e.g.
    /// `--add-scram` and `SCRAM-SHA-256=[name=alice,password=secret]`.
    pub fn format_arg(mut self, arg: &str) -> Self {
        self.format_args.push(arg.to_string());
        self
    }

    /// Start the cluster; panics (naming `scripts/setup.sh` when Kafka is
    /// not installed) if it cannot.
    pub fn start(self) -> KafkaCluster {
        self.try_start()
            .unwrap_or_else(|e| panic!("cannot start an Apache Kafka cluster: {e}"))
    }

    /// Start every node and wait until each lists all the others.
    pub fn try_start(self) -> Result<KafkaCluster> {
        self.version.libs()?;
        super::java()?;
        let mut last = None;
        // Ports found free can be taken before the JVMs bind them: then the
        // node exits at once, and the whole cluster starts again elsewhere.
        for _ in 0..3 {
            match self.start_once() {
                Err(e) if e.is_early_exit() => last = Some(e),
                other => return other,
            }
        }
        Err(last.expect("three attempts"))
    }

    fn start_once(&self) -> Result<KafkaCluster> {
        let n = self.nodes;
        let permit = (n > 1 && !self.shared).then(Permit::acquire);
        let (replication, min_insync) = self.replication.unwrap_or(if n >= 3 {
            (3, 2)
        } else {
            (u16::try_from(n).unwrap_or(1), 1)
        });
        let mut nodes = Vec::with_capacity(n);
        for i in 1..=n {
            let id = i32::try_from(i).map_err(|_| Error::new("too many nodes"))?;
            let extra = (0..self.listeners.len())
                .map(|_| free_port())
                .collect::<Result<Vec<_>>>()?;
            nodes.push(Node::new(id, free_port()?, free_port()?, extra)?);
        }
        let voters = nodes
            .iter()
            .map(|node| format!("{}@127.0.0.1:{}", node.id, node.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let spec = ClusterSpec {
            version: self.version,
            cluster_id: cluster_id(),
            voters,
            replication,
            min_insync,
            heap: self.heap.clone(),
            jvm_options: self.jvm_options.clone(),
            overrides: self.overrides.clone(),
            listeners: self.listeners.clone(),
            format_args: self.format_args.clone(),
        };
        for node in &mut nodes {
            node.spawn(&spec)?;
        }
        let ids = nodes.iter().map(|node| node.id).collect();
        let cluster = KafkaCluster {
            nodes: Mutex::new(nodes),
            spec,
            ids,
            _permit: permit,
        };
        cluster.wait_ready(&mut cluster.lock())?;
        Ok(cluster)
    }
}

impl KafkaCluster {
    /// Start a cluster of three nodes of Kafka 4.4.0 (replication factor 3,
    /// `min.insync.replicas=2`); panics if it cannot.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A builder for a cluster with other settings.
    pub fn builder() -> KafkaClusterBuilder {
        KafkaClusterBuilder {
            nodes: 3,
            version: KafkaVersion::V4_4,
            replication: None,
            heap: "512m".into(),
            jvm_options: vec!["-XX:TieredStopAtLevel=1".into(), "-XX:+UseSerialGC".into()],
            overrides: Vec::new(),
            listeners: Vec::new(),
            format_args: Vec::new(),
            shared: false,
        }
    }

    /// The 3-node Kafka 4.4.0 cluster this test binary shares (started on
    /// first use, stopped when the test process ends), for tests that need
    /// several brokers but cause no faults. A test that kills, hangs or
    /// restarts nodes starts a cluster of its own.
    pub fn shared() -> &'static KafkaCluster {
        static SHARED: OnceLock<KafkaCluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            let mut builder = KafkaCluster::builder();
            builder.shared = true;
            builder.start()
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Which release runs.
    pub fn version(&self) -> KafkaVersion {
        self.spec.version
    }

    /// The node ids, `1..=n`.
    pub fn node_ids(&self) -> &[i32] {
        &self.ids
    }

    /// `127.0.0.1:PORT` of node `id` (the same across restarts).
    pub fn addr(&self, id: i32) -> Result<String> {
        let nodes = self.lock();
        let node = find(&nodes, id)?;
        Ok(node.addr())
    }

    /// The address of node `id`'s listener `name` (added with
    /// [`KafkaClusterBuilder::listener`]).
    pub fn listener_addr(&self, id: i32, name: &str) -> Result<String> {
        let index = self
            .spec
            .listeners
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| Error::new(format!("no listener {name}")))?;
        let nodes = self.lock();
        let node = find(&nodes, id)?;
        Ok(format!("127.0.0.1:{}", node.listener_ports[index]))
    }

    /// Every node's address, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.lock()
            .iter()
            .map(Node::addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The replication factor new topics get.
    pub fn replication_factor(&self) -> u16 {
        self.spec.replication
    }

    /// Crash node `id` with `SIGKILL` (no controlled shutdown, nothing
    /// flushed that was not already). [`KafkaCluster::restart`] brings it
    /// back.
    pub fn kill(&self, id: i32) -> Result<()> {
        let mut nodes = self.lock();
        find_mut(&mut nodes, id)?.kill();
        Ok(())
    }

    /// Hang node `id` with `SIGSTOP`: its sockets stay open and nothing
    /// answers, as with a long GC pause or a frozen VM.
    pub fn pause(&self, id: i32) -> Result<()> {
        let mut nodes = self.lock();
        find_mut(&mut nodes, id)?.pause()
    }

    /// Let a node hung by [`KafkaCluster::pause`] run again (`SIGCONT`).
    pub fn resume(&self, id: i32) -> Result<()> {
        let mut nodes = self.lock();
        find_mut(&mut nodes, id)?.resume()
    }

    /// [`KafkaCluster::pause`] node `id` until the returned guard is
    /// dropped, whatever the test does meanwhile (a failed assertion
    /// included): then it runs again.
    pub fn hang(&self, id: i32) -> Result<Hung<'_>> {
        self.pause(id)?;
        Ok(Hung { cluster: self, id })
    }

    /// A controlled shutdown of node `id` (`SIGTERM`; it hands over its
    /// leaderships first).
    pub fn stop(&self, id: i32) -> Result<()> {
        let mut nodes = self.lock();
        find_mut(&mut nodes, id)?.stop();
        Ok(())
    }

    /// Start node `id` again (after [`kill`](Self::kill) or
    /// [`stop`](Self::stop); a running node is killed first) on the same
    /// ports and data, and wait until every node lists it again.
    pub fn restart(&self, id: i32) -> Result<()> {
        let mut nodes = self.lock();
        let node = find_mut(&mut nodes, id)?;
        node.kill();
        node.spawn(&self.spec)?;
        self.wait_ready(&mut nodes)
    }

    /// Whether node `id` runs (it may be hung).
    pub fn is_running(&self, id: i32) -> bool {
        self.lock().iter().any(|n| n.id == id && n.is_running())
    }

    /// Whether node `id` runs and is not hung by [`KafkaCluster::pause`].
    pub fn is_serving(&self, id: i32) -> bool {
        self.lock().iter().any(|n| n.id == id && n.is_serving())
    }

    /// Wait until every serving node (running and not hung) answers and
    /// lists every serving node. A hung node is left out: the controller
    /// fences it, so the others stop listing it.
    fn wait_ready(&self, nodes: &mut [Node]) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("nothing answered yet");
        loop {
            let running: Vec<i32> = nodes
                .iter()
                .filter(|n| n.is_serving())
                .map(|n| n.id)
                .collect();
            let mut ready = true;
            for node in nodes.iter_mut().filter(|n| n.is_serving()) {
                if let Some(status) = node.proc_mut()?.exited() {
                    return Err(Error::exited(format!(
                        "kafka node {} exited ({status}) before it was ready\n{}",
                        node.id,
                        node.log_tail()
                    )));
                }
                match listed_brokers(&node.addr()) {
                    Ok(listed) if running.iter().all(|id| listed.contains(id)) => {}
                    Ok(listed) => {
                        ready = false;
                        last = format!("node {} lists brokers {listed:?}", node.id);
                    }
                    Err(e) => {
                        ready = false;
                        last = format!("node {}: {e}", node.id);
                    }
                }
            }
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tails: Vec<String> = nodes.iter().map(Node::log_tail).collect();
                return Err(Error::new(format!(
                    "Kafka {} not ready within {READY_TIMEOUT:?} ({last})\n{}",
                    self.spec.version,
                    tails.join("\n")
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Create a topic with the cluster's replication factor and wait until
    /// every serving node knows a leader for each of its partitions and
    /// each leader serves its partition (answers ListOffsets without error:
    /// a new leader can take a moment after it is announced).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.create_topic_with(name, partitions, self.spec.replication)
    }

    /// [`KafkaCluster::create_topic`] with another replication factor.
    pub fn create_topic_with(&self, name: &str, partitions: i32, replication: u16) -> Result<()> {
        let addrs = self.serving_addrs();
        let rf = i16::try_from(replication).map_err(|_| Error::new("replication too large"))?;
        create_topic_raw(&addrs.join(","), name, partitions, rf)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        for addr in &addrs {
            loop {
                match leaders(addr, name) {
                    Ok(l)
                        if l.len() == usize::try_from(partitions).unwrap_or(0)
                            && l.iter().all(|&(_, leader)| leader >= 0) =>
                    {
                        break;
                    }
                    other if Instant::now() >= deadline => {
                        return Err(Error::new(format!(
                            "topic {name}: {addr} knows no leader for every partition after 30 s: {other:?}"
                        )));
                    }
                    _ => thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        let first = addrs.first().cloned().unwrap_or_default();
        for (partition, _) in leaders(&first, name)? {
            loop {
                // The node's own address, not the one it advertises (a test
                // may advertise a proxy that does not run yet).
                let served = leaders(&first, name)
                    .and_then(|l| {
                        let leader = l.iter().find(|&&(p, _)| p == partition).map(|&(_, l)| l);
                        leader.ok_or_else(|| Error::new(format!("no {name}-{partition}")))
                    })
                    .and_then(|leader| self.addr(leader))
                    .and_then(|addr| serves(&addr, name, partition));
                match served {
                    Ok(()) => break,
                    Err(e) if Instant::now() >= deadline => {
                        return Err(Error::new(format!(
                            "topic {name}: partition {partition} not served after 30 s: {e}"
                        )));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        Ok(())
    }

    /// The leader of `topic`'s partition `partition` as the first serving
    /// node that answers sees it (`-1` while there is none).
    pub fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        self.ask_serving(|addr| {
            leaders(addr, topic)?
                .into_iter()
                .find(|&(p, _)| p == partition)
                .map(|(_, leader)| leader)
                .ok_or_else(|| Error::new(format!("{addr} knows no partition {topic}-{partition}")))
        })
    }

    /// Every partition of `topic` (leader, epoch, ISR, replicas) as the
    /// first serving node that answers sees it.
    pub fn partitions(&self, topic: &str) -> Result<Vec<PartitionState>> {
        self.ask_serving(|addr| partitions(addr, topic))
    }

    /// Wait up to `bound` until every partition of each of `topics` has a
    /// leader and all its replicas in sync, as an operator waits between
    /// the nodes of a rolling restart.
    pub fn wait_in_sync(&self, topics: &[&str], bound: Duration) -> Result<()> {
        let deadline = Instant::now() + bound;
        for topic in topics {
            loop {
                let now = self.partitions(topic);
                let synced = now.as_ref().is_ok_and(|ps| {
                    !ps.is_empty()
                        && ps
                            .iter()
                            .all(|p| p.leader >= 0 && p.isr.len() == p.replicas.len())
                });
                if synced {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::new(format!(
                        "{topic}: not every replica in sync within {bound:?}: {now:?}"
                    )));
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// `question` put to each serving node in turn until one answers.
    pub(crate) fn ask_serving<T>(&self, question: impl Fn(&str) -> Result<T>) -> Result<T> {
        let mut last = Error::new("no kafka node is serving (all killed, stopped or hung)");
        for addr in self.serving_addrs() {
            match question(&addr) {
                Ok(answer) => return Ok(answer),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The nodes that run and are not hung.
    pub(crate) fn serving_addrs(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|n| n.is_serving())
            .map(Node::addr)
            .collect()
    }

    pub(crate) fn spec(&self) -> &ClusterSpec {
        &self.spec
    }
}

/// A node hung by [`KafkaCluster::hang`]; resumed on drop.
#[derive(Debug)]
pub struct Hung<'a> {
    cluster: &'a KafkaCluster,
    id: i32,
}

impl Drop for Hung<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.resume(self.id) {
            eprintln!("resuming node {}: {e}", self.id);
        }
    }
}

fn find(nodes: &[Node], id: i32) -> Result<&Node> {
    nodes
        .iter()
        .find(|n| n.id == id)
        .ok_or_else(|| Error::new(format!("no kafka node {id}")))
}

fn find_mut(nodes: &mut [Node], id: i32) -> Result<&mut Node> {
    nodes
        .iter_mut()
        .find(|n| n.id == id)
        .ok_or_else(|| Error::new(format!("no kafka node {id}")))
}

impl Broker for KafkaCluster {
    fn bootstrap(&self) -> String {
        KafkaCluster::bootstrap(self)
    }

    fn kind(&self) -> BrokerKind {
        BrokerKind::KafkaCluster
    }

    fn name(&self) -> String {
        format!("kafka-{}-cluster-of-{}", self.version(), self.ids.len())
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        KafkaCluster::create_topic(self, name, partitions)
    }
}
