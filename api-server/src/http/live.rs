//! `GET /api/v1/meetups/{id}/live`: a WebSocket that sends a snapshot first, then every event
//! of that meetup with its revision, plus presence counts. Clients that see a revision gap
//! refetch; a lagging connection simply gets a fresh snapshot.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::extract::ApiPath;
use super::problem::{Problem, ProblemBody};
use crate::events::{Event, MeetupEvent};

const PING_EVERY: Duration = Duration::from_secs(30);
/// Idle connections are closed after this long without a pong (docs/api.md "Live").
const PONG_TIMEOUT: Duration = Duration::from_secs(120);
const PRESENCE_EVERY: Duration = Duration::from_secs(5);

#[utoipa::path(get, path = "/api/v1/meetups/{id}/live", tag = "live",
    params(("id" = String, Path)),
    responses(
        (status = 101, description = "WebSocket: snapshot, then events and presence (see docs/api.md)"),
        (status = 400, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn live(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
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
    Ok(upgrade.on_upgrade(move |socket| serve(app, meetup.id, socket)))
}

fn text(value: &impl Serialize) -> Option<Message> {
    serde_json::to_string(value)
        .ok()
        .map(|s| Message::Text(Utf8Bytes::from(s)))
}

/// The snapshot message and its revision; `None` once the meetup is gone.
async fn snapshot(app: &AppState, id: &str) -> Option<(i64, Message)> {
    let meetup = app.load_meetup(id).await.ok()?;
    let view = app.view(&meetup).await.ok()?;
    let message = json!({
        "type": "snapshot",
        "revision": view.revision,
        "meetup": view,
        "presence": app.live.listeners(id),
    });
    Some((meetup.revision, text(&message)?))
}

fn event_message(event: &MeetupEvent) -> Option<Message> {
    text(&json!({"type": "event", "revision": event.revision, "event": event.event}))
}

async fn serve(app: AppState, id: String, mut socket: WebSocket) {
    // Subscribe before reading the snapshot so nothing falls between the two.
    let mut events = app.live.subscribe(&id);
    let Some((mut shown, first)) = snapshot(&app, &id).await else {
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    if socket.send(first).await.is_err() {
        return;
    }
    metrics::gauge!("live_connections").increment(1.0);
    // The first tick of a plain interval is immediate; start one period from now instead.
    let start = tokio::time::Instant::now();
    let mut ping = tokio::time::interval_at(start + PING_EVERY, PING_EVERY);
    let mut presence = tokio::time::interval_at(start + PRESENCE_EVERY, PRESENCE_EVERY);
    let mut last_pong = Instant::now();
    let mut last_presence = app.live.listeners(&id);
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => {
                    let deleted = matches!(event.event, Event::MeetupDeleted {});
                    // Events already contained in the snapshot are skipped.
                    if event.revision <= shown && !deleted {
                        continue;
                    }
                    shown = shown.max(event.revision);
                    let Some(message) = event_message(&event) else { continue };
                    if socket.send(message).await.is_err() || deleted {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => match snapshot(&app, &id).await {
                    Some((revision, message)) => {
                        shown = revision;
                        if socket.send(message).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                // Pings are answered by the WebSocket layer; other input is ignored.
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if last_pong.elapsed() > PONG_TIMEOUT
                    || socket.send(Message::Ping(Default::default())).await.is_err()
                {
                    break;
                }
            }
            _ = presence.tick() => {
                let count = app.live.listeners(&id);
                if count != last_presence {
                    last_presence = count;
                    let Some(message) = text(&json!({"type": "presence", "count": count})) else { continue };
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    metrics::gauge!("live_connections").decrement(1.0);
    let _ = socket.send(Message::Close(None)).await;
}
