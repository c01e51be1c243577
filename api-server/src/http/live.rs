//! `GET /api/v1/meetups/{id}/live[?since=n]`: a WebSocket that starts with a snapshot (or, when
//! resuming from revision `n` and the missed events are still remembered, a presence message
//! and those events), then sends every event of that meetup with its revision, plus presence.
//!
//! Each connection has a reader loop and a writer task joined by a bounded queue: a client that
//! does not read fills only its own queue and is then closed with a reason, so it never holds
//! up the hub or the other clients.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::Response;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};
use utoipa::IntoParams;

use super::AppState;
use super::extract::{ApiPath, ApiQuery};
use super::problem::{Problem, ProblemBody};
use crate::events::{HubMessage, LiveEvent};
use crate::redis_layer::CachedView;

const PING_EVERY: Duration = Duration::from_secs(30);
/// Idle connections are closed after this long without a pong (docs/api.md "Live").
const PONG_TIMEOUT: Duration = Duration::from_secs(120);
const PRESENCE_EVERY: Duration = Duration::from_secs(5);
/// Frames waiting for a client; a client this far behind is dropped.
pub const SEND_QUEUE: usize = 64;
/// How long the queued frames and the close frame may take once a connection ends.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Clients send only pongs and close frames; a small read buffer keeps idle connections cheap.
const READ_BUFFER: usize = 4 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
pub struct LiveQuery {
    /// The last revision the client has applied; missed events are replayed when still known.
    pub since: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/meetups/{id}/live", tag = "live",
    params(("id" = String, Path), LiveQuery),
    responses(
        (status = 101, description = "WebSocket: snapshot (or replay from `since`), then events and presence (see docs/api.md)"),
        (status = 400, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn live(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<LiveQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let meetup = app.load_meetup(&id).await?;
    let upgrade = upgrade.map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "websocket-required",
            "This address speaks WebSocket; open it with a WebSocket client.",
        )
    })?;
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(app, meetup.id, query.since, socket)))
}

fn snapshot_frame(view: &CachedView, presence: usize) -> Message {
    // The view is already JSON (maybe straight from the cache): splice it in, don't re-parse.
    Message::Text(Utf8Bytes::from(format!(
        r#"{{"type":"snapshot","revision":{},"meetup":{},"presence":{presence}}}"#,
        view.revision, view.json
    )))
}

fn presence_frame(count: usize) -> Message {
    Message::Text(Utf8Bytes::from(format!(
        r#"{{"type":"presence","count":{count}}}"#
    )))
}

fn close(code: u16, reason: &'static str) -> Option<CloseFrame> {
    Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    })
}

/// The events after `since` if they are all still remembered, in order, up to at least
/// `current` (the revision the store has now); `None` means "send a snapshot".
fn replayable(recent: &[Arc<LiveEvent>], since: i64, current: i64) -> Option<Vec<Arc<LiveEvent>>> {
    if since > current {
        return None;
    }
    let missed: Vec<Arc<LiveEvent>> = recent
        .iter()
        .filter(|event| event.revision > since)
        .cloned()
        .collect();
    let consecutive = missed
        .iter()
        .zip(since + 1..)
        .all(|(event, expected)| event.revision == expected);
    let reaches_current = since + missed.len() as i64 >= current;
    (consecutive && reaches_current).then_some(missed)
}

/// Counts open connections in `live_connections` for as long as it lives.
struct ConnectionGauge;

impl ConnectionGauge {
    fn open() -> Self {
        metrics::gauge!("live_connections").increment(1.0);
        Self
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        metrics::gauge!("live_connections").decrement(1.0);
    }
}

async fn serve(app: AppState, id: String, since: Option<i64>, socket: WebSocket) {
    let (sink, mut incoming) = socket.split();
    let (queue, queued) = mpsc::channel(SEND_QUEUE);
    let (closing, close_signal) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, queued, close_signal));
    let gauge = ConnectionGauge::open();
    let reason = run(&app, &id, since, &queue, &mut incoming).await;
    drop(gauge);
    let _ = closing.send(reason);
    drop(queue);
    let _ = writer.await;
}

enum Enqueued {
    Ok,
    /// The queue is full: the client does not keep up.
    Slow,
    /// The writer stopped (the client is gone).
    Gone,
}

fn enqueue(queue: &mpsc::Sender<Message>, message: Message) -> Enqueued {
    match queue.try_send(message) {
        Ok(()) => Enqueued::Ok,
        Err(mpsc::error::TrySendError::Full(_)) => Enqueued::Slow,
        Err(mpsc::error::TrySendError::Closed(_)) => Enqueued::Gone,
    }
}

/// Why the connection ended, as the close frame to send (`None`: the client is gone).
async fn run(
    app: &AppState,
    id: &str,
    since: Option<i64>,
    queue: &mpsc::Sender<Message>,
    incoming: &mut SplitStream<WebSocket>,
) -> Option<CloseFrame> {
    // Subscribe before reading the current state so nothing falls between the two.
    let (mut events, recent) = app.live.subscribe_with_recent(id);
    let Ok(current) = app.view_json(id).await else {
        return close(close_code::NORMAL, "the meetup is gone");
    };
    let replay =
        since.and_then(|since| Some((since, replayable(&recent, since, current.revision)?)));
    let mut shown = match replay {
        Some((since, missed)) => {
            metrics::counter!("live_resumes_total", "result" => "replayed").increment(1);
            // Presence first tells the client that it resumes (no snapshot follows).
            let mut frames = vec![presence_frame(app.live.presence(id))];
            frames.extend(
                missed
                    .iter()
                    .map(|event| Message::Text(event.frame.clone())),
            );
            for frame in frames {
                if !matches!(enqueue(queue, frame), Enqueued::Ok) {
                    return close(close_code::AGAIN, "too slow; reconnect");
                }
            }
            missed.last().map_or(since, |event| event.revision)
        }
        None => {
            if since.is_some() {
                metrics::counter!("live_resumes_total", "result" => "snapshot").increment(1);
            }
            if !matches!(
                enqueue(queue, snapshot_frame(&current, app.live.presence(id))),
                Enqueued::Ok
            ) {
                return None;
            }
            current.revision
        }
    };

    // The first tick of a plain interval is immediate; start one period from now instead.
    let start = tokio::time::Instant::now();
    let mut ping = tokio::time::interval_at(start + PING_EVERY, PING_EVERY);
    let mut presence = tokio::time::interval_at(start + PRESENCE_EVERY, PRESENCE_EVERY);
    let mut last_pong = Instant::now();
    let mut last_presence = app.live.presence(id);
    loop {
        let outgoing = tokio::select! {
            received = events.recv() => match received {
                Ok(HubMessage::Event(event)) => {
                    // Events already contained in what the client has are skipped.
                    if event.revision <= shown && !event.deleted {
                        continue;
                    }
                    shown = shown.max(event.revision);
                    if event.deleted {
                        let _ = enqueue(queue, Message::Text(event.frame.clone()));
                        return close(close_code::NORMAL, "the meetup was deleted");
                    }
                    Message::Text(event.frame.clone())
                }
                Ok(HubMessage::Resync) | Err(RecvError::Lagged(_)) => {
                    match app.view_json(id).await {
                        Ok(view) => {
                            shown = view.revision;
                            snapshot_frame(&view, app.live.presence(id))
                        }
                        Err(_) => return close(close_code::NORMAL, "the meetup is gone"),
                    }
                }
                Err(RecvError::Closed) => return close(close_code::NORMAL, "the meetup is gone"),
            },
            message = incoming.next() => match message {
                Some(Ok(Message::Pong(_))) => {
                    last_pong = Instant::now();
                    continue;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                // Pings are answered by the WebSocket layer; other input is ignored.
                Some(Ok(_)) => continue,
            },
            _ = ping.tick() => {
                if last_pong.elapsed() > PONG_TIMEOUT {
                    return close(close_code::AWAY, "no pong for two minutes");
                }
                Message::Ping(Default::default())
            }
            _ = presence.tick() => {
                let count = app.live.presence(id);
                if count == last_presence {
                    continue;
                }
                last_presence = count;
                presence_frame(count)
            }
        };
        match enqueue(queue, outgoing) {
            Enqueued::Ok => {}
            Enqueued::Slow => {
                metrics::counter!("live_slow_clients_dropped_total").increment(1);
                tracing::debug!(
                    meetup = id,
                    "dropping a WebSocket client that does not keep up"
                );
                return close(
                    close_code::AGAIN,
                    "too slow: reconnect with ?since=<last revision>",
                );
            }
            Enqueued::Gone => return None,
        }
    }
}

/// Sends queued frames; when told to close, sends what is still queued and the close frame
/// within [`CLOSE_GRACE`] (a stuck client gets its TCP connection dropped instead).
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queued: mpsc::Receiver<Message>,
    mut close_signal: oneshot::Receiver<Option<CloseFrame>>,
) {
    let reason = loop {
        tokio::select! {
            biased;
            reason = &mut close_signal => break reason.ok().flatten(),
            next = queued.recv() => {
                let Some(message) = next else { break None };
                tokio::select! {
                    sent = sink.send(message) => if sent.is_err() { return },
                    reason = &mut close_signal => break reason.ok().flatten(),
                }
            }
        }
    };
    let finish = async {
        while let Ok(message) = queued.try_recv() {
            sink.send(message).await?;
        }
        sink.send(Message::Close(reason)).await
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, finish).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(revisions: &[i64]) -> Vec<Arc<LiveEvent>> {
        revisions
            .iter()
            .map(|&revision| {
                Arc::new(LiveEvent {
                    meetup_id: "m".into(),
                    revision,
                    deleted: false,
                    frame: Utf8Bytes::from_static("{}"),
                })
            })
            .collect()
    }

    fn revisions(replay: Option<Vec<Arc<LiveEvent>>>) -> Option<Vec<i64>> {
        replay.map(|events| events.iter().map(|e| e.revision).collect())
    }

    #[test]
    fn replays_only_a_complete_run_of_missed_events() {
        let recent = events(&[3, 4, 5, 6]);
        assert_eq!(revisions(replayable(&recent, 4, 6)), Some(vec![5, 6]));
        assert_eq!(revisions(replayable(&recent, 6, 6)), Some(vec![]));
        // Older than what is remembered, or a gap, or behind the store: snapshot.
        assert_eq!(revisions(replayable(&recent, 1, 6)), None);
        assert_eq!(revisions(replayable(&events(&[3, 5]), 2, 5)), None);
        assert_eq!(revisions(replayable(&recent, 4, 7)), None);
        assert_eq!(revisions(replayable(&recent, 9, 6)), None);
    }
}
