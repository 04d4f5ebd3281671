//! The price feed's, the WebSocket hub's and the settings' tests in one binary.

mod feed;
mod hub;
mod settings;
