//! Helpers for the engine service tests: isolated names and database per test, the engine
//! as a task (or as a child process), a client, and command builders.
#![allow(dead_code)]

use std::str::FromStr;
use std::time::Duration;

use bus::nats::{EngineClient, StreamSettings, ensure_streams};
use bus::{
    Asset, Command, CommandEnvelope, CommandId, Leverage, Names, OpenPosition, Price, PriceTick,
    Quantity, Side, UserId,
};
use engine::service::Settings;
use migrations::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn random_names() -> Names {
    Names::new(format!(
        "t{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
}

/// Settings for a test engine: fast lock, frequent snapshots, no purge (tests replay from 1).
pub fn test_settings(names: &Names, db: &TestDatabase) -> Settings {
    let mut s = Settings::local();
    s.nats_url = nats_url();
    s.database_url = db.url.clone();
    s.names = names.clone();
    // Short enough for quick failovers, long enough that a loaded machine keeps its lease.
    s.lock_ttl = Duration::from_millis(3_000);
    s.snapshot_every = 50;
    s.snapshot_interval = Duration::from_secs(1);
    s.purge_inputs = false;
    s
}

/// Engine logs in the test output (`RUST_LOG`, default warnings only).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The engine running as a task of the test process.
pub struct EngineTask {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), engine::service::ServiceError>>,
}

impl EngineTask {
    pub fn start(settings: Settings) -> Self {
        init_logs();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let result = engine::service::run(settings, async move {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = &result {
                tracing::error!("engine task ended: {e}");
            }
            result
        });
        Self {
            stop: Some(stop),
            handle,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Ends the task without a clean shutdown: no last snapshot, the lock is not released.
    pub fn crash(self) {
        self.handle.abort();
    }

    /// Waits for the task to end by itself and returns how it ended.
    pub async fn ended(self, within: Duration) -> Result<(), engine::service::ServiceError> {
        tokio::time::timeout(within, self.handle)
            .await
            .expect("engine ends in time")
            .expect("engine task joins")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(20), &mut self.handle)
            .await
            .expect("engine stops in time")
            .expect("engine task joins");
        result.expect("engine stopped cleanly");
    }
}

pub async fn client(names: &Names, timeout: Duration) -> EngineClient {
    let nats = async_nats::connect(nats_url())
        .await
        .expect("NATS is running");
    let js = async_nats::jetstream::new(nats.clone());
    ensure_streams(&js, names, &StreamSettings::default())
        .await
        .expect("streams");
    EngineClient::new(nats, names.clone(), timeout)
}

/// Deletes the test's streams and lock bucket (JetStream keeps them otherwise).
pub async fn cleanup(names: &Names) {
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let lock = format!("KV_{}", engine::service::lock_bucket_name(names));
    for stream in [names.engine_stream(), names.events_stream(), lock] {
        let _ = js.delete_stream(&stream).await;
    }
}

/// Waits until an engine answers queries (it has recovered and is serving).
pub async fn wait_ready(client: &EngineClient) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while client.ping().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "engine did not get ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn user(n: u128) -> UserId {
    UserId(uuid::Uuid::from_u128(n))
}

pub fn cmd(id: &str, command: Command) -> CommandEnvelope {
    CommandEnvelope {
        id: CommandId::new(id).expect("valid id"),
        command,
    }
}

pub fn price(s: &str) -> Price {
    Price::from_str(s).expect("price")
}

pub fn tick(asset: Asset, bid: &str, ask: &str) -> PriceTick {
    PriceTick {
        asset,
        bid: price(bid),
        ask: price(ask),
        ts: 1_700_000_000_000,
        simulated: false,
    }
}

pub fn open(user_id: UserId, asset: Asset, side: Side, qty: &str, lev: u32) -> Command {
    Command::OpenPosition(OpenPosition {
        trailing_distance: None,
        user_id,
        asset,
        side,
        quantity: Quantity::from_str(qty).expect("qty"),
        leverage: Leverage::new(lev).expect("leverage"),
        stop_loss: None,
        take_profit: None,
        expected_price: None,
        max_slippage_bps: None,
    })
}

/// Every message `stream` holds now, in stream order (an ordered consumer read to the count).
pub async fn stored_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Vec<async_nats::jetstream::Message> {
    use futures_util::StreamExt;
    let stream = js.get_stream(stream).await.expect("stream");
    let count = stream.get_info().await.expect("info").state.messages;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        out.push(messages.next().await.expect("open").expect("message"));
    }
    out
}
