//! The trading engine core: a synchronous, deterministic state machine.
//!
//! [`Engine::apply`] takes one input of the ordered `ENGINE` log and the time it was logged,
//! and returns the reply and the events. No async, no IO, no clock reads: tests, replay after
//! a crash and benchmarks all drive it from memory. The rules it implements are the doc of
//! [`trading`].

mod checks;
pub mod config;
mod freshness;
mod idempotency;
mod index;
mod key_set;
pub mod math;
mod order_index;
mod orders;
pub mod partial;
mod positions;
mod queries;
mod remembered;
#[cfg(feature = "service")]
pub mod service;
pub mod trading;
mod trail_index;
mod trailing;

pub use config::{AssetSpec, AssetTable, EngineConfig};
pub use trading::{Engine, Outcome};
