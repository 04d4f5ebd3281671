//! The HTTP and event functions' tests in one binary, against the real engine service, NATS,
//! PostgreSQL and Redis (`support` builds the platform per test: fresh database, own prefixes).

mod support;

mod alerts;
mod alerts_fire;
mod alerts_kill;
mod analytics;
mod auth;
mod boundaries;
mod candles;
mod edges;
mod lambda;
mod openapi;
mod openapi_statuses;
mod orders;
mod outage;
mod partial_close;
mod persist;
mod persist_orders;
mod runtime_api;
mod settings;
mod trade;
