//! Dependencies failing under a request: a PostgreSQL connection killed in the middle of a
//! query is 503 `unavailable` (never 500), and a signup whose engine call timed out is finished
//! by its retry with exactly one user and one engine account.

use crate::support;

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull;
use axum::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Platform, code};
use tokio::sync::watch;

/// Runs `request` while `table` is locked, kills the backend it waits on, and returns the
/// answer: the connection dies under a query in flight, as when PostgreSQL is stopped.
async fn killed_mid_query<F>(p: &Platform, table: &str, request: F) -> (StatusCode, Value)
where
    F: std::future::Future<Output = (StatusCode, Value)> + Send + 'static,
{
    let mut lock = p.db.pool.begin().await.expect("begin");
    sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *lock)
        .await
        .expect("lock");
    let answer = tokio::spawn(request);
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        // pg_stat_activity is read once per transaction and cached: clear that snapshot, or a
        // request that reaches the lock after the first look is never seen.
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut *lock)
            .await
            .expect("clear the statistics snapshot");
        let waiting: Option<(i32,)> = sqlx::query_as(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() LIMIT 1",
        )
        .fetch_optional(&mut *lock)
        .await
        .expect("activity");
        if let Some((pid,)) = waiting {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the request never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(waiting)
        .execute(&mut *lock)
        .await
        .expect("terminate");
    let answer = answer.await.expect("request task");
    lock.rollback().await.expect("unlock");
    answer
}

#[tokio::test]
async fn a_database_connection_killed_under_a_request_is_503_not_500() {
    let p = Platform::start().await;
    let (_, token) = p.user().await;

    let app = p.app.clone();
    let path = "/api/v1/trade/closed";
    let auth = token.clone();
    let (status, body) = killed_mid_query(&p, "positions", async move {
        support::call(&app, axum::http::Method::GET, path, Some(&auth), &[], None).await
    })
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "{body}"
    );

    let app = p.app.clone();
    let creds = json!({ "email": "nobody@example.com", "password": "long enough" }).to_string();
    let (status, body) = killed_mid_query(&p, "users", async move {
        let path = "/api/v1/auth/signin";
        support::call(&app, axum::http::Method::POST, path, None, &[], Some(creds)).await
    })
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "{body}"
    );

    // The pool replaces the dead connection: the next requests are served.
    let (status, body) = p.get(path, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An engine on the platform's streams and database, started late.
fn start_engine(p: &Platform) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let mut es = engine::service::Settings::local();
    es.nats_url = p.settings.nats_url.clone();
    es.database_url = p.db.url.clone();
    es.names = bus::Names::new(p.settings.bus_prefix.clone());
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = engine::service::run(es, stopped).await {
            eprintln!("engine stopped: {e}");
        }
    });
    (stop, task)
}

/// How many `AccountCreated` events the engine published (read inside its batches).
async fn accounts_created(p: &Platform) -> u64 {
    let names = bus::Names::new(p.settings.bus_prefix.clone());
    let js = async_nats::jetstream::new(p.state.nats().clone());
    let stream = js.get_stream(names.events_stream()).await.expect("EVENTS");
    let count = stream.get_info().await.expect("info").state.messages;
    let consumer = stream
        .create_consumer(pull::OrderedConfig::default())
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut created = 0;
    for _ in 0..count {
        let msg = messages.next().await.expect("open").expect("message");
        let events = bus::events::read(&msg).expect("events");
        created += events
            .iter()
            .filter(|e| matches!(e.event, bus::Event::AccountCreated { .. }))
            .count() as u64;
    }
    created
}

#[tokio::test]
async fn a_timed_out_signup_retried_ends_with_one_user_and_one_account() {
    let p = Platform::without_engine(|s| s.engine_timeout = Duration::from_millis(500)).await;
    let creds = json!({ "email": "late@example.com", "password": "long enough" });
    let (status, body) = p.post("/api/v1/auth/signup", None, creds.clone()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::GATEWAY_TIMEOUT, "engine_timeout")
    );

    // The engine comes and applies the logged CreateAccount; the client retries.
    let (stop, engine) = start_engine(&p);
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (status, body) = p.post("/api/v1/auth/signup", None, creds.clone()).await;
        if status == StatusCode::CREATED {
            break body;
        }
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert!(Instant::now() < deadline, "the retry never succeeded");
    };
    let user = body["userId"].as_str().expect("userId").to_string();
    let users: Vec<(uuid::Uuid,)> = sqlx::query_as("SELECT id FROM users")
        .fetch_all(&p.db.pool)
        .await
        .expect("users");
    assert_eq!(users.len(), 1, "exactly one user");
    assert_eq!(users[0].0.to_string(), user);
    assert_eq!(accounts_created(&p).await, 1, "exactly one engine account");

    // The answer lost on the way is given again; another password is still refused.
    let (status, again) = p.post("/api/v1/auth/signup", None, creds.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["userId"], body["userId"]);
    let other = json!({ "email": "late@example.com", "password": "another one" });
    let (status, refused) = p.post("/api/v1/auth/signup", None, other).await;
    assert_eq!(
        (status, code(&refused)),
        (StatusCode::CONFLICT, "email_taken")
    );

    let (status, signed_in) = p.post("/api/v1/auth/signin", None, creds).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let token = signed_in["token"].as_str().expect("token");
    let (status, balance) = p.get("/api/v1/balance", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance["balance"], "10000.00");

    stop.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), engine).await;
}
