//! Signup, signin and the bearer tokens, against the real engine service, NATS and PostgreSQL.

use crate::support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use functions::auth::{Claims, TokenKeys};
use serde_json::json;
use support::{Platform, code};

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn signup_creates_the_user_and_the_engine_account() {
    let p = Platform::start().await;
    let creds = json!({ "email": "  Ann@Example.com ", "password": "long enough" });
    let (status, body) = p.post("/api/v1/auth/signup", None, creds).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["email"], "ann@example.com");
    let stored: (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE email = $1")
        .bind("ann@example.com")
        .fetch_one(&p.db.pool)
        .await
        .expect("user row");
    assert!(stored.0.starts_with("$argon2id$"), "hashed with argon2id");

    let again = json!({ "email": "ann@example.com", "password": "another one" });
    let (status, body) = p.post("/api/v1/auth/signup", None, again).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "email_taken"));

    let (status, body) = p
        .post(
            "/api/v1/auth/signin",
            None,
            json!({ "email": "ANN@example.com", "password": "long enough" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().expect("token");
    assert!(body["expiresAt"].as_i64().expect("expiresAt") > 0);
    let (status, balance) = p.get("/api/v1/balance", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance["balance"], "10000.00");
}

#[tokio::test]
async fn signup_refuses_bad_emails_and_weak_passwords() {
    let p = Platform::start().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": "long enough" }),
            "invalid_email",
        ),
        (
            json!({ "email": "a@b.io", "password": "short" }),
            "weak_password",
        ),
        (json!({ "email": "a@b.io" }), "invalid_request"),
        (
            json!({ "email": 42, "password": "long enough" }),
            "invalid_request",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = p.post("/api/v1/auth/signup", None, body).await;
        assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, expected));
    }
    let users: (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&p.db.pool)
        .await
        .expect("count");
    assert_eq!(users.0, 0, "nothing was created");
}

#[tokio::test]
async fn signin_does_not_tell_unknown_emails_from_wrong_passwords() {
    let p = Platform::start().await;
    p.post(
        "/api/v1/auth/signup",
        None,
        json!({ "email": "bob@example.com", "password": "right password" }),
    )
    .await;
    let mut timings = Vec::new();
    for (email, password) in [
        ("bob@example.com", "wrong password"),
        ("nobody@example.com", "right password"),
    ] {
        let started = Instant::now();
        let (status, body) = p
            .post(
                "/api/v1/auth/signin",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        timings.push(started.elapsed());
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
        assert_eq!(body["error"]["message"], "wrong email or password");
    }
    // Both paths run one argon2 verification: an unknown email is not answered much faster.
    assert!(
        timings[1] * 3 > timings[0],
        "unknown email {:?} vs wrong password {:?}",
        timings[1],
        timings[0]
    );
}

#[tokio::test]
async fn private_routes_refuse_missing_and_bad_tokens() {
    let p = Platform::start().await;
    let (user, good) = p.user().await;
    let user: bus::UserId = user.parse().expect("user id");
    let keys = TokenKeys::new(p.settings.jwt_secret.as_bytes(), Duration::from_secs(60));
    let expired = keys
        .sign(&Claims {
            sub: user,
            iat: now_secs() - 120,
            exp: now_secs() - 60,
        })
        .expect("signs")
        .token;
    let forged = TokenKeys::new(b"someone else's key", Duration::from_secs(60))
        .issue(user)
        .expect("signs")
        .token;
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"sub":"{user}","iat":0,"exp":{}}}"#,
        now_secs() + 600
    ));
    let unsigned = format!("{none_header}.{claims}.");
    for bad in [
        None,
        Some("garbage"),
        Some(expired.as_str()),
        Some(forged.as_str()),
        Some(unsigned.as_str()),
    ] {
        for (method, path) in [
            (Method::GET, "/api/v1/balance"),
            (Method::GET, "/api/v1/trade/open"),
            (Method::GET, "/api/v1/trade/closed"),
        ] {
            let (status, body) = p.call(method, path, bad, &[], None).await;
            assert_eq!(
                (status, code(&body)),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{path} {bad:?}"
            );
        }
        let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 });
        let (status, _) = p.post("/api/v1/trade/open", bad, open).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = p
        .call(
            Method::GET,
            "/api/v1/balance",
            None,
            &[("authorization", &format!("Basic {good}"))],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "only Bearer is accepted");
    let (status, _) = p.get("/api/v1/balance", Some(&good)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_for_a_user_without_an_account_is_account_not_found() {
    let p = Platform::start().await;
    let (_, token) = p.user_without_account().await;
    let (status, body) = p.get("/api/v1/balance", Some(&token)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "account_not_found")
    );
}

#[tokio::test]
async fn a_deleted_users_token_is_refused() {
    let p = Platform::start().await;
    let (user, token) = p.user().await;
    let (status, body) = p.get("/api/v1/balance", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&user).expect("uuid"))
        .execute(&p.db.pool)
        .await
        .expect("delete");
    for (method, path) in [
        (Method::GET, "/api/v1/balance"),
        (Method::GET, "/api/v1/trade/open"),
        (Method::GET, "/api/v1/trade/closed"),
    ] {
        let (status, body) = p.call(method, path, Some(&token), &[], None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
    }
    let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 });
    let (status, body) = p.post("/api/v1/trade/open", Some(&token), open).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    // A token for a user that never existed is refused the same way.
    let ghost = bus::UserId(uuid::Uuid::new_v4());
    let token = p.state.tokens().issue(ghost).expect("signs").token;
    let (status, _) = p.get("/api/v1/balance", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// One sign-in through the router (no sockets) as if from `peer`.
async fn signin_from(
    p: &Platform,
    peer: [u8; 4],
    email: &str,
    password: &str,
) -> (u16, Option<u64>) {
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;
    let body = json!({ "email": email, "password": password }).to_string();
    let req = axum::http::Request::post("/api/v1/auth/signin")
        .header("content-type", "application/json")
        .extension(ConnectInfo(std::net::SocketAddr::from((peer, 40000))))
        .body(axum::body::Body::from(body))
        .expect("request");
    let res = p.app.clone().oneshot(req).await.expect("infallible");
    (res.status().as_u16(), retry_after(res.headers()))
}

fn retry_after(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").parse().expect("seconds"))
}

#[tokio::test]
async fn twenty_wrong_passwords_for_one_email_are_429_and_other_emails_and_addresses_are_not() {
    // The default limits: 10 tries per email, then one every 6 s; 30 per address a minute.
    let p = Platform::start().await;
    let (_, _) = p.user().await;
    let email = "target@example.com";
    let creds = json!({ "email": email, "password": "correct horse battery" });
    let (status, body) = p.post("/api/v1/auth/signup", None, creds).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(signin_from(&p, [10, 0, 0, 1], email, "wrong password").await);
    }
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert!(
        answers.iter().all(|(s, _)| *s == 401 || *s == 429),
        "{answers:?}"
    );
    // The signup took one of the email's 10: 9 wrong passwords were checked, the rest refused
    // (one more per 6 s the loop took: argon2 is slow on a loaded machine).
    assert!(refused.len() >= 6, "{answers:?}");
    assert_eq!(answers.last().map(|a| a.0), Some(429), "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|(_, retry)| retry.is_some_and(|r| (1..=60).contains(&r)))
    );
    // The email's budget holds from any address, even with the right password...
    let right = signin_from(&p, [10, 0, 0, 2], email, "correct horse battery").await;
    assert_eq!(right.0, 429);
    // ...while another email from the same address, and another address, are served.
    let other = signin_from(&p, [10, 0, 0, 1], "other@example.com", "wrong password").await;
    assert_eq!(other, (401, None));
    let elsewhere = signin_from(&p, [10, 0, 0, 2], "third@example.com", "wrong password").await;
    assert_eq!(elsewhere, (401, None));
}

/// `api(state)` served on a loopback port with each connection's peer address, as the local
/// runner serves it.
async fn serve_with_peers(p: &Platform) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = p.app.clone();
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, service).await;
    });
    addr
}

/// One HTTP/1.1 sign-in over a new TCP connection from `source`: the status and `Retry-After`.
/// A connection closed without an answer fails the test.
async fn signin_over_tcp(
    server: std::net::SocketAddr,
    source: [u8; 4],
    forwarded_for: Option<&str>,
    email: &str,
) -> (u16, Option<u64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind((std::net::Ipv4Addr::from(source), 0).into())
        .expect("bind source");
    let mut tcp = socket.connect(server).await.expect("connect");
    let body = json!({ "email": email, "password": "wrong password" }).to_string();
    let xff = forwarded_for.map_or(String::new(), |v| format!("X-Forwarded-For: {v}\r\n"));
    let request = format!(
        "POST /api/v1/auth/signin HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{xff}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut answer))
        .await
        .expect("an answer within 60 s")
        .expect("read");
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let retry = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_string)
        })
        .map(|v| v.trim().parse().expect("seconds"));
    (status, retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_limit_keys_on_the_peer_or_what_a_trusted_proxy_forwards() {
    let p = Platform::start_tuned(|s| {
        s.limits.auth_address = bus::limits::Rate::of(3, 3600);
        s.limits.trusted_proxies = "127.0.0.9".parse().expect("cidr");
    })
    .await;
    let server = serve_with_peers(&p).await;
    let email = |n: u32| format!("nobody{n}@example.com");
    // An untrusted peer's X-Forwarded-For changes nothing: 3 answers, then 429.
    for n in 0..3 {
        let spoof = format!("198.51.100.{n}");
        let answer = signin_over_tcp(server, [127, 0, 0, 1], Some(&spoof), &email(n)).await;
        assert_eq!(answer, (401, None));
    }
    let (status, retry) =
        signin_over_tcp(server, [127, 0, 0, 1], Some("198.51.100.77"), &email(3)).await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|r| r >= 1));
    // Another address has its own budget.
    assert_eq!(
        signin_over_tcp(server, [127, 0, 0, 2], None, &email(4))
            .await
            .0,
        401
    );
    // Behind the trusted proxy each forwarded client has its own budget.
    for n in 5..8 {
        let answer = signin_over_tcp(
            server,
            [127, 0, 0, 9],
            Some("1.2.3.4, 203.0.113.1"),
            &email(n),
        )
        .await;
        assert_eq!(answer.0, 401);
    }
    let over = signin_over_tcp(server, [127, 0, 0, 9], Some("203.0.113.1"), &email(8)).await;
    assert_eq!(over.0, 429);
    let other = signin_over_tcp(server, [127, 0, 0, 9], Some("203.0.113.2"), &email(9)).await;
    assert_eq!(other.0, 401);
}

/// The peak resident memory of this process so far (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb * 1024
}

/// 65 sign-ins of unknown emails at once over real sockets (65 source addresses, so the
/// address limit stays out of it); every one answered: 401, or 503 with `Retry-After`.
async fn burst_of_signins(server: std::net::SocketAddr, round: u8) -> Vec<u16> {
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..65u8 {
        let email = format!("ghost{round}-{n}@example.com");
        calls.spawn(
            async move { signin_over_tcp(server, [127, 0, 1 + round, n], None, &email).await },
        );
    }
    let mut statuses = Vec::new();
    while let Some(done) = calls.join_next().await {
        let (status, retry) = done.expect("call task");
        if status == 503 {
            assert!(retry.is_some_and(|r| r >= 1), "503 without Retry-After");
        }
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    statuses
}

/// The memory bound of password hashing. Measured in a process of its own (this test binary
/// run again for this test alone), so the other tests' platforms do not move the figure.
#[test]
fn sixty_five_parallel_signins_are_all_answered_within_a_memory_bound() {
    const ALONE: &str = "FUNCTIONS_TEST_MEMORY_ALONE";
    if std::env::var_os(ALONE).is_none() {
        let me = std::env::current_exe().expect("test binary");
        // The test's name in this binary: its module path without the crate's name.
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let name =
            format!("{module}::sixty_five_parallel_signins_are_all_answered_within_a_memory_bound");
        let out = std::process::Command::new(me)
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(ALONE, "1")
            .output()
            .expect("run the test alone");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        eprintln!(
            "{}",
            text.lines()
                .filter(|l| l.contains("peak RSS"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Hashing as configured by default on this 2-core machine: 2 at once, 16 waiting.
        let p = Platform::start_tuned(|s| {
            s.limits.hash_concurrency = 2;
            s.limits.hash_queue = 16;
        })
        .await;
        let server = serve_with_peers(&p).await;
        let before = peak_rss();
        let first = burst_of_signins(server, 0).await;
        let after_first = peak_rss().saturating_sub(before);
        let second = burst_of_signins(server, 1).await;
        let after_second = peak_rss().saturating_sub(before);
        let busy = first.iter().chain(&second).filter(|s| **s == 503).count();
        eprintln!(
            "65 parallel signins twice: {busy} of 130 refused with 503; peak RSS +{} MiB after the first burst, +{} MiB after the second",
            after_first >> 20,
            after_second >> 20
        );
        assert!(busy > 0, "none refused: {first:?} {second:?}");
        // Unbounded, 65 hashes at once take 65 x 19 MiB = 1.2 GB (the issue saw 2.5 GB for
        // 128). Bounded: 2 hashes of 19 MiB at a time, plus what glibc keeps of the freed
        // blocks (measured: +195 MiB, flat from the first burst to the fourth).
        assert!(after_second < 250 << 20, "peak RSS grew by {} MiB", after_second >> 20);
        assert!(after_second - after_first < 20 << 20, "a second burst grew it again");
        // Once the bursts are over, sign-in works again.
        let late = signin_over_tcp(server, [127, 0, 3, 1], None, "late@example.com").await;
        assert_eq!(late.0, 401);
    });
}
