//! Command-line flags with environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

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

    /// Redis URL for the cache and cross-replica live fan-out (used by the live layer).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

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
