//! Private NATS and PostgreSQL servers a test can stop and start again (same port, same
//! store), for outage tests; the shared servers are never touched.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{TempDir, eventually, free_port, signal};

/// The Debian package's `nats-server`, else the one on `PATH`.
fn nats_server_binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}

/// A NATS server of the test's own (JetStream, a free port, a store dir that outlives its
/// restarts).
pub struct PrivateNats {
    pub port: u16,
    store: TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    pub async fn start() -> Self {
        let mut nats = Self {
            port: free_port(),
            store: TempDir::new("nats-store"),
            child: None,
        };
        nats.resume().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and store dir.
    pub async fn resume(&mut self) {
        let child = Command::new(nats_server_binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let port = self.port;
        eventually(
            "the private NATS listens",
            Duration::from_secs(30),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
    }

    /// Stops the server (SIGTERM, then SIGKILL if it lingers).
    pub async fn halt(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "TERM");
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

/// A PostgreSQL server of the test's own: `initdb` and `pg_ctl` as the `postgres` user (the
/// tests run as root, which initdb refuses) in a temp dir that user owns, on a free port.
pub struct PrivatePostgres {
    pub port: u16,
    dir: TempDir,
    bin: PathBuf,
}

fn as_postgres(bin: &Path, tool: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
    cmd
}

impl PrivatePostgres {
    /// `None` when this machine has no PostgreSQL server binaries or no `postgres` user.
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())?;
        let dir = TempDir::new("pg-private");
        let owned = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir.0)
            .status()
            .ok()?;
        if !owned.success() {
            return None;
        }
        let data = dir.0.join("data");
        let init = as_postgres(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        if !init.success() {
            return None;
        }
        let pg = Self {
            port: free_port(),
            dir,
            bin,
        };
        assert!(pg.resume(), "the private PostgreSQL starts");
        Some(pg)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start` on the same port and data dir; waits until it accepts connections.
    pub fn resume(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.0.display()
        );
        as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.0.join("data"))
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.0.join("server.log"))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_ctl stop -m fast`: open connections are cut, as when the server goes down.
    pub fn halt(&self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.0.join("data"))
            .args(["-w", "-t", "60", "-m", "fast", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.0.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
