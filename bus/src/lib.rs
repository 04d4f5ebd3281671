//! The wire contract shared by the HTTP functions, the engine and the market-data services:
//! value types parsed at the edge, engine inputs, queries, replies, events, versioned
//! envelopes and NATS subject names.
//!
//! This crate is deliberately light (serde, rust_decimal, uuid, sha2): the pure engine core depends
//! on it.

#[cfg(feature = "auth")]
pub mod auth;
#[cfg(any(feature = "feed", feature = "hub", feature = "nats"))]
pub mod backoff;
mod digest;
pub mod envelope;
pub mod events;
#[cfg(feature = "feed")]
pub mod feed;
pub mod fingerprint;
#[cfg(feature = "hub")]
pub mod hub;
#[cfg(feature = "limits")]
pub mod limits;
pub mod market;
pub mod messages;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "redis")]
pub mod prices;
#[cfg(feature = "process")]
pub mod process;
pub mod readiness;
#[cfg(feature = "nats")]
pub mod request_id;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod settings;
pub mod subjects;
#[cfg(feature = "nats")]
pub mod trades;
pub mod types;
pub mod unchecked;

pub use envelope::{DecodeError, Envelope};
pub use fingerprint::Fingerprint;
pub use market::{MarketQuote, PriceKeys, Trade};
pub use messages::*;
pub use subjects::Names;
pub use types::*;
pub use unchecked::Unchecked;
