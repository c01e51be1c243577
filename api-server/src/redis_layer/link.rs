//! One shared connection to the Redis primary (found directly or through Sentinel), guarded by
//! a circuit flag: while Redis is unreachable every call returns at once with `None`, a single
//! background probe reconnects with backoff, and the outage is logged once, not per request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, RedisConnectionInfo, RedisResult};

pub use super::RedisTarget;

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("invalid Redis address: {0}")]
    InvalidAddress(#[from] redis::RedisError),
    #[error("REDIS_SENTINEL_URLS is empty")]
    NoSentinels,
}

/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

enum Resolver {
    Standalone(Client),
    // Tokio mutex: resolving the primary awaits network round trips.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

pub struct RedisLink {
    resolver: Resolver,
    /// The live connection; `None` while down.
    connection: Mutex<Option<MultiplexedConnection>>,
    up: AtomicBool,
    probing: AtomicBool,
    /// Redis answers but refuses commands (OOM, a script error): logged once until it accepts.
    refusing: AtomicBool,
    /// Per-command bound: a slow Redis must not slow requests down.
    timeout: Duration,
    /// Cache invalidations that could not be sent (meetup id → newest revision); sent before
    /// the cache is used again, so no replica serves a view older than a write it missed.
    pub(super) pending_invalidations: Mutex<HashMap<String, i64>>,
    /// Too many writes were missed to remember each: drop every cached view on recovery.
    pub(super) drop_all_views: AtomicBool,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("up", &self.is_up())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Errors that mean "the connection is unusable" (as opposed to e.g. a wrong command), so the
/// circuit opens. A demoted primary answers writes with READONLY: ask Sentinel again.
fn is_connection_error(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

impl RedisLink {
    /// Builds the link and tries to connect once; if Redis is not there yet the link starts
    /// down and keeps trying in the background.
    pub async fn start(
        target: RedisTarget,
        timeout: Duration,
    ) -> Result<Arc<Self>, RedisSetupError> {
        let resolver = match target {
            RedisTarget::Standalone { url } => Resolver::Standalone(Client::open(url)?),
            RedisTarget::Sentinel {
                sentinels,
                master,
                password,
            } => {
                if sentinels.is_empty() {
                    return Err(RedisSetupError::NoSentinels);
                }
                let mut node = RedisConnectionInfo::default();
                if let Some(password) = password {
                    node = node.set_password(password);
                }
                let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(node);
                let client = SentinelClient::build(
                    sentinels,
                    master,
                    Some(node),
                    SentinelServerType::Master,
                )?;
                Resolver::Sentinel(tokio::sync::Mutex::new(client))
            }
        };
        let link = Arc::new(Self {
            resolver,
            connection: Mutex::new(None),
            up: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            timeout,
            pending_invalidations: Mutex::new(HashMap::new()),
            drop_all_views: AtomicBool::new(false),
        });
        metrics::gauge!("redis_up").set(0.0);
        match link.connect().await {
            Ok(connection) => {
                *lock(&link.connection) = Some(connection);
                link.up.store(true, Ordering::SeqCst);
                metrics::gauge!("redis_up").set(1.0);
                tracing::info!("connected to Redis: shared cache and cross-replica live events on");
            }
            Err(error) => {
                tracing::warn!(%error, "Redis is not reachable yet: serving from the store, live events stay on this replica; retrying in the background");
                link.start_probe();
            }
        }
        Ok(link)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A client for the current primary (asks Sentinel when configured), e.g. for pub/sub.
    pub async fn primary_client(&self) -> RedisResult<Client> {
        match &self.resolver {
            Resolver::Standalone(client) => Ok(client.clone()),
            Resolver::Sentinel(sentinel) => {
                let resolve = async { sentinel.lock().await.async_get_client().await };
                match tokio::time::timeout(self.timeout * 8, resolve).await {
                    Ok(result) => result,
                    Err(_) => Err(timed_out()),
                }
            }
        }
    }

    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        let client = self.primary_client().await?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout * 4))
            .set_response_timeout(Some(self.timeout));
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING")
            .query_async::<()>(&mut connection)
            .await?;
        Ok(connection)
    }

    /// Runs `request` on the shared connection within the timeout; `None` when Redis is down,
    /// slow or failing (counted in `redis_errors_total`).
    pub async fn run<T, F, Fut>(self: &Arc<Self>, operation: &'static str, request: F) -> Option<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.is_up() {
            return None;
        }
        let connection = lock(&self.connection).clone()?;
        match tokio::time::timeout(self.timeout, request(connection)).await {
            Ok(Ok(value)) => {
                if self.refusing.swap(false, Ordering::SeqCst) {
                    tracing::info!(operation, "Redis accepts commands again");
                }
                Some(value)
            }
            Ok(Err(error)) if is_connection_error(&error) => {
                self.report_failure(operation, &error.to_string());
                None
            }
            Ok(Err(error)) => {
                metrics::counter!("redis_errors_total", "operation" => operation).increment(1);
                // Once per episode: a Redis out of memory would otherwise log on every request.
                if self.refusing.swap(true, Ordering::SeqCst) {
                    tracing::debug!(%error, operation, "Redis refused a command");
                } else {
                    tracing::warn!(%error, operation, "Redis refuses commands (logged once until it accepts again)");
                }
                None
            }
            Err(_) => {
                self.report_failure(operation, "timed out");
                None
            }
        }
    }

    /// Opens the circuit (logging only on the first failure of an outage) and starts the probe.
    pub fn report_failure(self: &Arc<Self>, operation: &'static str, error: &str) {
        metrics::counter!("redis_errors_total", "operation" => operation).increment(1);
        *lock(&self.connection) = None;
        if self.up.swap(false, Ordering::SeqCst) {
            metrics::gauge!("redis_up").set(0.0);
            tracing::warn!(
                error,
                operation,
                "Redis unreachable: cache bypassed, live events stay on this replica until it returns"
            );
        }
        self.start_probe();
    }

    fn start_probe(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let link = Arc::clone(self);
        tokio::spawn(async move {
            let mut delay = FIRST_BACKOFF;
            loop {
                tokio::time::sleep(delay).await;
                match link.connect().await {
                    Ok(connection) => match link.flush_pending_invalidations(&connection).await {
                        Ok(()) => {
                            *lock(&link.connection) = Some(connection);
                            // Clear `probing` first: a failure right after `up` must start a
                            // new probe.
                            link.probing.store(false, Ordering::SeqCst);
                            link.up.store(true, Ordering::SeqCst);
                            metrics::gauge!("redis_up").set(1.0);
                            tracing::info!(
                                "Redis reachable again: shared cache and cross-replica live events back on"
                            );
                            return;
                        }
                        Err(error) => {
                            tracing::debug!(%error, "Redis answers but invalidations failed")
                        }
                    },
                    Err(error) => tracing::debug!(%error, "Redis still unreachable"),
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        });
    }
}

pub(super) fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}
