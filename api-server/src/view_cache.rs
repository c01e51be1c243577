//! In-process cache of serialized meetup views: one JSON body per meetup revision, shared by
//! every GET, every WebSocket snapshot and the Redis cache fill, so a hot meetup is built and
//! serialized once per change instead of once per request.
//!
//! Correctness does not depend on invalidation: an entry is served only when its revision equals
//! the store's current revision (read through [`Store::view_stamp`], which the embedded store
//! answers from memory) and when the meetup's deadline has not flipped it from open to closed
//! since it was built. A write that some replica made, a lost invalidation or a restart can at
//! worst cost a rebuild, never a stale answer.
//!
//! Memory is bounded in bytes (moka's weigher, LRU-like eviction), and one view is bounded by
//! [`MAX_VIEW_BYTES`] by construction of the per-field limits (see `domain::limits`).
//!
//! [`Store::view_stamp`]: crate::store::Store::view_stamp

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::domain::limits::MAX_VIEW_BYTES;
use crate::store::ViewStamp;

/// Default byte budget of the cache (the operator's default pod limit is 512 MiB).
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// A serialized view: UTF-8 JSON in a reference-counted buffer, so handing it to a response,
/// a WebSocket or Redis copies nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct ViewJson(Bytes);

impl ViewJson {
    pub fn as_str(&self) -> &str {
        // Built only from `String` (see the `From` impls), so always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The bytes, for a response body (a reference-count increment, no copy).
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for ViewJson {
    fn from(json: String) -> Self {
        Self(Bytes::from(json))
    }
}

impl From<&str> for ViewJson {
    fn from(json: &str) -> Self {
        Self(Bytes::copy_from_slice(json.as_bytes()))
    }
}

impl fmt::Display for ViewJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ViewJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewJson({} bytes)", self.0.len())
    }
}

#[derive(Debug)]
struct Entry {
    revision: i64,
    built_at: DateTime<Utc>,
    json: ViewJson,
}

impl Entry {
    /// Whether this entry is what the store would serve now.
    fn matches(&self, stamp: &ViewStamp, now: DateTime<Utc>) -> bool {
        self.revision == stamp.revision
            && match stamp.closes_at {
                // The view shows "closed" from the deadline on: built and read on the same side.
                Some(deadline) => (self.built_at < deadline) == (now < deadline),
                None => true,
            }
    }
}

/// The cache; cheap to clone (shared).
#[derive(Clone)]
pub struct LocalViews {
    entries: moka::sync::Cache<String, Arc<Entry>>,
}

impl fmt::Debug for LocalViews {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalViews")
            .field("entries", &self.entries.entry_count())
            .field("bytes", &self.entries.weighted_size())
            .finish()
    }
}

impl Default for LocalViews {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_BYTES)
    }
}

impl LocalViews {
    /// A cache holding at most `max_bytes` of JSON (plus small per-entry overhead).
    pub fn new(max_bytes: u64) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|id: &String, entry: &Arc<Entry>| {
                let bytes = entry.json.len() + id.len() + 64;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        Self { entries }
    }

    /// The cached JSON if it is the current view according to `stamp`.
    pub fn get(&self, meetup_id: &str, stamp: &ViewStamp, now: DateTime<Utc>) -> Option<ViewJson> {
        let entry = self.entries.get(meetup_id)?;
        if entry.matches(stamp, now) {
            metrics::counter!("view_cache_requests_total", "result" => "hit").increment(1);
            Some(entry.json.clone())
        } else {
            metrics::counter!("view_cache_requests_total", "result" => "stale").increment(1);
            None
        }
    }

    /// Remembers the view of `revision`, built at `built_at`. An older revision never replaces a
    /// newer one; a view larger than [`MAX_VIEW_BYTES`] is not kept.
    pub fn put(&self, meetup_id: &str, revision: i64, built_at: DateTime<Utc>, json: ViewJson) {
        if json.len() > MAX_VIEW_BYTES {
            tracing::error!(
                meetup = meetup_id,
                bytes = json.len(),
                "a meetup view is larger than its cap; the per-field limits do not bound it"
            );
            return;
        }
        if self
            .entries
            .get(meetup_id)
            .is_some_and(|entry| entry.revision > revision)
        {
            return;
        }
        self.entries.insert(
            meetup_id.to_string(),
            Arc::new(Entry {
                revision,
                built_at,
                json,
            }),
        );
    }

    /// Frees a meetup's entry early (e.g. it was deleted); never needed for correctness.
    pub fn forget(&self, meetup_id: &str) {
        self.entries.invalidate(meetup_id);
    }

    /// Bytes held now (after pending maintenance), for tests and metrics.
    pub fn weighted_bytes(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn stamp(revision: i64, closes_at: Option<DateTime<Utc>>) -> ViewStamp {
        ViewStamp {
            revision,
            closes_at,
        }
    }

    #[test]
    fn serves_only_the_current_revision() {
        let views = LocalViews::default();
        let now = Utc::now();
        views.put("m", 3, now, ViewJson::from("{\"r\":3}"));
        assert_eq!(
            views.get("m", &stamp(3, None), now).map(|j| j.to_string()),
            Some("{\"r\":3}".to_string())
        );
        assert!(views.get("m", &stamp(4, None), now).is_none());
        assert!(views.get("other", &stamp(3, None), now).is_none());
    }

    #[test]
    fn an_older_revision_never_replaces_a_newer_one() {
        let views = LocalViews::default();
        let now = Utc::now();
        views.put("m", 5, now, ViewJson::from("new"));
        views.put("m", 4, now, ViewJson::from("old"));
        assert_eq!(
            views.get("m", &stamp(5, None), now).map(|j| j.to_string()),
            Some("new".to_string())
        );
    }

    #[test]
    fn a_deadline_between_build_and_read_makes_the_entry_stale() {
        let views = LocalViews::default();
        let built = Utc::now();
        let deadline = built + Duration::seconds(10);
        views.put("m", 1, built, ViewJson::from("open"));
        let before = stamp(1, Some(deadline));
        assert!(
            views
                .get("m", &before, built + Duration::seconds(5))
                .is_some()
        );
        assert!(
            views
                .get("m", &before, built + Duration::seconds(11))
                .is_none()
        );
        // Built after the deadline (shows closed): good for as long as nothing is written.
        views.put(
            "m",
            1,
            built + Duration::seconds(12),
            ViewJson::from("closed"),
        );
        assert!(
            views
                .get("m", &before, built + Duration::seconds(60))
                .is_some()
        );
    }

    #[test]
    fn memory_is_bounded_in_bytes() {
        let views = LocalViews::new(1024 * 1024);
        let now = Utc::now();
        let body = "x".repeat(100 * 1024);
        for i in 0..50 {
            views.put(&format!("m{i}"), 1, now, ViewJson::from(body.clone()));
        }
        assert!(views.weighted_bytes() <= 1024 * 1024);
    }

    #[test]
    fn oversized_views_are_not_kept() {
        let views = LocalViews::default();
        let now = Utc::now();
        views.put("m", 1, now, ViewJson::from("x".repeat(MAX_VIEW_BYTES + 1)));
        assert!(views.get("m", &stamp(1, None), now).is_none());
    }
}
