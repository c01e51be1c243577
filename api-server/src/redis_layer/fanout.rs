//! Cross-replica fan-out through Redis pub/sub.
//!
//! Every meetup has its channel `beermeetup:live:{id}`; each process holds one pattern
//! subscription `beermeetup:live:*` and its local hub decides who gets what. One subscription
//! per process (rather than SUBSCRIBE/UNSUBSCRIBE as viewers come and go) keeps the Redis side
//! trivial and makes resubscribing after an outage a single command; the cost, every replica
//! seeing every meetup's events, is small because events are human actions (votes, comments).
//! It also lets every replica remember recent events of every meetup, so a client that
//! reconnects to another replica can still resume with `?since=n`.
//!
//! Message: one JSON header line (origin, meetup, revision, send time), then the WebSocket frame
//! exactly as clients get it, so no replica parses or re-serializes the payload. A process
//! delivers its own events locally at once and ignores their echo (same origin).
//!
//! **No gap (issue 13):** an event that could not be shared (Redis down or refusing, the outbox
//! full) leaves its meetup in a bounded "unshared" set. As soon as the link is up again this
//! replica publishes a resync for each of them on `beermeetup:resync`, and every other replica
//! tells its clients of those meetups to reload a snapshot — without anyone reloading the page.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tungstenite_ws::tungstenite::Utf8Bytes;

use super::link::RedisLink;
use crate::events::{BroadcastHub, EventSink, LiveEvent, MeetupEvent};

pub const CHANNEL_PREFIX: &str = "beermeetup:live:";
/// Resync requests: `"{origin}\n{meetup id}"`, or `*` for every meetup.
pub const RESYNC_CHANNEL: &str = "beermeetup:resync";
/// Meetups remembered as unshared; beyond it a resync of everything is sent instead.
const MAX_UNSHARED: usize = 10_000;
const RESYNC_CHECK_EVERY: Duration = Duration::from_millis(250);
const PRESENCE_PREFIX: &str = "beermeetup:presence:";
/// Events waiting to be published; beyond this (Redis far too slow) events stay local.
const OUTBOX: usize = 4096;
const PRESENCE_EVERY: Duration = Duration::from_secs(5);
/// A replica's presence report counts this long unless refreshed (it may have died).
const PRESENCE_TTL: Duration = Duration::from_secs(15);
const MAX_RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireHeader {
    origin: String,
    meetup_id: String,
    revision: i64,
    deleted: bool,
    sent_at_micros: u64,
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn encode(origin: &str, event: &LiveEvent) -> Option<String> {
    let header = serde_json::to_string(&WireHeader {
        origin: origin.to_string(),
        meetup_id: event.meetup_id.clone(),
        revision: event.revision,
        deleted: event.deleted,
        sent_at_micros: unix_micros(),
    })
    .ok()?;
    Some(format!("{header}\n{}", event.frame.as_str()))
}

fn decode(payload: &str) -> Option<(WireHeader, LiveEvent)> {
    let (header, frame) = payload.split_once('\n')?;
    let header: WireHeader = serde_json::from_str(header).ok()?;
    let event = LiveEvent {
        meetup_id: header.meetup_id.clone(),
        revision: header.revision,
        deleted: header.deleted,
        frame: Utf8Bytes::from(frame.to_string()),
    };
    Some((header, event))
}

/// Meetups with events the other replicas have not seen (see the module documentation).
#[derive(Debug, Default)]
pub struct Unshared {
    meetups: Mutex<HashSet<String>>,
    everything: AtomicBool,
}

impl Unshared {
    fn add(&self, meetup_id: &str) {
        metrics::counter!("live_events_not_shared_total").increment(1);
        let mut meetups = self.meetups.lock().unwrap_or_else(|p| p.into_inner());
        if meetups.len() >= MAX_UNSHARED {
            meetups.clear();
            self.everything.store(true, Ordering::SeqCst);
        } else if !self.everything.load(Ordering::SeqCst) {
            meetups.insert(meetup_id.to_string());
        }
    }

    /// Takes what is pending: `["*"]` for everything.
    fn take(&self) -> Vec<String> {
        let mut meetups = self.meetups.lock().unwrap_or_else(|p| p.into_inner());
        if self.everything.swap(false, Ordering::SeqCst) {
            meetups.clear();
            return vec!["*".to_string()];
        }
        meetups.drain().collect()
    }

    /// Puts back what could not be sent.
    fn restore(&self, meetup_ids: Vec<String>) {
        for meetup_id in meetup_ids {
            if meetup_id == "*" {
                self.everything.store(true, Ordering::SeqCst);
            } else {
                self.add(&meetup_id);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.everything.load(Ordering::SeqCst)
            && self
                .meetups
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }
}

/// The event sink of a replica with Redis: local hub first, then Redis for the others.
pub struct RedisFanout {
    hub: Arc<BroadcastHub>,
    link: Arc<RedisLink>,
    outbox: mpsc::Sender<Arc<LiveEvent>>,
    pub unshared: Arc<Unshared>,
}

impl EventSink for RedisFanout {
    fn publish(&self, event: MeetupEvent) {
        let Some(live) = LiveEvent::from_event(&event) else {
            return;
        };
        let live = Arc::new(live);
        self.hub.deliver(Arc::clone(&live));
        let meetup_id = live.meetup_id.clone();
        if !self.link.is_up() || self.outbox.try_send(live).is_err() {
            self.unshared.add(&meetup_id);
        }
    }

    fn resync(&self, meetup_id: &str) {
        self.hub.resync(meetup_id);
        // The resync loop tells the other replicas.
        self.unshared.add(meetup_id);
    }
}

impl RedisFanout {
    /// Starts the publisher, subscriber and presence tasks; their handles stop them.
    pub fn start(
        hub: Arc<BroadcastHub>,
        link: Arc<RedisLink>,
        origin: String,
    ) -> (Arc<Self>, Vec<JoinHandle<()>>) {
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let unshared = Arc::new(Unshared::default());
        let tasks = vec![
            tokio::spawn(publish_loop(
                Arc::clone(&link),
                origin.clone(),
                queued,
                Arc::clone(&unshared),
            )),
            tokio::spawn(resync_loop(
                Arc::clone(&link),
                origin.clone(),
                Arc::clone(&unshared),
            )),
            tokio::spawn(subscribe_loop(
                Arc::clone(&link),
                Arc::clone(&hub),
                origin.clone(),
            )),
            tokio::spawn(presence_loop(Arc::clone(&link), Arc::clone(&hub), origin)),
        ];
        (
            Arc::new(Self {
                hub,
                link,
                outbox,
                unshared,
            }),
            tasks,
        )
    }
}

async fn publish_loop(
    link: Arc<RedisLink>,
    origin: String,
    mut queued: mpsc::Receiver<Arc<LiveEvent>>,
    unshared: Arc<Unshared>,
) {
    while let Some(event) = queued.recv().await {
        let Some(payload) = encode(&origin, &event) else {
            continue;
        };
        let channel = format!("{CHANNEL_PREFIX}{}", event.meetup_id);
        let sent = link
            .run("publish", |mut connection| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(payload)
                    .query_async::<i64>(&mut connection)
                    .await
            })
            .await;
        if sent.is_none() {
            unshared.add(&event.meetup_id);
        }
    }
}

/// Whenever the link is up and events went unshared, asks the other replicas to resync those
/// meetups (one pipeline); what fails is kept for the next round.
async fn resync_loop(link: Arc<RedisLink>, origin: String, unshared: Arc<Unshared>) {
    let mut tick = tokio::time::interval(RESYNC_CHECK_EVERY);
    loop {
        tick.tick().await;
        if !link.is_up() || unshared.is_empty() {
            continue;
        }
        let meetups = unshared.take();
        let mut pipe = redis::pipe();
        for meetup_id in &meetups {
            pipe.cmd("PUBLISH")
                .arg(RESYNC_CHANNEL)
                .arg(format!("{origin}\n{meetup_id}"))
                .ignore();
        }
        let sent: Option<()> = link
            .run("publish_resync", |mut connection| async move {
                pipe.query_async(&mut connection).await
            })
            .await;
        match sent {
            Some(()) => tracing::info!(
                meetups = meetups.len(),
                "asked the other replicas to resync meetups whose events they missed"
            ),
            None => unshared.restore(meetups),
        }
    }
}

/// Keeps one pattern subscription alive: resubscribes with backoff after any loss, and then
/// asks every local connection for a fresh snapshot, since events may have passed meanwhile.
async fn subscribe_loop(link: Arc<RedisLink>, hub: Arc<BroadcastHub>, origin: String) {
    let mut backoff = Duration::from_millis(100);
    let mut lost_before = false;
    loop {
        match subscribe(&link).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                if lost_before {
                    tracing::info!("live event subscription restored; clients resynchronise");
                    hub.resync_all();
                }
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else {
                        continue;
                    };
                    if message.get_channel_name() == RESYNC_CHANNEL {
                        receive_resync(&hub, &origin, payload);
                    } else {
                        receive(&hub, &origin, payload);
                    }
                }
                lost_before = true;
                link.report_failure("subscribe", "the subscription connection closed");
            }
            Err(error) => {
                lost_before = true;
                tracing::debug!(%error, "cannot subscribe to live events yet");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_RESUBSCRIBE_BACKOFF);
    }
}

async fn subscribe(link: &RedisLink) -> redis::RedisResult<redis::aio::PubSub> {
    let connect = async {
        let client = link.primary_client().await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(format!("{CHANNEL_PREFIX}*")).await?;
        pubsub.subscribe(RESYNC_CHANNEL).await?;
        Ok(pubsub)
    };
    tokio::time::timeout(link.timeout() * 8, connect)
        .await
        .unwrap_or_else(|_| Err(super::link::timed_out()))
}

fn receive(hub: &BroadcastHub, origin: &str, payload: &str) {
    let Some((header, event)) = decode(payload) else {
        tracing::debug!("ignoring a malformed live event from Redis");
        return;
    };
    if header.origin == origin {
        return; // Ours: already delivered locally.
    }
    let latency = unix_micros().saturating_sub(header.sent_at_micros);
    metrics::histogram!("live_fanout_latency_seconds").record(latency as f64 / 1e6);
    hub.deliver(Arc::new(event));
}

/// Another replica missed sharing events of a meetup (`*`: of any): our clients reload.
fn receive_resync(hub: &BroadcastHub, origin: &str, payload: &str) {
    let Some((from, meetup_id)) = payload.split_once('\n') else {
        return;
    };
    if from == origin {
        return;
    }
    metrics::counter!("live_resyncs_received_total").increment(1);
    if meetup_id == "*" {
        hub.resync_all();
    } else {
        hub.resync(meetup_id);
    }
}

/// Every few seconds: report this replica's viewers per meetup to Redis (a hash per meetup,
/// field = replica, value = `count:expires_at`), and read the other replicas' counts for the
/// meetups watched here. Expired fields (a replica that died) are ignored and cleaned up.
async fn presence_loop(link: Arc<RedisLink>, hub: Arc<BroadcastHub>, origin: String) {
    let mut reported: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(PRESENCE_EVERY);
    loop {
        tick.tick().await;
        if !link.is_up() {
            hub.set_remote_presence(HashMap::new());
            continue;
        }
        let local = hub.local_presence();
        if local.is_empty() && reported.is_empty() {
            // Nothing to report or read: Redis refuses an empty pipeline (issue 13).
            hub.set_remote_presence(HashMap::new());
            continue;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let expires = now + PRESENCE_TTL.as_secs();
        let mut pipe = redis::pipe();
        for (meetup_id, count) in &local {
            let key = format!("{PRESENCE_PREFIX}{meetup_id}");
            pipe.cmd("HSET")
                .arg(&key)
                .arg(&origin)
                .arg(format!("{count}:{expires}"))
                .ignore();
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(PRESENCE_TTL.as_secs())
                .ignore();
        }
        let watched: HashSet<String> = local.iter().map(|(id, _)| id.clone()).collect();
        for gone in reported.difference(&watched) {
            pipe.cmd("HDEL")
                .arg(format!("{PRESENCE_PREFIX}{gone}"))
                .arg(&origin)
                .ignore();
        }
        for (meetup_id, _) in &local {
            pipe.cmd("HGETALL")
                .arg(format!("{PRESENCE_PREFIX}{meetup_id}"));
        }
        let replies: Option<Vec<HashMap<String, String>>> = link
            .run("presence", |mut connection| async move {
                pipe.query_async(&mut connection).await
            })
            .await;
        let Some(replies) = replies else {
            continue;
        };
        reported = watched;
        let remote = local
            .iter()
            .zip(replies)
            .map(|((meetup_id, _), fields)| {
                let others = fields
                    .iter()
                    .filter(|(replica, _)| *replica != &origin)
                    .filter_map(|(_, value)| {
                        let (count, expires_at) = value.split_once(':')?;
                        let expires_at: u64 = expires_at.parse().ok()?;
                        (expires_at >= now).then(|| count.parse::<usize>().ok())?
                    })
                    .sum();
                (meetup_id.clone(), others)
            })
            .collect();
        hub.set_remote_presence(remote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::HubMessage;

    #[test]
    fn wire_format_round_trips_and_keeps_the_frame_verbatim() {
        let event = LiveEvent {
            meetup_id: "m1".into(),
            revision: 7,
            deleted: false,
            frame: Utf8Bytes::from_static(
                r#"{"type":"event","revision":7,"event":{"kind":"x","note":"a\nb"}}"#,
            ),
        };
        let payload = encode("replica-a", &event).expect("encodes");
        let (header, decoded) = decode(&payload).expect("decodes");
        assert_eq!(header.origin, "replica-a");
        assert_eq!(decoded.revision, 7);
        assert_eq!(decoded.meetup_id, "m1");
        assert_eq!(decoded.frame.as_str(), event.frame.as_str());
    }

    #[test]
    fn unshared_meetups_are_bounded_and_restored() {
        let unshared = Unshared::default();
        assert!(unshared.is_empty());
        unshared.add("m1");
        unshared.add("m1");
        unshared.add("m2");
        let mut taken = unshared.take();
        taken.sort();
        assert_eq!(taken, ["m1", "m2"]);
        assert!(unshared.is_empty());
        unshared.restore(taken);
        assert_eq!(unshared.take().len(), 2);
        for i in 0..=MAX_UNSHARED {
            unshared.add(&format!("m{i}"));
        }
        assert_eq!(unshared.take(), ["*"]);
        assert!(unshared.is_empty());
    }

    #[test]
    fn resync_requests_from_others_reach_that_meetups_listeners() {
        let hub = BroadcastHub::default();
        let mut one = hub.subscribe("m1");
        let mut two = hub.subscribe("m2");
        receive_resync(&hub, "me", "me\nm1");
        assert!(one.try_recv().is_err(), "our own request is not for us");
        receive_resync(&hub, "me", "other\nm1");
        assert!(matches!(one.try_recv(), Ok(HubMessage::Resync)));
        assert!(two.try_recv().is_err());
        receive_resync(&hub, "me", "other\n*");
        assert!(matches!(two.try_recv(), Ok(HubMessage::Resync)));
    }

    #[test]
    fn own_echo_is_ignored() {
        let hub = BroadcastHub::default();
        let mut rx = hub.subscribe("m1");
        let event = LiveEvent {
            meetup_id: "m1".into(),
            revision: 1,
            deleted: false,
            frame: Utf8Bytes::from_static("{}"),
        };
        let payload = encode("me", &event).expect("encodes");
        receive(&hub, "me", &payload);
        assert!(rx.try_recv().is_err());
        receive(&hub, "someone-else", &payload);
        assert!(rx.try_recv().is_ok());
    }
}
