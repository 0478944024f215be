//! Names no other test uses: tests that share a broker (a Kafka node per
//! test binary, or `KAFKA_BOOTSTRAP` across runs) must not meet each
//! other's topics, groups or transactional ids.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` followed by a suffix unique to this call: the process id, a
/// counter and the clock, so that neither another test of this binary nor
/// an earlier run against the same external broker has used it.
/// Kafka's topic-name rules hold when `prefix` is made of `[a-zA-Z0-9._-]`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() % 1_000_000_000)
        .unwrap_or(0);
    format!("{prefix}-{:x}-{n}-{micros:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::unique;

    #[test]
    fn names_differ_and_keep_their_prefix() {
        let (a, b) = (unique("t"), unique("t"));
        assert_ne!(a, b);
        assert!(a.starts_with("t-"), "{a}");
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_')
        );
    }
}
