//! The write path on a real `redis-server` (issue 13): commit → invalidate → publish, a cached
//! view served only at the store's current revision, and replicas told to resync when events
//! could not reach them.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_server::redis_layer::RedisTarget;
use api_server::store::{EmbeddedStore, Store};
use common::faulty::FaultyStore;
use common::{Replica, call, replica};
use futures::StreamExt;
use serde_json::{Value, json};
use test_fixtures::RedisServer;
use tokio_tungstenite::tungstenite::Message;

fn standalone(redis: &RedisServer) -> Option<RedisTarget> {
    Some(RedisTarget::Standalone { url: redis.url() })
}

async fn get_view(replica: &Replica, id: &str) -> Value {
    let http = reqwest::Client::new();
    let (status, view) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/api/v1/meetups/{id}", replica.base),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    view
}

async fn create(replica: &Replica) -> (String, String) {
    let http = reqwest::Client::new();
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/meetups", replica.base),
        None,
        Some(json!({"title": "Friday beer", "organizerName": "Anna", "timeZone": "Europe/Berlin"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["meetup"]["id"].as_str().expect("id").to_string(),
        body["adminToken"].as_str().expect("token").to_string(),
    )
}

async fn cached_revision(redis: &RedisServer, id: &str) -> Option<i64> {
    let mut connection = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let value: Option<String> = redis::cmd("GET")
        .arg(format!("beermeetup:view:{id}"))
        .query_async(&mut connection)
        .await
        .expect("redis answers");
    value.and_then(|v| v.split_once('\n').and_then(|(r, _)| r.parse().ok()))
}

/// Reads the view until Redis holds it at `revision`.
async fn fill_cache(replica: &Replica, redis: &RedisServer, id: &str) -> i64 {
    let revision = get_view(replica, id).await["revision"]
        .as_i64()
        .expect("revision");
    let deadline = Instant::now() + Duration::from_secs(5);
    while cached_revision(redis, id).await != Some(revision) {
        assert!(Instant::now() < deadline, "the view was never cached");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_invalidation_never_reached_redis_is_still_seen() {
    let http = reqwest::Client::new();
    let redis = RedisServer::start().await.expect("redis starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
    let with_cache = replica(&store, standalone(&redis)).await;
    // A replica whose Redis is away: its writes invalidate nothing.
    let cut_off = replica(&store, None).await;
    let (id, admin) = create(&with_cache).await;
    let cached = fill_cache(&with_cache, &redis, &id).await;

    let (status, body) = call(
        &http,
        reqwest::Method::PATCH,
        format!("{}/api/v1/meetups/{id}", cut_off.base),
        Some(&admin),
        Some(json!({"title": "Saturday beer"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        cached_revision(&redis, &id).await,
        Some(cached),
        "still cached"
    );

    let view = get_view(&with_cache, &id).await;
    assert_eq!(
        view["title"], "Saturday beer",
        "a stale cached view was served"
    );
    assert!(view["revision"].as_i64() > Some(cached));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_after_the_commit_still_invalidates_and_resyncs_live_clients() {
    let http = reqwest::Client::new();
    let redis = RedisServer::start().await.expect("redis starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let faulty = Arc::new(FaultyStore::new(
        EmbeddedStore::open(dir.path()).expect("store"),
    ));
    let store: Arc<dyn Store> = faulty.clone();
    let api = replica(&store, standalone(&redis)).await;
    let (id, admin) = create(&api).await;
    let (status, place) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/meetups/{id}/places", api.base),
        Some(&admin),
        Some(json!({"name": "Zapf"})),
    )
    .await;
    assert_eq!(status, 201, "{place}");
    let place = place["id"].as_str().expect("place id").to_string();
    let cached = fill_cache(&api, &redis, &id).await;
    let url = format!(
        "{}/api/v1/meetups/{id}/live",
        api.base.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("live connects");
    let first = socket.next().await.expect("a frame").expect("ok");
    assert!(matches!(&first, Message::Text(text) if text.contains(r#""type":"snapshot""#)));

    // The place is stored, then building its event (the voters) fails.
    faulty.fail_next_participants_read();
    let (status, body) = call(
        &http,
        reqwest::Method::PATCH,
        format!("{}/api/v1/meetups/{id}/places/{place}", api.base),
        Some(&admin),
        Some(json!({"name": "Committed anyway"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");

    // Dropped by the write (a loaded Redis may need the retry after a timeout).
    let deadline = Instant::now() + Duration::from_secs(5);
    while cached_revision(&redis, &id).await == Some(cached) {
        assert!(Instant::now() < deadline, "the stale cached view was kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get_view(&api, &id).await["places"][0]["name"],
        "Committed anyway"
    );
    // The live client is told to reload and sees the write.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, socket.next())
            .await
            .expect("a snapshot before the deadline")
            .expect("open")
            .expect("ok");
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(&text).expect("json");
            if message["type"] == "snapshot" {
                assert_eq!(message["meetup"]["places"][0]["name"], "Committed anyway");
                break;
            }
        }
    }

    // A meetup edit's event needs no view, so it goes out before the response (whose view
    // fails to build here): live clients see the write at once.
    faulty.fail_next_participants_read();
    let (status, body) = call(
        &http,
        reqwest::Method::PATCH,
        format!("{}/api/v1/meetups/{id}", api.base),
        Some(&admin),
        Some(json!({"title": "Edited anyway"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let frame = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(Message::Text(text))) = socket.next().await {
                let message: Value = serde_json::from_str(&text).expect("json");
                if message["type"] == "event" {
                    return message;
                }
            }
        }
    })
    .await
    .expect("the event before the deadline");
    assert_eq!(frame["event"]["kind"], "meetupUpdated");
    assert_eq!(frame["event"]["changes"]["title"], "Edited anyway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_could_not_share_an_event_makes_the_others_resync() {
    let redis = RedisServer::start().await.expect("redis starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
    let a = replica(&store, standalone(&redis)).await;
    let b = replica(&store, standalone(&redis)).await;
    let (id, _) = create(&a).await;
    let url = format!(
        "{}/api/v1/meetups/{id}/live",
        b.base.replace("http://", "ws://")
    );
    let (mut on_b, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("live connects");
    let first = on_b.next().await.expect("a frame").expect("ok");
    assert!(matches!(&first, Message::Text(text) if text.contains(r#""type":"snapshot""#)));
    // Give B's subscription a moment to be in place on the Redis side.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A's event for this meetup could not be shared (as while its Redis link was down).
    a.state.events.resync(&id);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, on_b.next())
            .await
            .expect("B's client resyncs before the deadline")
            .expect("open")
            .expect("ok");
        if matches!(&frame, Message::Text(text) if text.contains(r#""type":"snapshot""#)) {
            break;
        }
    }
}
