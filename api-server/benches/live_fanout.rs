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
//! so it includes the write itself. To tell the write from the fan-out it also reports the vote
//! request alone (before any client connects) and each delivery's delay after the first client
//! of that vote received it (the fan-out spread, a lower bound of "after publishing").

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[path = "../tests/common/process.rs"]
mod process;
use process::{ServerProcess, cpu_time, percentile, rss_kib};

const CLIENTS: usize = 1000;
const VOTES: usize = 20;
/// Set when the benchmark has re-executed itself with a raised open-files limit.
const RAISED_LIMIT: &str = "LIVE_FANOUT_FD_LIMIT_RAISED";

fn main() {
    // 1,000 clients need ~1,000 descriptors here and as many in the server.
    process::bench_main(RAISED_LIMIT, 4 * CLIENTS as u64, run());
}

async fn start_server(env: &[(&str, String)]) -> ServerProcess {
    ServerProcess::start(env).await
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
    /// The vote request alone (no client connected): p50 and max.
    write_p50: Duration,
    write_max: Duration,
    /// Each delivery after the vote's first delivery: p50 and p99.
    spread_p50: Duration,
    spread_p99: Duration,
    /// CPU time per vote while the votes went out: the watched server, and this process (the
    /// clients; with the cross-replica scenario, also nothing else).
    server_cpu_per_vote: Duration,
    clients_cpu_per_vote: Duration,
}

fn vote_body(slots: &[String], vote: usize) -> Value {
    let answer = if vote.is_multiple_of(2) {
        "yes"
    } else {
        "maybe"
    };
    json!({"availability": {slots[vote % slots.len()].clone(): answer}})
}

/// Connects the clients to `watch`, votes `VOTES` times through `vote_on`, and measures.
async fn measure(
    scenario: &'static str,
    watch: &ServerProcess,
    vote_on: &ServerProcess,
) -> Outcome {
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

    // The write alone: the same votes with nobody listening.
    let mut writes = Vec::with_capacity(VOTES);
    for vote in 0..VOTES {
        let started = Instant::now();
        call(
            reqwest::Method::PATCH,
            format!(
                "{}/api/v1/meetups/{id}/participants/{participant}",
                vote_on.base
            ),
            Some(&token),
            vote_body(&slots, vote + 1),
        )
        .await;
        writes.push(started.elapsed());
    }
    writes.sort();

    // Settle first, so the delta is the connections' alone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(watch.pid());
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
    let after = rss_kib(watch.pid());
    let per_connection_kib = after.saturating_sub(before) as f64 / CLIENTS as f64;

    let server_pid = watch.pid().to_string();
    let (server_cpu, clients_cpu) = (cpu_time(&server_pid), cpu_time("self"));
    let mut latencies = Vec::with_capacity(VOTES * CLIENTS);
    let mut spreads = Vec::with_capacity(VOTES * CLIENTS);
    for vote in 0..VOTES {
        let started = Instant::now();
        call(
            reqwest::Method::PATCH,
            format!(
                "{}/api/v1/meetups/{id}/participants/{participant}",
                vote_on.base
            ),
            Some(&token),
            vote_body(&slots, vote),
        )
        .await;
        // The event's revision is the meetup's new one; read it back cheaply from the arrivals.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut count = 0;
        let mut revision = None;
        let mut first = None;
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
                spreads.push(at.duration_since(*first.get_or_insert(at)));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The 100 ms pauses between votes are idle; the CPU time is the votes' work.
    let per_vote = |spent: Duration| spent / VOTES as u32;
    let server_cpu_per_vote = per_vote(cpu_time(&server_pid).saturating_sub(server_cpu));
    let clients_cpu_per_vote = per_vote(cpu_time("self").saturating_sub(clients_cpu));
    for reader in readers {
        reader.abort();
    }
    latencies.sort();
    spreads.sort();
    Outcome {
        scenario,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        delivered: latencies.len(),
        per_connection_kib,
        write_p50: percentile(&writes, 0.50),
        write_max: writes.last().copied().unwrap_or_default(),
        spread_p50: percentile(&spreads, 0.50),
        spread_p99: percentile(&spreads, 0.99),
        server_cpu_per_vote,
        clients_cpu_per_vote,
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
    println!(
        "| scenario | vote request alone p50 / max | after the first delivery p50 / p99 | CPU per vote: server / clients |"
    );
    println!("|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for o in &outcomes {
        println!(
            "| {} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.1} / {:.1} ms |",
            o.scenario,
            ms(o.write_p50),
            ms(o.write_max),
            ms(o.spread_p50),
            ms(o.spread_p99),
            ms(o.server_cpu_per_vote),
            ms(o.clients_cpu_per_vote)
        );
    }
    println!();
    println!("Redis hop (publish → subscriber of the watching process), from its /metrics:");
    for line in fanout {
        println!("    {line}");
    }
}
