//! The benchmark's load generator: a thread and runtime of its own, so that its CPU time is
//! told apart from the server's (and it can be pinned to a core of its own), and lean trade
//! requests (bodies and headers prepared once, only the position id read from an answer), so
//! that it costs little of the machine it measures.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use serde::Deserialize;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::client::{ClientError, Connection};

/// The name of the load generator's thread (`/proc/self/task/*/comm`).
pub const THREAD_NAME: &str = "loadgen";

/// A single-threaded runtime on its own thread; stopped when dropped.
pub struct LoadGen {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoadGen {
    pub fn start() -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                // Runs the tasks spawned on `handle` until told to stop.
                let _ = rt.block_on(stopped);
            })?;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where the load generator's tasks are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Pins the load generator's thread to `cpu` and every other thread of this process to
    /// the other CPUs (with `taskset`; threads started later inherit their creator's CPUs).
    pub fn pin(&self, cpu: usize) -> io::Result<()> {
        let cpus = std::thread::available_parallelism()?.get();
        if cpu >= cpus || cpus < 2 {
            return Err(io::Error::other(format!(
                "cannot keep CPU {cpu} of {cpus} apart"
            )));
        }
        let others: Vec<String> = (0..cpus)
            .filter(|c| *c != cpu)
            .map(|c| c.to_string())
            .collect();
        let (mine, others) = (cpu.to_string(), others.join(","));
        for entry in std::fs::read_dir("/proc/self/task")?.flatten() {
            let tid = entry.file_name().to_string_lossy().into_owned();
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let list = if comm.trim() == THREAD_NAME {
                &mine
            } else {
                &others
            };
            let status = std::process::Command::new("taskset")
                .args(["-p", "-c", list, &tid])
                .stdout(std::process::Stdio::null())
                .status()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "taskset on thread {tid}: {status}"
                )));
            }
        }
        Ok(())
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A `POST` of `body` (JSON) to `path`, with the `authorization` header when given.
pub fn post(path: &'static str, auth: Option<&HeaderValue>, body: Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = Uri::from_static(path);
    let headers = req.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(auth) = auth {
        headers.insert(AUTHORIZATION, auth.clone());
    }
    req
}

/// The benchmark's order: the smallest SOL buy at 100x.
const OPEN_BODY: &[u8] = br#"{"asset":"SOL","side":"buy","quantity":"0.01","leverage":100}"#;

/// The one field of an open's answer the benchmark needs.
#[derive(Deserialize)]
struct Opened {
    position: OpenedId,
}

#[derive(Deserialize)]
struct OpenedId {
    id: u64,
}

/// One user's connection, opening and closing positions.
pub struct Trader {
    conn: Connection,
    auth: HeaderValue,
}

impl Trader {
    pub async fn connect(addr: SocketAddr, token: &str) -> Result<Self, ClientError> {
        let auth = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Self {
            conn: Connection::open(addr).await?,
            auth,
        })
    }

    /// Opens a position: its id, or `None` for any answer but 201 with one.
    pub async fn open(&mut self) -> Result<Option<u64>, ClientError> {
        let req = post(
            "/api/v1/trade/open",
            Some(&self.auth),
            Bytes::from_static(OPEN_BODY),
        );
        let (status, _, body) = self.conn.round_trip(req).await?;
        let opened = serde_json::from_slice::<Opened>(&body).ok();
        Ok(opened
            .filter(|_| status == StatusCode::CREATED)
            .map(|o| o.position.id))
    }

    /// Closes position `id`: whether the answer was 200.
    pub async fn close(&mut self, id: u64) -> Result<bool, ClientError> {
        let body = Bytes::from(format!(r#"{{"positionId":{id}}}"#));
        let req = post("/api/v1/trade/close", Some(&self.auth), body);
        let (status, _, _) = self.conn.round_trip(req).await?;
        Ok(status == StatusCode::OK)
    }
}
