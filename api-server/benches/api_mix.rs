//! API mix benchmark (not a test): concurrent clients drive a create/join/vote/read mix over
//! real HTTP against the embedded store and the MongoDB adaptor on FerretDB (both of its
//! backends: SQLite and PostgreSQL), then write the results table to docs/benchmarks.md,
//! section "API mix". On the MongoDB adaptor it also counts round trips (commands sent): the
//! average per request of the mix, and per operation in a short sequential phase afterwards.
//!
//! `cargo bench -p api-server --bench api_mix` (release build). Bounded by request count.

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_server::http::Settings;
use api_server::store::{InstrumentedStore, MongoStore, Store};
use api_server::{AppState, app};
use common::{FerretBackend, StoreKind, make_store};
use rand::Rng;
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const REQUESTS_PER_CLIENT: usize = 250;
/// FerretDB answers about 10 requests/s: fewer requests keep its rows within minutes.
const REQUESTS_PER_CLIENT_ON_FERRETDB: usize = 40;
/// Operations of each kind in the sequential round-trip count.
const SEQUENTIAL_SAMPLES: u64 = 10;
const SEED_MEETUPS: usize = 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Create,
    Join,
    Vote,
    Read,
}

impl Op {
    fn pick(roll: u32) -> Op {
        match roll {
            0..5 => Op::Create,
            5..20 => Op::Join,
            20..60 => Op::Vote,
            _ => Op::Read,
        }
    }
}

#[derive(Clone)]
struct Seeded {
    id: String,
    slots: Vec<String>,
    voters: Vec<(String, String)>,
}

struct Run {
    store: &'static str,
    /// Average commands per request in the mix, and per operation when sent one at a time.
    round_trips: Option<RoundTrips>,
    total: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<(Op, Duration)>,
}

struct RoundTrips {
    per_request_in_mix: f64,
    join: f64,
    vote: f64,
    read_after_write: f64,
    read_cached: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn create(http: &reqwest::Client, base: &str) -> Option<Seeded> {
    let reply: Value = http
        .post(format!("{base}/api/v1/meetups"))
        .json(
            &json!({"title": "Bench beer", "organizerName": "Org", "timeZone": "Europe/Berlin",
                      "days": (1..=3).map(|offset| (chrono::Utc::now().date_naive()
                          + chrono::Days::new(offset)).format("%Y-%m-%d").to_string())
                          .collect::<Vec<_>>(),
                      "places": [{"name": "A"}, {"name": "B"}]}),
        )
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(Seeded {
        id: reply["meetup"]["id"].as_str()?.to_string(),
        slots: common::ids(&reply["meetup"]["slots"]),
        voters: vec![(
            reply["participantId"].as_str()?.to_string(),
            reply["participantToken"].as_str()?.to_string(),
        )],
    })
}

async fn run(kind: StoreKind, label: &'static str) -> Run {
    let (store, _guard, mongo, requests_per_client) = match kind {
        StoreKind::Embedded => {
            let (store, guard) = make_store(kind).await;
            (store, Some(guard), None, REQUESTS_PER_CLIENT)
        }
        StoreKind::Mongo | StoreKind::MongoOnPostgres => {
            let backend = if kind == StoreKind::Mongo {
                FerretBackend::Sqlite
            } else {
                FerretBackend::Postgres
            };
            let ferret = common::start_ferretdb_on(backend).await;
            let mongo = MongoStore::connect(&ferret.uri(), "api_mix")
                .await
                .expect("mongo store connects to ferretdb");
            let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(mongo.clone()));
            (
                store,
                Some(common::StoreGuard::Ferret(Box::new(ferret))),
                Some(mongo),
                REQUESTS_PER_CLIENT_ON_FERRETDB,
            )
        }
    };
    let settings = Settings {
        write_rate_limit: None,
        read_rate_limit: None,
        meetups_per_client_per_day: None,
        ..Settings::default()
    };
    let state = AppState::new(store, settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service).await;
    });
    let http = reqwest::Client::new();
    let mut seeded = Vec::new();
    for _ in 0..SEED_MEETUPS {
        seeded.push(create(&http, &base).await.expect("seed meetup"));
    }
    let seeded = Arc::new(seeded);

    let sent_before = mongo.as_ref().map(MongoStore::commands_sent);
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let http = http.clone();
            let base = base.clone();
            let seeded = Arc::clone(&seeded);
            tokio::spawn(async move {
                let mut mine: Vec<Seeded> = Vec::new();
                let mut latencies = Vec::with_capacity(requests_per_client);
                let mut errors = 0;
                for i in 0..requests_per_client {
                    let (op, meetup_index, slot_roll) = {
                        let mut rng = rand::rng();
                        (
                            Op::pick(rng.random_range(0..100)),
                            rng.random_range(0..seeded.len()),
                            rng.random_range(0..1000),
                        )
                    };
                    let target = mine
                        .get(meetup_index % mine.len().max(1))
                        .filter(|_| !mine.is_empty() && i % 2 == 0)
                        .cloned()
                        .unwrap_or_else(|| seeded[meetup_index].clone());
                    let t = Instant::now();
                    let ok = match op {
                        Op::Create => create(&http, &base).await.is_some(),
                        Op::Join => {
                            let reply = http
                                .post(format!("{base}/api/v1/meetups/{}/participants", target.id))
                                .json(&json!({"name": format!("w{worker}-{i}")}))
                                .send()
                                .await;
                            match reply {
                                Ok(r) if r.status() == 201 => {
                                    let body: Value = r.json().await.unwrap_or(Value::Null);
                                    if let (Some(pid), Some(token)) =
                                        (body["participant"]["id"].as_str(), body["token"].as_str())
                                    {
                                        let mut joined = target.clone();
                                        joined.voters = vec![(pid.to_string(), token.to_string())];
                                        mine.push(joined);
                                    }
                                    true
                                }
                                _ => false,
                            }
                        }
                        Op::Vote => {
                            let (pid, token) = &target.voters[0];
                            let slot = &target.slots[slot_roll % target.slots.len()];
                            http.patch(format!(
                                "{base}/api/v1/meetups/{}/participants/{pid}",
                                target.id
                            ))
                            .bearer_auth(token)
                            .json(&json!({"availability": {slot.clone(): "yes"}}))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                        }
                        Op::Read => http
                            .get(format!("{base}/api/v1/meetups/{}", target.id))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200),
                    };
                    latencies.push((op, t.elapsed()));
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.await.expect("worker");
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let round_trips = match (&mongo, sent_before) {
        (Some(mongo), Some(before)) => {
            let per_request_in_mix =
                (mongo.commands_sent() - before) as f64 / latencies.len().max(1) as f64;
            Some(sequential_round_trips(&http, &base, mongo, per_request_in_mix).await)
        }
        _ => None,
    };
    server.abort();
    Run {
        store: label,
        round_trips,
        total: latencies.len(),
        errors,
        elapsed,
        latencies,
    }
}

/// Round trips per operation, one request at a time on a fresh meetup (no contention, so no
/// retries): the adaptor's own cost.
async fn sequential_round_trips(
    http: &reqwest::Client,
    base: &str,
    mongo: &MongoStore,
    per_request_in_mix: f64,
) -> RoundTrips {
    let meetup = create(http, base)
        .await
        .expect("meetup for the sequential count");
    let (pid, token) = meetup.voters[0].clone();
    let average = |before: u64| (mongo.commands_sent() - before) as f64 / SEQUENTIAL_SAMPLES as f64;
    let before = mongo.commands_sent();
    for i in 0..SEQUENTIAL_SAMPLES {
        let status = http
            .post(format!("{base}/api/v1/meetups/{}/participants", meetup.id))
            .json(&json!({"name": format!("sequential-{i}")}))
            .send()
            .await
            .expect("join")
            .status();
        assert_eq!(status, 201, "sequential join");
    }
    let join = average(before);
    let (mut vote_commands, mut fresh_commands, mut cached_commands) = (0, 0, 0);
    for i in 0..SEQUENTIAL_SAMPLES {
        let slot = &meetup.slots[i as usize % meetup.slots.len()];
        let before = mongo.commands_sent();
        let status = http
            .patch(format!(
                "{base}/api/v1/meetups/{}/participants/{pid}",
                meetup.id
            ))
            .bearer_auth(&token)
            .json(&json!({"availability": {slot.clone(): "yes"}}))
            .send()
            .await
            .expect("vote")
            .status();
        assert_eq!(status, 200, "sequential vote");
        vote_commands += mongo.commands_sent() - before;
        for cached in [false, true] {
            let before = mongo.commands_sent();
            let status = http
                .get(format!("{base}/api/v1/meetups/{}", meetup.id))
                .send()
                .await
                .expect("read")
                .status();
            assert_eq!(status, 200, "sequential read");
            let used = mongo.commands_sent() - before;
            if cached {
                cached_commands += used;
            } else {
                fresh_commands += used;
            }
        }
    }
    let per = |commands: u64| commands as f64 / SEQUENTIAL_SAMPLES as f64;
    RoundTrips {
        per_request_in_mix,
        join,
        vote: per(vote_commands),
        read_after_write: per(fresh_commands),
        read_cached: per(cached_commands),
    }
}

/// Round trips of the MongoDB adaptor rows.
fn round_trip_table(runs: &[Run]) -> String {
    let mut out = String::from(
        "| store | round trips per request (mix, with retries) | join | vote | read, first after a write | read, unchanged |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        if let Some(r) = &run.round_trips {
            out.push_str(&format!(
                "| {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                run.store, r.per_request_in_mix, r.join, r.vote, r.read_after_write, r.read_cached
            ));
        }
    }
    out
}

fn table(runs: &[Run]) -> String {
    let mut out = String::new();
    out.push_str("| store | requests | errors | requests/s | p50 ms | p99 ms | create p50/p99 | join p50/p99 | vote p50/p99 | read p50/p99 |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for run in runs {
        let mut all: Vec<Duration> = run.latencies.iter().map(|(_, d)| *d).collect();
        all.sort();
        let per_op = |op: Op| {
            let mut d: Vec<Duration> = run
                .latencies
                .iter()
                .filter(|(o, _)| *o == op)
                .map(|(_, d)| *d)
                .collect();
            d.sort();
            format!("{} / {}", ms(percentile(&d, 0.5)), ms(percentile(&d, 0.99)))
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
            run.store,
            run.total,
            run.errors,
            run.total as f64 / run.elapsed.as_secs_f64(),
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            per_op(Op::Create),
            per_op(Op::Join),
            per_op(Op::Vote),
            per_op(Op::Read),
        ));
    }
    out
}

fn write_section(table: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nMeasured on the project's 2-core CI-class machine; not timed tests.\n"
            .to_string()
    });
    let section = format!(
        "## API mix\n\n`cargo bench -p api-server --bench api_mix`: {CLIENTS} concurrent HTTP clients on \
         loopback, {REQUESTS_PER_CLIENT} requests each ({REQUESTS_PER_CLIENT_ON_FERRETDB} on FerretDB), \
         mix 5% create / 15% join / 40% vote / 40% read \
         (full meetup view with tallies) over {SEED_MEETUPS} seeded meetups plus those the run creates. \
         Release build, server and clients in one process, write rate limit off. \
         The MongoDB adaptor runs against FerretDB v1 on each of its backends (SQLite; PostgreSQL \
         from Debian, fsync on), not a real MongoDB. Round trips are the commands the adaptor sent: \
         per request over the whole mix (retries under contention included), and per operation \
         sent one at a time afterwards ({SEQUENTIAL_SAMPLES} each).\n\n{table}\n"
    );
    let updated = match existing.find("## API mix") {
        Some(start) => {
            let rest = &existing[start + 2..];
            let end = rest
                .find("\n## ")
                .map_or(existing.len(), |i| start + 2 + i + 1);
            format!("{}{}{}", &existing[..start], section, &existing[end..])
        }
        None => format!("{}\n{}", existing.trim_end(), format_args!("\n{section}")),
    };
    if let Err(error) = std::fs::write(&path, updated) {
        eprintln!("could not write {}: {error}", path.display());
    }
}

fn main() {
    // `cargo bench` passes flags such as `--bench`; this harness has none of its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runs = runtime.block_on(async {
        vec![
            run(StoreKind::Embedded, "embedded (redb)").await,
            run(StoreKind::Mongo, "mongodb adaptor on FerretDB (SQLite)").await,
            run(
                StoreKind::MongoOnPostgres,
                "mongodb adaptor on FerretDB (PostgreSQL)",
            )
            .await,
        ]
    });
    let table = format!("{}\n{}", table(&runs), round_trip_table(&runs));
    println!("{table}");
    write_section(&table);
}
