//! `make bench-http` (= `cargo bench -p api-server --bench http_speed`): the release `api-server`
//! binary on loopback with the embedded store, driven by wrk (Debian's `wrk`, a separate process),
//! beside a bare axum handler in this process that returns the very same bytes as the meetup view,
//! measured in the same run. Prints a Markdown table for docs/benchmarks.md.
//!
//! Data as in issue 16: one meetup with 7 evenings × 20 quarter-hour slots (140 slots) and 30
//! participants with availability. Workloads: read the meetup (64 connections), replace one
//! participant's availability (16 and 64 connections), create a meetup (16 connections).
//!
//! The three write workloads run once more against a fresh server whose data directory is on
//! /dev/shm (tmpfs, when the machine has it): a sync costs nothing there, so those rows show
//! what the CPU allows this code on this machine, beside the durable rows of the same run.
//!
//! `BENCH_SECONDS` (default 10) sets the length of each workload. `BENCH_SERVER_BIN` runs another
//! build of the server (e.g. an older commit's) instead of this one, for before/after tables.
//!
//! Beside req/s it reports the server's CPU time per request (from /proc, so it does not depend
//! on how fast the disk syncs) and the latency of one 4 KiB write + fsync in the data directory,
//! measured in the same run: a durable write is answered only after a sync, so one connection
//! cannot make more than one write per sync, and N connections at most N per sync.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};

#[path = "../tests/common/process.rs"]
mod process;
use process::{ServerProcess, load_average, rss_mib};

const PARTICIPANTS: usize = 30;

async fn start_server(data_dir: &Path) -> ServerProcess {
    ServerProcess::start(&[
        ("DATA_DIR", data_dir.display().to_string()),
        // All load comes from one address: the per-client limits would answer most requests
        // with 429 (reads after 200, creates after 100 meetups), which is not what is measured.
        ("READ_RATE_PER_MINUTE", "0".to_string()),
        ("MEETUPS_PER_CLIENT_PER_DAY", "0".to_string()),
    ])
    .await
}

/// Seconds of CPU time a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    process::cpu_time(&pid.to_string()).as_secs_f64()
}

/// Milliseconds one 4 KiB write + fsync takes in `dir` (median and 90th percentile of `n`).
fn sync_latency_ms(dir: &Path, n: usize) -> (f64, f64) {
    use std::io::{Seek, Write};
    let path = dir.join("sync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let page = [0x5a_u8; 4096];
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let started = std::time::Instant::now();
            file.rewind().expect("rewind");
            file.write_all(&page).expect("write");
            file.sync_data().expect("sync");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    times.sort_by(f64::total_cmp);
    (times[n / 2], times[n * 9 / 10])
}

fn days() -> Vec<String> {
    let today = chrono::Utc::now().date_naive();
    (1..=7)
        .map(|d| (today + chrono::Duration::days(d)).to_string())
        .collect()
}

fn create_body(title: &str) -> Value {
    json!({
        "title": title,
        "organizerName": "Org",
        "timeZone": "Europe/Berlin",
        "slotMinutes": 15,
        "days": days(),
        "window": {"start": "18:00", "end": "23:00"},
    })
}

struct Seeded {
    meetup_id: String,
    /// (participant id, token, availability body)
    voters: Vec<(String, String, String)>,
}

async fn seed(base: &str) -> Seeded {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/api/v1/meetups"))
        .json(&create_body("Benchmark beer"))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("created json");
    let meetup_id = created["meetup"]["id"].as_str().expect("id").to_string();
    let slots: Vec<String> = created["meetup"]["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(slots.len(), 140, "7 evenings of 20 quarter-hours");
    let mut voters = vec![(
        created["participantId"].as_str().expect("pid").to_string(),
        created["participantToken"]
            .as_str()
            .expect("token")
            .to_string(),
    )];
    for i in 1..PARTICIPANTS {
        let joined: Value = http
            .post(format!("{base}/api/v1/meetups/{meetup_id}/participants"))
            .json(&json!({"name": format!("Person {i}")}))
            .send()
            .await
            .expect("join")
            .json()
            .await
            .expect("joined json");
        voters.push((
            joined["participant"]["id"]
                .as_str()
                .expect("id")
                .to_string(),
            joined["token"].as_str().expect("token").to_string(),
        ));
    }
    let mut out = Vec::new();
    for (i, (id, token)) in voters.into_iter().enumerate() {
        // Each person says yes or maybe to about half of the slots.
        let availability: serde_json::Map<String, Value> = slots
            .iter()
            .enumerate()
            .filter(|(s, _)| (s + i) % 2 == 0)
            .map(|(s, slot)| {
                let answer = if s % 3 == 0 { "maybe" } else { "yes" };
                (slot.clone(), json!(answer))
            })
            .collect();
        let body = json!({"availability": availability}).to_string();
        let status = http
            .patch(format!(
                "{base}/api/v1/meetups/{meetup_id}/participants/{id}"
            ))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("vote")
            .status();
        assert!(status.is_success(), "seeding vote: {status}");
        out.push((id, token, body));
    }
    Seeded {
        meetup_id,
        voters: out,
    }
}

/// A Lua string literal.
fn lua(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Method, path, headers, body.
type RequestSpec = (String, String, Vec<(String, String)>, Option<String>);

/// A wrk script that cycles through pre-formatted requests (each wrk thread from its own start).
fn wrk_script(requests: &[RequestSpec]) -> String {
    let mut script = String::from("local specs = {\n");
    for (method, path, headers, body) in requests {
        let headers: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("[{}] = {}", lua(k), lua(v)))
            .collect();
        let _ = writeln!(
            script,
            "  {{ {}, {}, {{ {} }}, {} }},",
            lua(method),
            lua(path),
            headers.join(", "),
            body.as_deref().map_or("nil".to_string(), lua)
        );
    }
    script.push_str(
        r#"}
local formatted = {}
local n = 0
init = function(args)
  for i, s in ipairs(specs) do formatted[i] = wrk.format(s[1], s[2], s[3], s[4]) end
  n = math.random(#formatted)
end
request = function()
  n = n % #formatted + 1
  return formatted[n]
end
"#,
    );
    script
}

#[derive(Debug, Default, Clone)]
struct WrkResult {
    requests: u64,
    /// Server CPU seconds used during the workload (filled in by the caller).
    server_cpu_seconds: f64,
    /// The server's own request durations during the workload (filled in by the caller).
    server_latency: Histogram,
    /// The store writer's commits during the workload (filled in by the caller).
    commits: Histogram,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn parse_ms(value: &str) -> f64 {
    let (number, unit) = value.split_at(
        value
            .find(|c: char| c.is_alphabetic())
            .unwrap_or(value.len()),
    );
    let number: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => f64::NAN,
    }
}

fn parse_wrk(output: &str) -> WrkResult {
    let mut result = WrkResult::default();
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => result.p50_ms = parse_ms(value),
            ["99%", value] => result.p99_ms = parse_ms(value),
            ["Requests/sec:", value] => result.requests_per_second = value.parse().unwrap_or(0.0),
            [n, "requests", "in", ..] => result.requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n] => result.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                result.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    result
}

/// A Prometheus histogram's cumulative buckets: (upper bound in seconds, count), ascending.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: Vec<(f64, u64)>,
    sum_seconds: f64,
}

impl Histogram {
    /// The buckets of `metric` summed over every series whose line contains all of `labels`.
    fn scrape(text: &str, metric: &str, labels: &[&str]) -> Self {
        let mut out = Histogram::default();
        for line in text
            .lines()
            .filter(|l| labels.iter().all(|label| l.contains(label)))
        {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            if series.starts_with(&format!("{metric}_sum")) {
                out.sum_seconds += value.parse::<f64>().unwrap_or(0.0);
                continue;
            }
            if !series.starts_with(&format!("{metric}_bucket{{")) {
                continue;
            }
            let le = series
                .split("le=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map_or(f64::NAN, |le| le.parse().unwrap_or(f64::INFINITY));
            let count: u64 = value.parse().unwrap_or(0);
            match out.buckets.iter_mut().find(|(bound, _)| *bound == le) {
                Some((_, total)) => *total += count,
                None => out.buckets.push((le, count)),
            }
        }
        out.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }

    /// What `metric` recorded between two scrapes of the server's /metrics.
    fn between(before: &str, after: &str, metric: &str, labels: &[&str]) -> Self {
        Self::scrape(after, metric, labels).since(&Self::scrape(before, metric, labels))
    }

    /// What was recorded between `before` and `self`.
    fn since(&self, before: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(bound, count)| {
                let earlier = before
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == bound)
                    .map_or(0, |(_, c)| *c);
                (bound, count.saturating_sub(earlier))
            })
            .collect();
        Histogram {
            buckets,
            sum_seconds: self.sum_seconds - before.sum_seconds,
        }
    }

    fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |(_, c)| *c)
    }

    /// The upper bound (ms) of the bucket holding the `q` quantile.
    fn quantile_ms(&self, q: f64) -> f64 {
        let wanted = (self.count() as f64 * q).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, c)| *c >= wanted)
            .map_or(f64::NAN, |(bound, _)| bound * 1000.0)
    }

    /// How many took longer than `seconds` (a bucket bound).
    fn over(&self, seconds: f64) -> u64 {
        let within = self
            .buckets
            .iter()
            .find(|(bound, _)| *bound >= seconds)
            .map_or(0, |(_, c)| *c);
        self.count().saturating_sub(within)
    }
}

async fn server_metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

fn wrk(url: &str, connections: usize, seconds: u64, script: Option<&Path>) -> WrkResult {
    let mut command = Command::new("wrk");
    command
        .arg("-t2")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency");
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command
        .arg(url)
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "wrk failed: {text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_wrk(&text)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

/// A server under test, seeded, with its wrk scripts.
struct Target {
    server: ServerProcess,
    meetup_id: String,
    patch_script: PathBuf,
    create_script: PathBuf,
}

/// Starts a server on `data_dir`, seeds it and writes its wrk scripts (named `name`-…) to
/// `scripts`.
async fn prepare(name: &str, data_dir: &Path, scripts: &Path) -> Target {
    let server = start_server(data_dir).await;
    let seeded = seed(&server.base).await;
    let patch_requests: Vec<_> = seeded
        .voters
        .iter()
        .map(|(id, token, body)| {
            (
                "PATCH".to_string(),
                format!("/api/v1/meetups/{}/participants/{id}", seeded.meetup_id),
                vec![
                    ("Authorization".to_string(), format!("Bearer {token}")),
                    ("Content-Type".to_string(), "application/json".to_string()),
                ],
                Some(body.clone()),
            )
        })
        .collect();
    let patch_script = scripts.join(format!("{name}-patch.lua"));
    std::fs::write(&patch_script, wrk_script(&patch_requests)).expect("write script");
    let create_requests: Vec<_> = (0..16)
        .map(|i| {
            (
                "POST".to_string(),
                "/api/v1/meetups".to_string(),
                vec![("Content-Type".to_string(), "application/json".to_string())],
                Some(create_body(&format!("Created {i}")).to_string()),
            )
        })
        .collect();
    let create_script = scripts.join(format!("{name}-create.lua"));
    std::fs::write(&create_script, wrk_script(&create_requests)).expect("write script");
    Target {
        server,
        meetup_id: seeded.meetup_id,
        patch_script,
        create_script,
    }
}

const READ: [&str; 2] = ["method=\"GET\"", "route=\"/api/v1/meetups/{id}\""];
const REPLACE: [&str; 2] = ["method=\"PATCH\"", "participant_id}"];
const CREATE: [&str; 2] = ["method=\"POST\"", "route=\"/api/v1/meetups\""];

/// One workload: wrk against `url`, with the server's CPU time and its own histograms (request
/// durations, store commits) read before and after. wrk blocks, so it runs off the runtime and
/// the bare server in this process keeps serving.
async fn measure(
    server: &ServerProcess,
    url: String,
    connections: usize,
    seconds: u64,
    script: Option<PathBuf>,
    request: [&'static str; 2],
) -> WrkResult {
    let server_pid = server.pid();
    let before = server_metrics(&server.base).await;
    let mut result = tokio::task::spawn_blocking(move || {
        let cpu_before = cpu_seconds(server_pid);
        let mut result = wrk(&url, connections, seconds, script.as_deref());
        result.server_cpu_seconds = cpu_seconds(server_pid) - cpu_before;
        result
    })
    .await
    .expect("wrk");
    let after = server_metrics(&server.base).await;
    result.server_latency =
        Histogram::between(&before, &after, "http_request_duration_seconds", &request);
    result.commits = Histogram::between(&before, &after, "store_commit_duration_seconds", &[]);
    result
}

/// The three write workloads against `target`.
async fn measure_writes(target: &Target, seconds: u64) -> [WrkResult; 3] {
    let (server, base) = (&target.server, &target.server.base);
    let patch = || Some(target.patch_script.clone());
    [
        measure(server, base.clone(), 16, seconds, patch(), REPLACE).await,
        measure(server, base.clone(), 64, seconds, patch(), REPLACE).await,
        measure(
            server,
            base.clone(),
            16,
            seconds,
            Some(target.create_script.clone()),
            CREATE,
        )
        .await,
    ]
}

/// A RAM filesystem for the data directory, if this machine has one: there a sync costs
/// nothing, so the same writes show the CPU ceiling of this code on this machine.
fn ram_dir() -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    shm.is_dir()
        .then(|| tempfile::tempdir_in(shm).ok())
        .flatten()
}

const TABLE_HEADER: &str = "| work | connections | req/s | p50 ms | p99 ms | server p99 ms | \
    server > 100 ms | errors | server CPU µs/request | store commits: mean / slowest ms | \
    ratio to bare |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

fn print_row(name: &str, connections: usize, result: &WrkResult, bare_rps: Option<f64>) {
    let bare = name.starts_with("bare");
    let ratio = match bare_rps {
        Some(bare_rps) => format!("{:.2}×", result.requests_per_second / bare_rps),
        None => "—".to_string(),
    };
    let (cpu, server_p99, slow) = if bare {
        ("—".to_string(), "—".to_string(), "—".to_string())
    } else {
        (
            format!(
                "{:.0}",
                result.server_cpu_seconds * 1e6 / result.requests.max(1) as f64
            ),
            format!("≤ {}", result.server_latency.quantile_ms(0.99)),
            result.server_latency.over(0.1).to_string(),
        )
    };
    let commits = if result.commits.count() == 0 {
        "—".to_string()
    } else {
        format!(
            "{:.2} / ≤ {}",
            result.commits.sum_seconds * 1000.0 / result.commits.count() as f64,
            result.commits.quantile_ms(1.0)
        )
    };
    println!(
        "| {name} | {connections} | {:.0} | {:.2} | {:.2} | {server_p99} | {slow} | {} | {cpu} | {commits} | {ratio} |",
        result.requests_per_second, result.p50_ms, result.p99_ms, result.errors,
    );
}

fn print_writes(suffix: &str, [write16, write64, create]: &[WrkResult; 3]) {
    let replace = format!("replace one participant's availability{suffix}");
    print_row(&replace, 16, write16, None);
    print_row(&replace, 64, write64, None);
    print_row(&format!("create a meetup{suffix}"), 16, create, None);
}

async fn run() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let data = tempfile::tempdir().expect("data dir");
    let scripts = tempfile::tempdir().expect("script dir");
    let target = prepare("disk", data.path(), scripts.path()).await;
    let view_url = format!("{}/api/v1/meetups/{}", target.server.base, target.meetup_id);
    let view = reqwest::get(&view_url)
        .await
        .expect("view")
        .bytes()
        .await
        .expect("view bytes");

    // The bare handler: the same bytes, no work at all.
    let bare_bytes = Bytes::from(view.to_vec());
    let bare = Router::new().route(
        "/bare",
        get(move || {
            let body = bare_bytes.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let bare_port = test_fixtures::free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", bare_port))
        .await
        .expect("bind bare");
    tokio::spawn(async move {
        let _ = axum::serve(listener, bare).await;
    });

    let bare_url = format!("http://127.0.0.1:{bare_port}/bare");
    let load_before = load_average();
    let server = &target.server;
    let bare_result = measure(server, bare_url, 64, seconds, None, READ).await;
    let read = measure(server, view_url, 64, seconds, None, READ).await;
    let (sync_p50, sync_p90) = sync_latency_ms(data.path(), 100);
    let writes = measure_writes(&target, seconds).await;
    let rss = rss_mib(server.pid());
    drop(target);
    // The same writes once more with the data on a RAM filesystem, a fresh server and meetup.
    let ram = ram_dir();
    let ram_writes = match &ram {
        Some(dir) => {
            let target = prepare("ram", dir.path(), scripts.path()).await;
            Some(measure_writes(&target, seconds).await)
        }
        None => None,
    };
    let load_after = load_average();

    println!(
        "view: {} bytes; {seconds} s per workload; wrk -t2; server RSS after the run: {rss:.0} MiB",
        view.len()
    );
    println!("load average before: {load_before}; after: {load_after}");
    println!(
        "4 KiB write + fsync in the data directory: p50 {sync_p50:.2} ms, p90 {sync_p90:.2} ms \
         (N connections of durable writes: at most N / sync per second, {:.0} req/s at 16, \
         {:.0} at 64, with the p50)",
        16.0 * 1000.0 / sync_p50,
        64.0 * 1000.0 / sync_p50
    );
    println!(
        "p50/p99: wrk's, which corrects for coordinated omission: a request slower than the \
         run's mean interval per connection counts again for every interval it held its \
         connection, so one stall of 300 ms at 16 connections adds ~150 samples. Server p99: \
         the server's own histogram (upper bound of the bucket), from the end of reading the \
         request to the response."
    );
    if ram_writes.is_some() {
        println!(
            "\"in RAM\": the same writes by the same binary with its data directory on /dev/shm \
             (tmpfs), a fresh server and meetup: a sync costs nothing there, so these rows are \
             what this machine's CPU allows this code, not a durable configuration."
        );
    }
    println!();
    println!("{TABLE_HEADER}");
    let bare_rps = bare_result.requests_per_second;
    print_row(
        "bare axum handler, same bytes",
        64,
        &bare_result,
        Some(bare_rps),
    );
    print_row("read the meetup", 64, &read, Some(bare_rps));
    print_writes("", &writes);
    if let Some(ram_writes) = &ram_writes {
        print_writes(", in RAM", ram_writes);
    }
}
