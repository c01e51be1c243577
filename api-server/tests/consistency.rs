//! Issue 13's linearizability check: two API replicas sharing one store and one real
//! `redis-server` (the cache and the fan-out), several clients writing and reading through either
//! replica at random, and faults at random moments — Redis killed and restarted, Redis out of
//! memory, the store failing between a commit and the answer (a fault hook: that point cannot be
//! hit for real). After every acknowledged write, any read that starts later, on either replica,
//! must reflect it; reads never go back in time; and WebSocket clients on both replicas end on
//! the store's state, following only the documented protocol (apply `revision == last + 1`,
//! refetch on a gap or a snapshot).
//!
//! Every write sets a field to a value that names its writer and sequence number, so what a read
//! shows can be ordered: participant notes (one writer each, its own token) and the meetup's
//! title (the organizer). The seed is printed; `CONSISTENCY_SEED=<n>` replays a run.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_server::redis_layer::RedisTarget;
use api_server::store::{EmbeddedStore, Store};
use common::faulty::FaultyStore;
use common::{Replica, call, replica};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use test_fixtures::{RedisSentinel, RedisServer};
use tokio_tungstenite::tungstenite::Message;

/// Writers: the organizer (title) and this many participants (their notes).
const PARTICIPANTS: usize = 4;
/// Operations per client.
const OPERATIONS: usize = 50;

/// `"<writer>#<sequence>"` → the sequence.
fn sequence_of(value: &Value, writer: &str) -> Option<u64> {
    value
        .as_str()?
        .strip_prefix(writer)?
        .strip_prefix('#')?
        .parse()
        .ok()
}

/// What one writer's field looks like to the checker.
#[derive(Default, Clone, Copy)]
struct Register {
    /// The highest sequence acknowledged (200) to its writer.
    acknowledged: u64,
    /// The highest sequence any completed read has shown.
    observed: u64,
}

/// The history the checker keeps: per writer, and the meetup's revision.
#[derive(Default)]
struct History {
    registers: HashMap<String, Register>,
    revision_observed: i64,
    reads: usize,
    writes_acknowledged: usize,
    writes_unknown: usize,
}

impl History {
    /// What every read starting now must reflect at least: per writer what was acknowledged and
    /// what a completed read showed; the highest revision read.
    fn floor(&self) -> (HashMap<String, Register>, i64) {
        (self.registers.clone(), self.revision_observed)
    }
}

/// The field of `view` that `writer` writes.
fn field_of<'a>(view: &'a Value, writer: &str) -> &'a Value {
    if writer == "organizer" {
        return &view["title"];
    }
    view["participants"]
        .as_array()
        .and_then(|people| people.iter().find(|p| p["name"] == writer))
        .map_or(&Value::Null, |p| &p["note"])
}

struct Setup {
    meetup: String,
    /// `(writer name, participant id, token)`; the organizer's id is its participant id too.
    writers: Vec<(String, String, String)>,
}

async fn set_up(http: &reqwest::Client, replica: &Replica) -> Setup {
    let (status, created) = call(
        http,
        reqwest::Method::POST,
        format!("{}/api/v1/meetups", replica.base),
        None,
        Some(json!({"title": "organizer#0", "organizerName": "Anna", "timeZone": "Europe/Berlin"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let meetup = created["meetup"]["id"].as_str().expect("id").to_owned();
    let admin = created["adminToken"].as_str().expect("admin").to_owned();
    let mut writers = vec![("organizer".to_owned(), String::new(), admin)];
    for n in 0..PARTICIPANTS {
        let name = format!("friend{n}");
        let (status, joined) = call(
            http,
            reqwest::Method::POST,
            format!("{}/api/v1/meetups/{meetup}/participants", replica.base),
            None,
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(status, 201, "{joined}");
        writers.push((
            name,
            joined["participant"]["id"].as_str().expect("id").to_owned(),
            joined["token"].as_str().expect("token").to_owned(),
        ));
    }
    Setup { meetup, writers }
}

/// One writer's loop: writes its field or reads the meetup, through a random replica.
async fn client(
    seed: u64,
    writer: (String, String, String),
    meetup: String,
    bases: Vec<String>,
    history: Arc<Mutex<History>>,
    faults_done: tokio::sync::watch::Receiver<bool>,
    store: Arc<dyn Store>,
) -> Vec<String> {
    let (name, participant, token) = writer;
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut violations = Vec::new();
    let mut sequence = 0_u64;
    // At least OPERATIONS, and on until every fault of the schedule has happened.
    while sequence < OPERATIONS as u64 || !*faults_done.borrow() {
        sequence += 1;
        let base = &bases[rng.random_range(0..bases.len())];
        if rng.random_bool(0.5) {
            let value = format!("{name}#{sequence}");
            let (url, body) = if name == "organizer" {
                (
                    format!("{base}/api/v1/meetups/{meetup}"),
                    json!({ "title": value }),
                )
            } else {
                (
                    format!("{base}/api/v1/meetups/{meetup}/participants/{participant}"),
                    json!({ "note": value }),
                )
            };
            let (status, _) =
                call(&http, reqwest::Method::PATCH, url, Some(&token), Some(body)).await;
            let mut history = history.lock().expect("history");
            if status == 200 {
                let register = history.registers.entry(name.clone()).or_default();
                register.acknowledged = register.acknowledged.max(sequence);
                history.writes_acknowledged += 1;
            } else {
                // 503 and friends: stored or not, the checker cannot tell; it only requires that
                // nothing acknowledged is lost.
                history.writes_unknown += 1;
            }
        } else {
            let (floor, revision_floor) = history.lock().expect("history").floor();
            let (status, view) = call(
                &http,
                reqwest::Method::GET,
                format!("{base}/api/v1/meetups/{meetup}"),
                None,
                None,
            )
            .await;
            if status != 200 {
                continue;
            }
            let revision = view["revision"].as_i64().unwrap_or_default();
            // What the store itself says right after, for a violation's message.
            let stamp = store
                .view_stamp(&meetup)
                .await
                .ok()
                .flatten()
                .map(|s| s.revision);
            let mut history = history.lock().expect("history");
            history.reads += 1;
            if revision < revision_floor {
                violations.push(format!(
                    "{name} read revision {revision} from {base} after revision {revision_floor} had been read"
                ));
            }
            history.revision_observed = history.revision_observed.max(revision);
            for (writer, before) in floor {
                let shown = sequence_of(field_of(&view, &writer), &writer).unwrap_or(0);
                if shown < before.acknowledged.max(before.observed) {
                    violations.push(format!(
                        "{name} read {writer}#{shown} from {base} (revision {revision}; the \
                         store's stamp right after: {stamp:?}) after {writer}#{} was acknowledged \
                         and {writer}#{} read",
                        before.acknowledged, before.observed
                    ));
                }
                let register = history.registers.entry(writer).or_default();
                register.observed = register.observed.max(shown);
            }
        }
    }
    violations
}

/// A live client that follows the documented protocol; returns the last revision it applied.
async fn live_client(
    base: String,
    meetup: String,
    stop: tokio::sync::watch::Receiver<bool>,
    settled_at: Arc<Mutex<HashMap<String, i64>>>,
    key: String,
) {
    let http = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/meetups/{meetup}/live",
        base.replace("http://", "ws://")
    );
    let mut applied: i64 = -1;
    while !*stop.borrow() {
        let since = (applied >= 0).then(|| format!("?since={applied}"));
        let Ok((mut socket, _)) =
            tokio_tungstenite::connect_async(format!("{url}{}", since.unwrap_or_default())).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while let Some(Ok(frame)) = socket.next().await {
            let Message::Text(text) = frame else { continue };
            let Ok(message) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let revision = message["revision"].as_i64();
            match (message["type"].as_str(), revision) {
                (Some("snapshot"), Some(revision)) => applied = revision,
                (Some("event"), Some(revision)) if revision == applied + 1 => applied = revision,
                (Some("event"), Some(revision)) if revision > applied + 1 => {
                    // A gap: refetch, as docs/api.md tells clients to.
                    let (status, view) = call(
                        &http,
                        reqwest::Method::GET,
                        format!("{base}/api/v1/meetups/{meetup}"),
                        None,
                        None,
                    )
                    .await;
                    if status == 200 {
                        applied = applied.max(view["revision"].as_i64().unwrap_or(applied));
                    }
                }
                _ => {}
            }
            settled_at
                .lock()
                .expect("live state")
                .insert(key.clone(), applied);
        }
        // Closed (the server's slow-client rule, a restart): reconnect and resume.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the replicas' Redis runs, and how it fails.
enum Topology {
    /// One server: killed and restarted, or out of memory.
    Standalone(Arc<RedisServer>),
    /// A primary, its replica and a Sentinel: the primary dies once, the replica is promoted.
    Sentinel(Box<SentinelSet>),
}

struct SentinelSet {
    primary: RedisServer,
    replica: RedisServer,
    sentinel: RedisSentinel,
}

impl Topology {
    async fn standalone() -> Self {
        Self::Standalone(Arc::new(RedisServer::start().await.expect("redis starts")))
    }

    /// With a password, as every deployment sets one.
    async fn sentinel() -> Self {
        let primary = RedisServer::start_with_password(Some("consistency-secret"))
            .await
            .expect("primary starts");
        let replica = RedisServer::start_replica_of(&primary)
            .await
            .expect("replica starts");
        let sentinel = RedisSentinel::start(&primary, "beer")
            .await
            .expect("sentinel starts");
        let topology = Self::Sentinel(Box::new(SentinelSet {
            primary,
            replica,
            sentinel,
        }));
        // A failover needs a synced replica that Sentinel knows.
        topology
            .wait_for_sentinel(
                |replicas: Vec<HashMap<String, String>>| {
                    replicas
                        .iter()
                        .any(|r| r.get("master-link-status").map(String::as_str) == Some("ok"))
                },
                &["REPLICAS", "beer"],
            )
            .await;
        topology
    }

    fn target(&self) -> RedisTarget {
        match self {
            Self::Standalone(redis) => RedisTarget::Standalone { url: redis.url() },
            Self::Sentinel(set) => RedisTarget::Sentinel {
                sentinels: vec![set.sentinel.url()],
                master: "beer".into(),
                password: set.primary.password().map(str::to_owned),
            },
        }
    }

    /// Asks Sentinel until `done` holds for its answer (30 s at most).
    async fn wait_for_sentinel<T: redis::FromRedisValue>(
        &self,
        done: impl Fn(T) -> bool,
        args: &[&str],
    ) {
        let Self::Sentinel(set) = self else {
            return;
        };
        let client = redis::Client::open(set.sentinel.url()).expect("url");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && let Ok(answer) = redis::cmd("SENTINEL")
                    .arg(args)
                    .query_async::<T>(&mut connection)
                    .await
                && done(answer)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Sentinel never answered SENTINEL {args:?} as wanted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server clients write to now.
    fn writable(&self, promoted: bool) -> &RedisServer {
        match self {
            Self::Standalone(redis) => redis,
            Self::Sentinel(set) => {
                if promoted {
                    &set.replica
                } else {
                    &set.primary
                }
            }
        }
    }
}

/// Sets one Redis setting; a server that is down is left alone.
async fn config_set(redis: &RedisServer, setting: &str, value: &str) {
    let client = redis::Client::open(redis.url()).expect("url");
    if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
        let _: Result<(), _> = redis::cmd("CONFIG")
            .arg("SET")
            .arg(setting)
            .arg(value)
            .query_async(&mut connection)
            .await;
    }
}

/// A seeded schedule of faults with random pauses between them; returns what it injected.
async fn faults(seed: u64, topology: Arc<Topology>, store: Arc<FaultyStore>) -> Vec<&'static str> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut injected = Vec::new();
    let mut promoted = false;
    let rounds = match *topology {
        Topology::Standalone(_) => 8,
        Topology::Sentinel(_) => 6,
    };
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
        let redis = topology.writable(promoted);
        // The Sentinel run's failover comes halfway, once.
        if let Topology::Sentinel(set) = &*topology
            && round == rounds / 2
        {
            injected.push("failover (primary killed)");
            set.primary.kill();
            let replica_port = set.replica.port().to_string();
            topology
                .wait_for_sentinel(
                    |address: Vec<String>| address.get(1) == Some(&replica_port),
                    &["GET-MASTER-ADDR-BY-NAME", "beer"],
                )
                .await;
            promoted = true;
            continue;
        }
        match rng.random_range(0..3) {
            0 if matches!(*topology, Topology::Standalone(_)) => {
                injected.push("redis killed and restarted");
                redis.kill();
                tokio::time::sleep(Duration::from_millis(rng.random_range(100..600))).await;
                redis.restart().await.expect("redis restarts");
            }
            0 | 1 => {
                injected.push("redis out of memory");
                config_set(redis, "maxmemory-policy", "noeviction").await;
                config_set(redis, "maxmemory", "1").await;
                tokio::time::sleep(Duration::from_millis(rng.random_range(100..500))).await;
                config_set(redis, "maxmemory", "0").await;
            }
            _ => {
                injected.push("store error after a commit");
                store.fail_next_participants_read();
            }
        }
    }
    injected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_redis_crashes_oom_and_store_errors() {
    run(Topology::standalone().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_a_sentinel_failover() {
    run(Topology::sentinel().await).await;
}

async fn run(topology: Topology) {
    let seed = std::env::var("CONSISTENCY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("[consistency] seed {seed} (CONSISTENCY_SEED={seed} replays it)");
    let topology = Arc::new(topology);
    let dir = tempfile::tempdir().expect("temp dir");
    let faulty = Arc::new(FaultyStore::new(
        EmbeddedStore::open(dir.path()).expect("store"),
    ));
    let store: Arc<dyn Store> = faulty.clone();
    let a = replica(&store, Some(topology.target())).await;
    let b = replica(&store, Some(topology.target())).await;
    let http = reqwest::Client::new();
    let setup = set_up(&http, &a).await;
    let bases = vec![a.base.clone(), b.base.clone()];

    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let settled = Arc::new(Mutex::new(HashMap::new()));
    let mut live = Vec::new();
    for (n, base) in bases.iter().chain(bases.iter()).enumerate() {
        live.push(tokio::spawn(live_client(
            base.clone(),
            setup.meetup.clone(),
            stop.clone(),
            Arc::clone(&settled),
            format!("live{n}@{base}"),
        )));
    }
    let fault_task = tokio::spawn(faults(seed, Arc::clone(&topology), faulty));
    let (faults_done_sender, faults_done) = tokio::sync::watch::channel(false);

    let history = Arc::new(Mutex::new(History::default()));
    let clients: Vec<_> = setup
        .writers
        .iter()
        .enumerate()
        .map(|(n, writer)| {
            tokio::spawn(client(
                seed.wrapping_add(n as u64 + 1),
                writer.clone(),
                setup.meetup.clone(),
                bases.clone(),
                Arc::clone(&history),
                faults_done.clone(),
                Arc::clone(&store),
            ))
        })
        .collect();
    let injected = fault_task.await.expect("fault task");
    let _ = faults_done_sender.send(true);
    let mut violations = Vec::new();
    for c in clients {
        violations.extend(c.await.expect("client task"));
    }
    let _ = stop_sender.send(true);

    // Settled: every acknowledged write is in the store, and on both replicas.
    let state = store
        .meetup_state(&setup.meetup)
        .await
        .expect("store answers")
        .expect("meetup exists");
    let final_revision = state.meetup.revision;
    let (floor, _) = history.lock().expect("history").floor();
    for base in &bases {
        let (status, view) = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/api/v1/meetups/{}", setup.meetup),
            None,
            None,
        )
        .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["revision"].as_i64(), Some(final_revision), "{base}");
        for (writer, before) in &floor {
            let at_least = before.acknowledged;
            let shown = sequence_of(field_of(&view, writer), writer).unwrap_or(0);
            if shown < at_least {
                violations.push(format!(
                    "after the run {base} shows {writer}#{shown}, {writer}#{at_least} was acknowledged"
                ));
            }
        }
    }
    // Live clients on both replicas end on the store's revision by themselves.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let behind: Vec<(String, i64)> = settled
            .lock()
            .expect("live state")
            .iter()
            .filter(|(_, applied)| **applied != final_revision)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let all_reported = settled.lock().expect("live state").len() == live.len();
        if behind.is_empty() && all_reported {
            break;
        }
        if Instant::now() > deadline {
            violations.push(format!(
                "live clients not at the store's revision {final_revision} 20 s after the run: {behind:?}"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in live {
        task.abort();
    }
    let history = history.lock().expect("history");
    eprintln!(
        "[consistency] {} writes acknowledged, {} unknown (faulted), {} reads checked, final revision {final_revision}, faults: {}",
        history.writes_acknowledged,
        history.writes_unknown,
        history.reads,
        injected.len(),
    );
    let mut kinds: Vec<_> = injected.clone();
    kinds.sort_unstable();
    kinds.dedup();
    eprintln!("[consistency] fault kinds: {kinds:?}");
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    assert!(
        history.writes_acknowledged > 0 && history.reads > 0 && !injected.is_empty(),
        "the run checked nothing"
    );
}
