//! # krust-group
//!
//! Kafka's classic consumer-group protocol (KIP-62 heartbeats, KIP-345 static
//! membership, KIP-394 MEMBER_ID_REQUIRED, KIP-429 cooperative rebalancing):
//! a sans-io membership state machine with a thin async driver, the
//! consumer protocol of KIP-848 as a second machine beside it, the
//! partition assignors, and offset commit / fetch.
#![deny(missing_docs)]

pub mod assignor;
pub mod driver;
mod events;
mod io;
pub mod kip848;
mod leave;
pub mod membership;
pub mod offsets;
mod replies;
mod revoke;
mod span;
pub mod tp;

pub use driver::{GroupHandle, GroupTask, MemberSnapshot, group};
pub use events::{GroupError, GroupEvent, LeaveReason};
pub use io::GroupProtocol;
pub use kip848::ConsumerMembership;
pub use membership::{Membership, MembershipConfig, RebalanceProtocol};
pub use offsets::{OffsetAndMetadata, OffsetError, PartitionError};
pub use tp::TopicPartition;
