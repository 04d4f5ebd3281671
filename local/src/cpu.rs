//! CPU time by process for the benchmarks (Linux `/proc`): how much of a request's cost is
//! the benchmark process itself, NATS, PostgreSQL and everything else on the machine, so a
//! figure measured beside other people's work says where the time went. The benchmark's load
//! generator runs on a thread of this process (`crate::loadgen`); its time is counted apart.

use std::time::Instant;

use bus::process::cpu::{TICKS_PER_SEC, process_secs, stat_secs};

/// CPU seconds used so far by each group of processes, and by the whole machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// This process without the load generator's thread.
    pub this: f64,
    pub loadgen: f64,
    pub nats: f64,
    pub postgres: f64,
    pub machine: f64,
    at: Option<Instant>,
}

/// utime + stime of this process's threads named `name`, in seconds.
fn threads_secs(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| stat_secs(&t.path().join("stat").to_string_lossy()))
        .sum()
}

/// Busy (non-idle) CPU seconds of the whole machine.
fn machine_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    let busy: f64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .take(8)
        .map(|(_, x)| x)
        .sum();
    busy / TICKS_PER_SEC
}

impl Sample {
    /// Samples now. PostgreSQL counts the backends serving `database` (their process title
    /// names it), so other people's databases on the same server are not charged to us;
    /// NATS counts the `nats-server` whose command line names `nats_port` (a private server
    /// for the run), or every `nats-server` when none does.
    pub fn take(database: &str, nats_port: &str) -> Self {
        let loadgen = threads_secs(crate::loadgen::THREAD_NAME);
        let mut s = Sample {
            this: process_secs("self").unwrap_or(0.0) - loadgen,
            loadgen,
            machine: machine_secs(),
            at: Some(Instant::now()),
            ..Default::default()
        };
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return s;
        };
        let (mut named, mut any) = (0.0, 0.0);
        for entry in dir.flatten() {
            let pid = entry.file_name();
            let Some(pid) = pid
                .to_str()
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("nats-server") {
                let secs = process_secs(pid).unwrap_or(0.0);
                any += secs;
                if cmdline.contains(nats_port) {
                    named += secs;
                }
            } else if cmdline.starts_with("postgres:") && cmdline.contains(database) {
                s.postgres += process_secs(pid).unwrap_or(0.0);
            }
        }
        s.nats = if named > 0.0 { named } else { any };
        s
    }

    /// One table row: microseconds of CPU per request since `before`, by process group.
    pub fn row_since(&self, before: &Sample, label: &str, requests: usize) -> String {
        let n = requests.max(1) as f64;
        let per = |a: f64, b: f64| (a - b) * 1e6 / n;
        let wall = match (self.at, before.at) {
            (Some(a), Some(b)) => a.duration_since(b).as_secs_f64(),
            _ => 0.0,
        };
        let this = per(self.this, before.this);
        let loadgen = per(self.loadgen, before.loadgen);
        let nats = per(self.nats, before.nats);
        let pg = per(self.postgres, before.postgres);
        let machine = per(self.machine, before.machine);
        let cores = (self.machine - before.machine) / wall.max(1e-9);
        format!(
            "| {label} | {this:.0} | {loadgen:.0} | {nats:.0} | {pg:.0} | {:.0} | {machine:.0} | {cores:.2} |",
            machine - this - loadgen - nats - pg
        )
    }
}

/// The header of [`Sample::row_since`]'s table.
pub const HEADER: &str = "| phase | this process µs/req | load generator µs/req | nats-server µs/req | postgres (this db) µs/req | rest of machine µs/req | machine busy µs/req | busy cores |\n|---|---|---|---|---|---|---|---|";

/// The 1-minute load average, for the record.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
