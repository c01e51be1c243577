//! Stand-ins for a build without the `redis` feature (the embedded-only `make run` build, which
//! then compiles no Redis client). Configuring Redis fails at start with a clear message;
//! nothing of this can be built, so the cache and fan-out paths are never taken.

use std::sync::Arc;
use std::time::Duration;

use super::RedisTarget;
use crate::domain::MeetupView;
use crate::events::{BroadcastHub, EventSink, MeetupEvent};

use super::CachedView;

/// No value of this type exists: the stand-ins below cannot be built.
#[derive(Debug)]
enum Never {}

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error(
        "this api-server was built without Redis support (cargo feature `redis`); \
         unset REDIS_URL and REDIS_SENTINEL_URLS, or build with default features"
    )]
    NotBuilt,
}

#[derive(Debug)]
pub struct ViewCache(Never);

impl ViewCache {
    pub async fn get(&self, _meetup_id: &str) -> Option<CachedView> {
        match self.0 {}
    }

    pub fn fill(&self, _view: &MeetupView, _json: &str) {
        match self.0 {}
    }

    pub async fn invalidate(&self, _meetup_id: &str, _revision: i64) {
        match self.0 {}
    }
}

#[derive(Debug)]
pub struct RedisFanout(Never);

impl EventSink for RedisFanout {
    fn publish(&self, _event: MeetupEvent) {
        match self.0 {}
    }
}

#[derive(Debug)]
pub struct RedisLayer {
    pub cache: ViewCache,
    pub fanout: Arc<RedisFanout>,
}

impl RedisLayer {
    pub async fn start(
        _target: RedisTarget,
        _timeout: Duration,
        _hub: Arc<BroadcastHub>,
    ) -> Result<Self, RedisSetupError> {
        Err(RedisSetupError::NotBuilt)
    }
}
