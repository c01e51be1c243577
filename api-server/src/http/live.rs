//! `GET /api/v1/meetups/{id}/live[?since=n]`: a WebSocket that starts with a snapshot (or, when
//! resuming from revision `n` and the missed events are still remembered, a presence message
//! and those events), then sends every event of that meetup with its revision, plus presence.
//!
//! Each connection is one task that reads the client, listens to the hub and writes from a
//! bounded queue: a client that does not read fills only its own queue and is then closed with
//! a reason, so it never holds up the hub or the other clients. Event frames are serialized
//! once and shared by every connection (`Utf8Bytes` is reference-counted), and so is the
//! snapshot: it goes out as a fragmented message whose fragments are slices of the cached view
//! bytes, so a client that does not read holds one fragment's copy, not the whole view. That is
//! why the upgrade is done here rather than with axum's `WebSocketUpgrade` (its `Message` has no
//! raw frames).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tungstenite_ws::WebSocketStream;
use tungstenite_ws::tungstenite::handshake::derive_accept_key;
use tungstenite_ws::tungstenite::protocol::frame::Frame;
use tungstenite_ws::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite_ws::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite_ws::tungstenite::{Message, Utf8Bytes};
use utoipa::IntoParams;

use super::AppState;
use super::client::ClientKey;
use super::extract::{ApiPath, ApiQuery};
use super::problem::{Problem, ProblemBody};
use crate::events::{HubMessage, LiveEvent};
use crate::redis_layer::CachedView;

type WebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const AWAY: u16 = 1001;
    pub const AGAIN: u16 = 1013;
}

/// The snapshot goes out in fragments of this size, each a slice of the view bytes every
/// connection shares: a connection holds at most one fragment's copy in its write buffer, not
/// the whole view (up to `MAX_VIEW_BYTES`) per client that does not read.
const SNAPSHOT_FRAGMENT: usize = 16 * 1024;

const PING_EVERY: Duration = Duration::from_secs(30);
/// Idle connections are closed after this long without a pong (docs/api.md "Live").
const PONG_TIMEOUT: Duration = Duration::from_secs(120);
const PRESENCE_EVERY: Duration = Duration::from_secs(5);
/// Frames waiting for a client; a client this far behind is dropped.
pub const SEND_QUEUE: usize = 64;
/// How long the queued frames and the close frame may take once a connection ends.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Clients send only pongs and close frames; a small read buffer keeps idle connections cheap
/// (it grows for a larger frame, up to [`MAX_INCOMING`]).
const READ_BUFFER: usize = 1024;
/// The largest message or frame a client may send; anything larger closes the connection.
const MAX_INCOMING: usize = 64 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
pub struct LiveQuery {
    /// The last revision the client has applied; missed events are replayed when still known.
    pub since: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/meetups/{id}/live", tag = "live",
    params(("id" = String, Path), LiveQuery),
    responses(
        (status = 101, description = "WebSocket: snapshot (or replay from `since`), then events and presence (see docs/api.md)"),
        (status = 400, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 429, body = ProblemBody)))]
pub async fn live(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<LiveQuery>,
    client: Option<Extension<ClientKey>>,
    mut request: Request,
) -> Result<Response, Problem> {
    let meetup = app.load_meetup(&id).await?;
    let client = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |key| key.0.0);
    let slot = app.live_slots.take(client, &meetup.id)?;
    let accept = websocket_accept(request.headers()).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "websocket-required",
            "This address speaks WebSocket; open it with a WebSocket client.",
        )
    })?;
    if request
        .extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .is_none()
    {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "websocket-required",
            "This connection cannot be upgraded to a WebSocket (HTTP/1.1 is required).",
        ));
    }
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            // Every frame is flushed on its own, so there is nothing to gain from coalescing.
            .write_buffer_size(0)
            .max_message_size(Some(MAX_INCOMING))
            .max_frame_size(Some(MAX_INCOMING));
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        serve(app, meetup.id, query.since, socket).await;
        drop(slot);
    });
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response())
}

/// The `Sec-WebSocket-Accept` answer to a valid WebSocket upgrade request (RFC 6455 4.2.1).
fn websocket_accept(headers: &HeaderMap) -> Option<HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
        || headers.get(header::SEC_WEBSOCKET_VERSION)? != "13"
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()
}

/// The snapshot message as fragments: the envelope's head, the view's bytes in slices of
/// [`SNAPSHOT_FRAGMENT`] (shared, not copied), the tail. Clients see one text message.
fn snapshot_frames(view: &CachedView, presence: usize) -> Vec<Message> {
    let head = Bytes::from(format!(
        r#"{{"type":"snapshot","revision":{},"meetup":"#,
        view.revision
    ));
    let tail = Bytes::from(format!(r#","presence":{presence}}}"#));
    let json = view.json.bytes();
    let chunks = (0..json.len())
        .step_by(SNAPSHOT_FRAGMENT)
        .map(|at| json.slice(at..(at + SNAPSHOT_FRAGMENT).min(json.len())));
    let parts: Vec<Bytes> = std::iter::once(head)
        .chain(chunks)
        .chain(std::iter::once(tail))
        .collect();
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let opcode = if i == 0 { Data::Text } else { Data::Continue };
            Message::Frame(Frame::message(part, OpCode::Data(opcode), i == last))
        })
        .collect()
}

fn presence_frame(count: usize) -> Message {
    Message::Text(Utf8Bytes::from(format!(
        r#"{{"type":"presence","count":{count}}}"#
    )))
}

fn close(code: u16, reason: &'static str) -> Option<CloseFrame> {
    Some(CloseFrame {
        code: CloseCode::from(code),
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

/// The connection's side of the socket, driven by one task: frames waiting for the client (at
/// most [`SEND_QUEUE`]) go out one at a time, each flushed before the next is started, so a
/// client that does not read backs up only this queue.
struct Outgoing {
    socket: WebSocket,
    queue: VecDeque<Message>,
    /// Snapshot fragments in `queue`: they do not count against [`SEND_QUEUE`].
    fragments: usize,
    /// A frame has been handed to the socket and still has to be flushed.
    unflushed: bool,
}

/// What the socket did while frames were being sent.
enum Io {
    Received(Option<Result<Message, tungstenite_ws::tungstenite::Error>>),
    /// Sending failed: the client is gone.
    Broken,
}

impl Outgoing {
    fn new(socket: WebSocket) -> Self {
        Self {
            socket,
            queue: VecDeque::new(),
            fragments: 0,
            unflushed: false,
        }
    }

    fn enqueue(&mut self, message: Message) -> Enqueued {
        if self.queue.len() - self.fragments >= SEND_QUEUE {
            return Enqueued::Slow;
        }
        self.queue.push_back(message);
        Enqueued::Ok
    }

    /// Queues a snapshot's fragments (see [`snapshot_frames`]); they count as one message.
    fn enqueue_snapshot(&mut self, frames: Vec<Message>) -> Enqueued {
        if self.queue.len() - self.fragments >= SEND_QUEUE {
            return Enqueued::Slow;
        }
        self.fragments += frames.len().saturating_sub(1);
        self.queue.extend(frames);
        Enqueued::Ok
    }

    /// Moves queued frames to the client; `Ready(Err)` when the socket is broken, `Ready(Ok)`
    /// when everything queued is flushed. Cancel-safe: a frame leaves the queue only once the
    /// socket has taken it.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), tungstenite_ws::tungstenite::Error>> {
        loop {
            if self.unflushed {
                ready!(self.socket.poll_flush_unpin(cx))?;
                self.unflushed = false;
            }
            if self.queue.is_empty() {
                return Poll::Ready(Ok(()));
            }
            ready!(self.socket.poll_ready_unpin(cx))?;
            if let Some(message) = self.queue.pop_front() {
                if matches!(message, Message::Frame(ref frame) if !frame.header().is_final) {
                    self.fragments -= 1;
                }
                self.socket.start_send_unpin(message)?;
                self.unflushed = true;
            }
        }
    }

    /// Sends what is queued while waiting for the client's next message.
    async fn next(&mut self) -> Io {
        poll_fn(|cx| {
            if let Poll::Ready(Err(_)) = self.poll_send(cx) {
                return Poll::Ready(Io::Broken);
            }
            self.socket.poll_next_unpin(cx).map(Io::Received)
        })
        .await
    }

    /// Sends what is still queued and the close frame within [`CLOSE_GRACE`] (a stuck client
    /// gets its TCP connection dropped instead).
    async fn close(mut self, reason: Option<CloseFrame>) {
        let finish = async {
            poll_fn(|cx| self.poll_send(cx)).await?;
            self.socket.send(Message::Close(reason)).await
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, finish).await;
    }
}

async fn serve(app: AppState, id: String, since: Option<i64>, socket: WebSocket) {
    let mut outgoing = Outgoing::new(socket);
    let gauge = ConnectionGauge::open();
    let reason = run(&app, &id, since, &mut outgoing).await;
    drop(gauge);
    outgoing.close(reason).await;
}

/// What one turn of a connection's loop sends.
enum Outbound {
    Message(Message),
    Snapshot(Vec<Message>),
}

enum Enqueued {
    Ok,
    /// The queue is full: the client does not keep up.
    Slow,
}

/// Why the connection ended, as the close frame to send (`None`: the client is gone).
async fn run(
    app: &AppState,
    id: &str,
    since: Option<i64>,
    outgoing: &mut Outgoing,
) -> Option<CloseFrame> {
    // Subscribe before reading the current state so nothing falls between the two.
    let (mut events, recent) = app.live.subscribe_with_recent(id);
    let Ok(current) = app.view_json(id).await else {
        return close(close_code::NORMAL, "the meetup is gone");
    };
    let replay =
        since.and_then(|since| Some((since, replayable(&recent, since, current.revision)?)));
    drop(recent);
    let mut shown = match replay {
        Some((since, missed)) => {
            metrics::counter!("live_resumes_total", "result" => "replayed").increment(1);
            // Presence first tells the client that it resumes (no snapshot follows).
            let frames = std::iter::once(presence_frame(app.live.presence(id))).chain(
                missed
                    .iter()
                    .map(|event| Message::Text(event.frame.clone())),
            );
            for frame in frames {
                if !matches!(outgoing.enqueue(frame), Enqueued::Ok) {
                    return close(close_code::AGAIN, "too slow; reconnect");
                }
            }
            missed.last().map_or(since, |event| event.revision)
        }
        None => {
            if since.is_some() {
                metrics::counter!("live_resumes_total", "result" => "snapshot").increment(1);
            }
            let _ = outgoing.enqueue_snapshot(snapshot_frames(&current, app.live.presence(id)));
            current.revision
        }
    };
    drop(current);
    // A client that does not take its first frames promptly is not kept (with its snapshot).
    let deadline = app.settings.live_limits.snapshot_deadline;
    match tokio::time::timeout(deadline, poll_fn(|cx| outgoing.poll_send(cx))).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return None,
        Err(_) => {
            metrics::counter!("live_slow_clients_dropped_total").increment(1);
            return close(close_code::AGAIN, "too slow to take the snapshot");
        }
    }

    // The first tick of a plain interval is immediate; start one period from now instead.
    let start = tokio::time::Instant::now();
    let mut ping = tokio::time::interval_at(start + PING_EVERY, PING_EVERY);
    let mut presence = tokio::time::interval_at(start + PRESENCE_EVERY, PRESENCE_EVERY);
    let mut last_pong = Instant::now();
    let mut last_presence = app.live.presence(id);
    // Shutdown closes the connection with 1001 (one future for the connection's life).
    let stopping = app.lifecycle.stopping();
    tokio::pin!(stopping);
    loop {
        let frame = tokio::select! {
            received = events.recv() => match received {
                Ok(HubMessage::Event(event)) => {
                    // Events already contained in what the client has are skipped.
                    if event.revision <= shown && !event.deleted {
                        continue;
                    }
                    shown = shown.max(event.revision);
                    if event.deleted {
                        let _ = outgoing.enqueue(Message::Text(event.frame.clone()));
                        return close(close_code::NORMAL, "the meetup was deleted");
                    }
                    Outbound::Message(Message::Text(event.frame.clone()))
                }
                Ok(HubMessage::Resync) | Err(RecvError::Lagged(_)) => {
                    match app.view_json(id).await {
                        Ok(view) => {
                            shown = view.revision;
                            Outbound::Snapshot(snapshot_frames(&view, app.live.presence(id)))
                        }
                        Err(problem) if problem.status == StatusCode::NOT_FOUND => {
                            return close(close_code::NORMAL, "the meetup is gone");
                        }
                        // A passing store error: the client reconnects and gets a snapshot.
                        Err(_) => return close(close_code::AGAIN, "try again; reconnect"),
                    }
                }
                Err(RecvError::Closed) => {
                    return close(close_code::NORMAL, "the meetup is gone");
                }
            },
            io = outgoing.next() => match io {
                Io::Received(Some(Ok(Message::Pong(_)))) => {
                    last_pong = Instant::now();
                    continue;
                }
                Io::Received(Some(Ok(Message::Close(_)) | Err(_)) | None) | Io::Broken => {
                    return None;
                }
                // Pings are answered by the WebSocket layer; other input is ignored.
                Io::Received(Some(Ok(_))) => continue,
            },
            _ = ping.tick() => {
                if last_pong.elapsed() > PONG_TIMEOUT {
                    return close(close_code::AWAY, "no pong for two minutes");
                }
                Outbound::Message(Message::Ping(Default::default()))
            }
            () = &mut stopping => {
                return close(close_code::AWAY, "server restarting; reconnect");
            }
            _ = presence.tick() => {
                let count = app.live.presence(id);
                if count == last_presence {
                    continue;
                }
                last_presence = count;
                Outbound::Message(presence_frame(count))
            }
        };
        let queued = match frame {
            Outbound::Message(message) => outgoing.enqueue(message),
            Outbound::Snapshot(frames) => outgoing.enqueue_snapshot(frames),
        };
        if let Enqueued::Slow = queued {
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
    }
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
    fn the_snapshot_goes_out_in_fragments_that_borrow_the_view() {
        let view_text = format!(r#"{{"id":"m","title":"{}"}}"#, "🍺".repeat(10_000));
        let view = CachedView {
            revision: 7,
            json: crate::view_cache::ViewJson::from(view_text.clone()),
        };
        let frames = snapshot_frames(&view, 3);
        let mut text = Vec::new();
        for (i, message) in frames.iter().enumerate() {
            let Message::Frame(frame) = message else {
                panic!("raw frames only");
            };
            let expected = if i == 0 { Data::Text } else { Data::Continue };
            assert_eq!(frame.header().opcode, OpCode::Data(expected));
            assert_eq!(frame.header().is_final, i == frames.len() - 1);
            assert!(frame.payload().len() <= SNAPSHOT_FRAGMENT);
            text.extend_from_slice(frame.payload());
        }
        assert_eq!(
            String::from_utf8(text).expect("utf-8"),
            format!(r#"{{"type":"snapshot","revision":7,"meetup":{view_text},"presence":3}}"#)
        );
        assert_eq!(
            frames.len(),
            2 + view_text.len().div_ceil(SNAPSHOT_FRAGMENT)
        );
        // The view's fragments point into the one shared buffer: nothing was copied.
        let shared = view.json.bytes();
        let Message::Frame(second) = &frames[1] else {
            panic!("raw frames only");
        };
        assert_eq!(second.payload().as_ptr(), shared.as_ptr());
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
