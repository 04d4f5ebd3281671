//! The `engine` binary through a NATS outage longer than its lease: a private `nats-server`
//! (a free port, its own store) is stopped and started again on the same port and store. The
//! same process takes its lease again, recovers and serves: nothing has to restart it.

use crate::svc;

use std::process::Stdio;
use std::time::{Duration, Instant};

use bus::nats::{EngineClient, StreamSettings, ensure_streams};
use bus::{Command, Query, QueryReply, Reply};
use migrations::TestDatabase;
use svc::*;
use tokio::process::{Child, Command as Process};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The Debian package's `nats-server`, else the one on `PATH`.
fn nats_server_binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}

fn nats_server(port: u16, store: &std::path::Path) -> Child {
    Process::new(nats_server_binary())
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server starts")
}

async fn listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nats-server never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends until answered (the client reconnects by itself when NATS is back).
async fn answered(client: &EngineClient, id: &str, n: u128) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = cmd(id, Command::CreateAccount { user_id: user(n) });
        match client.send(c).await {
            Ok(reply) => return reply,
            Err(e) => assert!(Instant::now() < deadline, "{id} never answered: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_engine_binary_rides_out_a_nats_outage_longer_than_its_lease() {
    let port = free_port();
    let store = std::env::temp_dir().join(format!("nats-{}", uuid::Uuid::new_v4().simple()));
    let mut server = nats_server(port, &store);
    listening(port).await;
    let url = format!("nats://127.0.0.1:{port}");
    let names = random_names();
    let db = TestDatabase::create().await.expect("database");
    let mut engine = Process::new(env!("CARGO_BIN_EXE_engine"))
        .env("NATS_URL", &url)
        .env("DATABASE_URL", &db.url)
        .env("ENGINE_PREFIX", names.prefix())
        .env("ENGINE_LOCK_TTL_MS", "2000")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("engine binary starts");
    let nats = async_nats::connect(&url).await.expect("nats");
    let js = async_nats::jetstream::new(nats.clone());
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .expect("streams");
    let client = EngineClient::new(nats, names.clone(), Duration::from_secs(10));
    assert!(matches!(
        answered(&client, "before", 1).await,
        Reply::Accepted(_)
    ));

    // Down for longer than the lease (2 s): the engine loses it and must not exit.
    server.kill().await.expect("stop nats");
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(6) {
        assert!(
            matches!(engine.try_wait(), Ok(None)),
            "the engine exited during the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _server = nats_server(port, &store);
    listening(port).await;

    assert!(matches!(
        answered(&client, "after", 2).await,
        Reply::Accepted(_)
    ));
    assert!(
        matches!(engine.try_wait(), Ok(None)),
        "the same process serves"
    );
    for n in [1, 2] {
        let account = client.query(Query::GetAccount { user_id: user(n) }).await;
        assert!(
            matches!(account, Ok(QueryReply::Account { .. })),
            "{account:?}"
        );
    }
    let _ = engine.start_kill();
    let _ = engine.wait().await;
    let _ = std::fs::remove_dir_all(&store);
}
