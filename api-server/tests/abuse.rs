//! One anonymous client must not take the server down (issue 12): bounded metrics series,
//! connection timeouts, rate limits keyed on the real client behind trusted proxies, caps on
//! live connections, and input that cannot smuggle lines or look-alike names.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_server::AppState;
use api_server::http::client::TrustedProxies;
use api_server::http::server::ServerLimits;
use api_server::http::{LiveLimits, RateLimit, Settings};
use api_server::store::{EmbeddedStore, Store};
use common::{Served, serve_on_loopback, test_settings};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Server {
    base: String,
    addr: SocketAddr,
    http: reqwest::Client,
    _served: Served,
    _dir: tempfile::TempDir,
}

async fn start(settings: Settings, limits: ServerLimits) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store opens"));
    let served = serve_on_loopback(AppState::new(store, settings), limits).await;
    Server {
        base: served.base.clone(),
        addr: served.addr,
        http: reqwest::Client::new(),
        _served: served,
        _dir: dir,
    }
}

fn meetup_body() -> Value {
    json!({"title": "Beer", "organizerName": "Anna", "timeZone": "Europe/Berlin"})
}

async fn create(server: &Server, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = server
        .http
        .post(format!("{}/api/v1/meetups", server.base))
        .json(&meetup_body());
    if let Some(chain) = forwarded_for {
        request = request.header("x-forwarded-for", chain);
    }
    request.send().await.expect("answered")
}

fn random_token(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..rng.random_range(3..12))
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn series(metrics: &str, name: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_do_not_mint_metric_series() {
    let server = start(test_settings(), ServerLimits::default()).await;
    let mut rng = rand::rng();
    let mut sent = Vec::new();
    for _ in 0..10_000 {
        let name = format!("X{}", random_token(&mut rng));
        let method = reqwest::Method::from_bytes(name.as_bytes()).expect("a token is a method");
        let reply = server
            .http
            .request(method, format!("{}/healthz", server.base))
            .send()
            .await
            .expect("answered");
        assert_eq!(reply.status(), 405);
        sent.push(name);
    }
    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let requests = series(&metrics, "http_requests_total");
    let durations = series(&metrics, "http_request_duration_seconds_count");
    // Other tests of this process add their routes; bounded all the same, and one "other"
    // series on /healthz instead of 10,000.
    assert!(requests.len() <= 100, "{} series", requests.len());
    assert!(durations.len() <= 100, "{} series", durations.len());
    let healthz: Vec<_> = requests
        .iter()
        .filter(|line| line.contains(r#"route="/healthz""#))
        .collect();
    assert!(healthz.len() <= 3, "{healthz:#?}");
    assert!(
        requests
            .iter()
            .any(|line| line.contains(r#"method="other""#) && line.contains("10000")),
        "{requests:#?}"
    );
    for name in sent.iter().take(100) {
        assert!(
            !metrics.contains(name.as_str()),
            "{name} leaked into /metrics"
        );
    }
}

/// Reads until the server closes the connection; how long that took.
async fn time_until_closed(mut tcp: TcpStream, trickle: bool) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        let step = async {
            if trickle {
                // One header byte every 300 ms: never a complete head.
                tokio::time::sleep(Duration::from_millis(300)).await;
                if tcp.write_all(b"a").await.is_err() {
                    return true;
                }
            }
            matches!(
                tokio::time::timeout(Duration::from_millis(10), tcp.read(&mut buffer)).await,
                Ok(Ok(0) | Err(_))
            )
        };
        if step.await || started.elapsed() > Duration::from_secs(10) {
            return started.elapsed();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_header_clients_are_closed_within_the_header_timeout() {
    let limits = ServerLimits {
        header_read_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let server = start(test_settings(), limits).await;

    let silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let (silent, slow) = tokio::join!(
        time_until_closed(silent, false),
        time_until_closed(slow, true)
    );
    for (what, took) in [("silent", silent), ("slow header", slow)] {
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{what} connection closed after {took:?}"
        );
    }

    // An idle keep-alive connection is closed the same way after its last response.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buffer = [0u8; 512];
    let read = idle.read(&mut buffer).await.expect("response");
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    let took = time_until_closed(idle, false).await;
    assert!(took < Duration::from_secs(3), "idle closed after {took:?}");

    // Ordinary requests still work.
    let reply = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(reply.status(), 200);
}

fn two_writes_a_minute(trusted: TrustedProxies) -> Settings {
    Settings {
        write_rate_limit: Some(RateLimit {
            per_minute: 1,
            burst: 2,
        }),
        trusted_proxies: trusted,
        ..test_settings()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarded_for_entries_share_the_real_clients_bucket() {
    let server = start(
        two_writes_a_minute(TrustedProxies {
            hops: 1,
            networks: vec![],
        }),
        ServerLimits::default(),
    )
    .await;
    let mut rng = rand::rng();
    // The client invents a new left-most entry each time; our proxy appends its real address.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let spoof = format!(
            "{}.{}.{}.{}",
            rng.random_range(1..255),
            rng.random_range(0..255),
            rng.random_range(0..255),
            rng.random_range(1..255)
        );
        let reply = create(&server, Some(&format!("{spoof}, 203.0.113.9"))).await;
        statuses.push(reply.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 429, 429, 429]);
    // Another real client behind the same proxy has its own bucket.
    assert_eq!(
        create(&server, Some("203.0.113.9, 198.51.100.4"))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_the_socket_address_is_the_client() {
    let server = start(
        two_writes_a_minute(TrustedProxies::default()),
        ServerLimits::default(),
    )
    .await;
    let statuses = [
        create(&server, Some("198.51.100.1")).await.status(),
        create(&server, Some("198.51.100.2")).await.status(),
        create(&server, Some("198.51.100.3")).await.status(),
        create(&server, None).await.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [201, 201, 429, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_have_a_rate_limit_of_their_own() {
    let server = start(
        Settings {
            read_rate_limit: Some(RateLimit {
                per_minute: 1,
                burst: 3,
            }),
            ..test_settings()
        },
        ServerLimits::default(),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = server
            .http
            .get(format!("{}/api/v1/meetups/AAAAAAAAAAAA", server.base))
            .send()
            .await
            .expect("answered");
        statuses.push(reply.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 429]);
    // Writes and health checks are counted apart.
    assert_eq!(create(&server, None).await.status(), 201);
    let health = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_connections_are_capped_per_client() {
    let server = start(
        Settings {
            live_limits: LiveLimits {
                per_client: 2,
                ..LiveLimits::default()
            },
            ..test_settings()
        },
        ServerLimits::default(),
    )
    .await;
    let created: Value = create(&server, None).await.json().await.expect("json");
    let id = created["meetup"]["id"].as_str().expect("id");
    let url = format!("ws://{}/api/v1/meetups/{id}/live", server.addr);
    let first = tokio_tungstenite::connect_async(&url).await.expect("first");
    let second = tokio_tungstenite::connect_async(&url)
        .await
        .expect("second");
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!("a third live connection was not refused: {other:?}"),
    }
    drop(first);
    // The slot comes back once the server notices the close.
    let mut third = None;
    for _ in 0..50 {
        if let Ok(connected) = tokio_tungstenite::connect_async(&url).await {
            third = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        third.is_some(),
        "the closed connection's slot was not given back"
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_with_line_breaks_are_refused_and_look_alike_names_collide() {
    let server = start(test_settings(), ServerLimits::default()).await;
    let created: Value = create(&server, None).await.json().await.expect("json");
    let id = created["meetup"]["id"].as_str().expect("id").to_string();
    let admin = created["adminToken"].as_str().expect("token").to_string();
    let post = |path: String, token: Option<String>, body: Value| {
        let mut request = server
            .http
            .post(format!("{}{path}", server.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let reply = request.send().await.expect("answered");
            let status = reply.status().as_u16();
            let content_type = reply
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (
                status,
                content_type,
                reply.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    for link in [
        "https://bar.example/\r\nBEGIN:VEVENT",
        "https://bar.example/\rx",
        "javascript:alert(1)",
    ] {
        let (status, content_type, body) = post(
            format!("/api/v1/meetups/{id}/places"),
            Some(admin.clone()),
            json!({"name": "Bar", "link": link}),
        )
        .await;
        assert_eq!(status, 422, "{link:?}: {body}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["errors"][0]["field"], "link");
    }
    let (status, _, body) = post(
        format!("/api/v1/meetups/{id}/places"),
        Some(admin.clone()),
        json!({"name": "Bar", "address": "Main St 1\r\nBEGIN:VEVENT"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    let join = |name: &str| {
        post(
            format!("/api/v1/meetups/{id}/participants"),
            None,
            json!({"name": name}),
        )
    };
    assert_eq!(join("Zoë").await.0, 201);
    // NFD, fullwidth letters, other case: the same name.
    for look_alike in ["Zoe\u{0308}", "ＺＯＥ\u{0308}", "zoË", "ZOË"] {
        let (status, _, body) = join(look_alike).await;
        assert_eq!(status, 409, "{look_alike:?}: {body}");
        assert_eq!(body["type"], "https://beermeetup.io/problems/name-taken");
    }
    // Invisible, format, bidi and tag characters are dropped: what is left is Zoë, taken.
    for hidden in [
        "Zo\u{200D}ë",
        "\u{202E}Zoë",
        "Zoë\u{E0020}",
        "\u{2066}Zoë\u{2069}",
        "Zo\u{FE0F}ë",
    ] {
        let (status, _, body) = join(hidden).await;
        assert_eq!(status, 409, "{hidden:?}: {body}");
        assert_eq!(body["type"], "https://beermeetup.io/problems/name-taken");
    }
    // Nothing visible, or a control character: refused.
    for empty in ["\u{200B}\u{200B}", "\u{3164}", "Zoë\u{0007}"] {
        let (status, _, body) = join(empty).await;
        assert_eq!(status, 422, "{empty:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_outside_the_window_are_refused_and_never_panic() {
    let server = start(test_settings(), ServerLimits::default()).await;
    let with = |extra: Value| {
        let mut body = meetup_body();
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        body
    };
    for extra in [
        json!({"slots": [{"start": "0001-01-01T18:00:00Z", "end": "0001-01-01T19:00:00Z"}]}),
        json!({"slots": [{"start": "1900-01-01T18:00:00Z", "end": "1900-01-01T19:00:00Z"}]}),
        json!({"slots": [{"start": "9999-12-31T22:00:00Z", "end": "9999-12-31T23:00:00Z"}]}),
        json!({"slots": [{"start": "+262142-12-31T22:00:00Z", "end": "+262142-12-31T23:00:00Z"}]}),
        json!({"days": ["9999-12-31"]}),
        json!({"days": ["1900-01-01"]}),
        json!({"deadline": "9999-12-31T23:59:59Z"}),
    ] {
        let reply = server
            .http
            .post(format!("{}/api/v1/meetups", server.base))
            .json(&with(extra.clone()))
            .send()
            .await
            .expect("answered");
        assert_eq!(reply.status(), 422, "{extra}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetups_past_their_retention_are_swept_and_others_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store opens"));
    let state = AppState::new(Arc::clone(&store), test_settings());
    let served = serve_on_loopback(state.clone(), ServerLimits::default()).await;
    let base = served.base.clone();
    let http = reqwest::Client::new();
    let now = chrono::Utc::now();
    let slot = |from_hours: i64| {
        json!([{"start": (now + chrono::Duration::hours(from_hours)).to_rfc3339(),
                "end": (now + chrono::Duration::hours(from_hours + 1)).to_rfc3339()}])
    };
    let mut ids = Vec::new();
    for slots in [slot(-20), slot(20)] {
        let mut body = meetup_body();
        body["slots"] = slots;
        let created: Value = http
            .post(format!("{base}/api/v1/meetups"))
            .json(&body)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        ids.push(created["meetup"]["id"].as_str().expect("id").to_string());
    }
    // Nothing is older than a day yet.
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(api_server::retention::sweep_once(&state, day).await, 0);
    // With no grace at all, the meetup whose only slot is over goes; the coming one stays.
    assert_eq!(
        api_server::retention::sweep_once(&state, Duration::ZERO).await,
        1
    );
    let status = |id: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.get(format!("{base}/api/v1/meetups/{id}"))
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(ids[0].clone()).await, 404);
    assert_eq!(status(ids[1].clone()).await, 200);
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_readiness_turns_false_and_live_clients_get_going_away() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store opens"));
    let state = AppState::new(store, test_settings());
    let served = serve_on_loopback(state.clone(), ServerLimits::default()).await;
    let addr = served.addr;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("http://{addr}/api/v1/meetups"))
        .json(&meetup_body())
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let id = created["meetup"]["id"].as_str().expect("id");
    let url = format!("ws://{addr}/api/v1/meetups/{id}/live");
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.expect("live");
    socket.next().await.expect("snapshot").expect("ok");
    let ready = |http: reqwest::Client| async move {
        http.get(format!("http://{addr}/readyz"))
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16()
    };
    assert_eq!(ready(http.clone()).await, 200);

    state.lifecycle.begin_shutdown();
    assert_eq!(ready(http.clone()).await, 503);
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert_eq!(close, Some(1001));
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_before_bodies_and_arrays_are_no_objects() {
    let server = start(test_settings(), ServerLimits::default()).await;
    let created: Value = create(&server, None).await.json().await.expect("json");
    let id = created["meetup"]["id"].as_str().expect("id");
    let admin = created["adminToken"].as_str().expect("token");
    let place = created["meetup"]["places"][0]["id"].as_str();
    let send = |method: reqwest::Method, path: String, token: Option<&str>, body: &str| {
        let mut request = server
            .http
            .request(method, format!("{}{path}", server.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let reply = request.send().await.expect("answered");
            (
                reply.status().as_u16(),
                reply.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // Without a valid token the body is never looked at: 401, whatever it is.
    for body in [r#"{"title": 5}"#, "[null, null]", "not json"] {
        for token in [None, Some("made-up")] {
            let (status, problem) = send(
                reqwest::Method::PATCH,
                format!("/api/v1/meetups/{id}"),
                token,
                body,
            )
            .await;
            assert_eq!(status, 401, "{body} with {token:?}: {problem}");
        }
    }
    // With one, an array is refused where an object is expected (it used to clear fields).
    let (status, problem) = send(
        reqwest::Method::PATCH,
        format!("/api/v1/meetups/{id}"),
        Some(admin),
        "[null, null]",
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["detail"], "The body must be a JSON object.");
    let (status, _) = send(
        reqwest::Method::POST,
        "/api/v1/meetups".to_string(),
        None,
        r#"["Beer", "Anna"]"#,
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = send(
        reqwest::Method::PATCH,
        format!("/api/v1/meetups/{id}"),
        Some(admin),
        "{not json",
    )
    .await;
    assert_eq!(status, 400);
    assert!(place.is_none() || status == 400);
}
