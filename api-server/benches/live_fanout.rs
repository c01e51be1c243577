//! Live fan-out benchmark (not a test): how long one vote takes to reach 1,000 connected
//! WebSocket clients, and how much memory an idle connection costs the server.
//!
//! `cargo bench -p api-server --bench live_fanout` (release build). Runs the real `api-server`
//! binary as a separate process on loopback (so its RSS is the server's alone) and prints a
//! Markdown table for docs/benchmarks.md, section "Live fan-out".
//!
//! Scenarios: one process (in-process hub), and two processes on one `redis-server` with the
//! clients on one and the votes sent to the other (cross-replica through Redis pub/sub). Two
//! processes need a shared store, so that scenario uses the MongoDB adaptor on FerretDB.
//! Latency is measured from sending the vote's HTTP request to each client receiving the event,
//! so it includes the write itself.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 1000;
const VOTES: usize = 20;
/// Set when the benchmark has re-executed itself with a raised open-files limit.
const RAISED_LIMIT: &str = "LIVE_FANOUT_FD_LIMIT_RAISED";

fn main() {
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

/// 1,000 clients need ~1,000 descriptors in this process and as many in the server: re-run
/// under `ulimit -n <hard limit>` when the soft limit is lower (children inherit it).
fn raise_fd_limit() {
    if std::env::var_os(RAISED_LIMIT).is_some() {
        return;
    }
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(3)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .unwrap_or(0);
    if soft >= 4 * CLIENTS as u64 {
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
        .env(RAISED_LIMIT, "1")
        .status()
        .expect("re-executing with a higher open-files limit");
    std::process::exit(status.code().unwrap_or(1));
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(env: &[(&str, String)]) -> Server {
    let port = test_fixtures::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_api-server"));
    command
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("WRITE_RATE_PER_MINUTE", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().expect("api-server starts");
    let server = Server {
        child,
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

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn call(method: reqwest::Method, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = reqwest::Client::new().request(method, url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("json")
}

/// The revision of an event frame, without a full JSON parse (clients share the CPU).
fn event_revision(text: &str) -> Option<i64> {
    if !text.starts_with(r#"{"type":"event""#) {
        return None;
    }
    let rest = &text[text.find(r#""revision":"#)? + 11..];
    rest[..rest.find([',', '}'])?].parse().ok()
}

struct Outcome {
    scenario: &'static str,
    p50: Duration,
    p99: Duration,
    max: Duration,
    delivered: usize,
    per_connection_kib: f64,
}

/// Connects the clients to `watch`, votes `VOTES` times through `vote_on`, and measures.
async fn measure(scenario: &'static str, watch: &Server, vote_on: &Server) -> Outcome {
    let created = call(
        reqwest::Method::POST,
        format!("{}/api/v1/meetups", vote_on.base),
        None,
        json!({"title": "Bench", "organizerName": "Anna", "timeZone": "UTC"}),
    )
    .await;
    let id = created["meetup"]["id"].as_str().expect("id").to_string();
    let slots: Vec<String> = created["meetup"]["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    let participant = created["participantId"]
        .as_str()
        .expect("participant")
        .to_string();
    let token = created["participantToken"]
        .as_str()
        .expect("token")
        .to_string();

    let before = rss_kib(watch.child.id());
    let (arrivals, mut arrived) = mpsc::unbounded_channel::<(i64, Instant)>();
    let url = format!(
        "{}/api/v1/meetups/{id}/live",
        watch.base.replace("http://", "ws://")
    );
    let mut readers = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("websocket connects");
        // The snapshot first, so the connection is fully set up before measuring.
        while let Some(Ok(message)) = socket.next().await {
            if matches!(message, Message::Text(_)) {
                break;
            }
        }
        let arrivals = arrivals.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message
                    && let Some(revision) = event_revision(text.as_str())
                {
                    let _ = arrivals.send((revision, Instant::now()));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(watch.child.id());
    let per_connection_kib = after.saturating_sub(before) as f64 / CLIENTS as f64;

    let mut latencies = Vec::with_capacity(VOTES * CLIENTS);
    for vote in 0..VOTES {
        let started = Instant::now();
        call(
            reqwest::Method::PATCH,
            format!(
                "{}/api/v1/meetups/{id}/participants/{participant}",
                vote_on.base
            ),
            Some(&token),
            json!({"availability": {slots[vote % slots.len()].clone(): "yes"}}),
        )
        .await;
        // The event's revision is the meetup's new one; read it back cheaply from the arrivals.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut count = 0;
        let mut revision = None;
        while count < CLIENTS && Instant::now() < deadline {
            let Ok(Some((rev, at))) =
                tokio::time::timeout(Duration::from_secs(10), arrived.recv()).await
            else {
                break;
            };
            let expected = *revision.get_or_insert(rev);
            if rev == expected {
                count += 1;
                latencies.push(at.duration_since(started));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for reader in readers {
        reader.abort();
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Outcome {
        scenario,
        p50: at(0.50),
        p99: at(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        delivered: latencies.len(),
        per_connection_kib,
    }
}

async fn run() {
    let mut outcomes = Vec::new();

    let data = tempfile::tempdir().expect("temp dir");
    let single = start_server(&[("DATA_DIR", data.path().display().to_string())]).await;
    outcomes.push(
        measure(
            "one process, in-process hub (embedded store)",
            &single,
            &single,
        )
        .await,
    );
    drop(single);

    let redis = test_fixtures::RedisServer::start()
        .await
        .expect("redis starts");
    let ferret = test_fixtures::FerretDb::start()
        .await
        .expect("ferretdb starts");
    let env = [
        ("MONGODB_URI", ferret.uri()),
        ("MONGODB_DATABASE", "live_bench".to_string()),
        ("REDIS_URL", redis.url()),
    ];
    let watched = start_server(&env).await;
    let voting = start_server(&env).await;
    outcomes.push(
        measure(
            "two processes via Redis pub/sub (MongoDB adaptor on FerretDB)",
            &watched,
            &voting,
        )
        .await,
    );
    let metrics = reqwest::get(format!("{}/metrics", watched.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let fanout: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("live_fanout_latency_seconds_"))
        .collect();
    drop((watched, voting));

    println!(
        "| scenario | clients | votes | deliveries | p50 | p99 | max | server RSS per idle connection |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        println!(
            "| {} | {CLIENTS} | {VOTES} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} KiB |",
            o.scenario,
            o.delivered,
            o.p50.as_secs_f64() * 1e3,
            o.p99.as_secs_f64() * 1e3,
            o.max.as_secs_f64() * 1e3,
            o.per_connection_kib
        );
    }
    println!();
    println!("Redis hop (publish → subscriber of the watching process), from its /metrics:");
    for line in fanout {
        println!("    {line}");
    }
}
