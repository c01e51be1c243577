//! Command-line flags with environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

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

    /// Writes allowed per client IP per minute; 0 turns the limit off.
    #[arg(long, env = "WRITE_RATE_PER_MINUTE", default_value_t = 300)]
    pub write_rate_per_minute: u32,

    /// Writes a client may burst above the steady rate.
    #[arg(long, env = "WRITE_RATE_BURST", default_value_t = 60)]
    pub write_rate_burst: u32,

    /// Take the client IP from X-Forwarded-For (only behind a trusted ingress).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Largest accepted request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Log as JSON lines (for log collectors) instead of human-readable text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

impl Config {
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
}
