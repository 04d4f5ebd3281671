//! A small AWS Lambda Runtime API emulator for the tests: what the Lambda service offers a
//! function process on `AWS_LAMBDA_RUNTIME_API` (`GET /2018-06-01/runtime/invocation/next`,
//! `POST .../{id}/response`, `POST .../{id}/error`, `POST /2018-06-01/runtime/init/error`),
//! plus the AWS Parameters and Secrets Lambda Extension's `GET /secretsmanager/get` on the
//! same port. One emulator serves one function process, like one Lambda execution environment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// The session token the emulated extension expects in `X-Aws-Parameters-Secrets-Token`.
pub const SESSION_TOKEN: &str = "emulated-session-token";

/// What the function process answered for one invocation.
#[derive(Debug)]
pub enum Outcome {
    /// `POST .../response`: the API Gateway v2 response.
    Response(Value),
    /// `POST .../error`: the error document and its `Lambda-Runtime-Function-Error-Type`.
    Error(Value, String),
}

type Invocation = (String, Value, oneshot::Sender<Outcome>);

struct Shared {
    function: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_errors: Mutex<Vec<Value>>,
    secrets: HashMap<String, String>,
}

/// A running emulator: its address (for `AWS_LAMBDA_RUNTIME_API`) and its invocation queue.
pub struct Emulator {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    invocations: mpsc::Sender<Invocation>,
    next_id: std::sync::atomic::AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Starts on 127.0.0.1, port 0, serving `secrets` (ARN -> secret string) to the extension.
    pub async fn start(function: &str, secrets: HashMap<String, String>) -> Self {
        let (invocations, queue) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            function: function.to_string(),
            queue: tokio::sync::Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            init_errors: Mutex::new(Vec::new()),
            secrets,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/secretsmanager/get", get(secret))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            invocations,
            next_id: std::sync::atomic::AtomicU64::new(1),
            server,
        }
    }

    /// Queues `event` for the function and waits (up to `deadline`) for its outcome.
    pub async fn invoke(&self, event: Value, deadline: Duration) -> Option<Outcome> {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let (tx, rx) = oneshot::channel();
        self.invocations.send((id, event, tx)).await.ok()?;
        tokio::time::timeout(deadline, rx).await.ok()?.ok()
    }

    /// The init errors the function reported.
    pub fn init_errors(&self) -> Vec<Value> {
        self.shared.init_errors.lock().expect("lock").clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    let Some((id, event, done)) = s.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    s.pending.lock().expect("lock").insert(id.clone(), done);
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or_default();
    let arn = format!(
        "arn:aws:lambda:eu-west-1:123456789012:function:{}",
        s.function
    );
    let headers = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", arn),
        (
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into(),
        ),
        ("content-type", "application/json".into()),
    ];
    let mut response = event.to_string().into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

fn finish(s: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match s.pending.lock().expect("lock").remove(id) {
        Some(done) => {
            let _ = done.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    finish(&s, &id, Outcome::Response(value))
}

async fn error(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let kind = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    finish(&s, &id, Outcome::Error(value, kind))
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.init_errors.lock().expect("lock").push(value);
    StatusCode::ACCEPTED
}

async fn secret(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = headers
        .get("x-aws-parameters-secrets-token")
        .and_then(|v| v.to_str().ok());
    if token != Some(SESSION_TOKEN) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong session token").into_response();
    }
    let id = q.get("secretId").cloned().unwrap_or_default();
    match s.secrets.get(&id) {
        Some(value) => axum::Json(json!({"ARN": id, "SecretString": value})).into_response(),
        None => (StatusCode::BAD_REQUEST, "ResourceNotFoundException").into_response(),
    }
}
