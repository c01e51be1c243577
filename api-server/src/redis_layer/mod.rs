//! Redis beside the store: cache-aside of meetup views and cross-replica live fan-out.
//! Optional (no Redis: in-process fan-out, no cache) and allowed to fail at run time (the
//! circuit in [`link`] turns both off until Redis answers again).

//!
//! Without the `redis` cargo feature (the embedded-only `make run` build) no Redis client is
//! compiled: [`disabled`] stands in, and configuring Redis is an error at start.

#[cfg(feature = "redis")]
pub mod cache;
#[cfg(not(feature = "redis"))]
mod disabled;
#[cfg(feature = "redis")]
pub mod fanout;
#[cfg(feature = "redis")]
pub mod link;

#[cfg(feature = "redis")]
use std::sync::Arc;
#[cfg(feature = "redis")]
use std::time::Duration;

#[cfg(feature = "redis")]
use rand::Rng;
#[cfg(feature = "redis")]
use tokio::task::JoinHandle;

#[cfg(feature = "redis")]
pub use cache::ViewCache;
#[cfg(not(feature = "redis"))]
pub use disabled::{RedisFanout, RedisLayer, RedisSetupError, ViewCache};
#[cfg(feature = "redis")]
pub use fanout::RedisFanout;
#[cfg(feature = "redis")]
pub use link::{RedisLink, RedisSetupError};

#[cfg(feature = "redis")]
use crate::events::BroadcastHub;
use crate::view_cache::ViewJson;

/// A cached view: its revision and its JSON, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedView {
    pub revision: i64,
    pub json: ViewJson,
}

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// `redis://[:password@]host:port[/db]`.
    Standalone { url: String },
    /// Sentinels (`redis://[:password@]host:port`, the password being the Sentinels' own), the
    /// master name to ask them for, and the password of the primary itself.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        password: Option<String>,
    },
}

/// Everything one process runs against Redis. Dropping it stops the background tasks.
#[cfg(feature = "redis")]
#[derive(Debug)]
pub struct RedisLayer {
    pub link: Arc<RedisLink>,
    pub cache: ViewCache,
    pub fanout: Arc<RedisFanout>,
    tasks: Vec<JoinHandle<()>>,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisFanout")
    }
}

#[cfg(feature = "redis")]
impl RedisLayer {
    /// Connects (or keeps trying in the background) and starts fan-out into `hub`.
    pub async fn start(
        target: RedisTarget,
        timeout: Duration,
        hub: Arc<BroadcastHub>,
    ) -> Result<Self, RedisSetupError> {
        let link = RedisLink::start(target, timeout).await?;
        // Tells this process's own messages apart from the other replicas'.
        let origin = format!("{:016x}", rand::rng().random::<u64>());
        let (fanout, tasks) = RedisFanout::start(hub, Arc::clone(&link), origin);
        Ok(Self {
            cache: ViewCache::new(Arc::clone(&link)),
            link,
            fanout,
            tasks,
        })
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisLayer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
