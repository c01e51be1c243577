//! The live layer on a real `redis-server` (and `redis-sentinel`): two API replicas, each with
//! its own hub and its own Redis connections, sharing one store as replicas share MongoDB.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_server::redis_layer::RedisTarget;
use api_server::store::{EmbeddedStore, InstrumentedStore, Store};
use common::{Replica, call, replica};
use futures::StreamExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use test_fixtures::{RedisSentinel, RedisServer};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Polls `check` until it yields `Some`, or panics naming `what`.
async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let deadline = Instant::now() + timeout;
    while check().await.is_none() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn shared_store() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path()).expect("embedded store opens");
    (Arc::new(InstrumentedStore::new(store)), dir)
}

fn standalone(redis: &RedisServer) -> Option<RedisTarget> {
    Some(RedisTarget::Standalone { url: redis.url() })
}

struct Meetup {
    id: String,
    admin: String,
    slots: Vec<String>,
    places: Vec<String>,
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn create(replica: &Replica) -> Meetup {
    let http = reqwest::Client::new();
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/meetups", replica.base),
        None,
        Some(
            json!({"title": "Friday beer", "organizerName": "Anna", "timeZone": "Europe/Berlin",
            "places": [{"name": "Zapf"}, {"name": "Hops"}]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    Meetup {
        id: body["meetup"]["id"].as_str().expect("id").into(),
        admin: body["adminToken"].as_str().expect("admin").into(),
        slots: ids(&body["meetup"]["slots"]),
        places: ids(&body["meetup"]["places"]),
    }
}

/// Joins and returns (participant id, token).
async fn join(replica: &Replica, meetup: &str, name: &str) -> (String, String) {
    let http = reqwest::Client::new();
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/meetups/{meetup}/participants", replica.base),
        None,
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["participant"]["id"].as_str().expect("id").into(),
        body["token"].as_str().expect("token").into(),
    )
}

/// A vote; returns nothing but asserts success.
async fn vote(replica: &Replica, m: &Meetup, participant: &(String, String), slot: usize) {
    let http = reqwest::Client::new();
    let (status, body) = call(
        &http,
        reqwest::Method::PATCH,
        format!(
            "{}/api/v1/meetups/{}/participants/{}",
            replica.base, m.id, participant.0
        ),
        Some(&participant.1),
        Some(json!({"availability": {m.slots[slot].clone(): "yes"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn connect(replica: &Replica, meetup: &str, since: Option<i64>) -> Socket {
    let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
    let url = format!(
        "{}/api/v1/meetups/{meetup}/live{query}",
        replica.base.replace("http://", "ws://")
    );
    tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("websocket connects")
        .0
}

/// The next protocol message within `wait`, skipping control frames.
async fn next_json(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Waits for an event (skipping snapshots and presence) and returns it.
async fn next_event(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let message = next_json(socket, left).await?;
        if message["type"] == "event" {
            return Some(message);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_on_one_replica_reaches_clients_of_the_other() {
    let redis = RedisServer::start().await.expect("redis starts");
    let (store, _dir) = shared_store();
    let a = replica(&store, standalone(&redis)).await;
    let b = replica(&store, standalone(&redis)).await;
    let m = create(&a).await;
    let ben = join(&b, &m.id, "Ben").await;

    let mut on_a = connect(&a, &m.id, None).await;
    let mut on_b = connect(&b, &m.id, None).await;
    let snapshot_a = next_json(&mut on_a, Duration::from_secs(5))
        .await
        .expect("snapshot");
    assert_eq!(snapshot_a["type"], "snapshot");
    let snapshot_b = next_json(&mut on_b, Duration::from_secs(5))
        .await
        .expect("snapshot");
    assert_eq!(snapshot_b["revision"], snapshot_a["revision"]);
    let start = snapshot_a["revision"].as_i64().expect("revision");

    vote(&a, &m, &ben, 0).await;
    for socket in [&mut on_a, &mut on_b] {
        let event = next_event(socket, Duration::from_secs(5))
            .await
            .expect("event");
        assert_eq!(event["revision"], start + 1);
        assert_eq!(event["event"]["kind"], "participantUpdated");
    }
    vote(&b, &m, &ben, 1).await;
    for socket in [&mut on_a, &mut on_b] {
        let event = next_event(socket, Duration::from_secs(5))
            .await
            .expect("event");
        // Exactly the next revision: a replica's own event is not delivered twice.
        assert_eq!(event["revision"], start + 2);
    }

    // Presence counts the viewers of both replicas (reports every few seconds).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = 0;
    while Instant::now() < deadline && seen != 2 {
        if let Some(message) = next_json(&mut on_a, Duration::from_secs(1)).await
            && message["type"] == "presence"
        {
            seen = message["count"].as_i64().unwrap_or(0);
        }
    }
    assert_eq!(seen, 2, "presence across replicas");
}

async fn cached_revision(
    redis: &mut redis::aio::MultiplexedConnection,
    meetup: &str,
) -> Option<i64> {
    let value: Option<String> = redis::cmd("GET")
        .arg(format!("beermeetup:view:{meetup}"))
        .query_async(redis)
        .await
        .expect("redis answers");
    value.and_then(|v| {
        v.split_once('\n')
            .and_then(|(revision, _)| revision.parse().ok())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_write_invalidates_the_cached_view() {
    let http = reqwest::Client::new();
    let redis = RedisServer::start().await.expect("redis starts");
    let mut inspect = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let (store, _dir) = shared_store();
    let api = replica(&store, standalone(&redis)).await;
    let m = create(&api).await;
    let meetup_url = format!("{}/api/v1/meetups/{}", api.base, m.id);
    let ben = join(&api, &m.id, "Ben").await;

    use reqwest::Method;
    // Each write as (name, method, path under the meetup, token, body).
    let mut comment_id = String::new();
    let mut place_id = String::new();
    let mut cleo = (String::new(), String::new());
    for step in 0..11 {
        // Fill: read, then wait until the background fill landed.
        let (status, view) = call(&http, Method::GET, meetup_url.clone(), None, None).await;
        assert_eq!(status, 200);
        let revision = view["revision"].as_i64().expect("revision");
        until("the view is cached", Duration::from_secs(5), || {
            let mut inspect = inspect.clone();
            let id = m.id.clone();
            async move { (cached_revision(&mut inspect, &id).await == Some(revision)).then_some(()) }
        })
        .await;
        let (name, status) = match step {
            0 => ("patch meetup", call(&http, Method::PATCH, meetup_url.clone(), Some(&m.admin), Some(json!({"title": "Beer!"}))).await.0),
            1 => {
                let (status, body) = call(&http, Method::POST, format!("{meetup_url}/places"), Some(&m.admin), Some(json!({"name": "Kneipe"}))).await;
                place_id = body["id"].as_str().unwrap_or_default().to_string();
                ("add place", status)
            }
            2 => ("patch place", call(&http, Method::PATCH, format!("{meetup_url}/places/{place_id}"), Some(&m.admin), Some(json!({"note": "cosy"}))).await.0),
            3 => ("delete place", call(&http, Method::DELETE, format!("{meetup_url}/places/{place_id}"), Some(&m.admin), None).await.0),
            4 => {
                cleo = join(&api, &m.id, "Cleo").await;
                ("join", 201)
            }
            5 => ("vote", call(&http, Method::PATCH, format!("{meetup_url}/participants/{}", ben.0), Some(&ben.1), Some(json!({"availability": {m.slots[0].clone(): "maybe"}, "placeVotes": [m.places[0].clone()]}))).await.0),
            6 => ("leave", call(&http, Method::DELETE, format!("{meetup_url}/participants/{}", cleo.0), Some(&cleo.1), None).await.0),
            7 => {
                let (status, body) = call(&http, Method::POST, format!("{meetup_url}/comments"), Some(&ben.1), Some(json!({"text": "Prost"}))).await;
                comment_id = body["id"].as_str().unwrap_or_default().to_string();
                ("comment", status)
            }
            8 => ("delete comment", call(&http, Method::DELETE, format!("{meetup_url}/comments/{comment_id}"), Some(&ben.1), None).await.0),
            9 => ("finalize", call(&http, Method::POST, format!("{meetup_url}/finalize"), Some(&m.admin), Some(json!({"startSlotId": m.slots[0], "placeId": m.places[0]}))).await.0),
            _ => ("delete meetup", call(&http, Method::DELETE, meetup_url.clone(), Some(&m.admin), None).await.0),
        };
        assert!((200..300).contains(&status), "{name} failed with {status}");
        // The write's response came after the invalidation.
        assert_eq!(
            cached_revision(&mut inspect, &m.id).await,
            None,
            "{name} left the cached view"
        );
        let (status, after) = call(&http, Method::GET, meetup_url.clone(), None, None).await;
        if name == "delete meetup" {
            assert_eq!(status, 404);
        } else {
            assert!(
                after["revision"].as_i64() > Some(revision),
                "{name}: a fresh view"
            );
        }
    }

    // Reads now hit the cache, which /metrics reports.
    let (_, view) = call(
        &http,
        Method::POST,
        format!("{}/api/v1/meetups", api.base),
        None,
        Some(json!({"title": "t", "organizerName": "Ann", "timeZone": "UTC"})),
    )
    .await;
    let id = view["meetup"]["id"].as_str().expect("id").to_string();
    for _ in 0..3 {
        call(
            &http,
            Method::GET,
            format!("{}/api/v1/meetups/{id}", api.base),
            None,
            None,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"cache_requests_total{result="hit"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"cache_requests_total{result="miss"}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_older_than_an_invalidation_is_refused() {
    let redis = RedisServer::start().await.expect("redis starts");
    let mut inspect = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let (store, _dir) = shared_store();
    let api = replica(&store, standalone(&redis)).await;
    let m = create(&api).await;
    let cache = &api.state.redis.as_ref().expect("redis").cache;
    let record = api.state.load_meetup(&m.id).await.expect("meetup");
    let mut view = api.state.view(&record).await.expect("view");
    // A write at revision +1 lands while a reader still holds the old view…
    cache.invalidate(&m.id, view.revision + 1).await;
    cache.fill(&view, "{}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cached_revision(&mut inspect, &m.id).await,
        None,
        "stale fill refused"
    );
    // …while a view that includes the write is accepted.
    view.revision += 1;
    cache.fill(&view, "{}");
    until("the fresh fill lands", Duration::from_secs(5), || {
        let mut inspect = inspect.clone();
        let id = m.id.clone();
        let revision = view.revision;
        async move { (cached_revision(&mut inspect, &id).await == Some(revision)).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_keeps_the_api_working_and_its_return_resumes_fan_out() {
    let http = reqwest::Client::new();
    let redis = RedisServer::start().await.expect("redis starts");
    let (store, _dir) = shared_store();
    let a = replica(&store, standalone(&redis)).await;
    let b = replica(&store, standalone(&redis)).await;
    let m = create(&a).await;
    let ben = join(&a, &m.id, "Ben").await;
    let mut on_a = connect(&a, &m.id, None).await;
    let mut on_b = connect(&b, &m.id, None).await;
    next_json(&mut on_a, Duration::from_secs(5))
        .await
        .expect("snapshot");
    next_json(&mut on_b, Duration::from_secs(5))
        .await
        .expect("snapshot");

    redis.kill();
    for slot in 0..5 {
        let started = Instant::now();
        vote(&a, &m, &ben, slot).await;
        let (status, _) = call(
            &http,
            reqwest::Method::GET,
            format!("{}/api/v1/meetups/{}", b.base, m.id),
            None,
            None,
        )
        .await;
        assert_eq!(status, 200);
        // At most one Redis timeout, once; not per request.
        let took = started.elapsed();
        assert!(
            slot == 0 || took < Duration::from_millis(200),
            "request {slot} took {took:?}"
        );
        // Clients of the writing replica still get the events.
        let event = next_event(&mut on_a, Duration::from_secs(5))
            .await
            .expect("local event");
        assert_eq!(event["event"]["kind"], "participantUpdated");
    }

    redis.restart().await.expect("redis restarts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut resumed = false;
    let mut slot = 0;
    while !resumed && Instant::now() < deadline {
        vote(&a, &m, &ben, slot % 5).await;
        slot += 1;
        let (_, view) = call(
            &http,
            reqwest::Method::GET,
            format!("{}/api/v1/meetups/{}", a.base, m.id),
            None,
            None,
        )
        .await;
        let revision = view["revision"].as_i64();
        // B resynchronises with a snapshot after resubscribing; what counts is a fresh event.
        while let Some(message) = next_json(&mut on_b, Duration::from_millis(700)).await {
            if message["type"] == "event" && message["revision"].as_i64() == revision {
                resumed = true;
                break;
            }
        }
    }
    assert!(resumed, "fan-out resumes after Redis returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_dropped_without_slowing_the_others() {
    let http = reqwest::Client::new();
    let (store, _dir) = shared_store();
    let api = replica(&store, None).await;
    let m = create(&api).await;
    let url = format!(
        "{}/api/v1/meetups/{}/live",
        api.base.replace("http://", "ws://"),
        m.id
    );
    // A tiny receive window so the server's buffers fill quickly.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr: SocketAddr = api
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let stream = socket.connect(addr).await.expect("connects");
    let (mut slow, _) =
        tokio_tungstenite::client_async(url.as_str(), MaybeTlsStream::Plain(stream))
            .await
            .expect("handshake");
    let mut fast = connect(&api, &m.id, None).await;
    next_json(&mut fast, Duration::from_secs(5))
        .await
        .expect("snapshot");

    let description = "🍺".repeat(1990);
    let mut worst = Duration::ZERO;
    let mut dropped = false;
    for round in 0..2000 {
        let started = Instant::now();
        let (status, _) = call(
            &http,
            reqwest::Method::PATCH,
            format!("{}/api/v1/meetups/{}", api.base, m.id),
            Some(&m.admin),
            Some(json!({"description": format!("{round} {description}")})),
        )
        .await;
        assert_eq!(status, 200);
        let event = next_event(&mut fast, Duration::from_secs(5))
            .await
            .expect("fast client keeps receiving");
        assert_eq!(event["event"]["kind"], "meetupUpdated");
        worst = worst.max(started.elapsed());
        if round % 10 == 9 {
            let metrics = reqwest::get(format!("{}/metrics", api.base))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            if metrics
                .lines()
                .any(|l| l.starts_with("live_slow_clients_dropped_total") && !l.ends_with(" 0"))
            {
                dropped = true;
                break;
            }
        }
    }
    assert!(dropped, "the stuck client was dropped");
    assert!(
        worst < Duration::from_secs(1),
        "a write reached the fast client within {worst:?}"
    );
    // The slow client finds its connection ended once it reads what was buffered.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match slow.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the slow connection was closed");
    if let Ok(Some(code)) = ended {
        assert_eq!(code, 1013, "closed as 'try again later'");
    }
    // The fast client is unaffected.
    call(
        &http,
        reqwest::Method::PATCH,
        format!("{}/api/v1/meetups/{}", api.base, m.id),
        Some(&m.admin),
        Some(json!({"title": "still live"})),
    )
    .await;
    assert!(
        next_event(&mut fast, Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_since_replays_the_missed_events() {
    let (store, _dir) = shared_store();
    let api = replica(&store, None).await;
    let m = create(&api).await;
    let ben = join(&api, &m.id, "Ben").await;
    let mut socket = connect(&api, &m.id, None).await;
    let snapshot = next_json(&mut socket, Duration::from_secs(5))
        .await
        .expect("snapshot");
    let last = snapshot["revision"].as_i64().expect("revision");
    drop(socket);

    vote(&api, &m, &ben, 0).await;
    vote(&api, &m, &ben, 1).await;
    let mut socket = connect(&api, &m.id, Some(last)).await;
    let first = next_json(&mut socket, Duration::from_secs(5))
        .await
        .expect("first");
    assert_eq!(
        first["type"], "presence",
        "a resumed stream starts with presence: {first}"
    );
    for expected in [last + 1, last + 2] {
        let event = next_json(&mut socket, Duration::from_secs(5))
            .await
            .expect("replayed");
        assert_eq!(event["type"], "event");
        assert_eq!(event["revision"], expected);
    }
    // Up to date: presence only, then live events continue.
    let socket_now = connect(&api, &m.id, Some(last + 2)).await;
    let mut socket_now = socket_now;
    assert_eq!(
        next_json(&mut socket_now, Duration::from_secs(5))
            .await
            .expect("first")["type"],
        "presence"
    );
    vote(&api, &m, &ben, 2).await;
    assert_eq!(
        next_event(&mut socket_now, Duration::from_secs(5))
            .await
            .expect("live")["revision"],
        last + 3
    );
    // History that is not remembered (the meetup's creation) means a snapshot.
    let mut from_start = connect(&api, &m.id, Some(0)).await;
    let first = next_json(&mut from_start, Duration::from_secs(5))
        .await
        .expect("first");
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["revision"], last + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_follows_a_sentinel_failover() {
    let http = reqwest::Client::new();
    // With a password, as every deployment sets one (the replica and Sentinel get it too).
    let primary = RedisServer::start_with_password(Some("failover-secret"))
        .await
        .expect("primary starts");
    let replica_server = RedisServer::start_replica_of(&primary)
        .await
        .expect("replica starts");
    let sentinel = RedisSentinel::start(&primary, "beer")
        .await
        .expect("sentinel starts");
    let sentinel_conn = redis::Client::open(sentinel.url()).expect("url");
    // Sentinel must know the replica (and it must be in sync) before a failover can promote it.
    until(
        "sentinel knows a synced replica",
        Duration::from_secs(30),
        || {
            let client = sentinel_conn.clone();
            async move {
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                let replicas: Vec<std::collections::HashMap<String, String>> =
                    redis::cmd("SENTINEL")
                        .arg("REPLICAS")
                        .arg("beer")
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                replicas
                    .iter()
                    .any(|r| r.get("master-link-status").map(String::as_str) == Some("ok"))
                    .then_some(())
            }
        },
    )
    .await;

    let target = Some(RedisTarget::Sentinel {
        sentinels: vec![sentinel.url()],
        master: "beer".into(),
        password: primary.password().map(str::to_owned),
    });
    let (store, _dir) = shared_store();
    let a = replica(&store, target.clone()).await;
    let b = replica(&store, target).await;
    let m = create(&a).await;
    let ben = join(&a, &m.id, "Ben").await;
    let mut on_b = connect(&b, &m.id, None).await;
    next_json(&mut on_b, Duration::from_secs(5))
        .await
        .expect("snapshot");
    vote(&a, &m, &ben, 0).await;
    assert!(
        next_event(&mut on_b, Duration::from_secs(5))
            .await
            .is_some(),
        "fan-out through the primary"
    );

    primary.kill();
    until(
        "sentinel promotes the replica",
        Duration::from_secs(60),
        || {
            let client = sentinel_conn.clone();
            let replica_port = replica_server.port();
            async move {
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                let address: Vec<String> = redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg("beer")
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                (address.get(1) == Some(&replica_port.to_string())).then_some(())
            }
        },
    )
    .await;

    // Requests keep working throughout; fan-out and the cache resume on the new primary.
    let mut new_primary = redis::Client::open(replica_server.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects to the new primary");
    // A starved Sentinel (a busy CI machine) enters TILT mode for 30 s and announces the new
    // primary only after it: seen here as `+tilt` then `+switch-master` 30 s later.
    let deadline = Instant::now() + Duration::from_secs(75);
    let (mut fanned_out, mut cached) = (false, false);
    let mut slot = 0;
    while !(fanned_out && cached) && Instant::now() < deadline {
        vote(&a, &m, &ben, slot % 5).await;
        slot += 1;
        let (status, view) = call(
            &http,
            reqwest::Method::GET,
            format!("{}/api/v1/meetups/{}", a.base, m.id),
            None,
            None,
        )
        .await;
        assert_eq!(status, 200);
        let revision = view["revision"].as_i64();
        while let Some(message) = next_json(&mut on_b, Duration::from_millis(700)).await {
            if message["type"] == "event" && message["revision"].as_i64() == revision {
                fanned_out = true;
                break;
            }
        }
        cached = cached_revision(&mut new_primary, &m.id).await.is_some();
    }
    assert!(
        fanned_out,
        "fan-out resumes after the failover; sentinel log:\n{}",
        sentinel.log_tail(30)
    );
    assert!(cached, "the cache is filled on the new primary");
}
