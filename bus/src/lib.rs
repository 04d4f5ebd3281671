//! The wire contract shared by the HTTP functions, the engine and the market-data services:
//! value types parsed at the edge, engine inputs, queries, replies, events, versioned
//! envelopes and NATS subject names.
//!
//! This crate is deliberately light (serde, rust_decimal, uuid): the pure engine core depends
//! on it.

pub mod envelope;
pub mod market;
pub mod messages;
#[cfg(feature = "nats")]
pub mod nats;
pub mod subjects;
pub mod types;

pub use envelope::{DecodeError, Envelope};
pub use market::{MarketQuote, PriceKeys, Trade};
pub use messages::*;
pub use subjects::Names;
pub use types::*;
