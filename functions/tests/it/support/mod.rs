//! Test support: the real platform in-process (the engine service and the persist consumer
//! on real NATS and a fresh PostgreSQL database, under a random prefix) and helpers that call
//! the routers through `tower::ServiceExt::oneshot`.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bus::nats::EngineClient;
use bus::{Asset, Names, Price, PriceTick, Query, QueryReply};
use functions::{AppState, Settings};
use migrations::TestDatabase;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceExt;

pub const NATS_URL: &str = "nats://127.0.0.1:4222";

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| NATS_URL.into())
}

pub fn random_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub struct Platform {
    pub state: AppState,
    pub app: Router,
    pub db: TestDatabase,
    pub engine: EngineClient,
    pub settings: Settings,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The engine service on its own stop signal, so a test can restart it.
    engine_service: Option<EngineService>,
}

struct EngineService {
    settings: engine::service::Settings,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl EngineService {
    fn start(settings: engine::service::Settings) -> Self {
        let (stop, rx) = watch::channel(false);
        let es = settings.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = engine::service::run(es, stopped(rx)).await {
                eprintln!("engine service stopped: {e}");
            }
        });
        Self {
            settings,
            stop,
            task,
        }
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Settings for one test: its own prefix and database, short timeouts.
pub fn test_settings(db: &TestDatabase) -> Settings {
    Settings {
        nats_url: nats_url(),
        database_url: db.url.clone(),
        bus_prefix: random_prefix(),
        // At least 32 bytes: binaries started from these settings run in production mode.
        jwt_secret: "test-secret-of-this-run-32-bytes-or-more".into(),
        engine_timeout: Duration::from_secs(5),
        body_limit: 4 * 1024,
        // Tests send many commands per user quickly; the rate limit tests set their own.
        limits: functions::limits::LimitSettings {
            account_commands: bus::limits::Rate::of(100_000, 1),
            ..Default::default()
        },
        ..Settings::default()
    }
}

impl Platform {
    /// The whole platform: engine service, persist consumer, all routers.
    pub async fn start() -> Self {
        Self::start_with(true, |_| {}).await
    }

    /// The whole platform with `tweak`ed settings (limits, timeouts).
    pub async fn start_tuned(tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::start_with(true, tweak).await
    }

    /// Everything but the engine (commands time out, queries find no responder).
    pub async fn without_engine(tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::start_with(false, tweak).await
    }

    async fn start_with(with_engine: bool, tweak: impl FnOnce(&mut Settings)) -> Self {
        let engine = with_engine.then_some(|_: &mut engine::service::Settings| {});
        Self::assemble(tweak, engine).await
    }

    /// The platform with the engine service's settings tweaked (streams are created with
    /// the engine's `streams` settings, e.g. a short duplicate window).
    pub async fn with_engine(tweak: impl FnOnce(&mut engine::service::Settings)) -> Self {
        Self::assemble(|_| {}, Some(tweak)).await
    }

    async fn assemble(
        tweak: impl FnOnce(&mut Settings),
        engine: Option<impl FnOnce(&mut engine::service::Settings)>,
    ) -> Self {
        let db = TestDatabase::create().await.expect("test database");
        let mut settings = test_settings(&db);
        tweak(&mut settings);
        let names = Names::new(settings.bus_prefix.clone());
        let nats = async_nats::connect(&settings.nats_url).await.expect("nats");
        let js = async_nats::jetstream::new(nats.clone());
        let mut es = engine::service::Settings::local();
        es.nats_url = settings.nats_url.clone();
        es.database_url = db.url.clone();
        es.names = names.clone();
        let with_engine = engine.is_some();
        if let Some(tweak) = engine {
            tweak(&mut es);
        }
        bus::nats::ensure_streams(&js, &names, &es.streams)
            .await
            .expect("streams");
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let engine_service = with_engine.then(|| EngineService::start(es));
        let (pool, rx2) = (db.pool.clone(), rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = functions::persist::run(js, names, pool, stopped(rx2)).await {
                eprintln!("persist stopped: {e}");
            }
        }));
        let state = AppState::new(&settings, nats, db.pool.clone()).expect("state");
        let engine = state.engine().clone();
        if with_engine {
            wait_until_serving(&engine).await;
        }
        let app = functions::api(state.clone());
        Self {
            state,
            app,
            db,
            engine,
            settings,
            stop,
            tasks,
            engine_service,
        }
    }

    /// Stops the engine service cleanly (it stores a last snapshot) and starts it again (it
    /// loads that snapshot); returns when it serves again.
    pub async fn restart_engine(&mut self) {
        let old = self.engine_service.take().expect("an engine service");
        old.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(60), old.task)
            .await
            .expect("the engine stops within a minute")
            .expect("the engine task ends");
        self.engine_service = Some(EngineService::start(old.settings));
        wait_until_serving(&self.engine).await;
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(
            &self.app,
            method,
            path,
            token,
            headers,
            body.map(|b| b.to_string()),
        )
        .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, &[], None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, &[], Some(body)).await
    }

    /// GETs `path` until `done` holds for its 200 body (persist and the engine run on their
    /// own; a generous deadline for loaded machines) and returns that body.
    pub async fn get_until(&self, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(path, Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if done(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path} never got there: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs a new user up and in; returns (user id, token).
    pub async fn user(&self) -> (String, String) {
        let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
        let creds = json!({ "email": email, "password": "correct horse battery" });
        let (status, body) = self.post("/api/v1/auth/signup", None, creds.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self.post("/api/v1/auth/signin", None, creds).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["userId"].as_str().expect("userId").to_string();
        let token = body["token"].as_str().expect("token").to_string();
        (id, token)
    }

    /// A user row with no engine account behind it (signup not run); returns its token.
    pub async fn user_without_account(&self) -> (bus::UserId, String) {
        let user = insert_user(&self.db.pool).await;
        let token = self.state.tokens().issue(user).expect("signs").token;
        (user, token)
    }

    /// Logs a quote into ENGINE and waits until the engine has applied it.
    pub async fn tick(&self, asset: Asset, bid: &str, ask: &str) {
        let bid: Price = bid.parse().expect("bid");
        let ask: Price = ask.parse().expect("ask");
        let tick = PriceTick {
            asset,
            bid,
            ask,
            ts: 1_700_000_000_000,
            simulated: false,
        };
        self.engine
            .publish_tick(&tick)
            .await
            .expect("tick published");
        for _ in 0..200 {
            if let Ok(QueryReply::Prices { quotes }) = self.engine.query(Query::GetPrices).await
                && quotes
                    .iter()
                    .any(|q| q.asset == asset && q.bid == bid && q.ask == ask)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the engine never applied the tick");
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
        if let Some(engine) = &self.engine_service {
            engine.stop.send_replace(true);
            engine.task.abort();
        }
        delete_streams_blocking(Names::new(self.settings.bus_prefix.clone()));
    }
}

/// Inserts a user row directly (as signup would, without the engine account): tokens are
/// only accepted for users that exist.
pub async fn insert_user(db: &sqlx::PgPool) -> bus::UserId {
    let user = bus::UserId(uuid::Uuid::new_v4());
    sqlx::query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'not a hash')")
        .bind(user.0)
        .bind(format!("{}@example.com", user.0.simple()))
        .execute(db)
        .await
        .expect("user row");
    user
}

/// Deletes a test's streams and the engine's lock bucket (JetStream keeps them otherwise).
pub async fn delete_streams(names: &Names) {
    let Ok(nats) = async_nats::connect(nats_url()).await else {
        return;
    };
    let js = async_nats::jetstream::new(nats);
    let lock = format!("KV_{}", engine::service::lock_bucket_name(names));
    let dead = names.dead_letter_stream();
    for stream in [names.engine_stream(), names.events_stream(), lock, dead] {
        let _ = js.delete_stream(&stream).await;
    }
}

/// [`delete_streams`] from a `Drop`: on a thread of its own, with its own small runtime.
pub fn delete_streams_blocking(names: Names) {
    let cleanup = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(delete_streams(&names));
        }
    });
    let _ = cleanup.join();
}

async fn wait_until_serving(engine: &EngineClient) {
    for _ in 0..300 {
        if engine.ping().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the engine service did not start");
}

/// One request through the router, without sockets.
pub async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let has_body = body.is_some();
    if has_body {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Body::from(body.unwrap_or_default()))
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
