//! The local runner: the whole platform in one process. It applies the migrations, runs the
//! engine service, the event functions (`persist`) and every HTTP function merged on one
//! server (port 8000 by default), and stops all of them cleanly on one shutdown signal.
//! The same port serves `GET /metrics` (every part's metrics, Prometheus text) and `/readyz`
//! (the functions' checks plus the engine's, the feed's and the hub's).

pub mod client;
pub mod cpu;
pub mod loadgen;
pub mod market;
pub mod supervise;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;

use axum::serve::ListenerExt;
use bus::Names;
use bus::nats::{StreamSettings, ensure_streams};
use bus::readiness::Readiness;
use bus::settings::Env;
use functions::AppState;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Everything the runner needs; [`RunnerSettings::from_env`] gives working local defaults.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// `HTTP_ADDR`, default `127.0.0.1:8000` (port 0 picks a free port, for tests).
    pub http_addr: SocketAddr,
    pub functions: functions::Settings,
    /// `None` runs no engine (then trade requests answer 504 `engine_timeout`).
    pub engine: Option<engine::service::Settings>,
    /// The price feed, the WebSocket hub and the candle consumer; `None` runs none of them.
    pub market: Option<market::MarketSettings>,
    /// Whether the `persist` event function runs in this process.
    pub persist: bool,
    /// Whether the price-alerts worker runs in this process (`ALERTS=off`: its own process).
    pub alerts: bool,
    /// The web page, the API reference and the API's CORS layer; `None` serves none of them.
    pub web: Option<web::WebSettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("settings: {0}")]
    Settings(String),
    #[error("migrations: {0}")]
    Migrations(#[from] sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
    #[error("http: {0}")]
    Http(#[from] std::io::Error),
    #[error("engine: {0}")]
    Engine(#[from] engine::service::ServiceError),
    #[error("persist: {0}")]
    Persist(#[from] functions::persist::PersistError),
    #[error("state: {0}")]
    State(#[from] functions::state::StartError),
    #[error("market data: {0}")]
    Market(String),
    #[error("alerts: {0}")]
    Alerts(String),
}

impl From<bus::settings::SettingsError> for RunError {
    fn from(e: bus::settings::SettingsError) -> Self {
        Self::Settings(e.message().to_string())
    }
}

impl RunnerSettings {
    /// Every part's settings from the environment, through the one settings layer
    /// (`bus::settings`); a bad value is an error naming its variable, and `JWT_SECRET` is
    /// required (at least 32 bytes) unless `APP_ENV=local`.
    pub fn from_env() -> Result<Self, RunError> {
        Self::from_vars(&Env::from_process())
    }

    pub fn from_vars(env: &Env) -> Result<Self, RunError> {
        let http_addr = env
            .parse("HTTP_ADDR", "an address such as 127.0.0.1:8000")?
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
        let engine = engine::service::Settings::from_vars(env)?;
        let functions = functions::Settings::from_vars(env)?;
        let market = market::MarketSettings::from_vars(env, &functions, &engine.engine.assets)?;
        // `ENGINE=off` / `PERSIST=off`: those parts run as their own processes (compose).
        let engine_on = env.switch("ENGINE")?;
        let persist = env.switch("PERSIST")?;
        let alerts = env.switch("ALERTS")?;
        Ok(Self {
            http_addr,
            functions,
            engine: engine_on.then_some(engine),
            market,
            persist,
            alerts,
            web: web::WebSettings::from_vars(env)?,
        })
    }
}

/// A started runner: where it listens, and the supervisor to await.
pub struct Running {
    pub http_addr: SocketAddr,
    /// Where the WebSocket hub listens, when it runs.
    pub ws_addr: Option<SocketAddr>,
    /// Where the web page and the API reference are served, when they are.
    pub web_addrs: Option<(SocketAddr, SocketAddr)>,
    supervisor: tokio::task::JoinHandle<Result<(), RunError>>,
}

impl Running {
    /// Waits until every part has stopped; the first failure, if any.
    pub async fn wait(self) -> Result<(), RunError> {
        self.supervisor
            .await
            .map_err(|e| RunError::Settings(format!("supervisor task: {e}")))?
    }
}

/// A part's synchronous readiness (engine status, feed health, hub stats).
pub type PartReadiness = Box<dyn Fn() -> Readiness + Send + Sync>;

/// Resolves once the shutdown signal has been given.
async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which is a shutdown too.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Migrates, connects and starts every part; returns once the HTTP port is bound. Everything
/// stops when `shutdown` resolves, or when a part fails for good (the HTTP server, the hub, an
/// engine with bad settings). Outages are ridden out: the engine waits and recovers by
/// itself, persist, the feed and the candle consumer are started again if they fail, and the
/// HTTP functions answer 503/504 meanwhile.
pub async fn start(
    settings: RunnerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, RunError> {
    let f = &settings.functions;
    bus::process::install_metrics();
    let mut parts: Vec<PartReadiness> = Vec::new();
    let db = functions::state::pool_options(f)
        .connect(&f.database_url)
        .await?;
    migrations::MIGRATOR
        .run(&db)
        .await
        .map_err(sqlx::Error::from)?;
    let nats = async_nats::connect(&f.nats_url)
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
    let js = async_nats::jetstream::new(nats.clone());
    let names = Names::new(f.bus_prefix.clone());
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(settings.http_addr).await?;
    let http_addr = listener.local_addr()?;
    let state = AppState::new(f, nats, db.clone())?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<(&'static str, Result<(), RunError>)> = JoinSet::new();
    if let Some(engine_settings) = settings.engine {
        let rx = stop_rx.clone();
        let status = engine::service::EngineStatus::default();
        let probe = status.clone();
        parts.push(Box::new(move || probe.readiness()));
        tasks.spawn(async move {
            let r = engine::service::run_with_status(engine_settings, status, stopped(rx)).await;
            ("engine", r.map_err(RunError::from))
        });
    }
    if settings.persist {
        tasks.spawn(supervise::restarting(
            "persist",
            stop_rx.clone(),
            move |rx| {
                let (js, names, db) = (js.clone(), names.clone(), db.clone());
                async move {
                    let r = functions::persist::run(js, names, db, stopped(rx)).await;
                    r.map_err(RunError::from)
                }
            },
        ));
    }
    if settings.alerts {
        let (nats, db) = (state.nats().clone(), state.db().clone());
        tasks.spawn(alerts_worker(f, nats, db, &stop_rx));
    }
    // Market data: the price feed (Redis, ENGINE ticks, TRADES), the WebSocket hub and the
    // candle consumer, as more tasks of this set.
    let ws_addr = match settings.market {
        Some(m) => {
            let names = Names::new(f.bus_prefix.clone());
            let (nats, db) = (state.nats().clone(), state.db().clone());
            market::start(&mut tasks, m, nats, names, db, &stop_rx, &mut parts).await?
        }
        None => None,
    };
    if !parts.is_empty() {
        let parts = std::sync::Arc::new(parts);
        state.add_readiness(bus::process::ready_fn(move || {
            let all = parts
                .iter()
                .fold(Readiness::of(Vec::new()), |r, p| r.and(p()));
            std::future::ready(all)
        }));
    }
    let mut app = functions::api(state).route(
        "/metrics",
        axum::routing::get(|| async { bus::process::render_metrics() }),
    );
    let mut web_addrs = None;
    if let Some(w) = settings.web {
        let started = web::start(&mut tasks, w, http_addr, ws_addr, &stop_rx).await?;
        web_addrs = Some((started.web_addr, started.docs_addr));
        app = app.layer(started.cors);
    }
    let rx = stop_rx.clone();
    tasks.spawn(async move {
        // Small JSON answers go out at once rather than waiting on Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        // Each request knows its TCP peer: the rate limits key on the client's address.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(stopped(rx))
            .await;
        ("http", r.map_err(RunError::from))
    });

    let supervisor = tokio::spawn(supervise(tasks, stop_tx, shutdown));
    Ok(Running {
        http_addr,
        ws_addr,
        web_addrs,
        supervisor,
    })
}

/// The price-alerts worker as a supervised part (started again if it fails).
fn alerts_worker(
    f: &functions::Settings,
    nats: async_nats::Client,
    db: sqlx::PgPool,
    stop: &watch::Receiver<bool>,
) -> impl Future<Output = (&'static str, Result<(), RunError>)> + use<> {
    let worker = functions::alerts::worker::Worker {
        nats,
        names: Names::new(f.bus_prefix.clone()),
        db,
        redis_url: f.redis_url.clone(),
        keys: bus::PriceKeys::new(f.redis_prefix.clone()),
    };
    supervise::restarting("alerts", stop.clone(), move |rx| {
        let worker = worker.clone();
        async move {
            let r = worker.run(stopped(rx)).await;
            r.map_err(|e| RunError::Alerts(e.to_string()))
        }
    })
}

/// Waits for the shutdown signal or the first part to end, then stops and drains the rest.
async fn supervise(
    mut tasks: JoinSet<(&'static str, Result<(), RunError>)>,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let mut first: Result<(), RunError> = Ok(());
    tokio::select! {
        () = shutdown => tracing::info!("shutting down"),
        Some(done) = tasks.join_next() => {
            first = report(done);
            tracing::warn!("a part stopped early; shutting the others down");
        }
    }
    stop.send_replace(true);
    while let Some(done) = tasks.join_next().await {
        let r = report(done);
        if first.is_ok() {
            first = r;
        }
    }
    first
}

fn report(
    done: Result<(&'static str, Result<(), RunError>), tokio::task::JoinError>,
) -> Result<(), RunError> {
    match done {
        Ok((name, Ok(()))) => {
            tracing::info!(part = name, "stopped");
            Ok(())
        }
        Ok((name, Err(e))) => {
            tracing::error!(part = name, error = %e, "failed");
            Err(e)
        }
        Err(e) => Err(RunError::Settings(format!("a task panicked: {e}"))),
    }
}
