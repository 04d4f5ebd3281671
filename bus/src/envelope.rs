//! Versioned envelopes: every message on the wire carries `{v, seq, ts}`.
//!
//! `v` is the contract version the writer used. Readers accept every version they know and
//! refuse the rest with an error instead of guessing: an old message is read as what it was,
//! never silently reinterpreted.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::types::TimestampMs;

/// The version this build writes.
pub const CURRENT_VERSION: u16 = 1;
/// The versions this build can read.
pub const READABLE_VERSIONS: std::ops::RangeInclusive<u16> = 1..=CURRENT_VERSION;

/// A message with its contract version, sequence and time.
///
/// `seq` is the position in the log the message belongs to: for an engine input it is filled
/// from the `ENGINE` stream when read (0 when published); for an event it is the `ENGINE`
/// sequence of the input that caused it, so consumers can deduplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u16,
    pub seq: u64,
    pub ts: TimestampMs,
    pub body: T,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported contract version {0} (this build reads {READABLE_VERSIONS:?})")]
    UnsupportedVersion(u16),
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl<T> Envelope<T> {
    pub fn new(seq: u64, ts: TimestampMs, body: T) -> Self {
        Self {
            v: CURRENT_VERSION,
            seq,
            ts,
            body,
        }
    }
}

impl<T: Serialize> Envelope<T> {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain data types cannot fail: no maps with non-string keys,
        // no custom serialisers that error.
        serde_json::to_vec(self).expect("envelope serialises")
    }
}

impl<T: DeserializeOwned> Envelope<T> {
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u16,
        }
        // One parse in the common case (this is on the engine's replay path); the version is
        // still checked before the body is trusted, and a body that does not parse is
        // reported as an unknown version when that is the reason.
        match serde_json::from_slice::<Self>(bytes) {
            Ok(envelope) if READABLE_VERSIONS.contains(&envelope.v) => Ok(envelope),
            Ok(envelope) => Err(DecodeError::UnsupportedVersion(envelope.v)),
            Err(e) => match serde_json::from_slice::<VersionOnly>(bytes) {
                Ok(VersionOnly { v }) if !READABLE_VERSIONS.contains(&v) => {
                    Err(DecodeError::UnsupportedVersion(v))
                }
                _ => Err(DecodeError::Malformed(e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_versions() {
        let env = Envelope::new(7, 1_700_000_000_000, "hello".to_string());
        let bytes = env.encode();
        assert_eq!(Envelope::<String>::decode(&bytes).expect("decodes"), env);

        let future = br#"{"v":99,"seq":1,"ts":0,"body":"x"}"#;
        assert!(matches!(
            Envelope::<String>::decode(future),
            Err(DecodeError::UnsupportedVersion(99))
        ));
        assert!(matches!(
            Envelope::<String>::decode(b"{not json"),
            Err(DecodeError::Malformed(_))
        ));
    }
}
