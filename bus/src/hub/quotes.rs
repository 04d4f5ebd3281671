//! Quotes on their way to every client, encoded once per fan-out.
//!
//! When the hub falls behind the price stream, the fan-out takes every quote already waiting
//! and sends them together: one write per client for all of them (each client gets its
//! subscribed assets' frames joined into one buffer, built once per subscription set). The
//! busier the hub, the more frames share a syscall, so it catches up without dropping any.

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

use crate::types::Asset;

/// Frames of several quotes, joined for a set of assets.
#[derive(Debug)]
pub struct Joined {
    pub bytes: Bytes,
    /// Where each frame ends in `bytes`.
    pub ends: Vec<usize>,
}

/// Quotes to fan out, oldest first, each an encoded frame.
#[derive(Debug, Default)]
pub struct QuoteBatch {
    quotes: Vec<(Asset, Bytes)>,
    /// By subscription set (bit = [`Asset::index`]); `None` when none of the quotes is in it.
    joined: [OnceLock<Option<Joined>>; 8],
}

impl QuoteBatch {
    pub fn push(&mut self, asset: Asset, frame: Bytes) {
        self.quotes.push((asset, frame));
        self.joined = Default::default();
    }

    pub fn len(&self) -> usize {
        self.quotes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.quotes.is_empty()
    }

    pub fn quotes(&self) -> impl Iterator<Item = (Asset, Bytes)> + '_ {
        self.quotes.iter().cloned()
    }

    /// The frames of the assets in `mask`, in order, as one buffer (built on first use).
    pub fn joined(&self, mask: usize) -> Option<&Joined> {
        self.joined[mask & 7]
            .get_or_init(|| self.join(mask))
            .as_ref()
    }

    fn join(&self, mask: usize) -> Option<Joined> {
        let mine = || {
            self.quotes
                .iter()
                .filter(move |(asset, _)| mask & (1 << asset.index()) != 0)
        };
        match mine().count() {
            0 => None,
            // One frame: share it, no copy.
            1 => mine().next().map(|(_, frame)| Joined {
                bytes: frame.clone(),
                ends: vec![frame.len()],
            }),
            _ => {
                let mut bytes = BytesMut::new();
                let mut ends = Vec::new();
                for (_, frame) in mine() {
                    bytes.extend_from_slice(frame);
                    ends.push(bytes.len());
                }
                Some(Joined {
                    bytes: bytes.freeze(),
                    ends,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_the_frames_of_each_subscription_set_in_order() {
        let mut batch = QuoteBatch::default();
        batch.push(Asset::Btc, Bytes::from_static(b"b1"));
        batch.push(Asset::Eth, Bytes::from_static(b"e1"));
        batch.push(Asset::Btc, Bytes::from_static(b"b2"));
        let all = batch.joined(7).expect("all assets");
        assert_eq!(
            (&all.bytes[..], &all.ends[..]),
            (&b"b1e1b2"[..], &[2, 4, 6][..])
        );
        let btc = batch.joined(1 << Asset::Btc.index()).expect("btc");
        assert_eq!((&btc.bytes[..], &btc.ends[..]), (&b"b1b2"[..], &[2, 4][..]));
        assert!(batch.joined(1 << Asset::Sol.index()).is_none());
        assert_eq!(batch.len(), 3);
    }
}
