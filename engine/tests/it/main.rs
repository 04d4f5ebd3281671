//! The engine's tests in one binary: the pure core's rules, properties and snapshot formats,
//! and the engine service against the real NATS and PostgreSQL (`svc`).

mod logs;
mod support;
mod svc;

mod crash;
mod liquidation;
mod order_fills;
mod orders;
mod outage;
mod partial;
mod prices;
mod properties;
mod published;
mod recovery;
mod replay;
mod rules;
mod service;
mod snapshot_format;
mod trailing;
