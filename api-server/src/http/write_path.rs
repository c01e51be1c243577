//! The one way a stored write becomes visible (issue 13): **commit → invalidate → publish**.
//!
//! A handler that has a write acknowledged by the store calls [`AppState::committed`] before it
//! does anything else that can fail. The returned guard has already dropped the cached view; it
//! then publishes the handler's event, or — if the handler fails or is cancelled before that
//! (say, building the response view hits a store error) — its `Drop` still invalidates and asks
//! every live client of the meetup to reload, so a committed write is never hidden.
//!
//! Invalidation is an optimisation, not the guarantee: a cached view is served only when its
//! revision equals the store's current one (see `AppState::view_json`), so a lost invalidation,
//! an evicted key or a Redis failover can make a read slower, never stale.

use super::AppState;
use crate::events::{Event, MeetupEvent};

/// A write the store has acknowledged; see the module documentation.
#[must_use = "publish the write's event (dropping the guard only asks clients to resync)"]
pub struct Committed {
    app: AppState,
    meetup_id: String,
    revision: i64,
    invalidated: bool,
    published: bool,
}

impl AppState {
    /// Call right after the store acknowledged a write that produced `revision`: drops the
    /// cached view (awaited, so the writer's next read sees its write) and returns the guard
    /// that publishes the event.
    pub async fn committed(&self, meetup_id: &str, revision: i64) -> Committed {
        let mut guard = Committed {
            app: self.clone(),
            meetup_id: meetup_id.to_string(),
            revision,
            invalidated: false,
            published: false,
        };
        if let Some(redis) = &self.redis {
            redis.cache.invalidate(meetup_id, revision).await;
        }
        guard.invalidated = true;
        guard
    }
}

impl Committed {
    /// Fans the write's event out to every live client (this replica and, through Redis, the
    /// others).
    pub fn publish(mut self, event: Event) {
        self.published = true;
        self.app.events.publish(MeetupEvent {
            meetup_id: self.meetup_id.clone(),
            revision: self.revision,
            event,
        });
    }
}

impl Drop for Committed {
    fn drop(&mut self) {
        if !self.invalidated
            && let Some(redis) = self.app.redis.clone()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Cancelled while invalidating: finish it anyway.
            let (meetup_id, revision) = (self.meetup_id.clone(), self.revision);
            runtime.spawn(async move { redis.cache.invalidate(&meetup_id, revision).await });
        }
        if !self.published {
            metrics::counter!("writes_without_event_total").increment(1);
            tracing::warn!(
                meetup = %self.meetup_id,
                revision = self.revision,
                "a stored write could not be published; live clients resync"
            );
            self.app.events.resync(&self.meetup_id);
        }
    }
}
