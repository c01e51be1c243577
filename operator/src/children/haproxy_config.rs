//! `haproxy.cfg` of the platform's own HAProxy, rendered from `spec.ingress` alone (pure, no
//! Kubernetes API): the proxy needs no ServiceAccount token, so it can read no Secret at all.
//!
//! - One public frontend: HTTP, and HTTPS when `tls` is set (then plain HTTP is redirected).
//!   `/api` and `/api/...` (REST and the live WebSocket) go to the API server, the rest to web.
//! - `option forwardfor` appends the client address to X-Forwarded-For: the API server trusts
//!   exactly this one hop (`TRUSTED_PROXY_HOPS=1`, see `api_server`).
//! - `rateLimit`: a stick table of request rates per client address; over the limit, the
//!   configured status.
//! - Backends balance per request over the pods: in the cluster, `server-template` slots filled
//!   from the DNS records of headless Services (only ready pods are published); in tests, fixed
//!   addresses.
//! - A monitor frontend (`/healthz`) for the probes and the built-in Prometheus exporter
//!   (`/metrics`) on ports the public Service does not expose.
//!
//! Every value written into the file is either a constant or re-formatted from a parsed value
//! (durations, numbers, addresses), so no spec string can add a line to the configuration.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::crd::{IngressSpec, RateLimitSpec};

/// Where HAProxy listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// Address of every `bind` (empty: all addresses).
    pub address: String,
    pub http: u16,
    pub https: u16,
    /// `/metrics` (Prometheus exporter) and `/stats`.
    pub stats: u16,
    /// `/healthz` (monitor URI).
    pub healthz: u16,
}

/// The servers behind the two backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstreams {
    /// In the cluster: `slots` servers per backend, filled from the A/AAAA records of these host
    /// names (headless Services) by the resolvers of `/etc/resolv.conf`.
    Dns {
        api_host: String,
        web_host: String,
        port: u16,
        slots: u32,
    },
    /// Fixed `address:port` servers (tests).
    Static { api: Vec<String>, web: Vec<String> },
}

/// Everything the configuration depends on.
#[derive(Clone, Debug)]
pub struct ProxyConfig<'a> {
    pub ingress: &'a IngressSpec,
    pub listen: Listen,
    pub upstreams: Upstreams,
    /// Path of the PEM certificate; its key is next to it as `<path>.key` (HAProxy's
    /// `ssl-load-extra-files`). Used only when `ingress.tls` is set.
    pub certificate: String,
    /// Path of the API server's readiness endpoint, for health checks.
    pub api_health_path: &'static str,
}

/// `timeout server` (the upstream ingress controller's default; long API calls fit).
pub const SERVER_TIMEOUT: &str = "50s";
/// Size of the rate-limit table when the spec gives none.
pub const DEFAULT_TABLE_SIZE: &str = "100k";
/// Connections per HAProxy process: bounds its memory (two 16 kB buffers per busy connection)
/// and needs about twice as many file descriptors as the container's limit allows (HAProxy
/// refuses to start otherwise).
pub const MAX_CONNECTIONS: u32 = 4_096;

/// Render `haproxy.cfg`.
pub fn render(config: &ProxyConfig<'_>) -> String {
    let spec = config.ingress;
    let controller = &spec.controller;
    let listen = &config.listen;
    let at = |port: u16| format!("{}:{port}", listen.address);
    let tls = spec.tls.is_some();
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };

    line("# Rendered by the beer-meetup operator from spec.ingress; edits are overwritten.");
    line("global");
    line("    log stdout format raw local0 info");
    line(&format!("    maxconn {MAX_CONNECTIONS}"));
    line("    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets");
    // The key of `crt <file>` is read from `<file>.key` (how the TLS Secret is mounted).
    line("    ssl-load-extra-files key");
    line("");
    line("defaults");
    line("    mode http");
    line("    log global");
    line("    option httplog");
    line("    option dontlognull");
    // The client address for the API server's own rate limit and logs.
    line("    option forwardfor");
    line("    timeout connect 5s");
    line(&format!(
        "    timeout client {}",
        duration(&controller.client_timeout, "1m")
    ));
    line(&format!("    timeout server {SERVER_TIMEOUT}"));
    line("    timeout http-request 10s");
    line("    timeout http-keep-alive 1m");
    line("    timeout queue 5s");
    // Idle time of an upgraded (WebSocket) connection: live pages stay open for hours.
    line(&format!(
        "    timeout tunnel {}",
        duration(&controller.tunnel_timeout, "1h")
    ));
    line("    timeout client-fin 30s");
    line("");

    if let Upstreams::Dns { .. } = config.upstreams {
        line("resolvers cluster");
        line("    parse-resolv-conf");
        // Room for every pod's record in one answer (the default 512 bytes holds ~25).
        line("    accepted_payload_size 8192");
        line("    resolve_retries 3");
        line("    timeout resolve 1s");
        line("    timeout retry 1s");
        line("    hold valid 5s");
        line("    hold nx 5s");
        line("    hold obsolete 5s");
        line("");
    }

    line("frontend healthz");
    line(&format!("    bind {}", at(listen.healthz)));
    line("    monitor-uri /healthz");
    line("    option dontlog-normal");
    line("");
    line("frontend stats");
    line(&format!("    bind {}", at(listen.stats)));
    line("    option dontlog-normal");
    line("    http-request use-service prometheus-exporter if { path /metrics }");
    line("    stats enable");
    line("    stats uri /stats");
    line("    stats refresh 10s");
    line("");

    line("frontend public");
    line(&format!("    bind {}", at(listen.http)));
    if tls {
        line(&format!(
            "    bind {} ssl crt {} alpn h2,http/1.1",
            at(listen.https),
            config.certificate
        ));
        line("    http-request redirect scheme https code 301 unless { ssl_fc }");
    }
    line("    http-request set-header X-Forwarded-Proto https if { ssl_fc }");
    line("    http-request set-header X-Forwarded-Proto http unless { ssl_fc }");
    if let Some(limit) = &spec.rate_limit {
        for text in rate_limit_lines(limit) {
            line(&text);
        }
    }
    line("    use_backend api if { path /api } || { path_beg /api/ }");
    line("    default_backend web");
    line("");

    let upstream_lines = |name: &str, health: &str, out: &mut String| {
        let _ = writeln!(out, "backend {name}");
        let _ = writeln!(out, "    balance roundrobin");
        let _ = writeln!(out, "    option httpchk GET {health}");
        let _ = writeln!(out, "    http-check expect status 200");
        match &config.upstreams {
            Upstreams::Dns {
                api_host,
                web_host,
                port,
                slots,
            } => {
                let host = if name == "api" { api_host } else { web_host };
                // `init-addr none`: start even before the first answer; empty slots wait in
                // maintenance until a record fills them.
                let _ = writeln!(
                    out,
                    "    default-server check inter 2s fall 2 rise 1 resolvers cluster init-addr none"
                );
                let _ = writeln!(out, "    server-template {name} {slots} {host}:{port}");
            }
            Upstreams::Static { api, web } => {
                let _ = writeln!(out, "    default-server check inter 1s fall 2 rise 1");
                let servers = if name == "api" { api } else { web };
                for (index, address) in servers.iter().enumerate() {
                    let _ = writeln!(out, "    server {name}{} {address}", index + 1);
                }
            }
        }
        out.push('\n');
    };
    upstream_lines("api", config.api_health_path, &mut out);
    upstream_lines("web", "/", &mut out);
    if let Some(limit) = &spec.rate_limit {
        let period = duration(&limit.period, "1s");
        let size = limit
            .size
            .as_deref()
            .filter(|s| is_table_size(s))
            .unwrap_or(DEFAULT_TABLE_SIZE);
        let _ = writeln!(out, "backend rate_limit");
        let _ = writeln!(
            out,
            "    stick-table type ipv6 size {size} expire {period} store http_req_rate({period})"
        );
    }
    out
}

/// Track every client address not exempt; deny over `requests` per period.
fn rate_limit_lines(limit: &RateLimitSpec) -> Vec<String> {
    let mut lines = Vec::new();
    let exempt: Vec<String> = limit
        .whitelist
        .iter()
        .filter_map(|entry| parse_address_or_network(entry))
        .collect();
    let condition = if exempt.is_empty() {
        String::new()
    } else {
        lines.push(format!(
            "    acl rate_limit_exempt src {}",
            exempt.join(" ")
        ));
        " if !rate_limit_exempt".to_owned()
    };
    lines.push(format!(
        "    http-request track-sc0 src table rate_limit{condition}"
    ));
    lines.push(format!(
        "    http-request deny deny_status {} content-type text/plain string \"Too many requests\" if {{ sc_http_req_rate(0) gt {} }}",
        limit.status_code.clamp(400, 599),
        limit.requests.max(1)
    ));
    lines
}

/// `address` or `address/prefix`, re-formatted from the parsed value; `None` when it is neither.
pub fn parse_address_or_network(entry: &str) -> Option<String> {
    let (address, prefix) = match entry.trim().split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (entry.trim(), None),
    };
    let ip: IpAddr = address.parse().ok()?;
    match prefix {
        None => Some(ip.to_string()),
        Some(prefix) => {
            let bits: u8 = prefix.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            (bits <= max && prefix == bits.to_string()).then(|| format!("{ip}/{bits}"))
        }
    }
}

/// A validated duration (`<n><unit>`), or `fallback` (never reached after validation).
fn duration(value: &str, fallback: &'static str) -> String {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
    let (number, unit) = value.split_at(split);
    match (number.parse::<u64>(), unit) {
        (Ok(n), "ms" | "s" | "m" | "h" | "d") => format!("{n}{unit}"),
        _ => fallback.to_owned(),
    }
}

/// `100k`, `1m`, `5000` (the CRD's pattern).
fn is_table_size(value: &str) -> bool {
    let digits = value.trim_end_matches(['k', 'm']);
    value.len() - digits.len() <= 1
        && !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{IngressTlsSpec, RateLimitSpec};

    fn listen() -> Listen {
        Listen {
            address: String::new(),
            http: 8080,
            https: 8443,
            stats: 1024,
            healthz: 1042,
        }
    }

    fn dns() -> Upstreams {
        Upstreams::Dns {
            api_host: "demo-api-pods.team-a.svc.cluster.local".into(),
            web_host: "demo-web-pods.team-a.svc.cluster.local".into(),
            port: 8080,
            slots: 50,
        }
    }

    fn rendered(ingress: &IngressSpec) -> String {
        render(&ProxyConfig {
            ingress,
            listen: listen(),
            upstreams: dns(),
            certificate: "/etc/haproxy/tls/tls.pem".into(),
            api_health_path: "/readyz",
        })
    }

    fn ingress() -> IngressSpec {
        IngressSpec {
            enabled: true,
            host: Some("meetups.example.org".into()),
            ..IngressSpec::default()
        }
    }

    #[test]
    fn routes_api_and_websocket_to_the_api_and_the_rest_to_web() {
        let cfg = rendered(&ingress());
        assert!(cfg.contains("    use_backend api if { path /api } || { path_beg /api/ }\n"));
        assert!(cfg.contains("    default_backend web\n"));
        assert!(cfg.contains("    option forwardfor\n"));
        assert!(cfg.contains("    timeout tunnel 1h\n"));
        assert!(cfg.contains("    timeout client 1m\n"));
        assert!(cfg.contains("    bind :8080\n"));
        assert!(!cfg.contains("ssl crt"), "no TLS asked");
        assert!(!cfg.contains("redirect"), "no redirect without TLS");
        assert!(!cfg.contains("stick-table"), "no rate limit asked");
    }

    #[test]
    fn backends_balance_per_request_over_pod_records() {
        let cfg = rendered(&ingress());
        assert!(cfg.contains("resolvers cluster\n    parse-resolv-conf\n"));
        assert!(
            cfg.contains(
                "    server-template api 50 demo-api-pods.team-a.svc.cluster.local:8080\n"
            )
        );
        assert!(
            cfg.contains(
                "    server-template web 50 demo-web-pods.team-a.svc.cluster.local:8080\n"
            )
        );
        assert!(cfg.contains("init-addr none"));
        assert!(cfg.contains("    option httpchk GET /readyz\n"));
        assert_eq!(cfg.matches("balance roundrobin").count(), 2);
    }

    #[test]
    fn tls_adds_an_https_bind_and_redirects_http() {
        let mut spec = ingress();
        spec.tls = Some(IngressTlsSpec {
            secret_name: "meetups-tls".into(),
        });
        let cfg = rendered(&spec);
        assert!(cfg.contains("    bind :8443 ssl crt /etc/haproxy/tls/tls.pem alpn h2,http/1.1\n"));
        assert!(
            cfg.contains("    http-request redirect scheme https code 301 unless { ssl_fc }\n")
        );
        assert!(cfg.contains("    ssl-load-extra-files key\n"));
    }

    #[test]
    fn rate_limit_is_a_stick_table_per_client_address() {
        let mut spec = ingress();
        spec.rate_limit = Some(RateLimitSpec {
            requests: 100,
            period: "10s".into(),
            status_code: 429,
            size: Some("200k".into()),
            whitelist: vec![
                "10.0.0.0/8".into(),
                "192.168.1.1".into(),
                "fd00::/64".into(),
            ],
        });
        let cfg = rendered(&spec);
        assert!(
            cfg.contains(
                "    stick-table type ipv6 size 200k expire 10s store http_req_rate(10s)\n"
            )
        );
        assert!(cfg.contains("    acl rate_limit_exempt src 10.0.0.0/8 192.168.1.1 fd00::/64\n"));
        assert!(
            cfg.contains("    http-request track-sc0 src table rate_limit if !rate_limit_exempt\n")
        );
        assert!(cfg.contains("deny_status 429"));
        assert!(cfg.contains("if { sc_http_req_rate(0) gt 100 }"));
    }

    #[test]
    fn no_spec_string_can_add_a_line() {
        let mut spec = ingress();
        spec.controller.tunnel_timeout = "1h\n    stats uri /evil".into();
        spec.rate_limit = Some(RateLimitSpec {
            requests: 1,
            period: "1s\nbackend x".into(),
            status_code: 429,
            size: Some("1k\nfrontend y".into()),
            whitelist: vec!["1.2.3.4 }\n    http-request deny".into()],
        });
        let cfg = rendered(&spec);
        assert!(!cfg.contains("evil") && !cfg.contains("backend x"));
        assert!(!cfg.contains("frontend y") && !cfg.contains("1.2.3.4"));
        assert!(cfg.contains("timeout tunnel 1h\n"));
    }

    #[test]
    fn addresses_and_networks_are_parsed_not_copied() {
        assert_eq!(
            parse_address_or_network("10.0.0.0/8").as_deref(),
            Some("10.0.0.0/8")
        );
        assert_eq!(parse_address_or_network("::1").as_deref(), Some("::1"));
        assert_eq!(parse_address_or_network("10.0.0.0/33"), None);
        assert_eq!(parse_address_or_network("10.0.0.0/08"), None);
        assert_eq!(parse_address_or_network("example.org"), None);
        assert!(is_table_size("100k") && is_table_size("5000") && is_table_size("1m"));
        assert!(!is_table_size("0k") && !is_table_size("k") && !is_table_size("1kk"));
    }

    #[test]
    fn static_upstreams_list_each_server() {
        let cfg = render(&ProxyConfig {
            ingress: &ingress(),
            listen: Listen {
                address: "127.0.0.1".into(),
                ..listen()
            },
            upstreams: Upstreams::Static {
                api: vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()],
                web: vec!["127.0.0.1:3".into()],
            },
            certificate: String::new(),
            api_health_path: "/readyz",
        });
        assert!(cfg.contains("    bind 127.0.0.1:8080\n"));
        assert!(cfg.contains("    server api1 127.0.0.1:1\n    server api2 127.0.0.1:2\n"));
        assert!(cfg.contains("    server web1 127.0.0.1:3\n"));
        assert!(!cfg.contains("resolvers"));
    }
}
