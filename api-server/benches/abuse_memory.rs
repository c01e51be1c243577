//! Issue 12's "Done when" as a benchmark (not a test): a meetup at every documented limit, then
//! one client address opens 200 WebSockets that never read and floods the meetup with GETs,
//! while another client votes and a third watches live. Reports the view's size against the cap,
//! the server's RSS before / at its peak / after, `/healthz` latency on the idle server (the
//! reference) and during the attack, and whether the votes still arrived.
//!
//! `cargo bench -p api-server --bench abuse_memory` (release): the real `api-server` binary as its
//! own process on loopback with the embedded store, trusting 127.0.0.1 as a proxy so the
//! benchmark can speak for several client addresses through `X-Forwarded-For`. Two scenarios,
//! each on a fresh server: the default limits, and the per-client limits lifted (as if the 200
//! sockets and the flood came from many addresses). Prints a Markdown table for
//! docs/benchmarks.md. `BENCH_SERVER_BIN` runs another build (e.g. an older commit's);
//! `BENCH_SECONDS` (default 20) sets the attack's length.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api_server::domain::limits::{
    MAX_ADDRESS_CHARS, MAX_COMMENT_CHARS, MAX_COMMENTS, MAX_DESCRIPTION_CHARS, MAX_LINK_CHARS,
    MAX_NAME_BYTES, MAX_NOTE_CHARS, MAX_PARTICIPANTS, MAX_PLACE_NAME_CHARS, MAX_PLACES, MAX_SLOTS,
    MAX_TITLE_CHARS, MAX_VIEW_BYTES,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[path = "../tests/common/process.rs"]
mod process;
use process::{ServerProcess, percentile, rss_mib};

const SOCKETS: usize = 200;
const FLOOD_TASKS: usize = 8;
/// The attacker, the voter and the watcher, as the trusted proxy (loopback) reports them.
const ATTACKER: &str = "198.51.100.66";
const VOTER: &str = "198.51.100.7";
const WATCHER: &str = "198.51.100.8";
/// Receive buffer of the sockets that never read: small, so the server keeps what it cannot send.
const NEVER_READ_RCVBUF: u32 = 4096;

/// Set when the benchmark has re-executed itself with a raised open-files limit.
const RAISED_LIMIT: &str = "ABUSE_MEMORY_FD_LIMIT_RAISED";

fn main() {
    // 200 sockets here and as many in the server.
    process::bench_main(RAISED_LIMIT, 4 * SOCKETS as u64, run());
}

/// The server of one scenario and its data directory (removed with it).
struct Server {
    process: ServerProcess,
    base: String,
    _data: tempfile::TempDir,
}

async fn start_server(env: &[(&str, &str)]) -> Server {
    let data = tempfile::tempdir().expect("temp dir");
    let mut vars = vec![
        ("DATA_DIR", data.path().display().to_string()),
        ("TRUSTED_PROXIES", "127.0.0.1/32".to_string()),
    ];
    vars.extend(env.iter().map(|(key, value)| (*key, (*value).to_string())));
    let process = ServerProcess::start(&vars).await;
    Server {
        base: process.base.clone(),
        process,
        _data: data,
    }
}

/// `chars` characters of four UTF-8 bytes each: the widest text a field may hold.
fn widest(chars: usize) -> String {
    "🍺".repeat(chars)
}

/// A distinct name as wide as a name may be in bytes.
fn name(i: usize) -> String {
    format!("{}{i:03}", widest((MAX_NAME_BYTES - 3) / 4))
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut request = http
        .request(method, url)
        .header("x-forwarded-for", VOTER)
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

struct Fullest {
    id: String,
    voter: (String, String),
    slots: Vec<String>,
}

/// A meetup at every documented limit, each text field as wide as allowed.
async fn fill(server: &Server) -> Fullest {
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1/meetups", server.base);
    let today = chrono::Utc::now().date_naive();
    let days_needed = MAX_SLOTS.div_ceil(24);
    let days: Vec<String> = (1..=days_needed as u64)
        .map(|d| {
            (today + chrono::Days::new(d))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    let created = call(
        &http,
        reqwest::Method::POST,
        api.clone(),
        None,
        json!({
            "title": widest(MAX_TITLE_CHARS),
            "description": widest(MAX_DESCRIPTION_CHARS),
            "organizerName": name(0),
            "timeZone": "America/Argentina/Buenos_Aires",
            "slotMinutes": 15,
            "days": days,
            "window": {"start": "12:00", "end": "18:00"},
            "allowParticipantPlaces": true,
        }),
    )
    .await;
    let id = created["meetup"]["id"].as_str().expect("id").to_string();
    let admin = created["adminToken"].as_str().expect("admin").to_string();
    let slots: Vec<String> = created["meetup"]["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter_map(|s| s["id"].as_str().map(String::from))
        .collect();
    assert_eq!(slots.len(), MAX_SLOTS);
    let meetup = format!("{api}/{id}");
    let mut places = Vec::new();
    for i in 0..MAX_PLACES {
        let place = call(
            &http,
            reqwest::Method::POST,
            format!("{meetup}/places"),
            Some(&admin),
            json!({
                "name": format!("{}{i:02}", widest(MAX_PLACE_NAME_CHARS - 2)),
                "address": widest(MAX_ADDRESS_CHARS),
                "link": format!("https://example.com/{}", "a".repeat(MAX_LINK_CHARS - 20)),
                "note": widest(MAX_NOTE_CHARS),
            }),
        )
        .await;
        places.push(place["id"].as_str().expect("place id").to_string());
    }
    let mut people = vec![(
        created["participantId"].as_str().expect("pid").to_string(),
        created["participantToken"]
            .as_str()
            .expect("token")
            .to_string(),
    )];
    for i in 1..MAX_PARTICIPANTS {
        let joined = call(
            &http,
            reqwest::Method::POST,
            format!("{meetup}/participants"),
            None,
            json!({"name": name(i), "timeZone": "America/Argentina/Buenos_Aires"}),
        )
        .await;
        people.push((
            joined["participant"]["id"]
                .as_str()
                .expect("pid")
                .to_string(),
            joined["token"].as_str().expect("token").to_string(),
        ));
    }
    let availability: serde_json::Map<String, Value> =
        slots.iter().map(|s| (s.clone(), json!("maybe"))).collect();
    for (pid, token) in &people {
        call(
            &http,
            reqwest::Method::PATCH,
            format!("{meetup}/participants/{pid}"),
            Some(token),
            json!({"availability": availability, "placeVotes": places, "note": widest(MAX_NOTE_CHARS)}),
        )
        .await;
    }
    for i in 0..MAX_COMMENTS {
        let (_, token) = &people[i % people.len()];
        call(
            &http,
            reqwest::Method::POST,
            format!("{meetup}/comments"),
            Some(token),
            json!({"text": widest(MAX_COMMENT_CHARS)}),
        )
        .await;
    }
    Fullest {
        id,
        voter: people[1].clone(),
        slots,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `/healthz` latencies, one request every 20 ms until `stop` (or `count` requests).
async fn probe_healthz(base: String, stop: Arc<AtomicBool>, count: usize) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) && latencies.len() < count {
        let started = Instant::now();
        let ok = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        // A failed probe counts as the worst case: as long as it took.
        let _ = ok;
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    latencies
}

/// Opens a WebSocket as `client` that never reads after the handshake; `None` if refused.
async fn never_reading_socket(
    base: &str,
    meetup: &str,
) -> Option<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let address = base.trim_start_matches("http://");
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.set_recv_buffer_size(NEVER_READ_RCVBUF).ok()?;
    let stream = socket.connect(address.parse().ok()?).await.ok()?;
    let mut request = format!("ws://{address}/api/v1/meetups/{meetup}/live")
        .into_client_request()
        .ok()?;
    request
        .headers_mut()
        .insert("x-forwarded-for", ATTACKER.parse().ok()?);
    let (socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .ok()?;
    Some(socket)
}

struct Outcome {
    scenario: &'static str,
    view_bytes: usize,
    rss_before: f64,
    rss_peak: f64,
    rss_after: f64,
    sockets_open: usize,
    gets_ok: u64,
    gets_limited: u64,
    get_bytes: u64,
    idle_p50: Duration,
    idle_p99: Duration,
    attack_p50: Duration,
    attack_p99: Duration,
    attack_max: Duration,
    votes_sent: usize,
    votes_seen: usize,
    vote_max: Duration,
}

async fn scenario(name: &'static str, env: &[(&str, &str)], attack: Duration) -> Outcome {
    let server = start_server(env).await;
    let pid = server.process.pid();
    let fullest = fill(&server).await;
    let meetup_url = format!("{}/api/v1/meetups/{}", server.base, fullest.id);
    let http = reqwest::Client::new();
    let view = http
        .get(&meetup_url)
        .header("x-forwarded-for", VOTER)
        .send()
        .await
        .expect("view")
        .bytes()
        .await
        .expect("view bytes");
    let view_bytes = view.len();
    assert!(
        view_bytes <= MAX_VIEW_BYTES,
        "the fullest view is {view_bytes} bytes, over the {MAX_VIEW_BYTES} byte cap"
    );

    // The watcher: a client that reads, connected before the attack.
    let mut request = format!(
        "{}/api/v1/meetups/{}/live",
        server.base.replace("http://", "ws://"),
        fullest.id
    )
    .into_client_request()
    .expect("request");
    request
        .headers_mut()
        .insert("x-forwarded-for", WATCHER.parse().expect("header"));
    let (mut watcher, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("watcher connects");
    let snapshot = loop {
        match watcher.next().await {
            Some(Ok(Message::Text(text))) => break text,
            Some(Ok(_)) => continue,
            other => panic!("watcher got {other:?}"),
        }
    };
    assert!(snapshot.as_str().starts_with(r#"{"type":"snapshot""#));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(i64, Instant)>();
    let watching = tokio::spawn(async move {
        while let Some(Ok(message)) = watcher.next().await {
            if let Message::Text(text) = message
                && let Ok(value) = serde_json::from_str::<Value>(text.as_str())
                && value["type"] == "event"
                && let Some(revision) = value["revision"].as_i64()
            {
                let _ = seen_tx.send((revision, Instant::now()));
            }
        }
    });

    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_mib(pid);
    let idle = probe_healthz(server.base.clone(), Arc::new(AtomicBool::new(false)), 250).await;

    // The attack.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max((rss_mib(pid) * 1024.0) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let probe = tokio::spawn(probe_healthz(
        server.base.clone(),
        Arc::clone(&stop),
        usize::MAX,
    ));
    let started = Instant::now();
    let mut opening = Vec::new();
    for _ in 0..SOCKETS {
        let base = server.base.clone();
        let id = fullest.id.clone();
        opening.push(tokio::spawn(async move {
            never_reading_socket(&base, &id).await
        }));
    }
    let mut sockets = Vec::new();
    for task in opening {
        if let Ok(Some(socket)) = task.await {
            sockets.push(socket);
        }
    }
    let sockets_open = sockets.len();
    let (ok, limited, bytes) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let flood: Vec<_> = (0..FLOOD_TASKS)
        .map(|_| {
            let (stop, ok, limited, bytes) = (
                Arc::clone(&stop),
                Arc::clone(&ok),
                Arc::clone(&limited),
                Arc::clone(&bytes),
            );
            let url = meetup_url.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(response) = http
                        .get(&url)
                        .header("x-forwarded-for", ATTACKER)
                        .send()
                        .await
                    else {
                        continue;
                    };
                    let status = response.status();
                    let body = response.bytes().await.map(|b| b.len()).unwrap_or(0);
                    bytes.fetch_add(body as u64, Ordering::Relaxed);
                    if status.is_success() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                        limited.fetch_add(1, Ordering::Relaxed);
                        // A polite pause would help the server; an attacker retries at once.
                    }
                }
            })
        })
        .collect();

    // The other client votes once a second; the watcher must see every vote.
    let (pid_voter, token) = &fullest.voter;
    let mut sent = Vec::new();
    let mut vote = 0usize;
    while started.elapsed() < attack {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let answer = if vote.is_multiple_of(2) {
            "yes"
        } else {
            "maybe"
        };
        let at = Instant::now();
        let reply = call(
            &http,
            reqwest::Method::PATCH,
            format!("{meetup_url}/participants/{pid_voter}"),
            Some(token),
            json!({"availability": {fullest.slots[vote % fullest.slots.len()].clone(): answer}}),
        )
        .await;
        let _ = reply;
        sent.push(at);
        vote += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        let _ = task.await;
    }
    let attack_latencies = probe.await.expect("probe");
    drop(sockets);
    let _ = sampler.await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_mib(pid);

    let mut seen = Vec::new();
    while let Ok(item) = seen_rx.try_recv() {
        seen.push(item);
    }
    watching.abort();
    // Vote k produced the k-th event after the fill (nothing else writes during the attack).
    let vote_max = seen
        .iter()
        .zip(&sent)
        .map(|((_, got), at)| got.saturating_duration_since(*at))
        .max()
        .unwrap_or_default();
    Outcome {
        scenario: name,
        view_bytes,
        rss_before,
        rss_peak: peak.load(Ordering::Relaxed) as f64 / 1024.0,
        rss_after,
        sockets_open,
        gets_ok: ok.load(Ordering::Relaxed),
        gets_limited: limited.load(Ordering::Relaxed),
        get_bytes: bytes.load(Ordering::Relaxed),
        idle_p50: percentile(&idle, 0.5),
        idle_p99: percentile(&idle, 0.99),
        attack_p50: percentile(&attack_latencies, 0.5),
        attack_p99: percentile(&attack_latencies, 0.99),
        attack_max: attack_latencies.last().copied().unwrap_or_default(),
        votes_sent: sent.len(),
        votes_seen: seen.len(),
        vote_max,
    }
}

async fn run() {
    let attack = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    let default_limits = scenario("default limits", &[], attack).await;
    let lifted = scenario(
        "per-client limits lifted",
        &[
            ("MAX_LIVE_PER_CLIENT", "1000"),
            ("READ_RATE_PER_MINUTE", "0"),
        ],
        attack,
    )
    .await;
    println!(
        "\n| scenario | view bytes (cap {MAX_VIEW_BYTES}) | WebSockets open / tried | GETs 200 / 429 (MiB served) | RSS before → peak → after | growth at peak | /healthz p50 / p99 idle (reference) | /healthz p50 / p99 / max during | votes seen / sent (slowest) |"
    );
    println!("|---|---:|---:|---:|---|---:|---|---|---|");
    for o in [default_limits, lifted] {
        println!(
            "| {} | {} | {} / {SOCKETS} | {} / {} ({:.0}) | {:.0} → {:.0} → {:.0} MiB | {:.0} MiB | {} / {} | {} / {} / {} | {} / {} ({}) |",
            o.scenario,
            o.view_bytes,
            o.sockets_open,
            o.gets_ok,
            o.gets_limited,
            o.get_bytes as f64 / 1024.0 / 1024.0,
            o.rss_before,
            o.rss_peak,
            o.rss_after,
            o.rss_peak - o.rss_before,
            ms(o.idle_p50),
            ms(o.idle_p99),
            ms(o.attack_p50),
            ms(o.attack_p99),
            ms(o.attack_max),
            o.votes_seen,
            o.votes_sent,
            ms(o.vote_max),
        );
    }
}
