//! The local runner's tests in one binary (`observe.rs` stays a binary of its own: it installs
//! the process's metrics recorder and log subscriber and counts exactly).

mod support;

mod chaos;
mod e2e;
mod market;
mod migrate;
mod settings;
