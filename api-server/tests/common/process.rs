//! The real `api-server` binary as its own process on loopback, and what /proc says about it:
//! shared by the tests that kill the process and the process-level benchmarks.
// Each test and bench binary includes this module and uses part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Runs a benchmark's `main` future on a multi-threaded runtime after raising the descriptor
/// limit to `fds` (see [`raise_fd_limit`]).
pub fn bench_main<F: std::future::Future>(marker: &str, fds: u64, run: F) -> F::Output {
    raise_fd_limit(marker, fds);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(run)
}

/// Re-runs the benchmark under `ulimit -n <hard limit>` when the soft open-files limit is below
/// `needed` (the server, a child, inherits it). `marker` is set in the re-run's environment.
pub fn raise_fd_limit(marker: &str, needed: u64) {
    if std::env::var_os(marker).is_some() || soft_fd_limit() >= needed {
        return;
    }
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)" && exec "$0" "$@""#)
        .arg(me)
        .args(std::env::args().skip(1))
        .env(marker, "1")
        .status()
        .expect("re-executing with a higher open-files limit");
    std::process::exit(status.code().unwrap_or(1));
}

fn soft_fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The release `api-server` (or `BENCH_SERVER_BIN`, e.g. an older commit's build), killed on drop.
pub struct ServerProcess {
    child: Child,
    pub base: String,
}

impl ServerProcess {
    /// Starts the server on a free loopback port with writes unthrottled and warnings-only logs,
    /// plus `env` (which may override those), and waits for `/readyz`.
    pub async fn start(env: &[(&str, String)]) -> Self {
        let port = test_fixtures::free_port();
        let binary = std::env::var("BENCH_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_api-server").to_string());
        let mut command = Command::new(binary);
        command
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("WRITE_RATE_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let server = Self {
            child: command.spawn().expect("api-server starts"),
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if reqwest::get(format!("{}/readyz", server.base))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("api-server did not become ready");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reaped: nothing of the process runs after this.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process in KiB (0 when it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

pub fn rss_mib(pid: u32) -> f64 {
    rss_kib(pid) as f64 / 1024.0
}

/// CPU time (user + system) a process (`"self"` or a pid) has used so far.
pub fn cpu_time(pid: &str) -> Duration {
    /// Clock ticks per second of /proc/*/stat (USER_HZ), 100 on Linux.
    const TICKS_PER_SECOND: f64 = 100.0;
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which may hold spaces and ends with ')': utime and
            // stime are the 12th and 13th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND)
}

/// The `p` quantile of sorted durations (zero when there are none).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
