//! Shared test harness: both stores, a FerretDB process for the Mongo one, and a real HTTP
//! server on a loopback port.
#![allow(dead_code)]

pub mod faulty;
pub mod process;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_server::http::server::{ServerLimits, serve};
use api_server::http::{RateLimit, Settings};
use api_server::redis_layer::{RedisLayer, RedisTarget};
use api_server::store::{EmbeddedStore, InstrumentedStore, MongoStore, Store};
use api_server::{AppState, BroadcastHub, EventSink, MeetupEvent, app};
use reqwest::Method;
use serde_json::Value;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Embedded,
    /// The MongoDB adaptor on FerretDB v1 with its SQLite backend.
    Mongo,
    /// The MongoDB adaptor on FerretDB v1 with its PostgreSQL backend.
    MongoOnPostgres,
}

/// FerretDB (MongoDB wire protocol) from the shared fixtures, stopped on drop.
pub use test_fixtures::{FerretBackend, FerretDb};

/// FerretDB on its SQLite backend.
pub async fn start_ferretdb() -> FerretDb {
    start_ferretdb_on(FerretBackend::Sqlite).await
}

pub async fn start_ferretdb_on(backend: FerretBackend) -> FerretDb {
    FerretDb::start_with(backend).await.expect(
        "ferretdb starts (`make test-deps` builds .tools/bin/ferretdb and installs postgresql)",
    )
}

/// Keeps whatever backs a store alive for the test's duration.
pub enum StoreGuard {
    Dir(TempDir),
    Ferret(Box<FerretDb>),
}

pub async fn make_store(kind: StoreKind) -> (Arc<dyn Store>, StoreGuard) {
    match kind {
        StoreKind::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = EmbeddedStore::open(dir.path()).expect("embedded store opens");
            (
                Arc::new(InstrumentedStore::new(store)),
                StoreGuard::Dir(dir),
            )
        }
        StoreKind::Mongo | StoreKind::MongoOnPostgres => {
            let backend = if kind == StoreKind::Mongo {
                FerretBackend::Sqlite
            } else {
                FerretBackend::Postgres
            };
            let ferret = start_ferretdb_on(backend).await;
            let store = MongoStore::connect(&ferret.uri(), "beermeetup_test")
                .await
                .expect("mongo store connects to ferretdb");
            (
                Arc::new(InstrumentedStore::new(store)),
                StoreGuard::Ferret(Box::new(ferret)),
            )
        }
    }
}

/// Remembers every published event so tests can check kinds and revisions, and passes it on
/// to the live hub as a real sink must.
pub struct RecordingSink(pub Mutex<Vec<MeetupEvent>>, Arc<BroadcastHub>);

impl EventSink for RecordingSink {
    fn publish(&self, event: MeetupEvent) {
        self.0.lock().expect("not poisoned").push(event.clone());
        self.1.publish(event);
    }
}

impl RecordingSink {
    pub fn kinds(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|e| {
                serde_json::to_value(&e.event).expect("event serializes")["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    pub fn revisions(&self) -> Vec<i64> {
        self.0
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|e| e.revision)
            .collect()
    }
}

pub fn test_settings() -> Settings {
    Settings {
        max_body_bytes: 16 * 1024,
        // High enough never to trip in ordinary tests; one test sets its own.
        write_rate_limit: Some(RateLimit {
            per_minute: 1_000_000,
            burst: 100_000,
        }),
        // Likewise for reads.
        read_rate_limit: Some(RateLimit {
            per_minute: 1_000_000,
            burst: 100_000,
        }),
        meetups_per_client_per_day: None,
        ..Settings::default()
    }
}

/// An app served on a loopback port as `main` serves it (hyper with its timer, the limits and
/// the client's address); stopped when dropped.
pub struct Served {
    pub base: String,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve_on_loopback(state: AppState, limits: ServerLimits) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let _ = serve(listener, app(state), limits, std::future::pending()).await;
    });
    Served {
        base: format!("http://{addr}"),
        addr,
        task,
    }
}

/// One API replica on a shared store, with the Redis layer (cache and fan-out) when given.
pub struct Replica {
    pub base: String,
    pub state: AppState,
    _served: Served,
}

pub async fn replica(store: &Arc<dyn Store>, redis: Option<RedisTarget>) -> Replica {
    let mut state = AppState::new(Arc::clone(store), test_settings());
    if let Some(target) = redis {
        let layer = RedisLayer::start(target, Duration::from_millis(250), state.live.clone())
            .await
            .expect("redis layer starts");
        state = state.with_redis(layer);
    }
    let served = serve_on_loopback(state.clone(), ServerLimits::default()).await;
    Replica {
        base: served.base.clone(),
        state,
        _served: served,
    }
}

/// One request; a transport failure is status 0 with the error in the body (a replica may be
/// down on purpose), any body that is not JSON is `null`.
pub async fn call(
    http: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(error) => (0, serde_json::json!({ "transport": error.to_string() })),
    }
}

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub events: Arc<RecordingSink>,
    pub store: Arc<dyn Store>,
    _served: Served,
    _guard: StoreGuard,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts an RFC 9457 problem with this status.
    pub fn assert_problem(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status, body: {}",
            self.text
        );
        assert_eq!(self.content_type(), "application/problem+json");
        assert_eq!(self.body["status"], status);
        assert!(self.body["type"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(self.body["detail"].as_str().is_some_and(|t| !t.is_empty()));
        &self.body
    }
}

impl TestServer {
    pub async fn start(kind: StoreKind) -> Self {
        Self::start_with(kind, test_settings()).await
    }

    pub async fn start_with(kind: StoreKind, settings: Settings) -> Self {
        let (store, guard) = make_store(kind).await;
        let state = AppState::new(Arc::clone(&store), settings);
        let events = Arc::new(RecordingSink(Mutex::default(), state.live.clone()));
        let state = state.with_event_sink(events.clone());
        let served = serve_on_loopback(state, ServerLimits::default()).await;
        Self {
            base: served.base.clone(),
            http: reqwest::Client::new(),
            events,
            store,
            _served: served,
            _guard: guard,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::DELETE, path, token, None).await
    }

    /// Creates a meetup with two places and explicit slots; returns its handles.
    pub async fn create_meetup(&self, extra: Value) -> Created {
        let mut body = serde_json::json!({
            "title": "Friday beer",
            "organizerName": "Anna",
            "timeZone": "Europe/Berlin",
            "places": [{"name": "Hops & Barley", "address": "Wühlischstr. 22"}, {"name": "Zapf"}],
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        let reply = self.post("/api/v1/meetups", None, body).await;
        assert_eq!(reply.status, 201, "create failed: {}", reply.text);
        let meetup = &reply.body["meetup"];
        Created {
            id: meetup["id"].as_str().expect("id").to_string(),
            admin: reply.body["adminToken"]
                .as_str()
                .expect("admin")
                .to_string(),
            organizer_id: reply.body["participantId"]
                .as_str()
                .expect("participant id")
                .to_string(),
            organizer_token: reply.body["participantToken"]
                .as_str()
                .expect("participant token")
                .to_string(),
            slots: ids(&meetup["slots"]),
            places: ids(&meetup["places"]),
        }
    }

    pub async fn join(&self, meetup: &str, name: &str) -> (String, String) {
        let reply = self
            .post(
                &format!("/api/v1/meetups/{meetup}/participants"),
                None,
                serde_json::json!({"name": name}),
            )
            .await;
        assert_eq!(reply.status, 201, "join failed: {}", reply.text);
        (
            reply.body["participant"]["id"]
                .as_str()
                .expect("id")
                .to_string(),
            reply.body["token"].as_str().expect("token").to_string(),
        )
    }
}

pub struct Created {
    pub id: String,
    pub admin: String,
    pub organizer_id: String,
    pub organizer_token: String,
    pub slots: Vec<String>,
    pub places: Vec<String>,
}

pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs each listed `async fn case(kind: StoreKind)` against both stores; with `all_backends;`
/// first, also against the MongoDB adaptor on FerretDB's PostgreSQL backend (the store
/// conformance suite: one suite, every adaptor and backend).
#[macro_export]
macro_rules! for_each_store {
    (all_backends; $($case:ident),* $(,)?) => {
        $crate::for_each_store!($($case),*);
        mod mongo_on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::common::StoreKind::MongoOnPostgres).await
                }
            )*
        }
    };
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::common::StoreKind::Embedded).await
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::common::StoreKind::Mongo).await
                }
            )*
        }
    };
}
