//! The consumer protocol: the Subscription a member puts in JoinGroup's
//! protocol metadata and the Assignment the leader hands out through
//! SyncGroup, for protocol type `consumer` (KIP-429 owned partitions,
//! KIP-792 generation id, KIP-881 rack id).
//!
//! On the wire each is an i16 version followed by the struct at that version
//! (never flexible). Decoding is forward compatible the way the Java client
//! and librdkafka are: a version newer than we know is read at the newest
//! version we know, and bytes past the fields of that version are ignored, so
//! a group mixing client generations keeps working.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::generated::consumer_protocol_assignment as assignment;
use crate::generated::consumer_protocol_subscription as subscription;
use crate::wire::{self, Decode, Encode};

pub use assignment::ConsumerProtocolAssignment as Assignment;
pub use assignment::TopicPartition as AssignedPartitions;
pub use subscription::ConsumerProtocolSubscription as Subscription;
pub use subscription::TopicPartition as OwnedPartitions;

/// The protocol type of consumer groups in JoinGroup.
pub const PROTOCOL_TYPE: &str = "consumer";

/// Newest Subscription version this codec writes and reads.
pub const SUBSCRIPTION_VERSION: i16 = 3;

/// Newest Assignment version this codec writes and reads.
pub const ASSIGNMENT_VERSION: i16 = 3;

fn encode_versioned<T: Encode>(value: &T, version: i16) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    value.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

fn read_version(buf: &mut Bytes, what: &'static str, newest: i16) -> Result<i16, DecodeError> {
    let version = wire::get_i16(buf, what)?;
    if version < 0 {
        return Err(DecodeError::InvalidValue {
            what,
            detail: format!("negative version {version}"),
        });
    }
    Ok(version.min(newest))
}

/// Encode a Subscription with its version prefix.
pub fn encode_subscription(sub: &Subscription, version: i16) -> Result<Bytes, EncodeError> {
    encode_versioned(sub, version)
}

/// Decode a Subscription from JoinGroup protocol metadata. Returns the
/// version it was read at and the subscription.
pub fn decode_subscription(mut buf: Bytes) -> Result<(i16, Subscription), DecodeError> {
    let version = read_version(&mut buf, "subscription version", SUBSCRIPTION_VERSION)?;
    Ok((version, Subscription::decode(&mut buf, version)?))
}

/// Encode an Assignment with its version prefix.
pub fn encode_assignment(a: &Assignment, version: i16) -> Result<Bytes, EncodeError> {
    encode_versioned(a, version)
}

/// Decode an Assignment from a SyncGroup response. Empty bytes mean an
/// empty assignment (what brokers send a member the leader gave nothing).
pub fn decode_assignment(mut buf: Bytes) -> Result<(i16, Assignment), DecodeError> {
    if !buf.has_remaining() {
        return Ok((0, Assignment::default()));
    }
    let version = read_version(&mut buf, "assignment version", ASSIGNMENT_VERSION)?;
    Ok((version, Assignment::decode(&mut buf, version)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KString;

    fn sub() -> Subscription {
        Subscription {
            topics: vec![KString::from_static("a"), KString::from_static("b")],
            user_data: Some(Bytes::from_static(b"ud")),
            owned_partitions: vec![OwnedPartitions {
                topic: KString::from_static("a"),
                partitions: vec![0, 2],
            }],
            generation_id: 7,
            rack_id: Some(KString::from_static("r1")),
        }
    }

    #[test]
    fn subscription_v0_bytes_match_the_protocol() {
        let s = Subscription {
            topics: vec![KString::from_static("t")],
            ..Default::default()
        };
        let b = encode_subscription(&s, 0).unwrap();
        assert_eq!(&b[..], b"\x00\x00\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff");
        assert_eq!(decode_subscription(b).unwrap(), (0, s));
    }

    #[test]
    fn subscription_roundtrips_at_every_version() {
        for v in 0..=SUBSCRIPTION_VERSION {
            let b = encode_subscription(&sub(), v).unwrap();
            let (got_v, got) = decode_subscription(b).unwrap();
            assert_eq!(got_v, v);
            assert_eq!(got.topics, sub().topics);
            assert_eq!(got.owned_partitions.is_empty(), v < 1);
            assert_eq!(got.generation_id, if v >= 2 { 7 } else { -1 });
            assert_eq!(got.rack_id.is_some(), v >= 3);
        }
    }

    #[test]
    fn newer_versions_are_read_at_the_newest_known() {
        let mut b = BytesMut::from(&encode_subscription(&sub(), 3).unwrap()[..]);
        b[0..2].copy_from_slice(&9i16.to_be_bytes());
        b.put_slice(b"future fields");
        assert_eq!(decode_subscription(b.freeze()).unwrap(), (3, sub()));
    }

    #[test]
    fn assignment_roundtrips_and_empty_means_nothing_assigned() {
        let a = Assignment {
            assigned_partitions: vec![AssignedPartitions {
                topic: KString::from_static("t"),
                partitions: vec![1, 3, 5],
            }],
            user_data: None,
        };
        for v in 0..=ASSIGNMENT_VERSION {
            let b = encode_assignment(&a, v).unwrap();
            assert_eq!(decode_assignment(b).unwrap(), (v, a.clone()));
        }
        assert_eq!(
            decode_assignment(Bytes::new()).unwrap(),
            (0, Assignment::default())
        );
    }

    #[test]
    fn hostile_metadata_is_an_error_not_a_panic() {
        assert!(decode_assignment(Bytes::from_static(b"\xff\xff")).is_err());
        assert!(decode_subscription(Bytes::from_static(b"\x00\x00\x7f\xff\xff\xff")).is_err());
        assert!(decode_subscription(Bytes::from_static(b"\x00")).is_err());
    }
}
