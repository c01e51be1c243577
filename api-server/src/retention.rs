//! Retention: a meetup is deleted `MEETUP_RETENTION_DAYS` (default 90) after its last slot or
//! decision ended, with its participants and comments, so the volume does not fill with
//! forgotten polls. One sweeper task per replica; deleting twice is harmless.

use std::time::Duration;

use chrono::Utc;

use crate::events::Event;
use crate::http::AppState;

/// How many expired meetups one sweep deletes at most (the next sweep takes the rest).
const SWEEP_BATCH: usize = 500;

/// Deletes the meetups whose last slot ended more than `retention` ago; returns how many.
pub async fn sweep_once(app: &AppState, retention: Duration) -> usize {
    let Ok(retention) = chrono::Duration::from_std(retention) else {
        return 0;
    };
    let cutoff = Utc::now() - retention;
    let expired = match app.store.meetups_ended_before(cutoff, SWEEP_BATCH).await {
        Ok(expired) => expired,
        Err(error) => {
            tracing::warn!(%error, "retention sweep could not list expired meetups");
            return 0;
        }
    };
    let mut deleted = 0;
    for id in expired {
        let revision = match app.store.meetup(&id).await {
            Ok(Some(meetup)) => meetup.revision,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, meetup = %id, "retention sweep could not read a meetup");
                continue;
            }
        };
        match app.store.delete_meetup(&id).await {
            Ok(true) => {
                deleted += 1;
                // Live viewers are told it is gone, like a deletion by the organizer.
                app.publish(&id, revision + 1, Event::MeetupDeleted {})
                    .await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, meetup = %id, "retention sweep could not delete a meetup");
            }
        }
    }
    if deleted > 0 {
        metrics::counter!("meetups_expired_total").increment(deleted as u64);
        tracing::info!(deleted, "deleted meetups past their retention");
    }
    deleted
}

/// Sweeps every `every` (the first a minute after start) until the process ends.
pub fn spawn_sweeper(app: AppState, retention: Duration, every: Duration) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut tick = tokio::time::interval_at(start, every);
        loop {
            tick.tick().await;
            if app.lifecycle.is_stopping() {
                return;
            }
            sweep_once(&app, retention).await;
        }
    });
}
