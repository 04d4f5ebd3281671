//! Every HTTP function binary, as deployed, answers through the Lambda Runtime API: each
//! built binary (`CARGO_BIN_EXE_<name>`) runs as a child process against a Runtime API
//! emulator (`support/runtime_emulator.rs`), reads its secrets through the emulated
//! Parameters and Secrets extension (`functions::secrets`), and is fed the API Gateway v2
//! events of `tests/events/`, against the real NATS, PostgreSQL and an engine in this test.

#[path = "support/runtime_emulator.rs"]
mod emulator;
use crate::support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use emulator::{Emulator, Outcome, SESSION_TOKEN};
use serde_json::Value;
use support::Platform;

const JWT_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:exness/jwt-AbCdEf";
const DB_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:exness/db-GhIjKl";
const DEADLINE: Duration = Duration::from_secs(60);

/// One function process and its execution environment.
struct Function {
    emu: Emulator,
    child: tokio::process::Child,
}

fn event(name: &str, token: Option<&str>) -> Value {
    let path = format!(
        "{}/tests/events/apigw_v2_{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("event file");
    let mut event: Value = serde_json::from_str(&text).expect("event json");
    match token {
        Some(t) => event["headers"]["authorization"] = Value::String(format!("Bearer {t}")),
        None => {
            if let Some(h) = event["headers"].as_object_mut() {
                h.remove("authorization");
            }
        }
    }
    event
}

/// The secrets the emulated extension serves: the JWT key and an RDS-style database secret.
fn secrets(p: &Platform) -> HashMap<String, String> {
    HashMap::from([
        (JWT_ARN.to_string(), p.settings.jwt_secret.clone()),
        (
            DB_ARN.to_string(),
            r#"{"username":"postgres","password":"unused-with-trust-auth"}"#.to_string(),
        ),
    ])
}

/// Starts `bin` with the environment Lambda gives it (and the platform's settings; the
/// JWT key and the database password only as secret ARNs).
async fn start(name: &str, bin: &str, p: &Platform, jwt_arn: &str) -> Function {
    let emu = Emulator::start(name, secrets(p)).await;
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let child = tokio::process::Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", emu.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("exness-test-{name}"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/exness-test-{name}"),
        )
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/25/[$LATEST]0123456789abcdef",
        )
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env(
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT",
            emu.addr.port().to_string(),
        )
        .env("JWT_SECRET_ARN", jwt_arn)
        .env("DATABASE_SECRET_ARN", DB_ARN)
        .env("NATS_URL", &p.settings.nats_url)
        .env("DATABASE_URL", &p.db.url)
        .env("ENGINE_PREFIX", &p.settings.bus_prefix)
        .env("REDIS_URL", redis)
        .env("REDIS_PREFIX", &p.settings.bus_prefix)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the function binary starts");
    Function { emu, child }
}

impl Function {
    /// One invocation; the API Gateway response's status and JSON body.
    async fn invoke(&self, event: Value) -> (u16, Value) {
        match self.emu.invoke(event, DEADLINE).await {
            Some(Outcome::Response(r)) => {
                assert_eq!(r["isBase64Encoded"], Value::Bool(false), "{r}");
                let status = r["statusCode"].as_u64().expect("statusCode") as u16;
                let body = r["body"].as_str().unwrap_or("null");
                (status, serde_json::from_str(body).expect("a JSON body"))
            }
            Some(Outcome::Error(body, kind)) => panic!("invocation error {kind}: {body}"),
            None => panic!("no answer within {DEADLINE:?}"),
        }
    }
}

#[tokio::test]
async fn every_function_binary_answers_through_the_runtime_api() {
    let p = Platform::start().await;
    let jwt = JWT_ARN;
    let signup = start("signup", env!("CARGO_BIN_EXE_signup"), &p, jwt).await;
    let signin = start("signin", env!("CARGO_BIN_EXE_signin"), &p, jwt).await;
    let balance = start("balance", env!("CARGO_BIN_EXE_balance"), &p, jwt).await;
    let assets = start("assets", env!("CARGO_BIN_EXE_assets"), &p, jwt).await;
    let trade = start("trade", env!("CARGO_BIN_EXE_trade"), &p, jwt).await;
    let candles = start("candles", env!("CARGO_BIN_EXE_candles"), &p, jwt).await;
    let alerts = start("alerts_api", env!("CARGO_BIN_EXE_alerts_api"), &p, jwt).await;

    let (status, first) = signup.invoke(event("signup", None)).await;
    assert_eq!(
        (status, &first["email"]),
        (201, &Value::from("lambda@example.com")),
        "{first}"
    );
    // The same signup again is a retry: the same user, one account.
    let (status, again) = signup.invoke(event("signup", None)).await;
    assert_eq!(
        (status, &again["userId"]),
        (201, &first["userId"]),
        "{again}"
    );

    let (status, body) = signin.invoke(event("signin", None)).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    // Signed with the key from Secrets Manager: the in-process router (same key) accepts it.
    let (status, _) = p.get("/api/v1/balance", Some(&token)).await;
    assert_eq!(status.as_u16(), 200);

    let (status, body) = balance.invoke(event("balance", Some(&token))).await;
    assert_eq!(
        (status, &body["balance"]),
        (200, &Value::from("10000.00")),
        "{body}"
    );
    let (status, body) = balance.invoke(event("balance", None)).await;
    assert_eq!(
        (status, support::code(&body)),
        (401, "unauthorized"),
        "{body}"
    );

    p.tick(bus::Asset::Btc, "60000.00", "60010.00").await;
    let (status, body) = assets.invoke(event("assets", None)).await;
    assert_eq!(
        (status, &body["assets"][0]["bid"]),
        (200, &Value::from("60000.00")),
        "{body}"
    );

    let (status, body) = trade.invoke(event("trade", Some(&token))).await;
    assert_eq!(
        (status, &body["position"]["openPrice"]),
        (201, &Value::from("60010.00")),
        "{body}"
    );
    let (status, body) = trade.invoke(event("trade_closed", Some(&token))).await;
    assert_eq!(
        (status, &body["positions"]),
        (200, &Value::Array(vec![])),
        "{body}"
    );

    let (status, body) = candles.invoke(event("candles", None)).await;
    assert_eq!(
        (status, &body["asset"], &body["candles"]),
        (200, &Value::from("BTC"), &Value::Array(vec![])),
        "{body}"
    );

    let (status, body) = alerts.invoke(event("alerts", Some(&token))).await;
    assert_eq!(
        (status, &body["alert"]["price"], &body["alert"]["status"]),
        (201, &Value::from("70000.00"), &Value::from("active")),
        "{body}"
    );

    // A function serves only its own routes, also through the runtime.
    let (status, body) = assets.invoke(event("balance", Some(&token))).await;
    assert_eq!((status, support::code(&body)), (404, "not_found"), "{body}");

    for f in [signup, signin, balance, assets, trade, candles, alerts] {
        assert!(f.emu.init_errors().is_empty());
        drop(f.child);
    }
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_fails_the_init() {
    let p = Platform::without_engine(|_| {}).await;
    let unknown = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:nope-000000";
    let mut f = start("signin", env!("CARGO_BIN_EXE_signin"), &p, unknown).await;
    let status = tokio::time::timeout(DEADLINE, f.child.wait())
        .await
        .expect("the process stops")
        .expect("exit status");
    assert!(!status.success());
    let mut stderr = String::new();
    if let Some(mut pipe) = f.child.stderr.take() {
        use tokio::io::AsyncReadExt;
        pipe.read_to_string(&mut stderr).await.expect("stderr");
    }
    assert!(stderr.contains("JWT_SECRET_ARN"), "{stderr}");
    // It never asked for an invocation: one queued now stays unanswered.
    assert!(
        f.emu
            .invoke(event("signin", None), Duration::from_millis(200))
            .await
            .is_none()
    );
}
