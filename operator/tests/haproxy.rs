//! The `haproxy.cfg` the operator renders, against the real (Debian-packaged) HAProxy, without a
//! control plane:
//! - `haproxy -c` accepts the configuration of every example and of each `spec.ingress` variant;
//! - run in front of two tiny HTTP servers, it routes `/api` to the API and the rest to web,
//!   balances over both API servers per request, adds the client to X-Forwarded-For, passes a
//!   WebSocket upgrade through, and answers the configured status past the rate limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use beer_meetup_operator::children::haproxy_config::{self, Listen, ProxyConfig, Upstreams};
use beer_meetup_operator::crd::{IngressSpec, RateLimitSpec};
use serde::Deserialize as _;
use test_fixtures::{Haproxy, eventually, free_ports, random_hex, system_program};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);
/// The sample `Sec-WebSocket-Key` of RFC 6455 and its `Sec-WebSocket-Accept` (HAProxy checks it).
const WEBSOCKET_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WEBSOCKET_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("haproxy-cfg-{}", random_hex(12)));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate as the TLS Secret is mounted: `tls.pem` and `tls.pem.key`.
fn certificate(dir: &Path) -> Result<PathBuf> {
    let pem = dir.join("tls.pem");
    let output = std::process::Command::new(system_program("openssl")?)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=meetups.example.org", "-keyout"])
        .arg(dir.join("tls.pem.key"))
        .arg("-out")
        .arg(&pem)
        .output()
        .context("running openssl")?;
    ensure!(
        output.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(pem)
}

/// `haproxy.cfg` of the ConfigMap that `operator render` makes for `cr`.
fn rendered_config(cr: &str) -> Result<String> {
    let rendered = beer_meetup_operator::render::render(cr)?;
    for document in serde_yaml::Deserializer::from_str(&rendered) {
        let value = serde_yaml::Value::deserialize(document)?;
        if let Some(cfg) = value["data"]["haproxy.cfg"].as_str() {
            return Ok(cfg.to_owned());
        }
    }
    bail!("no ConfigMap with haproxy.cfg in:\n{rendered}")
}

fn check(config: &str, dir: &Path, certificate: &Path) -> Result<()> {
    let config = config.replace(
        "/etc/haproxy/tls/tls.pem",
        &certificate.display().to_string(),
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, &config)?;
    let output = std::process::Command::new(system_program("haproxy")?)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .context("running haproxy -c")?;
    ensure!(
        output.status.success(),
        "haproxy rejects the configuration:\n{}{}\n{config}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn haproxy_accepts_every_rendered_configuration() -> Result<()> {
    let dir = TempDir::new()?;
    let pem = certificate(&dir.0)?;
    let examples = test_fixtures::workspace_root().join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples)? {
        let path = entry?.path();
        let cr = std::fs::read_to_string(&path)?;
        let Ok(config) = rendered_config(&cr) else {
            continue; // an example without the platform's own HAProxy
        };
        check(&config, &dir.0, &pem).with_context(|| path.display().to_string())?;
        checked += 1;
    }
    ensure!(checked >= 2, "only {checked} example(s) run HAProxy");
    let cr = |ingress: &str| {
        format!(
            "apiVersion: beermeetup.io/v1alpha1\nkind: BeerMeetupPlatform\nmetadata: {{name: p, namespace: n}}\nspec:\n  ingress:\n    enabled: true\n    host: m.example.org\n{ingress}"
        )
    };
    for variant in [
        "",
        "    tls: {secretName: t}\n",
        "    rateLimit: {requests: 5}\n",
        "    rateLimit: {requests: 100, period: 10s, statusCode: 503, size: 1m, whitelist: [10.0.0.0/8, 192.168.1.1, 'fd00::/64']}\n    tls: {secretName: t}\n",
        "    rateLimit: {requests: 1, statusCode: 418}\n",
        "    controller: {tunnelTimeout: 12h, clientTimeout: 30s, replicas: 1}\n",
    ] {
        check(&rendered_config(&cr(variant))?, &dir.0, &pem)
            .with_context(|| format!("variant {variant:?}"))?;
    }
    Ok(())
}

/// A tiny HTTP/1.1 server: answers every request with `<name> <path> xff=<X-Forwarded-For>`, and
/// an `Upgrade: websocket` request with 101, after which it echoes bytes.
async fn tiny_server(name: &'static str, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let _ = serve(name, stream).await;
        });
    }
}

async fn serve(name: &str, stream: TcpStream) -> Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_owned();
        let (mut upgrade, mut forwarded) = (false, Vec::new());
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (key, value) = header.split_once(':').unwrap_or((header, ""));
            match key.to_ascii_lowercase().as_str() {
                "upgrade" => upgrade = value.trim().eq_ignore_ascii_case("websocket"),
                "x-forwarded-for" => forwarded.push(value.trim().to_owned()),
                _ => {}
            }
        }
        let stream = reader.get_mut();
        if upgrade {
            stream
                .write_all(format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {WEBSOCKET_ACCEPT}\r\n\r\n").as_bytes())
                .await?;
            let mut buffer = [0u8; 1024];
            loop {
                let n = reader.read(&mut buffer).await?;
                if n == 0 {
                    return Ok(());
                }
                reader.get_mut().write_all(&buffer[..n]).await?;
            }
        }
        let body = format!("{name} {path} xff={}", forwarded.join(","));
        stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await?;
    }
}

/// One request through the proxy on a fresh connection: (status, body).
async fn get(port: u16, path: &str) -> Result<(u16, String)> {
    get_with(port, path, "").await
}

/// [`get`] with extra header lines (each ending in `\r\n`).
async fn get_with(port: u16, path: &str, headers: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: meetups.example.org\r\n{headers}Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer)).await??;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {answer:?}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test]
async fn rendered_proxy_routes_balances_upgrades_and_limits() -> Result<()> {
    let ports = free_ports(4);
    let mut api = Vec::new();
    for name in ["api-a", "api-b"] {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        api.push(listener.local_addr()?.to_string());
        tokio::spawn(tiny_server(name, listener));
    }
    let web_listener = TcpListener::bind("127.0.0.1:0").await?;
    let web = vec![web_listener.local_addr()?.to_string()];
    tokio::spawn(tiny_server("web", web_listener));

    const LIMIT: i32 = 8;
    let ingress = IngressSpec {
        enabled: true,
        host: Some("meetups.example.org".into()),
        rate_limit: Some(RateLimitSpec {
            requests: LIMIT,
            period: "1m".into(),
            status_code: 429,
            size: None,
            whitelist: Vec::new(),
        }),
        ..IngressSpec::default()
    };
    let config = haproxy_config::render(&ProxyConfig {
        ingress: &ingress,
        listen: Listen {
            address: "127.0.0.1".into(),
            http: ports[0],
            https: ports[1],
            stats: ports[2],
            healthz: ports[3],
        },
        upstreams: Upstreams::Static { api, web },
        certificate: String::new(),
        api_health_path: "/readyz",
    });
    let proxy = Haproxy::start(&config).await?;
    let port = ports[0];

    // Health and metrics answer on their own ports (these requests are not rate limited).
    let (status, _) = get(ports[3], "/healthz").await?;
    ensure!(status == 200, "healthz answered {status}");
    let (status, metrics) = get(ports[2], "/metrics").await?;
    ensure!(
        status == 200 && metrics.contains("haproxy_process_"),
        "metrics answered {status}"
    );

    // Both API servers pass their health check before the counted requests start.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut used = 0;
    let mut api_servers = std::collections::BTreeSet::new();
    for _ in 0..2 {
        let (status, body) = get(port, "/api/v1/meetups").await?;
        used += 1;
        ensure!(status == 200, "{status} {body}\n{}", proxy.log_tail(20));
        ensure!(
            body.starts_with("api-") && body.contains(" /api/v1/meetups "),
            "{body}"
        );
        // Exactly one entry: the client, appended by HAProxy (the API trusts this one hop).
        ensure!(body.ends_with("xff=127.0.0.1"), "{body}");
        api_servers.insert(
            body.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    ensure!(
        api_servers.len() == 2,
        "per-request balancing over both API servers, got {api_servers:?}"
    );
    // A client's own X-Forwarded-For stays on the left; HAProxy's entry, the one the API server
    // trusts (one hop), is the right-most.
    let (status, body) = get_with(port, "/api", "X-Forwarded-For: 203.0.113.9\r\n").await?;
    used += 1;
    ensure!(
        body.ends_with("xff=203.0.113.9,127.0.0.1"),
        "{status} {body}"
    );
    ensure!(status == 200 && body.starts_with("api-"), "{status} {body}");
    for path in ["/", "/m/abc", "/apiary"] {
        let (status, body) = get(port, path).await?;
        used += 1;
        ensure!(
            status == 200 && body.starts_with("web "),
            "{path}: {status} {body}"
        );
    }

    // A WebSocket upgrade passes through and the tunnel carries bytes both ways.
    let mut ws = TcpStream::connect(("127.0.0.1", port)).await?;
    ws.write_all(
        format!("GET /api/v1/meetups/x/live HTTP/1.1\r\nHost: meetups.example.org\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {WEBSOCKET_KEY}\r\n\r\n").as_bytes(),
    )
    .await?;
    used += 1;
    let mut head = vec![0u8; 12];
    tokio::time::timeout(WAIT, ws.read_exact(&mut head)).await??;
    ensure!(
        head.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    let mut rest = Vec::new();
    let mut byte = [0u8; 1];
    while !rest.ends_with(b"\r\n\r\n") {
        ws.read_exact(&mut byte).await?;
        rest.push(byte[0]);
    }
    ws.write_all(b"ping").await?;
    let mut echo = [0u8; 4];
    tokio::time::timeout(WAIT, ws.read_exact(&mut echo)).await??;
    ensure!(&echo == b"ping", "echo {echo:?}");
    drop(ws);

    // Up to the limit the requests pass; the next one gets the configured status.
    let passing = usize::try_from(LIMIT)? - used;
    for n in 0..passing {
        let (status, _) = get(port, "/").await?;
        ensure!(
            status == 200,
            "request {} of {LIMIT} answered {status}",
            used + n + 1
        );
    }
    let (status, body) = get(port, "/api/v1/meetups").await?;
    ensure!(
        status == 429,
        "request {} answered {status} {body}",
        LIMIT + 1
    );
    // Other ports stay reachable for the probes.
    eventually("healthz still answers", WAIT, || async {
        let (status, _) = get(ports[3], "/healthz").await?;
        ensure!(status == 200, "{status}");
        Ok(())
    })
    .await?;
    Ok(())
}
