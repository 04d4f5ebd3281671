//! `GET /api/v1/assets` (public) -> 200 `{assets: [{symbol, name, bid, ask, priceDecimals,
//! quantityStep, minQuantity, maxQuantity, maxLeverage, simulated}]}`; bid/ask are the engine's
//! latest quote, null before the first tick; `simulated` says whether the price feed's latest
//! quote (Redis) comes from the simulated feed, null when unknown.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use bus::{Asset, Price, Query, QueryReply};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::body::finish;
use crate::error::{ApiError, engine_error};
use crate::state::AppState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AssetBody {
    symbol: &'static str,
    name: &'static str,
    bid: Option<Price>,
    ask: Option<Price>,
    price_decimals: u32,
    // rust_decimal serialises as a string by default.
    quantity_step: Decimal,
    min_quantity: Decimal,
    max_quantity: Decimal,
    max_leverage: u32,
    simulated: Option<bool>,
}

#[derive(Debug, Serialize)]
struct AssetsBody {
    assets: Vec<AssetBody>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/assets", get(assets))
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

#[tracing::instrument(skip_all)]
async fn assets(State(state): State<AppState>) -> Result<Json<AssetsBody>, ApiError> {
    let reply = state
        .engine()
        .query(Query::GetPrices)
        .await
        .map_err(|e| engine_error(e, state.nats_connected()))?;
    let QueryReply::Prices { quotes } = reply else {
        return Err(ApiError::Internal(format!("unexpected reply {reply:?}")));
    };
    let simulated = state.quotes().simulated().await;
    let assets = Asset::ALL
        .into_iter()
        .map(|asset| {
            let spec = state.assets().get(asset);
            let quote = quotes.iter().find(|q| q.asset == asset);
            AssetBody {
                symbol: asset.symbol(),
                name: asset.name(),
                bid: quote.map(|q| q.bid),
                ask: quote.map(|q| q.ask),
                price_decimals: spec.price_decimals,
                quantity_step: spec.quantity_step,
                min_quantity: spec.min_quantity,
                max_quantity: spec.max_quantity,
                max_leverage: spec.max_leverage,
                simulated: simulated[asset.index()],
            }
        })
        .collect();
    Ok(Json(AssetsBody { assets }))
}
