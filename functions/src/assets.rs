//! `GET /api/v1/assets` (public) -> 200 `{assets: [{symbol, name, bid, ask, priceDecimals,
//! quantityStep, minQuantity, maxQuantity, maxLeverage, simulated}]}`; bid/ask are the engine's
//! latest quote, null before the first tick; `simulated` says whether the price feed's latest
//! quote (Redis) comes from the simulated feed, null when unknown.

use axum::extract::State;
use axum::{Json, Router};
use bus::{Asset, Price, Quantity, Query, QueryReply};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::finish;
use crate::error::{ApiError, engine_error};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AssetInfo)]
struct AssetBody {
    #[schema(value_type = Asset)]
    symbol: &'static str,
    #[schema(value_type = String, examples("Bitcoin"))]
    name: &'static str,
    /// The engine's latest bid; null before the first tick.
    #[schema(required = true)]
    bid: Option<Price>,
    /// The engine's latest ask; null before the first tick.
    #[schema(required = true)]
    ask: Option<Price>,
    price_decimals: u32,
    // rust_decimal serialises as a string by default.
    #[schema(value_type = Quantity)]
    quantity_step: Decimal,
    #[schema(value_type = Quantity)]
    min_quantity: Decimal,
    #[schema(value_type = Quantity)]
    max_quantity: Decimal,
    max_leverage: u32,
    /// Whether the price feed's latest quote is simulated (no Binance connection); null when
    /// unknown.
    #[schema(required = true)]
    simulated: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
struct AssetsBody {
    assets: Vec<AssetBody>,
}

/// The route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(assets))
}

pub fn routes() -> Router<AppState> {
    router().into()
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

/// The tradable assets with their latest quote (public).
#[utoipa::path(
    get,
    path = "/api/v1/assets",
    operation_id = "assets",
    tag = "market",
    responses(
        (status = 200, description = "The assets", body = AssetsBody),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::EngineTimeout),
    )
)]
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
