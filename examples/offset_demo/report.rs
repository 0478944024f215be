//! The offset demo's check (nothing lost, nothing duplicated, B resumed
//! exactly at A's commits, the group ends at the log end) and its output
//! for people: the per-partition table and the last line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Outcome, Seen, Setup};

/// Nothing lost, nothing duplicated, B resumed exactly at A's commits, and
/// the group ends committed at the log end with no lag.
pub fn check(s: &Setup, o: &Outcome) -> Vec<String> {
    let mut fails = Vec::new();
    let produced: usize = o.produced.values().map(Vec::len).sum();
    if produced != s.messages {
        fails.push(format!(
            "{produced} delivery reports for {} messages",
            s.messages
        ));
    }
    let mut times: BTreeMap<(i32, i64), Vec<(&str, &str)>> = BTreeMap::new();
    for (who, list) in [("A", &o.a_read), ("B", &o.b_read)] {
        for r in list {
            times
                .entry((r.partition, r.offset))
                .or_default()
                .push((who, &r.value));
        }
    }
    for (p, list) in &o.produced {
        for (offset, value) in list {
            match times.remove(&(*p, *offset)).as_deref() {
                None | Some([]) => fails.push(format!(
                    "lost: {value} (partition {p} offset {offset}) was never consumed"
                )),
                Some([(_, v)]) if v != value => fails.push(format!(
                    "partition {p} offset {offset}: consumed {v}, produced {value}"
                )),
                Some([_]) => {}
                Some(many) => {
                    let who: Vec<&str> = many.iter().map(|(w, _)| *w).collect();
                    fails.push(format!(
                        "duplicated: {value} (partition {p} offset {offset}) consumed {} times (by {})",
                        many.len(),
                        who.join(", ")
                    ));
                }
            }
        }
    }
    for ((p, offset), who) in times {
        fails.push(format!(
            "partition {p} offset {offset} consumed by {who:?} but never produced"
        ));
    }
    if o.a_read.len() != s.a_reads {
        fails.push(format!(
            "A processed {} messages, expected {}",
            o.a_read.len(),
            s.a_reads
        ));
    }
    for p in 0..s.partitions {
        let last_a = o
            .a_read
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset + 1)
            .max();
        let after_a = o.committed_after_a.get(&p).copied().flatten();
        if last_a != after_a {
            fails.push(format!(
                "partition {p}: committed after A's crash is {after_a:?}, but A's last processed record + 1 is {last_a:?}"
            ));
        }
        let first_b = o
            .b_read
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .min();
        let resume = after_a.unwrap_or(0);
        if let Some(first) = first_b
            && first != resume
        {
            fails.push(format!(
                "partition {p}: B started at offset {first}, not at the committed offset {resume}"
            ));
        }
        let end = o.log_end.get(&p).copied().unwrap_or(0);
        let after_b = o.committed_after_b.get(&p).copied().flatten();
        if after_b.unwrap_or(0) != end {
            fails.push(format!(
                "partition {p}: committed after B is {after_b:?}, log end is {end}"
            ));
        }
        match o.b_lag.get(&p).and_then(|l| l.lag) {
            Some(0) => {}
            lag => fails.push(format!(
                "partition {p}: B's lag() at the end is {lag:?}, expected Some(0)"
            )),
        }
    }
    fails
}

fn reads(list: &[Seen], p: i32) -> String {
    let s: Vec<String> = list
        .iter()
        .filter(|r| r.partition == p)
        .map(|r| format!("{}={}", r.offset, r.value))
        .collect();
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.join(" ")
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// The per-partition table and the explanation, for people.
pub fn render(s: &Setup, o: &Outcome) -> String {
    let mut t = String::new();
    let width = |list: &[Seen]| {
        (0..s.partitions)
            .map(|p| reads(list, p).len())
            .max()
            .unwrap_or(0)
            .max("read by A (then crash)".len())
    };
    let (wa, wb) = (width(&o.a_read), width(&o.b_read));
    let _ = writeln!(
        t,
        "\ntopic {}, group {}: per partition (offset=value)\n",
        s.topic, s.group
    );
    let row = |t: &mut String, c: [&str; 8]| {
        let line = format!(
            "{:<9}  {:<7}  {:<wa$}  {:<9}  {:<7}  {:<wb$}  {:<9}  {}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
        );
        let _ = writeln!(t, "{}", line.trim_end());
    };
    row(
        &mut t,
        [
            "partition",
            "log end",
            "read by A (then crash)",
            "committed",
            "lag",
            "read by B",
            "committed",
            "lag",
        ],
    );
    row(
        &mut t,
        ["", "", "", "after A", "after A", "", "after B", "after B"],
    );
    for p in 0..s.partitions {
        let end = o.log_end.get(&p).copied().unwrap_or(0);
        let after_a = o.committed_after_a.get(&p).copied().flatten();
        let lag_a = end - after_a.unwrap_or(0);
        let after_b = o.committed_after_b.get(&p).copied().flatten();
        let lag_b = o.b_lag.get(&p).and_then(|l| l.lag);
        row(
            &mut t,
            [
                &p.to_string(),
                &end.to_string(),
                &reads(&o.a_read, p),
                &opt(after_a),
                &lag_a.to_string(),
                &reads(&o.b_read, p),
                &opt(after_b),
                &opt(lag_b),
            ],
        );
    }
    let _ = writeln!(
        t,
        "\nlag after A = log end - committed (what the group still has to read);\n\
         lag after B = B's high watermark - position, from Consumer::lag().\n\
         A committed offset+1 right after processing each record, so its last read was\n\
         committed when it crashed and B resumed exactly there. Had A crashed between\n\
         processing and committing, B would have been handed that record again\n\
         (at-least-once); committing after every record is what makes the two reads\n\
         add up to exactly once here."
    );
    t
}

/// The last line: what was checked, or why it failed.
pub fn verdict(s: &Setup, o: &Outcome) -> String {
    if o.passed() {
        format!(
            "check passed: {} produced, {} consumed once ({} by A, {} by B), committed = log end on every partition",
            s.messages,
            o.a_read.len() + o.b_read.len(),
            o.a_read.len(),
            o.b_read.len()
        )
    } else {
        format!("check FAILED:\n  {}", o.failures.join("\n  "))
    }
}
