//! Where `krust consume` starts: kcat's `-o` and `-p`.
//!
//! Without a group the partitions (every partition of each `-t`, or only
//! those of `-p`) are assigned by hand and each is placed by the library
//! before the first fetch: `beginning` / `end` / `s@TS` through ListOffsets
//! (`seek_to_beginning`, `seek_to_end`, `seek_to_timestamp`), an absolute
//! offset with `seek`, and `-N` from the log start and end offsets of one
//! ListOffsets round, `end - N` clamped at the start. An offset past
//! either end of the log is OFFSET_OUT_OF_RANGE on the first fetch, which
//! `auto.offset.reset` (`--from`) settles, as kcat's librdkafka does.
//!
//! `stored` is the group's committed offset (docs/ARCHITECTURE.md, "Offset
//! semantics": the next record to consume), else `auto.offset.reset`: that
//! is where a group member starts anyway, so it needs `-g` and adds nothing
//! to it. Any other `-o` with `-g` is refused (see `check`).

use std::fmt;

use krust::consumer::{Consumer, ConsumerError, OffsetSpec, TopicPartition, list_offsets};

use crate::CliError;

/// `-o`: where each partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start.
    Beginning,
    /// The log end: only records written from now on.
    End,
    /// The group's committed offset, else `auto.offset.reset`.
    Stored,
    /// This offset.
    Offset(i64),
    /// This many offsets before the end, clamped at the log start.
    FromEnd(i64),
    /// The first record whose timestamp (ms since the epoch) is at or
    /// after this; the end when there is none.
    Timestamp(i64),
}

impl fmt::Display for StartOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartOffset::Beginning => f.write_str("beginning"),
            StartOffset::End => f.write_str("end"),
            StartOffset::Stored => f.write_str("stored"),
            StartOffset::Offset(o) => write!(f, "{o}"),
            StartOffset::FromEnd(n) => write!(f, "-{n}"),
            StartOffset::Timestamp(ts) => write!(f, "s@{ts}"),
        }
    }
}

/// Parse `-o` (clap's value parser): `beginning`, `end`, `stored`, an
/// offset, `-N` or `s@TIMESTAMP`.
pub fn parse(s: &str) -> Result<StartOffset, String> {
    let number = |digits: &str, what: &str| {
        digits
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0 && digits.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("`{s}`: {what} must be a number >= 0"))
    };
    match s {
        "beginning" => Ok(StartOffset::Beginning),
        "end" => Ok(StartOffset::End),
        "stored" => Ok(StartOffset::Stored),
        _ => {
            if let Some(ts) = s.strip_prefix("s@") {
                number(ts, "the timestamp (ms since the epoch)").map(StartOffset::Timestamp)
            } else if let Some(n) = s.strip_prefix('-') {
                number(n, "N in -N").map(StartOffset::FromEnd)
            } else if s.starts_with(|c: char| c.is_ascii_digit()) {
                number(s, "the offset").map(StartOffset::Offset)
            } else {
                Err(format!(
                    "`{s}`: expected beginning, end, stored, OFFSET, -N or s@TIMESTAMP"
                ))
            }
        }
    }
}

/// Refuse the combinations of `-g`, `-o` and `-p` that have no clear
/// meaning. A group member's partitions and positions are the group's:
/// the coordinator assigns them, and they start at the committed offsets
/// so that a restarted member goes on where the group stopped. Seeking a
/// member elsewhere would happen again at every rebalance (or only at the
/// first, a difference no flag shows) and commit the jump for the whole
/// group; moving a group's offsets is an operation of its own, not a side
/// effect of reading. So with `-g`, `-o` may only be `stored` and `-p` is
/// refused; without `-g`, `stored` has nothing to read.
pub fn check(group: bool, start: Option<StartOffset>, partitions: &[i32]) -> Result<(), CliError> {
    match (group, start) {
        (true, Some(s)) if s != StartOffset::Stored => Err(CliError::usage(format!(
            "-o {s} with -g: a group member starts at the group's committed offsets \
             (-o stored, the default), or --from earliest|latest where it has none; \
             drop -g to read from {s} without a group"
        ))),
        (true, _) if !partitions.is_empty() => Err(CliError::usage(
            "-p with -g: the group assigns the partitions; drop -g to pick them by hand",
        )),
        (false, Some(StartOffset::Stored)) => Err(CliError::usage(
            "-o stored needs a group (-g): the committed offsets are a group's",
        )),
        _ => Ok(()),
    }
}

/// The partitions to assign by hand: every partition of each topic, or
/// only those in `only` (each must exist in every topic).
pub async fn partitions(
    consumer: &Consumer,
    topics: &[String],
    only: &[i32],
) -> Result<Vec<TopicPartition>, CliError> {
    let mut out = Vec::new();
    for topic in topics {
        let all = match consumer.partitions_for(topic).await {
            Ok(ps) => ps,
            Err(ConsumerError::Topic { code, .. }) => {
                return Err(CliError::runtime(format!(
                    "topic {topic}: {code} (no partitions to assign)"
                )));
            }
            Err(e) => return Err(CliError::from_err(e)),
        };
        if only.is_empty() {
            out.extend(
                all.into_iter()
                    .map(|p| TopicPartition::new(topic.as_str(), p)),
            );
            continue;
        }
        for p in only {
            if !all.contains(p) {
                return Err(CliError::runtime(format!(
                    "topic {topic} has no partition {p} (it has {})",
                    describe_range(&all)
                )));
            }
            let tp = TopicPartition::new(topic.as_str(), *p);
            if !out.contains(&tp) {
                out.push(tp);
            }
        }
    }
    Ok(out)
}

/// `0-2`, or the list when the partitions are not contiguous.
fn describe_range(partitions: &[i32]) -> String {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    match (sorted.first(), sorted.last()) {
        (Some(a), Some(b))
            if i64::try_from(sorted.len()) == Ok(i64::from(*b) - i64::from(*a) + 1) =>
        {
            format!("partitions {a}-{b}")
        }
        (Some(_), Some(_)) => format!(
            "partitions {}",
            sorted
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => "no partitions".to_owned(),
    }
}

/// Place every assigned partition per `start` (`stored` never comes
/// here: it is a group's), then log where each starts at info level.
pub async fn seek(
    consumer: &mut Consumer,
    partitions: &[TopicPartition],
    start: StartOffset,
) -> Result<(), ConsumerError> {
    match start {
        StartOffset::Beginning => consumer.seek_to_beginning(partitions).await?,
        StartOffset::End => consumer.seek_to_end(partitions).await?,
        StartOffset::Timestamp(ts) => consumer.seek_to_timestamp(partitions, ts).await?,
        StartOffset::Offset(o) => {
            for tp in partitions {
                consumer.seek(tp, o)?;
            }
        }
        StartOffset::FromEnd(n) => seek_from_end(consumer, partitions, n).await?,
        StartOffset::Stored => {
            return Err(ConsumerError::Usage(
                "-o stored is a group's committed offset".into(),
            ));
        }
    }
    for tp in partitions {
        match consumer.position(tp) {
            Some(offset) => tracing::info!(
                topic = %tp.topic,
                partition = tp.partition,
                offset,
                "starting position (-o {start})"
            ),
            None => tracing::info!(
                topic = %tp.topic,
                partition = tp.partition,
                "no starting position for -o {start}: auto.offset.reset decides"
            ),
        }
    }
    Ok(())
}

/// `-N`: one ListOffsets round for the log start and end of every
/// partition, then `max(end - n, start)`.
async fn seek_from_end(
    consumer: &mut Consumer,
    partitions: &[TopicPartition],
    n: i64,
) -> Result<(), ConsumerError> {
    let mut asks = Vec::with_capacity(partitions.len() * 2);
    for tp in partitions {
        asks.push((tp.topic.as_str(), tp.partition, OffsetSpec::Earliest));
        asks.push((tp.topic.as_str(), tp.partition, OffsetSpec::Latest));
    }
    let pool = consumer.pool().clone();
    let retry = pool.config().retry;
    let isolation = consumer.config().isolation_level();
    let found = list_offsets(&pool, &asks, isolation, &retry).await?;
    for (tp, pair) in partitions.iter().zip(found.chunks(2)) {
        if let [start, end] = pair
            && let (Some(start), Some(end)) = (start.offset, end.offset)
        {
            consumer.seek(tp, from_end(start, end, n))?;
        }
    }
    Ok(())
}

/// `n` offsets before `end`, not before `start`.
fn from_end(start: i64, end: i64, n: i64) -> i64 {
    end.saturating_sub(n).max(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_o_parses() {
        for (s, want) in [
            ("beginning", StartOffset::Beginning),
            ("end", StartOffset::End),
            ("stored", StartOffset::Stored),
            ("0", StartOffset::Offset(0)),
            ("42", StartOffset::Offset(42)),
            ("-5", StartOffset::FromEnd(5)),
            ("-0", StartOffset::FromEnd(0)),
            ("s@1700000000000", StartOffset::Timestamp(1_700_000_000_000)),
        ] {
            assert_eq!(parse(s), Ok(want), "{s}");
            assert_eq!(want.to_string(), s, "displays as given");
        }
    }

    #[test]
    fn malformed_o_names_the_value() {
        for s in [
            "", "begin", "s@", "s@-1", "s@x", "-", "--5", "-x", "4x", "+3",
        ] {
            let e = parse(s).expect_err(s);
            assert!(e.contains(&format!("`{s}`")), "{s}: {e}");
        }
        assert!(parse("99999999999999999999").is_err(), "overflow");
    }

    #[test]
    fn from_end_is_clamped_at_the_log_start() {
        assert_eq!(from_end(0, 10, 3), 7);
        assert_eq!(from_end(0, 10, 30), 0);
        assert_eq!(from_end(4, 10, 8), 4);
        assert_eq!(from_end(0, 10, 0), 10);
        assert_eq!(from_end(0, 0, 5), 0);
        assert_eq!(from_end(0, 10, i64::MAX), 0);
    }

    #[test]
    fn group_combinations_are_checked() {
        assert!(check(true, None, &[]).is_ok());
        assert!(check(true, Some(StartOffset::Stored), &[]).is_ok());
        assert!(check(false, Some(StartOffset::End), &[0, 1]).is_ok());
        assert!(check(false, None, &[2]).is_ok());
        for bad in [
            check(true, Some(StartOffset::Beginning), &[]),
            check(true, Some(StartOffset::FromEnd(3)), &[]),
            check(true, None, &[0]),
            check(false, Some(StartOffset::Stored), &[]),
        ] {
            let e = bad.expect_err("refused");
            assert_eq!(e.code, 2, "a usage error: {}", e.message);
        }
    }

    #[test]
    fn partition_ranges_read_naturally() {
        assert_eq!(describe_range(&[2, 0, 1]), "partitions 0-2");
        assert_eq!(describe_range(&[0, 3]), "partitions 0,3");
        assert_eq!(describe_range(&[]), "no partitions");
    }
}
