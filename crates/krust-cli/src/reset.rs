//! What `krust offsets reset` plans: for each partition, the group's
//! current committed offset, the new one, and the log's bounds, by the
//! rules of `kafka-consumer-groups.sh --reset-offsets` so a plan made by
//! either tool is the same: an offset asked for by number (`--to-offset`,
//! `--shift-by`, `--from-file`) is clamped to the log's bounds; a time no
//! record reaches falls back to the log end; `--to-current` of a partition
//! never committed is the log end; `--shift-by` of one is refused.
//! The CSV form is that tool's too: `topic,partition,offset` lines (with a
//! leading group column when a file holds several groups).

use std::collections::BTreeMap;

use krust::group::TopicPartition;

/// Where to move the offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The log start.
    Earliest,
    /// The log end (high watermark).
    Latest,
    /// This offset, clamped to the log.
    Offset(i64),
    /// The committed offset plus this (negative: back), clamped.
    ShiftBy(i64),
    /// The first record at or after this time (ms since the epoch); the
    /// log end where no record is that recent.
    Timestamp(i64),
    /// Where the group stands (the log end where it never committed).
    Current,
    /// Offsets read from a plan file, clamped to the log.
    Plan(BTreeMap<TopicPartition, i64>),
}

/// One partition of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The partition.
    pub partition: TopicPartition,
    /// The group's committed offset, if any.
    pub current: Option<i64>,
    /// Where the reset puts it.
    pub new: i64,
    /// The log start.
    pub log_start: i64,
    /// The log end.
    pub log_end: i64,
}

impl Row {
    /// What the move does to the group, in words: how many records it
    /// skips or replays from where the group stands.
    pub fn change(&self) -> String {
        match self.current {
            None => "sets a first offset".to_owned(),
            Some(c) if self.new > c => format!("skips {}", self.new - c),
            Some(c) if self.new < c => format!("replays {}", c - self.new),
            Some(_) => "unchanged".to_owned(),
        }
    }
}

/// What is known of one partition when planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// The committed offset.
    pub current: Option<i64>,
    /// The log start.
    pub log_start: i64,
    /// The log end.
    pub log_end: i64,
    /// For [`Target::Timestamp`]: the offset the time lookup found.
    pub by_time: Option<i64>,
}

/// The new offset of `tp` for `target`.
pub fn new_offset(target: &Target, tp: &TopicPartition, k: Known) -> Result<i64, String> {
    let clamp = |o: i64| o.clamp(k.log_start, k.log_end.max(k.log_start));
    Ok(match target {
        Target::Earliest => k.log_start,
        Target::Latest => k.log_end,
        Target::Offset(o) => clamp(*o),
        Target::ShiftBy(n) => {
            let c = k.current.ok_or_else(|| {
                format!(
                    "cannot shift {}:{}: the group has no committed offset there",
                    tp.topic, tp.partition
                )
            })?;
            clamp(c.saturating_add(*n))
        }
        Target::Timestamp(_) => k.by_time.unwrap_or(k.log_end),
        Target::Current => k.current.unwrap_or(k.log_end),
        Target::Plan(p) => clamp(p.get(tp).copied().unwrap_or(k.log_end)),
    })
}

/// `topic,partition,offset` lines, one per row, sorted.
pub fn to_csv(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{},{},{}\n",
                r.partition.topic, r.partition.partition, r.new
            )
        })
        .collect()
}

/// The offsets a plan file sets for `group`: `topic,partition,offset`
/// lines, or `group,topic,partition,offset` lines of which `group`'s are
/// taken. Blank lines are skipped; anything else is an error naming the
/// line.
pub fn from_csv(text: &str, group: &str) -> Result<BTreeMap<TopicPartition, i64>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("line {}: `{line}`: {why}", n + 1);
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let (g, t, p, o) = match cols.as_slice() {
            [t, p, o] => (group, *t, *p, *o),
            [g, t, p, o] => (*g, *t, *p, *o),
            _ => return Err(bad("expected topic,partition,offset")),
        };
        let partition: i32 = p
            .parse()
            .map_err(|_| bad("the partition is not a number"))?;
        let offset: i64 = o.parse().map_err(|_| bad("the offset is not a number"))?;
        if t.is_empty() {
            return Err(bad("no topic"));
        }
        if g == group {
            out.insert(TopicPartition::new(t, partition), offset);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn known(current: Option<i64>) -> Known {
        Known {
            current,
            log_start: 10,
            log_end: 50,
            by_time: None,
        }
    }

    #[test]
    fn numbers_are_clamped_to_the_log() {
        let at = |t: Target, c| new_offset(&t, &tp(), known(c)).expect("planned");
        assert_eq!(at(Target::Offset(5), Some(20)), 10);
        assert_eq!(at(Target::Offset(99), Some(20)), 50);
        assert_eq!(at(Target::Offset(30), Some(20)), 30);
        assert_eq!(at(Target::ShiftBy(-15), Some(20)), 10);
        assert_eq!(at(Target::ShiftBy(5), Some(20)), 25);
        assert_eq!(at(Target::ShiftBy(i64::MAX), Some(20)), 50);
        assert_eq!(at(Target::Earliest, Some(20)), 10);
        assert_eq!(at(Target::Latest, None), 50);
        let plan = Target::Plan(BTreeMap::from([(tp(), 70)]));
        assert_eq!(at(plan, Some(20)), 50);
    }

    #[test]
    fn current_and_time_fall_back_to_the_log_end() {
        let at = |t: Target, k| new_offset(&t, &tp(), k).expect("planned");
        assert_eq!(at(Target::Current, known(Some(20))), 20);
        assert_eq!(at(Target::Current, known(None)), 50);
        assert_eq!(at(Target::Timestamp(1), known(Some(20))), 50);
        let found = Known {
            by_time: Some(33),
            ..known(Some(20))
        };
        assert_eq!(at(Target::Timestamp(1), found), 33);
    }

    #[test]
    fn shifting_a_partition_never_committed_is_refused_naming_it() {
        let e = new_offset(&Target::ShiftBy(1), &tp(), known(None)).expect_err("no commit");
        assert!(e.contains("t:0"), "{e}");
    }

    #[test]
    fn the_csv_reads_back_what_it_wrote() {
        let rows = vec![
            Row {
                partition: TopicPartition::new("a", 0),
                current: Some(3),
                new: 1,
                log_start: 0,
                log_end: 9,
            },
            Row {
                partition: TopicPartition::new("b", 2),
                current: None,
                new: 7,
                log_start: 0,
                log_end: 9,
            },
        ];
        let csv = to_csv(&rows);
        assert_eq!(csv, "a,0,1\nb,2,7\n");
        let back = from_csv(&csv, "g").expect("parses");
        assert_eq!(
            back,
            BTreeMap::from([
                (TopicPartition::new("a", 0), 1),
                (TopicPartition::new("b", 2), 7)
            ])
        );
        assert_eq!(rows[0].change(), "replays 2");
        assert_eq!(rows[1].change(), "sets a first offset");
    }

    #[test]
    fn a_csv_of_several_groups_gives_this_groups_rows() {
        let back = from_csv("g,a,0,1\n\nh,a,0,5\ng,a,1,2\n", "g").expect("parses");
        assert_eq!(back.len(), 2);
        assert_eq!(back[&TopicPartition::new("a", 1)], 2);
        let e = from_csv("a,0\n", "g").expect_err("two columns");
        assert!(e.contains("line 1"), "{e}");
        let e = from_csv("a,x,1\n", "g").expect_err("bad partition");
        assert!(e.contains("partition"), "{e}");
    }
}
