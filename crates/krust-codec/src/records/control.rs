//! Control records: the transaction markers (and other control types) that
//! fill control batches.
//!
//! A control record's key is `version: i16, type: i16` (0 abort, 1 commit);
//! a commit or abort marker's value is `version: i16, coordinator_epoch:
//! i32`. Readers accept longer keys and values from newer versions, as the
//! Java client does.

use crate::error::DecodeError;

use super::Record;

/// The typed content of a control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlMarker {
    /// The producer's transaction was committed.
    Commit {
        /// The transaction coordinator's epoch.
        coordinator_epoch: i32,
    },
    /// The producer's transaction was aborted.
    Abort {
        /// The transaction coordinator's epoch.
        coordinator_epoch: i32,
    },
    /// Another control type (KRaft's leader change, snapshot markers, ...),
    /// which a client skips.
    Other {
        /// The control key's version.
        version: i16,
        /// The control type.
        kind: i16,
    },
}

const ABORT: i16 = 0;
const COMMIT: i16 = 1;

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl ControlMarker {
    /// Read a control record's key and value (as found in a control batch).
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Self, DecodeError> {
        let short = |what: &'static str, have: usize, needed: usize| DecodeError::UnexpectedEof {
            what,
            needed,
            remaining: have,
        };
        let key = key.ok_or(DecodeError::InvalidValue {
            what: "control record key",
            detail: "null".to_owned(),
        })?;
        let (Some(version), Some(kind)) = (be_i16(key, 0), be_i16(key, 2)) else {
            return Err(short("control record key", key.len(), 4));
        };
        if version < 0 {
            return Err(DecodeError::InvalidValue {
                what: "control record key version",
                detail: format!("negative version {version}"),
            });
        }
        if kind != ABORT && kind != COMMIT {
            return Ok(ControlMarker::Other { version, kind });
        }
        let value = value.unwrap_or_default();
        let (Some(value_version), Some(coordinator_epoch)) = (be_i16(value, 0), be_i32(value, 2))
        else {
            return Err(short("transaction marker value", value.len(), 6));
        };
        if value_version < 0 {
            return Err(DecodeError::InvalidValue {
                what: "transaction marker version",
                detail: format!("negative version {value_version}"),
            });
        }
        Ok(if kind == COMMIT {
            ControlMarker::Commit { coordinator_epoch }
        } else {
            ControlMarker::Abort { coordinator_epoch }
        })
    }

    /// Read a decoded control record.
    pub fn from_record(record: &Record) -> Result<Self, DecodeError> {
        Self::parse(record.data.key(), record.data.value())
    }

    /// The control record key to write (version 0).
    pub fn key_bytes(&self) -> [u8; 4] {
        let (version, kind) = match *self {
            ControlMarker::Commit { .. } => (0, COMMIT),
            ControlMarker::Abort { .. } => (0, ABORT),
            ControlMarker::Other { version, kind } => (version, kind),
        };
        let mut k = [0u8; 4];
        k[..2].copy_from_slice(&i16::to_be_bytes(version));
        k[2..].copy_from_slice(&i16::to_be_bytes(kind));
        k
    }

    /// The record value to write for a commit or abort marker (version 0);
    /// `None` for other control types, whose value this crate does not model.
    pub fn value_bytes(&self) -> Option<[u8; 6]> {
        match *self {
            ControlMarker::Commit { coordinator_epoch }
            | ControlMarker::Abort { coordinator_epoch } => {
                let mut v = [0u8; 6];
                v[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
                Some(v)
            }
            ControlMarker::Other { .. } => None,
        }
    }

    /// True for a commit marker.
    pub fn is_commit(&self) -> bool {
        matches!(self, ControlMarker::Commit { .. })
    }

    /// True for an abort marker.
    pub fn is_abort(&self) -> bool {
        matches!(self, ControlMarker::Abort { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        for m in [
            ControlMarker::Commit {
                coordinator_epoch: 7,
            },
            ControlMarker::Abort {
                coordinator_epoch: -1,
            },
            ControlMarker::Other {
                version: 0,
                kind: 3,
            },
        ] {
            let k = m.key_bytes();
            let v = m.value_bytes();
            assert_eq!(
                ControlMarker::parse(Some(&k), v.as_ref().map(|v| &v[..])),
                Ok(m)
            );
        }
    }

    #[test]
    fn short_or_null_keys_are_errors() {
        assert!(ControlMarker::parse(None, None).is_err());
        assert!(ControlMarker::parse(Some(&[0, 0, 0]), None).is_err());
        assert!(ControlMarker::parse(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0])).is_err());
        assert!(ControlMarker::parse(Some(&[0xff, 0, 0, 1]), Some(&[0; 6])).is_err());
    }
}
