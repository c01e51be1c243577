//! Cache-aside of the assembled meetup view.
//!
//! Keys: `beermeetup:view:{id}` holds `"{revision}\n{view json}"`; `beermeetup:floor:{id}` holds
//! the newest revision any write has invalidated. Read: GET → hit, or miss → the caller builds
//! the view from the store → fill. Write: after the store write, raise the floor and DEL the view
//! in one script.
//!
//! The race (a reader builds a view, a write lands and invalidates, then the reader's fill
//! arrives with the old data) is closed by the floor: the fill script only writes a view whose
//! revision is at least the floor, so a fill older than any invalidation is refused. The view
//! is assembled from several documents read one after another, so it may carry newer data
//! than its revision says — never older, which is what matters here.
//!
//! TTL: until the deadline while the meetup is open (its status flips to closed then, which the
//! view shows), else one week; the floor lives a day longer than any view.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Script;

use super::CachedView;
use super::link::RedisLink;
use crate::domain::{MeetupView, Status};
use crate::view_cache::ViewJson;

const VIEW_PREFIX: &str = "beermeetup:view:";
const FLOOR_PREFIX: &str = "beermeetup:floor:";
/// Upper bound on how long a view stays cached.
pub const MAX_VIEW_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const FLOOR_TTL: Duration = Duration::from_secs(8 * 24 * 3600);
/// Invalidations remembered one by one during an outage; beyond it every view is dropped on
/// recovery instead (memory stays bounded however long Redis is away).
const MAX_PENDING_INVALIDATIONS: usize = 10_000;

/// KEYS: view, floor. ARGV: revision, value, ttl seconds. Refuses a fill older than the floor.
const FILL: &str = r"
local floor = tonumber(redis.call('GET', KEYS[2]) or '-1')
if floor > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
";

/// KEYS: view, floor. ARGV: revision, floor ttl seconds. Raises the floor, drops the view.
const INVALIDATE: &str = r"
local floor = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[1]) > floor then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
redis.call('DEL', KEYS[1])
return 1
";

fn view_key(meetup_id: &str) -> String {
    format!("{VIEW_PREFIX}{meetup_id}")
}

fn floor_key(meetup_id: &str) -> String {
    format!("{FLOOR_PREFIX}{meetup_id}")
}

/// How long a view may be cached: an open meetup's status changes at its deadline.
pub fn view_ttl(view: &MeetupView, now: DateTime<Utc>) -> Duration {
    match (view.status, view.deadline) {
        (Status::Open, Some(deadline)) => (deadline - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_secs(1), MAX_VIEW_TTL),
        _ => MAX_VIEW_TTL,
    }
}

#[derive(Debug, Clone)]
pub struct ViewCache {
    link: Arc<RedisLink>,
    fill: Arc<Script>,
    invalidate: Arc<Script>,
}

impl ViewCache {
    pub fn new(link: Arc<RedisLink>) -> Self {
        Self {
            link,
            fill: Arc::new(Script::new(FILL)),
            invalidate: Arc::new(Script::new(INVALIDATE)),
        }
    }

    /// The cached view, or `None` (miss, or Redis unavailable: counted as bypass).
    pub async fn get(&self, meetup_id: &str) -> Option<CachedView> {
        if !self.link.is_up() {
            metrics::counter!("cache_requests_total", "result" => "bypass").increment(1);
            return None;
        }
        let key = view_key(meetup_id);
        let value: Option<Option<String>> = self
            .link
            .run("cache_get", |mut connection| async move {
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
            })
            .await;
        let parsed = value.flatten().and_then(|value| {
            let (revision, json) = value.split_once('\n')?;
            Some(CachedView {
                revision: revision.parse().ok()?,
                json: ViewJson::from(json),
            })
        });
        let result = match (&parsed, self.link.is_up()) {
            (Some(_), _) => "hit",
            (None, true) => "miss",
            (None, false) => "bypass",
        };
        metrics::counter!("cache_requests_total", "result" => result).increment(1);
        parsed
    }

    /// Stores a freshly built view in the background (the response does not wait for it).
    pub fn fill(&self, view: &MeetupView, json: &str) {
        if !self.link.is_up() {
            return;
        }
        let ttl = view_ttl(view, Utc::now());
        let keys = (view_key(&view.id), floor_key(&view.id));
        let value = format!("{}\n{json}", view.revision);
        let revision = view.revision;
        let cache = self.clone();
        tokio::spawn(async move {
            let script = Arc::clone(&cache.fill);
            cache
                .link
                .run("cache_fill", |mut connection| async move {
                    script
                        .key(keys.0)
                        .key(keys.1)
                        .arg(revision)
                        .arg(value)
                        .arg(ttl.as_secs().max(1))
                        .invoke_async::<i64>(&mut connection)
                        .await
                })
                .await;
        });
    }

    /// Drops the cached view after a write that produced `revision`. When Redis cannot be
    /// reached the invalidation is kept and sent before the cache is used again.
    pub async fn invalidate(&self, meetup_id: &str, revision: i64) {
        let script = Arc::clone(&self.invalidate);
        let (view, floor) = (view_key(meetup_id), floor_key(meetup_id));
        let done = self
            .link
            .run("cache_invalidate", |mut connection| async move {
                invoke_invalidate(&script, &mut connection, view, floor, revision).await
            })
            .await;
        if done.is_none() {
            let mut pending = self
                .link
                .pending_invalidations
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if pending.len() >= MAX_PENDING_INVALIDATIONS && !pending.contains_key(meetup_id) {
                pending.clear();
                self.link
                    .drop_all_views
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            let newest = pending.entry(meetup_id.to_string()).or_insert(revision);
            *newest = (*newest).max(revision);
        }
    }
}

async fn invoke_invalidate(
    script: &Script,
    connection: &mut redis::aio::MultiplexedConnection,
    view: String,
    floor: String,
    revision: i64,
) -> redis::RedisResult<i64> {
    script
        .key(view)
        .key(floor)
        .arg(revision)
        .arg(FLOOR_TTL.as_secs())
        .invoke_async(connection)
        .await
}

impl RedisLink {
    /// Sends the invalidations that failed during an outage; called before the link is up again.
    pub(super) async fn flush_pending_invalidations(
        &self,
        connection: &redis::aio::MultiplexedConnection,
    ) -> redis::RedisResult<()> {
        let pending: Vec<(String, i64)> = self
            .pending_invalidations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .drain()
            .collect();
        let mut connection = connection.clone();
        if self
            .drop_all_views
            .swap(false, std::sync::atomic::Ordering::SeqCst)
            && let Err(error) = drop_all_views(&mut connection, self.timeout()).await
        {
            self.drop_all_views
                .store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(error);
        }
        let script = Script::new(INVALIDATE);
        for (index, (meetup_id, revision)) in pending.iter().enumerate() {
            let sent = tokio::time::timeout(
                self.timeout(),
                invoke_invalidate(
                    &script,
                    &mut connection,
                    view_key(meetup_id),
                    floor_key(meetup_id),
                    *revision,
                ),
            )
            .await
            .unwrap_or_else(|_| Err(super::link::timed_out()));
            if let Err(error) = sent {
                // Keep what is not done for the next attempt.
                let mut still = self
                    .pending_invalidations
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                for (meetup_id, revision) in &pending[index..] {
                    let newest = still.entry(meetup_id.clone()).or_insert(*revision);
                    *newest = (*newest).max(*revision);
                }
                return Err(error);
            }
        }
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len(),
                "sent cache invalidations missed during the Redis outage"
            );
        }
        Ok(())
    }
}

/// Deletes every cached view (SCAN, so Redis is never blocked for long).
async fn drop_all_views(
    connection: &mut redis::aio::MultiplexedConnection,
    timeout: Duration,
) -> redis::RedisResult<()> {
    let mut cursor: u64 = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        let step = scan
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{VIEW_PREFIX}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async::<(u64, Vec<String>)>(connection);
        let (next, keys) = tokio::time::timeout(timeout, step)
            .await
            .unwrap_or_else(|_| Err(super::link::timed_out()))?;
        if !keys.is_empty() {
            let mut unlink = redis::cmd("UNLINK");
            let unlink = unlink.arg(&keys).query_async::<i64>(connection);
            tokio::time::timeout(timeout, unlink)
                .await
                .unwrap_or_else(|_| Err(super::link::timed_out()))?;
        }
        if next == 0 {
            tracing::info!("dropped every cached view after a long Redis outage");
            return Ok(());
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced() {
        assert_eq!(view_key("abc"), "beermeetup:view:abc");
        assert_eq!(floor_key("abc"), "beermeetup:floor:abc");
    }
}
