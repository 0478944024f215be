//! CPU accounting: getrusage(2) for whole processes, /proc for per-thread
//! and per-process (the broker's) figures.

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeVal;
use std::ops::Sub;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    pub user: f64,
    pub sys: f64,
}

impl Cpu {
    pub fn total(self) -> f64 {
        self.user + self.sys
    }
}

impl Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        Cpu {
            user: self.user - o.user,
            sys: self.sys - o.sys,
        }
    }
}

fn usage(who: UsageWho) -> Cpu {
    let u = getrusage(who).expect("getrusage");
    let secs = |t: TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Cpu {
        user: secs(u.user_time()),
        sys: secs(u.system_time()),
    }
}

/// This process, all threads, µs resolution.
pub fn self_cpu() -> Cpu {
    usage(UsageWho::RUSAGE_SELF)
}

/// Every child waited for so far.
pub fn children_cpu() -> Cpu {
    usage(UsageWho::RUSAGE_CHILDREN)
}

/// `USER_HZ`, which Linux fixes at 100 for everything it exposes in /proc.
const TICKS: f64 = 100.0;

/// (comm, utime+stime) of a `/proc/.../stat` line.
fn parse_stat(stat: &str) -> Option<(String, Cpu)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    // Fields after the comm: state is field 3, utime 14, stime 15.
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((
        comm,
        Cpu {
            user: utime / TICKS,
            sys: stime / TICKS,
        },
    ))
}

/// Per-thread CPU of this process, by thread name (10 ms resolution; threads
/// that already exited are missing: compare with [`self_cpu`]).
pub fn threads() -> Vec<(String, Cpu)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let stat = std::fs::read_to_string(e.ok()?.path().join("stat")).ok()?;
        parse_stat(&stat)
    })
    .collect()
}

/// Whole-process CPU of `pid` (its live threads plus the ones that exited).
pub fn process_cpu(pid: u32) -> Option<Cpu> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|(_, c)| c)
}

/// The pid of a process whose command line holds `needle` as one argument
/// and whose binary is not a shell wrapper (the broker itself).
pub fn find_process_with_arg(needle: &str) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .find(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
            let is_shell = args
                .first()
                .is_some_and(|a| a.ends_with(b"sh") || a.ends_with(b"setsid"));
            !is_shell && args.contains(&needle.as_bytes())
        })
}

/// CPU seconds of this process's main thread (named `krust-bench`: the
/// loop being measured) and of all its other threads.
pub fn main_and_other_threads() -> (f64, f64) {
    threads().into_iter().fold((0.0, 0.0), |(m, o), (name, c)| {
        if name == "krust-bench" {
            (m + c.total(), o)
        } else {
            (m, o + c.total())
        }
    })
}
