//! The data path as the operator deploys it, on this machine: a real HAProxy (the Debian package)
//! with the timeouts of the operator's HAProxy ingress controller in front of two real
//! `api-server` processes that share one store (FerretDB, the MongoDB wire protocol) and one Redis
//! (cross-replica fan-out), like two API pods behind the ingress.
//!
//! Which timeout matters: once a connection is upgraded to a WebSocket, HAProxy applies
//! `timeout tunnel` to it, in place of `timeout client` / `timeout server`; without a tunnel timeout
//! an idle WebSocket is cut as soon as the client (or server) timeout passes. Live pages are idle
//! most of the time, so `timeout-tunnel` in the controller's ConfigMap is what keeps them open.
//! The tests take the operator's own ConfigMap values (rendered from a CR), keep the tunnel timeout
//! as is and scale the client timeout down to one second, so that a missing tunnel timeout would
//! show within seconds:
//! - with the tunnel timeout, one WebSocket keeps receiving votes over idle gaps longer than the
//!   client timeout, and the votes land on both replicas;
//! - without it (control), the same idle gap cuts the WebSocket.
//!
//! `BEER_MEETUP_API_BIN` names a prebuilt `api-server`; otherwise the test builds it (debug).

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use beer_meetup_tests::{workspace_binary, yaml_documents};
use futures::StreamExt;
use serde_json::{Value, json};
use test_fixtures::{FerretDb, Haproxy, RedisServer, eventually, free_ports, random_hex};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The scaled-down `timeout client` (the operator's default is a minute).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle time between two writes: longer than the client timeout.
const IDLE_GAP: Duration = Duration::from_millis(1600);
/// The operator's `timeout server` (operator children/haproxy_config.rs).
const SERVER_TIMEOUT: &str = beer_meetup_operator::children::haproxy_config::SERVER_TIMEOUT;
const WAIT: Duration = Duration::from_secs(20);
/// Header HAProxy adds to every answer naming the backend server (test instrumentation).
const SERVED_BY: &str = "x-served-by";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The `timeout tunnel` and `timeout client` of the platform's HAProxy, from the `haproxy.cfg`
/// that `operator render` produces for a platform with the ingress on and default settings.
fn operator_ingress_timeouts() -> Result<(String, String)> {
    let cr = r"apiVersion: beermeetup.io/v1alpha1
kind: BeerMeetupPlatform
metadata: {name: data-path, namespace: meetups}
spec:
  ingress: {enabled: true, host: meetups.example.org}
";
    let rendered = beer_meetup_operator::render::render(cr)?;
    let config_map = yaml_documents(&rendered)?
        .into_iter()
        .find(|d| d["kind"] == "ConfigMap" && d["data"]["haproxy.cfg"].is_string())
        .context("the rendered platform has no ConfigMap with haproxy.cfg")?;
    let cfg = config_map["data"]["haproxy.cfg"]
        .as_str()
        .context("haproxy.cfg")?;
    let value = |key: &str| {
        cfg.lines()
            .find_map(|line| line.trim().strip_prefix(&format!("timeout {key} ")))
            .map(|v| v.trim().to_owned())
            .with_context(|| format!("timeout {key} in haproxy.cfg"))
    };
    Ok((value("tunnel")?, value("client")?))
}

/// `1h`, `1m`, `30s`, `500ms` (the operator's duration syntax, also HAProxy's).
fn parse_duration(text: &str) -> Result<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit()).context("a unit")?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse()?;
    Ok(match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number * 60),
        "h" => Duration::from_secs(number * 3600),
        "d" => Duration::from_secs(number * 86_400),
        other => bail!("unknown unit {other:?}"),
    })
}

/// HAProxy in HTTP mode: `/api` to the API servers (round-robin, health-checked on `/readyz`),
/// anything else answered by HAProxy itself (the web app is not part of this test).
fn haproxy_config(port: u16, servers: &[u16], tunnel_timeout: Option<&str>) -> String {
    let tunnel = tunnel_timeout
        .map(|t| format!("    timeout tunnel {t}\n"))
        .unwrap_or_default();
    let servers: String = servers
        .iter()
        .enumerate()
        .map(|(i, port)| format!("    server api{} 127.0.0.1:{port} check\n", i + 1))
        .collect();
    format!(
        "defaults
    mode http
    timeout connect 2s
    timeout client {client}ms
    timeout server {SERVER_TIMEOUT}
{tunnel}
frontend ingress
    bind 127.0.0.1:{port}
    use_backend api if {{ path_beg /api }}
    default_backend web

backend web
    http-request return status 404 content-type text/plain string \"no web app here\"

backend api
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1
    http-response set-header X-Served-By %s
{servers}",
        client = CLIENT_TIMEOUT.as_millis(),
    )
}

/// An `api-server` process, killed on drop (and when the test process dies).
struct ApiServer {
    port: u16,
    child: std::process::Child,
    log: PathBuf,
}

impl ApiServer {
    fn start(binary: &Path, port: u16, dir: &Path, env: &[(&str, String)]) -> Result<Self> {
        let log = dir.join(format!("api-server-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        let mut command = std::process::Command::new(binary);
        command
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", dir.join(format!("data-{port}")))
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        // SAFETY: prctl is async-signal-safe; the child dies with the thread that started it
        // (this test's runtime), so a killed test run leaves no server behind.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self { port, child, log })
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let ready = eventually("the api-server to be ready", WAIT, || async {
            let status = http.get(&url).send().await?.status();
            ensure!(status.is_success(), "readyz answered {status}");
            Ok(())
        })
        .await;
        if let Some(status) = self.child.try_wait()? {
            bail!("api-server exited ({status}):\n{}", self.log_tail());
        }
        ready.map_err(|e| e.context(self.log_tail()))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn api_binary() -> Result<PathBuf> {
    tokio::task::spawn_blocking(|| {
        workspace_binary("api-server", "api-server", "BEER_MEETUP_API_BIN")
    })
    .await?
}

/// A JSON call through HAProxy; returns the status, the body and the server that answered.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value, String)> {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let served_by = response
        .headers()
        .get(SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        served_by,
    ))
}

struct Meetup {
    id: String,
    slots: Vec<String>,
    places: Vec<String>,
    participant: String,
    token: String,
}

/// Creates a meetup and lets Ben join it, through HAProxy.
async fn create_meetup(http: &reqwest::Client, api: &str) -> Result<Meetup> {
    let (status, created, _) = call(
        http,
        reqwest::Method::POST,
        &format!("{api}/meetups"),
        None,
        Some(json!({
            "title": "Data path beer",
            "organizerName": "Anna",
            "timeZone": "Europe/Berlin",
            "places": [{"name": "Hops"}, {"name": "Barley"}],
        })),
    )
    .await?;
    ensure!(status == 201, "creating the meetup: {status} {created}");
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = created["meetup"]["id"]
        .as_str()
        .context("meetup id")?
        .to_owned();
    let (status, joined, _) = call(
        http,
        reqwest::Method::POST,
        &format!("{api}/meetups/{id}/participants"),
        None,
        Some(json!({"name": "Ben"})),
    )
    .await?;
    ensure!(status == 201, "joining: {status} {joined}");
    Ok(Meetup {
        slots: ids(&created["meetup"]["slots"]),
        places: ids(&created["meetup"]["places"]),
        participant: joined["participant"]["id"]
            .as_str()
            .context("participant id")?
            .to_owned(),
        token: joined["token"].as_str().context("token")?.to_owned(),
        id,
    })
}

/// The next snapshot or event frame (pings are answered by the reader, presence is skipped);
/// `None` when the connection ended.
async fn next_frame(ws: &mut Ws, within: Duration) -> Result<Option<Value>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no message in time")?;
        match message {
            None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return Ok(None),
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text)?;
                if frame["type"] != "presence" {
                    return Ok(Some(frame));
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn connect_live(proxy: &str, meetup: &str) -> Result<(Ws, String)> {
    let (ws, response) =
        tokio_tungstenite::connect_async(format!("ws://{proxy}/api/v1/meetups/{meetup}/live"))
            .await
            .context("WebSocket through HAProxy")?;
    let served_by = response
        .headers()
        .get(SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    Ok((ws, served_by))
}

#[tokio::test]
async fn a_websocket_through_haproxy_keeps_receiving_votes_landing_on_either_replica() -> Result<()>
{
    let (tunnel_timeout, operator_client_timeout) = operator_ingress_timeouts()?;
    ensure!(
        parse_duration(&tunnel_timeout)? >= Duration::from_secs(3600)
            && parse_duration(&tunnel_timeout)? > parse_duration(&operator_client_timeout)?,
        "the operator's tunnel timeout ({tunnel_timeout}) must outlast its client timeout \
         ({operator_client_timeout}) by far: live pages stay open for hours"
    );
    let (ferret, redis, binary) =
        tokio::try_join!(FerretDb::start(), RedisServer::start(), api_binary())?;
    let dir = tempfile::tempdir()?;
    let ports = free_ports(3);
    let env = [
        ("MONGODB_URI", ferret.uri()),
        ("MONGODB_DATABASE", format!("datapath{}", random_hex(8))),
        ("REDIS_URL", redis.url()),
    ];
    let http = reqwest::Client::new();
    let mut replicas = vec![
        ApiServer::start(&binary, ports[0], dir.path(), &env)?,
        ApiServer::start(&binary, ports[1], dir.path(), &env)?,
    ];
    for replica in &mut replicas {
        replica.wait_ready(&http).await?;
    }
    let haproxy = Haproxy::start(&haproxy_config(
        ports[2],
        &[ports[0], ports[1]],
        Some(&tunnel_timeout),
    ))
    .await?;
    let proxy = format!("127.0.0.1:{}", ports[2]);
    let api = format!("http://{proxy}/api/v1");

    // Both servers pass HAProxy's health check and take turns.
    let seen = std::cell::RefCell::new(BTreeSet::new());
    eventually("HAProxy to balance over both API servers", WAIT, || {
        let (http, api, seen) = (&http, &api, &seen);
        async move {
            let (status, _, server) = call(
                http,
                reqwest::Method::GET,
                &format!("{api}/places/suggestions?q=h"),
                None,
                None,
            )
            .await?;
            ensure!(status == 200, "status {status}");
            let mut seen = seen.borrow_mut();
            seen.insert(server);
            ensure!(seen.len() == 2, "answered by {seen:?}");
            Ok(())
        }
    })
    .await
    .with_context(|| haproxy.log_tail(20))?;

    let meetup = create_meetup(&http, &api).await?;
    let (mut ws, ws_server) = connect_live(&proxy, &meetup.id).await?;
    let connected = Instant::now();
    let snapshot = next_frame(&mut ws, WAIT)
        .await?
        .context("the connection closed before the snapshot")?;
    ensure!(snapshot["type"] == "snapshot", "first frame: {snapshot}");
    let mut revision = snapshot["revision"].as_i64().context("revision")?;

    // Votes spaced wider than the client timeout, each through HAProxy to whichever replica is
    // next; the WebSocket (on one replica) must see every one of them.
    let mut write_servers = BTreeSet::new();
    let votes = 4;
    for i in 0..votes {
        tokio::time::sleep(IDLE_GAP).await;
        let slot = &meetup.slots[i % meetup.slots.len()];
        let place = &meetup.places[i % meetup.places.len()];
        let (status, body, server) = call(
            &http,
            reqwest::Method::PATCH,
            &format!(
                "{api}/meetups/{}/participants/{}",
                meetup.id, meetup.participant
            ),
            Some(&meetup.token),
            Some(json!({"availability": {slot.as_str(): "yes"}, "placeVotes": [place]})),
        )
        .await?;
        ensure!(status == 200, "vote {i}: {status} {body}");
        write_servers.insert(server.clone());
        let frame = next_frame(&mut ws, Duration::from_secs(5))
            .await
            .with_context(|| format!("waiting for vote {i} (written on {server})"))?
            .with_context(|| {
                format!(
                    "the WebSocket (on {ws_server}) was closed after {:?}, before vote {i} \
                     (written on {server}); HAProxy log:\n{}",
                    connected.elapsed(),
                    haproxy.log_tail(20)
                )
            })?;
        ensure!(
            frame["type"] == "event"
                && frame["event"]["kind"] == "participantUpdated"
                && frame["event"]["participant"]["availability"][slot.as_str()] == "yes"
                && frame["event"]["participant"]["placeVotes"] == json!([place]),
            "vote {i} (written on {server}, WebSocket on {ws_server}): {frame}"
        );
        let next = frame["revision"].as_i64().context("revision")?;
        ensure!(next == revision + 1, "revision {next} after {revision}");
        revision = next;
    }
    ensure!(
        write_servers.len() == 2,
        "the votes should have landed on both replicas, went to {write_servers:?}"
    );
    let open_for = connected.elapsed();
    ensure!(
        open_for > CLIENT_TIMEOUT * votes as u32,
        "the WebSocket was open {open_for:?}"
    );
    drop(ws);
    drop(haproxy);
    drop(replicas);
    Ok(())
}

/// The control: the same HAProxy without `timeout tunnel` cuts an idle WebSocket after the
/// client timeout — so the tunnel timeout is what keeps live pages open.
#[tokio::test]
async fn without_a_tunnel_timeout_haproxy_cuts_an_idle_websocket_after_the_client_timeout()
-> Result<()> {
    let binary = api_binary().await?;
    let dir = tempfile::tempdir()?;
    let ports = free_ports(2);
    let http = reqwest::Client::new();
    // One replica on the embedded store is enough to show what HAProxy does.
    let mut api_server = ApiServer::start(&binary, ports[0], dir.path(), &[])?;
    api_server.wait_ready(&http).await?;
    let haproxy = Haproxy::start(&haproxy_config(ports[1], &[ports[0]], None)).await?;
    let proxy = format!("127.0.0.1:{}", ports[1]);
    let meetup = create_meetup(&http, &format!("http://{proxy}/api/v1")).await?;

    let (mut ws, _) = connect_live(&proxy, &meetup.id).await?;
    let snapshot = next_frame(&mut ws, WAIT)
        .await?
        .context("the connection closed before the snapshot")?;
    ensure!(snapshot["type"] == "snapshot", "first frame: {snapshot}");
    let idle_since = Instant::now();
    let frame = next_frame(&mut ws, CLIENT_TIMEOUT * 4)
        .await
        .context("HAProxy kept the idle WebSocket open without a tunnel timeout")?;
    let idle = idle_since.elapsed();
    ensure!(frame.is_none(), "unexpected frame {frame:?}");
    ensure!(
        idle >= CLIENT_TIMEOUT.mul_f32(0.8),
        "closed after {idle:?}, sooner than the client timeout"
    );
    drop(haproxy);
    drop(api_server);
    Ok(())
}

#[test]
fn durations_parse_like_the_operator_writes_them() -> Result<()> {
    assert_eq!(parse_duration("1h")?, Duration::from_secs(3600));
    assert_eq!(parse_duration("1m")?, Duration::from_secs(60));
    assert_eq!(parse_duration("250ms")?, Duration::from_millis(250));
    assert!(parse_duration("soon").is_err());
    Ok(())
}
