//! Domain events: every successful write produces one, carrying the meetup's new revision.
//! Handlers hand them to an [`EventSink`]; the live layer (WebSocket, Redis fan-out) plugs in
//! behind that trait.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::broadcast;
use tungstenite_ws::tungstenite::Utf8Bytes;

use crate::domain::{CommentView, MeetupChanges, ParticipantView, PlaceView};

/// What changed, in the shape of docs/api.md "Live": `{"kind": "...", ...payload}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    ParticipantJoined {
        participant: ParticipantView,
    },
    /// Shared with the PATCH's response, which is the same view.
    ParticipantUpdated {
        participant: Arc<ParticipantView>,
    },
    ParticipantLeft {
        participant_id: String,
    },
    PlaceAdded {
        place: PlaceView,
    },
    PlaceUpdated {
        place: PlaceView,
    },
    PlaceRemoved {
        place_id: String,
    },
    CommentAdded {
        comment: CommentView,
    },
    CommentRemoved {
        comment_id: String,
    },
    /// The meetup's own fields that changed (title, description, deadline, status, decision,
    /// …), never the whole view: every event stays a few KiB however full the meetup is.
    MeetupUpdated {
        changes: MeetupChanges,
    },
    MeetupFinalized {
        changes: MeetupChanges,
    },
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

    /// A write to this meetup was stored but its event cannot be sent (building it failed):
    /// every listener of the meetup, on every replica, should reload a snapshot.
    fn resync(&self, _meetup_id: &str) {}
}

/// Drops events; for tools and benchmarks that have no listeners.
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn publish(&self, _event: MeetupEvent) {}
}

/// How many recent events per meetup are kept so a reconnecting client can resume with
/// `?since=n` instead of downloading a new snapshot.
pub const REPLAY_EVENTS: usize = 64;

/// Meetups whose recent events are remembered at most; beyond it the longest-idle meetup
/// without listeners is forgotten (its clients then resume with a snapshot).
pub const REPLAY_MEETUPS: usize = 2048;

/// Frame bytes of recent events kept per meetup. A larger event is delivered but not
/// remembered: a client resuming across it gets a snapshot instead.
pub const REPLAY_BYTES: usize = 64 * 1024;

/// Frame bytes of recent events kept for all meetups together. `REPLAY_MEETUPS` × `REPLAY_BYTES`
/// would allow 128 MiB per replica; beyond this budget the longest-idle meetups lose their
/// history first (their clients resume with a snapshot, which is always correct).
pub const REPLAY_TOTAL_BYTES: usize = 16 * 1024 * 1024;

/// An event ready to go out: serialized once, shared by every connection of every listener.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub meetup_id: String,
    pub revision: i64,
    /// The meetup is gone; connections close after sending this.
    pub deleted: bool,
    /// The whole WebSocket text frame: `{"type":"event","revision":n,"event":{...}}`.
    pub frame: Utf8Bytes,
}

impl LiveEvent {
    pub fn from_event(event: &MeetupEvent) -> Option<Self> {
        let frame = serde_json::to_string(&EventFrame {
            kind: "event",
            revision: event.revision,
            event: &event.event,
        })
        .ok()?;
        Some(Self {
            meetup_id: event.meetup_id.clone(),
            revision: event.revision,
            deleted: matches!(event.event, Event::MeetupDeleted {}),
            frame: Utf8Bytes::from(frame),
        })
    }
}

/// The text frame of one event, serialized straight from the event (going through a
/// `serde_json::Value` first cost a map allocation per availability entry on every vote).
#[derive(Serialize)]
struct EventFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    revision: i64,
    event: &'a Event,
}

/// What a WebSocket connection receives from the hub.
#[derive(Debug, Clone)]
pub enum HubMessage {
    Event(Arc<LiveEvent>),
    /// Events may have been missed (the cross-replica feed was down): send a fresh snapshot.
    Resync,
}

#[derive(Debug)]
struct MeetupChannel {
    sender: broadcast::Sender<HubMessage>,
    /// Recent events in revision order, for `?since=n` resumption.
    recent: VecDeque<Arc<LiveEvent>>,
    /// Frame bytes held in `recent` (bounded by [`REPLAY_BYTES`]).
    recent_bytes: usize,
    touched: Instant,
}

/// In-process fan-out: one `tokio::sync::broadcast` channel per meetup, plus a short history
/// of each meetup's recent events.
#[derive(Debug)]
pub struct BroadcastHub {
    capacity: usize,
    channels: Mutex<HashMap<String, MeetupChannel>>,
    /// Frame bytes remembered over all channels (changed only under the `channels` lock).
    remembered_bytes: AtomicUsize,
    /// Viewers connected to other replicas, as last reported through Redis.
    remote_presence: Mutex<HashMap<String, usize>>,
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
            remembered_bytes: AtomicUsize::new(0),
            remote_presence: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, MeetupChannel>> {
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn channel<'a>(
        &self,
        channels: &'a mut HashMap<String, MeetupChannel>,
        meetup_id: &str,
    ) -> &'a mut MeetupChannel {
        if !channels.contains_key(meetup_id)
            && channels.len() >= REPLAY_MEETUPS
            && let Some(forgotten) = forget_idle_meetup(channels)
        {
            self.remembered_bytes
                .fetch_sub(forgotten.recent_bytes, Ordering::Relaxed);
        }
        let channel = channels
            .entry(meetup_id.to_string())
            .or_insert_with(|| MeetupChannel {
                sender: broadcast::channel(self.capacity).0,
                recent: VecDeque::new(),
                recent_bytes: 0,
                touched: Instant::now(),
            });
        channel.touched = Instant::now();
        channel
    }

    /// Listen to one meetup's events. A receiver that lags gets `RecvError::Lagged` and
    /// should send a fresh snapshot.
    pub fn subscribe(&self, meetup_id: &str) -> broadcast::Receiver<HubMessage> {
        self.subscribe_with_recent(meetup_id).0
    }

    /// Listen to a meetup and get its remembered recent events, atomically: every event is
    /// either in the list or will arrive on the receiver (or both).
    pub fn subscribe_with_recent(
        &self,
        meetup_id: &str,
    ) -> (broadcast::Receiver<HubMessage>, Vec<Arc<LiveEvent>>) {
        let mut channels = self.lock();
        let channel = self.channel(&mut channels, meetup_id);
        (
            channel.sender.subscribe(),
            channel.recent.iter().cloned().collect(),
        )
    }

    /// How many receivers listen to a meetup in this process right now.
    pub fn listeners(&self, meetup_id: &str) -> usize {
        self.lock()
            .get(meetup_id)
            .map_or(0, |channel| channel.sender.receiver_count())
    }

    /// People looking at a meetup: here plus on the other replicas (when Redis reports them).
    pub fn presence(&self, meetup_id: &str) -> usize {
        let remote = self
            .remote_presence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(meetup_id)
            .copied()
            .unwrap_or(0);
        self.listeners(meetup_id) + remote
    }

    /// Meetups with listeners in this process and how many.
    pub fn local_presence(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .map(|(id, channel)| (id.clone(), channel.sender.receiver_count()))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// Replaces what the other replicas report (meetup id → viewers there).
    pub fn set_remote_presence(&self, remote: HashMap<String, usize>) {
        *self
            .remote_presence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = remote;
    }

    /// Delivers an already serialized event to this process's listeners and remembers it.
    pub fn deliver(&self, event: Arc<LiveEvent>) {
        let mut channels = self.lock();
        let channel = self.channel(&mut channels, &event.meetup_id);
        // Events from other replicas may overtake each other; keep the history sorted.
        let at = channel
            .recent
            .iter()
            .rposition(|e| e.revision < event.revision)
            .map_or(0, |i| i + 1);
        let before = channel.recent_bytes;
        let size = event.frame.len();
        if size <= REPLAY_BYTES {
            channel.recent.insert(at, Arc::clone(&event));
            channel.recent_bytes += size;
        }
        while channel.recent.len() > REPLAY_EVENTS || channel.recent_bytes > REPLAY_BYTES {
            match channel.recent.pop_front() {
                Some(oldest) => channel.recent_bytes -= oldest.frame.len(),
                None => break,
            }
        }
        let after = channel.recent_bytes;
        let deleted = event.deleted;
        let meetup_id = event.meetup_id.clone();
        // A send error only means nobody listens here right now; the history stays.
        let _ = channel.sender.send(HubMessage::Event(event));
        let mut remembered = self.remembered_bytes.load(Ordering::Relaxed) + after - before;
        if deleted && let Some(gone) = channels.remove(&meetup_id) {
            remembered -= gone.recent_bytes;
        }
        while remembered > REPLAY_TOTAL_BYTES {
            match forget_idle_history(&mut channels, &meetup_id) {
                Some(freed) => remembered -= freed,
                None => break,
            }
        }
        self.remembered_bytes.store(remembered, Ordering::Relaxed);
    }

    /// Frame bytes of recent events remembered over all meetups.
    pub fn remembered_bytes(&self) -> usize {
        self.remembered_bytes.load(Ordering::Relaxed)
    }

    /// Tells every listener of one meetup to resynchronise with a snapshot.
    pub fn resync(&self, meetup_id: &str) {
        if let Some(channel) = self.lock().get(meetup_id) {
            let _ = channel.sender.send(HubMessage::Resync);
        }
    }

    /// Tells every listener of every meetup to resynchronise with a snapshot.
    pub fn resync_all(&self) {
        for channel in self.lock().values() {
            let _ = channel.sender.send(HubMessage::Resync);
        }
    }
}

/// Drops the meetup that has been idle longest among those nobody here listens to.
fn forget_idle_meetup(channels: &mut HashMap<String, MeetupChannel>) -> Option<MeetupChannel> {
    let oldest = channels
        .iter()
        .filter(|(_, channel)| channel.sender.receiver_count() == 0)
        .min_by_key(|(_, channel)| channel.touched)
        .map(|(id, _)| id.clone())?;
    channels.remove(&oldest)
}

/// Forgets the history of the longest-idle meetup other than `keep` that has one; returns the
/// bytes freed.
fn forget_idle_history(channels: &mut HashMap<String, MeetupChannel>, keep: &str) -> Option<usize> {
    let channel = channels
        .iter_mut()
        .filter(|(id, channel)| id.as_str() != keep && channel.recent_bytes > 0)
        .min_by_key(|(_, channel)| channel.touched)
        .map(|(_, channel)| channel)?;
    channel.recent.clear();
    Some(std::mem::take(&mut channel.recent_bytes))
}

impl EventSink for BroadcastHub {
    fn publish(&self, event: MeetupEvent) {
        if let Some(live) = LiveEvent::from_event(&event) {
            self.deliver(Arc::new(live));
        }
    }

    fn resync(&self, meetup_id: &str) {
        BroadcastHub::resync(self, meetup_id);
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

    #[test]
    fn event_frames_are_the_documented_envelope() {
        let event = MeetupEvent {
            meetup_id: "m1".into(),
            revision: 7,
            event: Event::CommentRemoved {
                comment_id: "c\"1".into(),
            },
        };
        let live = LiveEvent::from_event(&event).expect("serializes");
        let expected = serde_json::to_string(&serde_json::json!({
            "type": "event",
            "revision": 7,
            "event": {"kind": "commentRemoved", "commentId": "c\"1"},
        }))
        .expect("serializes");
        assert_eq!(live.frame.as_str(), expected);
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
        let HubMessage::Event(got) = rx.recv().await.expect("event") else {
            panic!("expected an event");
        };
        assert_eq!(got.revision, 3);
        assert!(got.frame.as_str().contains(r#""kind":"commentRemoved""#));
    }

    fn event(revision: i64) -> Arc<LiveEvent> {
        Arc::new(LiveEvent {
            meetup_id: "m".into(),
            revision,
            deleted: false,
            frame: Utf8Bytes::from_static("{}"),
        })
    }

    #[test]
    fn history_is_sorted_and_bounded() {
        let hub = BroadcastHub::default();
        for revision in [3, 2, 5, 4] {
            hub.deliver(event(revision));
        }
        let (_rx, recent) = hub.subscribe_with_recent("m");
        let revisions: Vec<i64> = recent.iter().map(|e| e.revision).collect();
        assert_eq!(revisions, [2, 3, 4, 5]);
        for revision in 6..(6 + REPLAY_EVENTS as i64) {
            hub.deliver(event(revision));
        }
        let (_rx, recent) = hub.subscribe_with_recent("m");
        assert_eq!(recent.len(), REPLAY_EVENTS);
        assert_eq!(
            recent.last().map(|e| e.revision),
            Some(5 + REPLAY_EVENTS as i64)
        );
    }

    #[test]
    fn history_is_bounded_in_bytes_and_skips_huge_events() {
        let hub = BroadcastHub::default();
        let sized = |revision: i64, bytes: usize| {
            Arc::new(LiveEvent {
                meetup_id: "m".into(),
                revision,
                deleted: false,
                frame: Utf8Bytes::from("x".repeat(bytes)),
            })
        };
        let mut rx = hub.subscribe("m");
        hub.deliver(sized(1, REPLAY_BYTES + 1));
        assert!(rx.try_recv().is_ok(), "a huge event is still delivered");
        let (_rx, recent) = hub.subscribe_with_recent("m");
        assert!(recent.is_empty(), "but not remembered");
        for revision in 2..20 {
            hub.deliver(sized(revision, REPLAY_BYTES / 4));
        }
        let (_rx, recent) = hub.subscribe_with_recent("m");
        let bytes: usize = recent.iter().map(|e| e.frame.len()).sum();
        assert!(bytes <= REPLAY_BYTES, "{bytes}");
        assert_eq!(recent.last().map(|e| e.revision), Some(19));
        assert_eq!(recent.len(), 4);
    }

    #[test]
    fn history_of_all_meetups_together_stays_within_the_budget() {
        let hub = BroadcastHub::default();
        let frame = "x".repeat(REPLAY_BYTES / 2);
        let meetups = 2 * REPLAY_TOTAL_BYTES / REPLAY_BYTES;
        assert!(
            meetups < REPLAY_MEETUPS,
            "the budget, not the meetup count, must bind"
        );
        for i in 0..meetups {
            for revision in 1..=3 {
                hub.deliver(Arc::new(LiveEvent {
                    meetup_id: format!("m{i}"),
                    revision,
                    deleted: false,
                    frame: Utf8Bytes::from(frame.clone()),
                }));
            }
        }
        let counted: usize = hub.lock().values().map(|c| c.recent_bytes).sum();
        assert_eq!(hub.remembered_bytes(), counted);
        assert!(counted <= REPLAY_TOTAL_BYTES, "{counted}");
        // The busiest recent meetup keeps its history; the longest idle lost theirs first.
        let (_rx, recent) = hub.subscribe_with_recent(&format!("m{}", meetups - 1));
        assert_eq!(recent.len(), 2);
        let (_rx, recent) = hub.subscribe_with_recent("m0");
        assert!(recent.is_empty());
        // Deleting a meetup returns its bytes.
        hub.deliver(Arc::new(LiveEvent {
            meetup_id: format!("m{}", meetups - 1),
            revision: 4,
            deleted: true,
            frame: Utf8Bytes::from_static("{}"),
        }));
        let counted: usize = hub.lock().values().map(|c| c.recent_bytes).sum();
        assert_eq!(hub.remembered_bytes(), counted);
    }

    #[test]
    fn idle_meetups_are_forgotten_beyond_the_bound() {
        let hub = BroadcastHub::default();
        let _watched = hub.subscribe("watched");
        for i in 0..(REPLAY_MEETUPS + 10) {
            hub.deliver(Arc::new(LiveEvent {
                meetup_id: format!("m{i}"),
                revision: 1,
                deleted: false,
                frame: Utf8Bytes::from_static("{}"),
            }));
        }
        assert!(hub.lock().len() <= REPLAY_MEETUPS);
        assert!(hub.lock().contains_key("watched"));
    }
}
