//! Command-line flags with environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use clap::Parser;

use crate::http::client::TrustedProxies;
use crate::http::server::ServerLimits;
use crate::http::{LiveLimits, RateLimit, Settings};
use crate::redis_layer::RedisTarget;

#[derive(Debug, Clone, Parser)]
#[command(name = "api-server", version, about = "The Beer Meetup API server")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// MongoDB connection string; without it the embedded store in --data-dir is used.
    #[arg(long, env = "MONGODB_URI")]
    pub mongodb_uri: Option<String>,

    /// MongoDB database name.
    #[arg(long, env = "MONGODB_DATABASE", default_value = "beermeetup")]
    pub mongodb_database: String,

    /// Redis URL for the view cache and cross-replica live fan-out; without it (and without
    /// Sentinels) live events stay in this process and nothing is cached.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Redis Sentinels (comma-separated `redis://[:password@]host:port`); with them the primary
    /// is found and followed through failovers. Takes precedence over --redis-url.
    #[arg(long, env = "REDIS_SENTINEL_URLS", value_delimiter = ',')]
    pub redis_sentinel_urls: Vec<String>,

    /// The master name the Sentinels monitor.
    #[arg(long, env = "REDIS_SENTINEL_MASTER", default_value = "mymaster")]
    pub redis_sentinel_master: String,

    /// Password of the Redis primary when it is found through Sentinel.
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// Longest wait for one Redis command before Redis counts as down (milliseconds).
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,

    /// Elasticsearch base URL for place suggestions (e.g. `http://beer-elasticsearch:9200`);
    /// without it suggestions come from the store.
    #[arg(long, env = "ELASTICSEARCH_URL")]
    pub elasticsearch_url: Option<String>,

    /// Elasticsearch user (basic authentication).
    #[arg(long, env = "ELASTICSEARCH_USERNAME")]
    pub elasticsearch_username: Option<String>,

    /// Elasticsearch password; set it in the environment (a flag would show in `ps`).
    #[arg(
        long = "elasticsearch-password",
        env = "ELASTICSEARCH_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub elasticsearch_password: Option<String>,

    /// Index holding the places.
    #[arg(
        long,
        env = "ELASTICSEARCH_INDEX",
        default_value = "beer-meetup-places"
    )]
    pub elasticsearch_index: String,

    /// Folder of the embedded store.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Built web app to serve (index.html fallback for client-side routes).
    #[arg(long, env = "WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// The address people open (e.g. `https://beer.example.org`): calendar files link back to
    /// the meetup page there. Without it the request's Host (and, behind trusted proxies,
    /// X-Forwarded-Proto) is used.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<url::Url>,

    /// Writes allowed per client IP per minute; 0 turns the limit off.
    #[arg(long, env = "WRITE_RATE_PER_MINUTE", default_value_t = 300)]
    pub write_rate_per_minute: u32,

    /// Writes a client may burst above the steady rate.
    #[arg(long, env = "WRITE_RATE_BURST", default_value_t = 60)]
    pub write_rate_burst: u32,

    /// Reads (GET/HEAD, WebSocket upgrades) allowed per client per minute; 0 turns it off.
    #[arg(long, env = "READ_RATE_PER_MINUTE", default_value_t = 1200)]
    pub read_rate_per_minute: u32,

    /// Reads a client may burst above the steady rate.
    #[arg(long, env = "READ_RATE_BURST", default_value_t = 200)]
    pub read_rate_burst: u32,

    /// How many proxies in front of this server append to X-Forwarded-For (the HAProxy the
    /// operator runs is 1). The client is the entry left of that many hops; 0 uses the socket
    /// address.
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,

    /// Networks of trusted proxies (comma-separated CIDRs, e.g. `10.0.0.0/8`); X-Forwarded-For
    /// entries from them are skipped from the right.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Deprecated: the same as `--trusted-proxy-hops 1`.
    #[arg(
        long,
        env = "TRUST_FORWARDED_FOR",
        default_value_t = false,
        hide = true
    )]
    pub trust_forwarded_for: bool,

    /// Seconds a client has to send a request head (also the idle keep-alive limit).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds a request may take (a WebSocket only until it is upgraded).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Seconds a socket write may make no progress before the connection is closed.
    #[arg(long, env = "SEND_STALL_TIMEOUT_SECS", default_value_t = 15)]
    pub send_stall_timeout_secs: u64,

    /// Open connections per replica; beyond it new connections are closed at once.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Days a meetup is kept after its last slot or decision ended; 0 keeps meetups for ever.
    #[arg(long, env = "MEETUP_RETENTION_DAYS", default_value_t = 90)]
    pub meetup_retention_days: u64,

    /// Meetups one client may create per day; 0 turns the quota off.
    #[arg(long, env = "MEETUPS_PER_CLIENT_PER_DAY", default_value_t = 100)]
    pub meetups_per_client_per_day: u32,

    /// Open live (WebSocket) connections per client.
    #[arg(long, env = "MAX_LIVE_PER_CLIENT", default_value_t = 32)]
    pub max_live_per_client: usize,

    /// Open live (WebSocket) connections per meetup on one replica.
    #[arg(long, env = "MAX_LIVE_PER_MEETUP", default_value_t = 500)]
    pub max_live_per_meetup: usize,

    /// Largest accepted request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Log as JSON lines (for log collectors) instead of human-readable text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

/// A CIDR (`10.0.0.0/8`) or a single address, surrounding spaces allowed.
fn parse_network(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("\"{value}\" is not a CIDR such as 10.0.0.0/8 or an IP address"))
}

impl Config {
    /// The HTTP settings these flags ask for (the web folder is checked by `main`).
    pub fn settings(&self) -> Settings {
        let limit = |per_minute: u32, burst: u32| {
            (per_minute > 0).then_some(RateLimit { per_minute, burst })
        };
        let defaults = Settings::default();
        Settings {
            max_body_bytes: self.max_body_bytes,
            write_rate_limit: limit(self.write_rate_per_minute, self.write_rate_burst),
            read_rate_limit: limit(self.read_rate_per_minute, self.read_rate_burst),
            trusted_proxies: TrustedProxies {
                hops: if self.trust_forwarded_for {
                    self.trusted_proxy_hops.max(1)
                } else {
                    self.trusted_proxy_hops
                },
                networks: self.trusted_proxies.clone(),
            },
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            live_limits: LiveLimits {
                per_client: self.max_live_per_client.max(1),
                per_meetup: self.max_live_per_meetup.max(1),
                ..defaults.live_limits
            },
            meetups_per_client_per_day: (self.meetups_per_client_per_day > 0)
                .then_some(self.meetups_per_client_per_day),
            web_dir: self.web_dir.clone(),
            public_url: self.public_url.as_ref().map(|url| url.to_string()),
        }
    }

    /// Connection-level limits for [`crate::http::server::serve`].
    pub fn server_limits(&self) -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            send_stall_timeout: Duration::from_secs(self.send_stall_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }

    /// Where Redis is, if anywhere: Sentinels first, else the plain URL.
    pub fn redis_target(&self) -> Option<RedisTarget> {
        let sentinels: Vec<String> = self
            .redis_sentinel_urls
            .iter()
            .map(|url| url.trim().to_string())
            .filter(|url| !url.is_empty())
            .collect();
        if !sentinels.is_empty() {
            return Some(RedisTarget::Sentinel {
                sentinels,
                master: self.redis_sentinel_master.clone(),
                password: self.redis_password.clone().filter(|p| !p.is_empty()),
            });
        }
        self.redis_url
            .as_ref()
            .filter(|url| !url.trim().is_empty())
            .map(|url| RedisTarget::Standalone {
                url: url.trim().to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("api-server").chain(args.iter().copied()))
            .expect("parses")
    }

    #[test]
    fn sentinels_win_over_the_plain_url() {
        let config = parse(&[
            "--redis-url",
            "redis://a:6379/",
            "--redis-sentinel-urls",
            "redis://s1:26379, redis://s2:26379",
            "--redis-password",
            "pw",
        ]);
        assert_eq!(
            config.redis_target(),
            Some(RedisTarget::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                master: "mymaster".into(),
                password: Some("pw".into()),
            })
        );
        let config = parse(&["--redis-url", "redis://a:6379/"]);
        assert_eq!(
            config.redis_target(),
            Some(RedisTarget::Standalone {
                url: "redis://a:6379/".into()
            })
        );
        assert_eq!(parse(&[]).redis_target(), None);
    }

    #[test]
    fn trusted_proxies_come_from_hops_and_cidrs() {
        let config = parse(&[
            "--trusted-proxy-hops",
            "1",
            "--trusted-proxies",
            "10.0.0.0/8, fd00::/8",
        ]);
        let trusted = config.settings().trusted_proxies;
        assert_eq!(trusted.hops, 1);
        assert_eq!(trusted.networks.len(), 2);
        assert_eq!(
            parse(&[]).settings().trusted_proxies,
            TrustedProxies::default()
        );
        assert!(Config::try_parse_from(["api-server", "--trusted-proxies", "nonsense"]).is_err());
    }
}
