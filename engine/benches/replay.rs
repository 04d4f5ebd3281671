//! How fast can recovery read the `ENGINE` log from this NATS server, and where is the
//! ceiling? (issue 12, goal 3). Run by hand, release build: `cargo bench -p engine --bench
//! replay` (needs `nats-server` on the PATH; `REPLAY_INPUTS` sets the log's length).
//!
//! The bench starts its own `nats-server -js` on a free port, so the server's CPU time read
//! from `/proc/<pid>/stat` is this bench's alone, fills `ENGINE` with a log shaped like the
//! real one (90% price ticks without headers, 10% commands carrying the three headers a
//! command has: `Nats-Msg-Id`, `Engine-Reply-To`, `x-request-id`), then reads it whole in
//! several ways and prints inputs/s with the server's and this process's CPU share:
//! - the floor: a raw TCP client that sends one pull request and only frames the replies
//!   (no header parsing, no allocation per message): what the server alone can deliver
//!   (read first and last, after a warm-up read; their mean is the floor);
//! - async-nats readers: ordered consumer; no-ack pull consumers with several batch sizes;
//!   2 and 4 consumers over disjoint sequence ranges, on one connection and on their own;
//! - `recovery::replay`, the engine's own recovery (read + decode + apply).

use std::process::Stdio;
use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    message::PublishMessage,
};
use bus::nats::{REPLY_TO_HEADER, StreamSettings, ensure_streams};
use bus::request_id::REQUEST_ID_HEADER;
use bus::{Asset, Command, CommandEnvelope, CommandId, EngineInput, Envelope, Names, Price};
use bus::{PriceTick, UserId};
use engine::service::recovery;
use engine::{Engine, EngineConfig};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// User + system CPU seconds of a process so far.
fn cpu_secs(pid: &str) -> f64 {
    bus::process::cpu::process_secs(pid).unwrap_or(0.0)
}

/// A private JetStream server, killed on drop.
struct Server {
    child: std::process::Child,
    url: String,
    dir: std::path::PathBuf,
}

impl Server {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("replay-bench-{}", uuid::Uuid::new_v4()));
        let child = std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on the PATH");
        Self {
            child,
            url: format!("127.0.0.1:{port}"),
            dir,
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(url: &str) -> async_nats::Client {
    for _ in 0..100 {
        if let Ok(c) = async_nats::connect(url).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nats-server did not come up at {url}");
}

fn tick(n: usize) -> EngineInput {
    let bid = 65_000 + (n % 50) as i64;
    EngineInput::PriceTick(PriceTick {
        asset: Asset::Btc,
        bid: Price::new(bid.into()).expect("bid"),
        ask: Price::new((bid + 1).into()).expect("ask"),
        ts: 1_700_000_000_000,
        simulated: false,
    })
}

/// Every tenth input a command with a command's headers, the rest price ticks.
async fn fill(js: &jetstream::Context, names: &Names, inputs: usize) {
    let mut acks = Vec::with_capacity(1_000);
    for n in 0..inputs {
        let publish = if n % 10 == 0 {
            let c = CommandEnvelope {
                id: CommandId::new(format!("acct-{n}")).expect("id"),
                command: Command::CreateAccount {
                    user_id: UserId(uuid::Uuid::from_u128(n as u128 + 1)),
                },
            };
            let subject = names.command(c.command.kind());
            let body = Envelope::new(0, 0, EngineInput::command(c)).encode();
            let publish = PublishMessage::build()
                .payload(body.into())
                .message_id(format!("acct-{n}#0123456789abcdef"))
                .header(REPLY_TO_HEADER, "_INBOX.3oTuTcyPHKsVz1k7x2Ab.bTn2r5Lq")
                .header(REQUEST_ID_HEADER, uuid::Uuid::new_v4().to_string());
            (subject, publish)
        } else {
            let body = Envelope::new(0, 0, tick(n)).encode();
            let publish = PublishMessage::build().payload(body.into());
            (names.tick(Asset::Btc), publish)
        };
        acks.push(
            js.send_publish(publish.0, publish.1)
                .await
                .expect("publish"),
        );
        if acks.len() == 1_000 {
            for a in acks.drain(..) {
                a.await.expect("stored");
            }
        }
    }
    for a in acks {
        a.await.expect("stored");
    }
}

async fn no_ack_consumer(
    js: &jetstream::Context,
    names: &Names,
    start: u64,
) -> jetstream::consumer::PullConsumer {
    js.get_stream(names.engine_stream())
        .await
        .expect("stream")
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("consumer")
}

/// Reads `start..=end` through a no-ack pull consumer in pulls of `batch`; returns the count.
async fn read_range(
    js: jetstream::Context,
    names: Names,
    start: u64,
    end: u64,
    batch: usize,
) -> u64 {
    let consumer = no_ack_consumer(&js, &names, start).await;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await
        .expect("messages");
    let mut read = 0;
    while let Some(m) = messages.next().await {
        let seq = m.expect("message").info().expect("info").stream_sequence;
        read += 1;
        if seq >= end {
            break;
        }
    }
    read
}

async fn ordered(js: &jetstream::Context, names: &Names, n: u64) -> u64 {
    let stream = js.get_stream(names.engine_stream()).await.expect("stream");
    let consumer = stream
        .create_consumer(pull::OrderedConfig::default())
        .await
        .expect("ordered");
    let mut messages = consumer.messages().await.expect("messages");
    let mut read = 0;
    while read < n {
        let m = messages.next().await.expect("open").expect("message");
        m.info().expect("info");
        read += 1;
    }
    read
}

/// `readers` consumers over disjoint ranges of `1..=n`, each on `js` or on its own connection.
async fn ranges(
    url: &str,
    js: &jetstream::Context,
    names: &Names,
    n: u64,
    readers: u64,
    own: bool,
) -> u64 {
    let per = n.div_ceil(readers);
    let mut tasks = Vec::new();
    for r in 0..readers {
        let js = if own {
            jetstream::new(connect(url).await)
        } else {
            js.clone()
        };
        let (start, end) = (r * per + 1, ((r + 1) * per).min(n));
        tasks.push(tokio::spawn(read_range(
            js,
            names.clone(),
            start,
            end,
            5_000,
        )));
    }
    let mut read = 0;
    for t in tasks {
        read += t.await.expect("reader");
    }
    read
}

/// The server's ceiling: one pull request for the whole log on a raw socket that only
/// frames the deliveries (no header parsing, nothing allocated per message).
async fn raw(url: &str, js: &jetstream::Context, names: &Names, n: u64) -> u64 {
    let consumer = no_ack_consumer(js, names, 1).await;
    let name = consumer.cached_info().name.clone();
    let mut socket = tokio::net::TcpStream::connect(url).await.expect("socket");
    let pull = format!("{{\"batch\":{n}}}");
    let hello = format!(
        "CONNECT {{\"verbose\":false,\"headers\":true,\"protocol\":1}}\r\nSUB _INBOX.raw 1\r\n\
         PUB $JS.API.CONSUMER.MSG.NEXT.{}.{name} _INBOX.raw {}\r\n{pull}\r\n",
        names.engine_stream(),
        pull.len()
    );
    socket.write_all(hello.as_bytes()).await.expect("hello");
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let (mut read, mut at) = (0, 0);
    while read < n {
        let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            read_more(&mut socket, &mut buf, &mut at).await;
            continue;
        };
        let line = &buf[at..at + eol];
        let body = if line.starts_with(b"HMSG ") || line.starts_with(b"MSG ") {
            let total = line.rsplit(|b| *b == b' ').next().expect("len");
            std::str::from_utf8(total)
                .expect("utf8")
                .parse::<usize>()
                .expect("len")
                + 2
        } else if line.starts_with(b"PING") {
            socket.write_all(b"PONG\r\n").await.expect("pong");
            0
        } else {
            0
        };
        if at + eol + 2 + body > buf.len() {
            // Wait for the rest of the message.
            read_more(&mut socket, &mut buf, &mut at).await;
            continue;
        }
        if body > 0 {
            read += 1;
        }
        at += eol + 2 + body;
    }
    read
}

/// Drops what was parsed (up to `at`) and appends the next read from `socket`.
async fn read_more(socket: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, at: &mut usize) {
    buf.drain(..*at);
    *at = 0;
    let len = buf.len();
    buf.resize(len + (1 << 20), 0);
    let got = socket.read(&mut buf[len..]).await.expect("read");
    buf.truncate(len + got);
    assert!(got > 0, "server closed");
}

async fn replay(js: &jetstream::Context, names: &Names) -> u64 {
    let mut engine = Engine::new(EngineConfig::default());
    recovery::replay(js, names, &mut engine, 0, u64::MAX, |_, _| {})
        .await
        .expect("replay")
}

struct Row {
    what: String,
    inputs: u64,
    secs: f64,
    server: f64,
    client: f64,
}

async fn measure<F: std::future::Future<Output = u64>>(what: &str, server: &Server, run: F) -> Row {
    let me = std::process::id().to_string();
    let (s0, c0, t) = (cpu_secs(&server.pid()), cpu_secs(&me), Instant::now());
    let inputs = run.await;
    let secs = t.elapsed().as_secs_f64();
    Row {
        what: what.into(),
        inputs,
        secs,
        server: (cpu_secs(&server.pid()) - s0) / secs,
        client: (cpu_secs(&me) - c0) / secs,
    }
}

async fn bench() {
    let inputs: usize = std::env::var("REPLAY_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let server = Server::start();
    let nats = connect(&server.url).await;
    let js = jetstream::new(nats.clone());
    let names = Names::new("replaybench");
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .expect("streams");
    fill(&js, &names, inputs).await;
    let n = inputs as u64;
    let url = server.url.clone();
    // A first read warms the server's block cache; every measured read finds it warm.
    raw(&url, &js, &names, n).await;
    let mut rows = vec![
        measure(
            "floor: raw socket, one pull, framing only",
            &server,
            raw(&url, &js, &names, n),
        )
        .await,
    ];
    rows.push(measure("ordered consumer", &server, ordered(&js, &names, n)).await);
    for batch in [5_000, 20_000] {
        let what = format!("no-ack pull consumer, pulls of {batch}");
        let read = read_range(js.clone(), names.clone(), 1, n, batch);
        rows.push(measure(&what, &server, read).await);
    }
    for (readers, own) in [(2, false), (4, false), (2, true), (4, true)] {
        let conn = if own {
            "a connection each"
        } else {
            "one connection"
        };
        let what = format!("{readers} range readers, {conn}");
        rows.push(measure(&what, &server, ranges(&url, &js, &names, n, readers, own)).await);
    }
    rows.push(
        measure(
            "recovery::replay (read + decode + apply)",
            &server,
            replay(&js, &names),
        )
        .await,
    );
    rows.push(
        measure(
            "floor again: raw socket",
            &server,
            raw(&url, &js, &names, n),
        )
        .await,
    );

    println!(
        "| read of {n} inputs | inputs/s | vs floor | nats-server CPU | bench CPU | \
         server CPU µs/input | bench CPU µs/input |"
    );
    println!("|---|---|---|---|---|---|---|");
    // The floor: the mean of the raw reads before and after the others.
    let last = rows.len() - 1;
    let floor =
        (rows[0].inputs as f64 / rows[0].secs + rows[last].inputs as f64 / rows[last].secs) / 2.0;
    for r in rows {
        let rate = r.inputs as f64 / r.secs;
        assert_eq!(r.inputs, n, "{} read everything", r.what);
        // CPU time per input: how much of a core each side needs, whatever else runs.
        let per_input = |share: f64| share * r.secs / r.inputs as f64 * 1e6;
        println!(
            "| {} | {rate:.0} | {:.2}x | {:.0}% | {:.0}% | {:.2} | {:.2} |",
            r.what,
            rate / floor,
            r.server * 100.0,
            r.client * 100.0,
            per_input(r.server),
            per_input(r.client),
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}
