//! The child side of the peer protocol, shared by every Rust peer: the
//! `KEY=VALUE` arguments, the record value, the timed window, the checks
//! on what was delivered or consumed, and the one JSON line at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cpu::{self, Cpu};

/// A consume run gives up (and fails) after this long.
pub const CONSUME_TIMEOUT: Duration = Duration::from_secs(300);

/// Delivery futures a producer loop keeps outstanding at most (as
/// `krust-bench produce`): a million futures held at once would measure the
/// allocator, not the client.
pub const WINDOW: usize = 65_536;

/// `session.timeout.ms` of every group consumer: Tansu holds a classic
/// JoinGroup for half of it (Kafka's lower bound is 6000 too).
pub const SESSION_TIMEOUT_MS: u64 = 6000;

/// The settings a child is given: `bootstrap`, `topic`, `records`, `size`,
/// `partitions`, and `group` for consume.
#[derive(Debug, Clone)]
pub struct Args {
    pub bootstrap: String,
    pub topic: String,
    pub records: u64,
    pub size: usize,
    pub partitions: i32,
    pub group: String,
}

impl Args {
    pub fn parse(kvs: &[String]) -> Result<Args, String> {
        let mut m: BTreeMap<&str, &str> = BTreeMap::new();
        for kv in kvs {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("not KEY=VALUE: {kv}"))?;
            m.insert(k, v);
        }
        let get = |k: &str| m.get(k).copied().ok_or_else(|| format!("missing {k}="));
        let num =
            |k: &str| -> Result<u64, String> { get(k)?.parse().map_err(|e| format!("{k}: {e}")) };
        Ok(Args {
            bootstrap: get("bootstrap")?.to_owned(),
            topic: get("topic")?.to_owned(),
            records: num("records")?,
            size: num("size")? as usize,
            partitions: num("partitions")? as i32,
            group: m.get("group").copied().unwrap_or("").to_owned(),
        })
    }
}

/// The value of every record, from every client: `size` bytes, byte `i`
/// being `b'a' + i % 26`.
pub fn value(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The timed window: from just before the client is created to the last
/// delivery report or the last record needed.
pub struct Window {
    started: Instant,
    cpu0: Cpu,
}

impl Window {
    pub fn start() -> Window {
        Window {
            cpu0: cpu::self_cpu(),
            started: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Close the window: the wall and RUSAGE_SELF CPU seconds in it.
    pub fn stop(self) -> (f64, f64) {
        let wall = self.started.elapsed().as_secs_f64();
        (wall, (cpu::self_cpu() - self.cpu0).total())
    }
}

/// VmHWM of this process in KiB (0 where /proc has none).
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The line the harness reads: `{"client":..,"op":..,"records":N,
/// "wall_s":..,"cpu_s":..,"peak_rss_kb":..}`.
pub fn result_line(client: &str, op: &str, records: u64, wall: f64, cpu: f64) -> String {
    serde_json::json!({
        "client": client,
        "op": op,
        "records": records,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_kb": peak_rss_kb(),
    })
    .to_string()
}

/// Delivery reports of a produce run: per partition, how many and the
/// highest offset. Indexed by partition, so that counting a report costs
/// the harness next to nothing inside a client's timed window.
#[derive(Debug, Default)]
pub struct Delivered {
    partitions: Vec<(u64, i64)>,
    failed: u64,
    first_error: Option<String>,
}

impl Delivered {
    pub fn ok(&mut self, partition: i32, offset: i64) {
        let Ok(p) = usize::try_from(partition) else {
            return self.failed(format!("a report for partition {partition}"));
        };
        if p >= self.partitions.len() {
            self.partitions.resize(p + 1, (0, -1));
        }
        let e = &mut self.partitions[p];
        e.0 += 1;
        e.1 = e.1.max(offset);
    }

    pub fn failed(&mut self, error: impl std::fmt::Display) {
        self.failed += 1;
        self.first_error.get_or_insert_with(|| error.to_string());
    }

    /// Exactly `n` records acknowledged, none failed, and (the topic is
    /// fresh) each partition's offsets run from 0 to its count: nothing
    /// lost, nothing written twice.
    pub fn check(&self, n: u64) -> Result<(), String> {
        if self.failed > 0 {
            return Err(format!(
                "{} deliveries failed, the first: {}",
                self.failed,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        let total: u64 = self.partitions.iter().map(|(c, _)| c).sum();
        if total != n {
            return Err(format!("{total} delivery reports for {n} records"));
        }
        for (p, (count, max)) in self.reported() {
            if max + 1 != count as i64 {
                return Err(format!(
                    "partition {p}: {count} records acknowledged, highest offset {max}"
                ));
            }
        }
        Ok(())
    }

    /// Print the records acknowledged per partition and
    /// [`check`](Self::check) them; `measured` is the run's result when
    /// they check out.
    pub fn finish(&self, client: &str, n: u64, measured: (f64, f64)) -> Result<(f64, f64), String> {
        eprintln!("{client}: records per partition {}", self.summary());
        self.check(n)?;
        Ok(measured)
    }

    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .reported()
            .map(|(p, (n, _))| format!("{p}:{n}"))
            .collect();
        parts.join(" ")
    }

    /// The partitions with reports: count and highest offset.
    fn reported(&self) -> impl Iterator<Item = (usize, (u64, i64))> + '_ {
        self.partitions
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, (n, _))| *n > 0)
    }
}

/// The offsets a consume run saw, per partition.
#[derive(Debug, Default)]
pub struct Seen {
    seen: BTreeMap<i32, Vec<bool>>,
    pub distinct: u64,
    duplicates: u64,
    wrong_size: u64,
    size: usize,
}

impl Seen {
    pub fn new(size: usize) -> Seen {
        Seen {
            size,
            ..Seen::default()
        }
    }

    /// Whether more records are needed; an error (with what was seen) once
    /// [`CONSUME_TIMEOUT`] has passed in `window`.
    pub fn wants(&self, n: u64, window: &Window) -> Result<bool, String> {
        if self.distinct >= n {
            return Ok(false);
        }
        if window.elapsed() > CONSUME_TIMEOUT {
            return Err(format!(
                "timeout after {CONSUME_TIMEOUT:?}: seen {}",
                self.summary()
            ));
        }
        Ok(true)
    }

    /// Poll with `poll` until `n` records were seen (or the timeout),
    /// adding each as `key` reads its partition, offset and value length.
    pub async fn read_all<B: IntoIterator>(
        &mut self,
        n: u64,
        window: &Window,
        mut poll: impl AsyncFnMut() -> Result<B, String>,
        key: impl Fn(B::Item) -> (i32, i64, usize),
    ) -> Result<(), String> {
        while self.wants(n, window)? {
            let records = poll().await?;
            self.add_all(records, &key);
        }
        Ok(())
    }

    /// Add each of `records`, as `key` reads its partition, offset and
    /// value length.
    pub fn add_all<R>(
        &mut self,
        records: impl IntoIterator<Item = R>,
        key: impl Fn(R) -> (i32, i64, usize),
    ) {
        for r in records {
            let (partition, offset, len) = key(r);
            self.add(partition, offset, len);
        }
    }

    /// Print the offsets seen per partition and [`check`](Self::check)
    /// them; `measured` is the run's result when they check out.
    pub fn finish(&self, client: &str, n: u64, measured: (f64, f64)) -> Result<(f64, f64), String> {
        eprintln!("{client}: offsets per partition {}", self.summary());
        self.check(n)?;
        Ok(measured)
    }

    pub fn add(&mut self, partition: i32, offset: i64, value_len: usize) {
        if value_len != self.size {
            self.wrong_size += 1;
        }
        let Ok(o) = usize::try_from(offset) else {
            self.wrong_size += 1;
            return;
        };
        let v = self.seen.entry(partition).or_default();
        if v.len() <= o {
            v.resize(o + 1, false);
        }
        if v[o] {
            self.duplicates += 1;
        } else {
            v[o] = true;
            self.distinct += 1;
        }
    }

    /// Every offset of every partition seen exactly once, contiguous from
    /// 0, `n` in all, every value `size` bytes.
    pub fn check(&self, n: u64) -> Result<(), String> {
        if self.duplicates > 0 {
            return Err(format!("{} records seen twice", self.duplicates));
        }
        if self.wrong_size > 0 {
            return Err(format!(
                "{} records with a value that is not {} bytes (or a negative offset)",
                self.wrong_size, self.size
            ));
        }
        for (p, v) in &self.seen {
            let holes = v.iter().filter(|s| !**s).count();
            if holes > 0 {
                return Err(format!(
                    "partition {p}: {holes} offsets below {} never seen",
                    v.len()
                ));
            }
        }
        if self.distinct != n {
            return Err(format!("{} distinct records for {n}", self.distinct));
        }
        Ok(())
    }

    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .seen
            .iter()
            .map(|(p, v)| format!("{p}:{}", v.len()))
            .collect();
        parts.join(" ")
    }
}

/// A tokio runtime as krust's benches use (two workers, one per core).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
