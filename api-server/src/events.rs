//! Domain events: every successful write produces one, carrying the meetup's new revision.
//! Handlers hand them to an [`EventSink`]; the live layer (WebSocket, Redis fan-out) plugs in
//! behind that trait.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::domain::{CommentView, MeetupView, ParticipantView, PlaceView};

/// What changed, in the shape of docs/api.md "Live": `{"kind": "...", ...payload}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    ParticipantJoined { participant: ParticipantView },
    ParticipantUpdated { participant: ParticipantView },
    ParticipantLeft { participant_id: String },
    PlaceAdded { place: PlaceView },
    PlaceUpdated { place: PlaceView },
    PlaceRemoved { place_id: String },
    CommentAdded { comment: CommentView },
    CommentRemoved { comment_id: String },
    MeetupUpdated { meetup: Box<MeetupView> },
    MeetupFinalized { meetup: Box<MeetupView> },
    MeetupDeleted {},
}

/// An event addressed to one meetup, stamped with the revision the write produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetupEvent {
    pub meetup_id: String,
    pub revision: i64,
    pub event: Event,
}

/// Where handlers publish events. Publishing never fails the request: a write that is stored
/// is a success even when nobody is listening.
pub trait EventSink: Send + Sync + 'static {
    fn publish(&self, event: MeetupEvent);
}

/// Drops events; for tools and benchmarks that have no listeners.
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn publish(&self, _event: MeetupEvent) {}
}

/// In-process fan-out: one `tokio::sync::broadcast` channel per meetup with listeners.
#[derive(Debug)]
pub struct BroadcastHub {
    capacity: usize,
    channels: Mutex<HashMap<String, broadcast::Sender<MeetupEvent>>>,
}

impl Default for BroadcastHub {
    fn default() -> Self {
        Self::new(256)
    }
}

impl BroadcastHub {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Listen to one meetup's events. A receiver that lags gets `RecvError::Lagged` and
    /// should refetch the snapshot.
    pub fn subscribe(&self, meetup_id: &str) -> broadcast::Receiver<MeetupEvent> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        channels
            .entry(meetup_id.to_string())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// How many receivers listen to a meetup right now (presence).
    pub fn listeners(&self, meetup_id: &str) -> usize {
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        channels.get(meetup_id).map_or(0, |tx| tx.receiver_count())
    }
}

impl EventSink for BroadcastHub {
    fn publish(&self, event: MeetupEvent) {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(sender) = channels.get(&event.meetup_id) else {
            return;
        };
        let deleted = matches!(event.event, Event::MeetupDeleted {});
        let meetup_id = event.meetup_id.clone();
        // A send error only means nobody listens any more: forget the channel.
        if sender.send(event).is_err() || deleted {
            channels.remove(&meetup_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_the_contract_says() {
        let event = Event::ParticipantLeft {
            participant_id: "p1".into(),
        };
        let json = serde_json::to_value(&event).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"kind": "participantLeft", "participantId": "p1"})
        );
        let json = serde_json::to_value(Event::MeetupDeleted {}).expect("serializes");
        assert_eq!(json, serde_json::json!({"kind": "meetupDeleted"}));
    }

    #[tokio::test]
    async fn hub_delivers_to_subscribers_of_that_meetup_only() {
        let hub = BroadcastHub::default();
        let mut rx = hub.subscribe("m1");
        assert_eq!(hub.listeners("m1"), 1);
        hub.publish(MeetupEvent {
            meetup_id: "m2".into(),
            revision: 2,
            event: Event::MeetupDeleted {},
        });
        hub.publish(MeetupEvent {
            meetup_id: "m1".into(),
            revision: 3,
            event: Event::CommentRemoved {
                comment_id: "c".into(),
            },
        });
        let got = rx.recv().await.expect("event");
        assert_eq!(got.revision, 3);
    }
}
