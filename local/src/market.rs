//! Market data inside the local runner: the price feed (Binance, falling back to the
//! simulated walk on these offline machines), the WebSocket hub and the candle event function,
//! each a task of the runner's set that stops on the shared shutdown signal. The feed and the
//! candle consumer are started again if they fail; the hub's sources reconnect by themselves.
//!
//! `MARKET_DATA=off` leaves all three out (`on`, the default, runs them; anything else is an
//! error); the feed and hub read their usual variables
//! (`PRICE_SOURCE`, `BINANCE_WS_URL`, `MARKUP_BPS*`, `REDIS_URL`, `REDIS_PREFIX`, `WS_ADDR`,
//! `JWT_SECRET`, …; see `bus::feed::FeedSettings` and `bus::hub::HubSettings`).

use std::net::SocketAddr;

use bus::Names;
use bus::feed::{FeedHealth, FeedSettings, SpreadTable};
use bus::hub::{HubSettings, HubStats};
use bus::settings::Env;
use engine::AssetTable;
use functions::candles::ingest::{self, IngestSettings};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::supervise::restarting;
use crate::{PartReadiness, RunError};

/// Which market-data parts run, and how. `None` leaves a part out.
#[derive(Debug, Clone)]
pub struct MarketSettings {
    pub feed: Option<FeedSettings>,
    /// The hub listens on `hub.bind` (port 0 picks a free port; see `Running::ws_addr`).
    pub hub: Option<HubSettings>,
    pub candles: Option<IngestSettings>,
}

impl MarketSettings {
    /// From the environment; `None` when `MARKET_DATA=off` (`on`, the default, runs them).
    /// The feed rounds prices to the engine's price decimals (unless `PRICE_DECIMALS_<ASSET>`
    /// says otherwise), the hub listens on `WS_ADDR` (default `127.0.0.1:7070`) and verifies
    /// tokens with the same `JWT_SECRET` as the HTTP functions.
    pub fn from_vars(
        env: &Env,
        functions: &functions::Settings,
        assets: &AssetTable,
    ) -> Result<Option<Self>, RunError> {
        if !env.switch("MARKET_DATA")? {
            return Ok(None);
        }
        let mut feed = FeedSettings::from_vars(env)?;
        feed.bus_prefix = functions.bus_prefix.clone();
        let mut decimals = [0u32; 3];
        for a in bus::Asset::ALL {
            let key = format!("PRICE_DECIMALS_{}", a.symbol());
            decimals[a.index()] = env
                .parse(&key, "a whole number of decimals")?
                .unwrap_or(assets.get(a).price_decimals);
        }
        feed.spreads = SpreadTable::new(
            bus::Asset::ALL.map(|a| feed.spreads.markup_bps(a)),
            decimals,
        );
        let mut hub = HubSettings::from_vars(env)?;
        if env.get("WS_ADDR").is_none() {
            hub.bind = "127.0.0.1:7070".into();
        }
        hub.bus_prefix = functions.bus_prefix.clone();
        hub.nats_url = functions.nats_url.clone();
        hub.jwt_secret = functions.jwt_secret.clone();
        Ok(Some(Self {
            feed: Some(feed),
            hub: Some(hub),
            candles: Some(IngestSettings::default()),
        }))
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

type Tasks = JoinSet<(&'static str, Result<(), RunError>)>;

/// Starts the configured parts as tasks of `tasks`; returns the hub's bound address.
pub async fn start(
    tasks: &mut Tasks,
    market: MarketSettings,
    nats: async_nats::Client,
    names: Names,
    db: PgPool,
    stop: &watch::Receiver<bool>,
    parts: &mut Vec<PartReadiness>,
) -> Result<Option<SocketAddr>, RunError> {
    if let Some(candles) = market.candles {
        let js = async_nats::jetstream::new(nats);
        tasks.spawn(restarting("candles", stop.clone(), move |rx| {
            let (js, names, db) = (js.clone(), names.clone(), db.clone());
            async move {
                let r = ingest::run(js, names, db, candles, stopped(rx)).await;
                r.map_err(|e| RunError::Market(e.to_string()))
            }
        }));
    }
    if let Some(feed) = market.feed {
        // One health across restarts, so the exported counters never go back.
        let health = FeedHealth::default();
        health.export_metrics();
        let probe = health.clone();
        parts.push(Box::new(move || probe.readiness()));
        tasks.spawn(restarting("price-feed", stop.clone(), move |rx| {
            let (feed, health) = (feed.clone(), health.clone());
            async move {
                let r = bus::feed::run_with_health(feed, health, stopped(rx)).await;
                r.map_err(|e| RunError::Market(e.to_string()))
            }
        }));
    }
    let Some(hub) = market.hub else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(&hub.bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "WebSocket hub listening");
    let rx = stop.clone();
    let stats = HubStats::default();
    stats.export_metrics();
    let probe = stats.clone();
    parts.push(Box::new(move || probe.readiness()));
    tasks.spawn(async move {
        let r = bus::hub::serve(listener, hub, stats, stopped(rx)).await;
        ("ws-hub", r.map_err(|e| RunError::Market(e.to_string())))
    });
    Ok(Some(addr))
}
