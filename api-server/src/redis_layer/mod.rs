//! Redis beside the store: cache-aside of meetup views and cross-replica live fan-out.
//! Optional (no Redis: in-process fan-out, no cache) and allowed to fail at run time (the
//! circuit in [`link`] turns both off until Redis answers again).

pub mod cache;
pub mod fanout;
pub mod link;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::task::JoinHandle;

pub use cache::{CachedView, ViewCache};
pub use fanout::RedisFanout;
pub use link::{RedisLink, RedisSetupError, RedisTarget};

use crate::events::BroadcastHub;

/// Everything one process runs against Redis. Dropping it stops the background tasks.
#[derive(Debug)]
pub struct RedisLayer {
    pub link: Arc<RedisLink>,
    pub cache: ViewCache,
    pub fanout: Arc<RedisFanout>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RedisFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisFanout")
    }
}

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

impl Drop for RedisLayer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
