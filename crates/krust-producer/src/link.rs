//! The producer task's connections, one per broker.
//!
//! Every request to a broker goes on one connection, queued in drain
//! order; a new connection is made only once nothing is in flight on the
//! old one. So a request is never written while an older one to the same
//! broker may still fail unwritten (its connection closed under it) and be
//! retried behind it: the requests after it on that connection fail too,
//! and their batches go back in sequence order. As in the Java client,
//! whose `Sender` drains only for a broker whose connection is ready, no
//! batch leaves the queue for a broker the task cannot reach yet.

use std::collections::HashMap;
use std::time::Instant;

use krust_net::{Backoff, Connection};

/// The task's way to one broker.
enum Link {
    /// A connection is being made; `failures` tries failed before this one.
    Connecting { failures: u32 },
    /// The connection requests go on.
    Ready(Connection),
    /// The last `failures` tries failed; the next is due at `retry_at`.
    Failed { retry_at: Instant, failures: u32 },
}

/// What the task does about a broker it has batches for.
pub(crate) enum Use {
    /// Drain onto this connection.
    Send(Connection),
    /// Nothing to drain onto yet.
    Wait,
    /// Make a connection (the link is now `Connecting`), then wait.
    Connect,
}

/// Every broker's link.
#[derive(Default)]
pub(crate) struct Links {
    links: HashMap<i32, Link>,
}

impl Links {
    /// What to do for `broker`, with `busy` requests in flight to it.
    pub fn get(&mut self, broker: i32, busy: usize, now: Instant) -> Use {
        let failures = match self.links.get(&broker) {
            Some(Link::Ready(conn)) if !conn.is_closed() => return Use::Send(conn.clone()),
            // Its requests fail; wait for them before using another.
            Some(Link::Ready(_)) if busy > 0 => return Use::Wait,
            Some(Link::Ready(_)) | None => 0,
            Some(Link::Connecting { .. }) => return Use::Wait,
            Some(&Link::Failed { retry_at, failures }) => {
                if retry_at > now || busy > 0 {
                    return Use::Wait;
                }
                failures
            }
        };
        self.links.insert(broker, Link::Connecting { failures });
        Use::Connect
    }

    /// The connection to `broker` was made.
    pub fn connected(&mut self, broker: i32, conn: Connection) {
        self.links.insert(broker, Link::Ready(conn));
    }

    /// The connection to `broker` could not be made: the next try waits
    /// for `backoff`, longer after each failure in a row.
    pub fn failed(&mut self, broker: i32, backoff: &Backoff, now: Instant) {
        let failures = match self.links.get(&broker) {
            Some(&Link::Connecting { failures }) => failures,
            _ => 0,
        }
        .saturating_add(1);
        let retry_at = now + backoff.delay(failures);
        self.links
            .insert(broker, Link::Failed { retry_at, failures });
    }

    /// The earliest retry after `now` of a broker that could not be
    /// reached (nothing to wake for once one is past: its batches retried).
    pub fn next_retry(&self, now: Instant) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|link| match link {
                Link::Failed { retry_at, .. } if *retry_at > now => Some(*retry_at),
                _ => None,
            })
            .min()
    }
}
