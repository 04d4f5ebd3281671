//! The platform's HTTP functions and event functions.
//!
//! Each HTTP function is one module with `pub fn app(state: AppState) -> axum::Router`, built
//! once and run two ways: by its Lambda main (`src/bin/<name>.rs`, `lambda_http::run`) and by
//! the local runner, which serves [`api`] (every router merged) on one server. Everything is
//! under `/api/v1`, JSON in and out, money and prices as decimal strings, and every error is
//! `{"error": {"code", "message"}}` (see [`error`]).
//!
//! The event function [`persist`] is a durable consumer of the `EVENTS` stream that writes
//! users' positions, partial closes and orders to PostgreSQL; the long-lived
//! [`alerts::worker`] fires price alerts.

pub mod alerts;
pub mod analytics;
pub mod assets;
pub mod auth;
pub mod balance;
pub mod body;
pub mod candles;
pub mod cursor;
pub mod error;
pub mod hash_pool;
pub mod health;
pub mod history;
pub mod input;
pub mod lambda;
pub mod limits;
pub mod listing;
pub mod market;
pub mod observe;
pub mod openapi;
pub mod order_history;
pub mod orders;
pub mod persist;
pub mod secrets;
pub mod settings;
pub mod signin;
pub mod signup;
pub mod state;
pub mod trade;
pub mod users;
pub mod views;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use settings::Settings;
pub use state::AppState;

/// The prefix every route lives under.
pub const API_PREFIX: &str = "/api/v1";

/// Every HTTP function's routes with their OpenAPI operations: the one list both the served
/// router ([`api`]) and the document ([`openapi::build`]) come from.
pub fn routers() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(signup::router())
        .merge(signin::router())
        .merge(balance::router())
        .merge(assets::router())
        .merge(trade::router())
        .merge(candles::router())
        .merge(analytics::router())
        .merge(health::router())
        .merge(alerts::router())
}

/// Every HTTP function merged into one router: what the local runner serves. The routers are
/// merged (a router with a fallback cannot be merged), then the shared layers are applied once.
pub fn api(state: AppState) -> Router {
    let routes: Router<AppState> = routers().into();
    body::finish(routes.with_state(state.clone()), &state)
}
