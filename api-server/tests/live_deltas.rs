//! Live events carry deltas (issue 12): one of every kind, recorded from the real server with
//! the view before and after. The web app's reducer replays the recording
//! (`web/src/lib/live.recorded.test.ts`) and must end in exactly the final view; this test checks
//! that every event stays small and that the committed recording still has the shapes the server
//! sends. `RECORD_LIVE_EVENTS=1 cargo test -p api-server --test live_deltas` rewrites it.

mod common;

use std::path::PathBuf;

use api_server::events::LiveEvent;
use common::{StoreKind, TestServer};
use serde_json::{Value, json};

/// A participant's full availability over the test's 35 slots is well under this; a view with
/// two people is already over it, so a whole view sent as an event would fail.
const MAX_EVENT_BYTES: usize = 4 * 1024;

fn recording_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/src/lib/live.recorded.json")
}

/// The kind of each event and the keys of its payload (and of `changes`), which do not depend
/// on the run's ids and dates.
fn shapes(frames: &[Value]) -> Vec<Value> {
    let keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    frames
        .iter()
        .map(|f| json!({"event": keys(&f["event"]), "changes": keys(&f["event"]["changes"])}))
        .collect()
}

async fn every_event_is_a_small_delta(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server
        .create_meetup(json!({"description": "Bring friends", "allowParticipantPlaces": true}))
        .await;
    let meetup = format!("/api/v1/meetups/{}", m.id);
    let initial = server.get(&meetup).await.body;
    let (ben, ben_token) = server.join(&m.id, "Ben").await;
    let (cleo, cleo_token) = server.join(&m.id, "Cleo").await;
    let participant = |id: &str| format!("{meetup}/participants/{id}");
    let ok = |reply: common::Reply| {
        assert!((200..300).contains(&reply.status), "{}", reply.text);
        reply.body
    };

    ok(server
        .patch(
            &participant(&ben),
            Some(&ben_token),
            json!({"availability": {m.slots[0].clone(): "yes", m.slots[1].clone(): "maybe"},
                   "placeVotes": [m.places[1].clone()], "note": "after work"}),
        )
        .await);
    ok(server
        .patch(
            &participant(&cleo),
            Some(&cleo_token),
            json!({"availability": {m.slots[1].clone(): "yes", m.slots[2].clone(): "yes"},
                   "placeVotes": [m.places[1].clone(), m.places[0].clone()]}),
        )
        .await);
    ok(server
        .patch(
            &participant(&ben),
            Some(&ben_token),
            json!({"name": "Benjamin", "note": null}),
        )
        .await);
    let deadline = chrono::Utc::now() + chrono::Duration::days(3);
    ok(server
        .patch(
            &meetup,
            Some(&m.admin),
            json!({"title": "Saturday beer", "description": null, "deadline": deadline}),
        )
        .await);
    let garage = ok(server
        .post(
            &format!("{meetup}/places"),
            Some(&cleo_token),
            json!({"name": "Cleo's Garage", "link": "https://garage.example"}),
        )
        .await)["id"]
        .as_str()
        .expect("place id")
        .to_string();
    ok(server
        .patch(
            &format!("{meetup}/places/{garage}"),
            Some(&m.admin),
            json!({"name": "The Garage", "address": "Hof 2"}),
        )
        .await);
    ok(server
        .patch(
            &participant(&ben),
            Some(&ben_token),
            json!({"placeVotes": [garage.clone(), m.places[0].clone()]}),
        )
        .await);
    ok(server
        .patch(
            &meetup,
            Some(&m.admin),
            json!({"allowParticipantPlaces": false}),
        )
        .await);
    ok(server
        .delete(&format!("{meetup}/places/{}", m.places[0]), Some(&m.admin))
        .await);
    let first = ok(server
        .post(
            &format!("{meetup}/comments"),
            Some(&ben_token),
            json!({"text": "Prost!"}),
        )
        .await)["id"]
        .as_str()
        .expect("comment id")
        .to_string();
    ok(server
        .post(
            &format!("{meetup}/comments"),
            Some(&cleo_token),
            json!({"text": "See you"}),
        )
        .await);
    ok(server
        .delete(&format!("{meetup}/comments/{first}"), Some(&ben_token))
        .await);
    ok(server.delete(&participant(&cleo), Some(&cleo_token)).await);
    ok(server
        .post(
            &format!("{meetup}/finalize"),
            Some(&m.admin),
            json!({"startSlotId": m.slots[0], "endSlotId": m.slots[1], "placeId": garage, "note": "upstairs"}),
        )
        .await);
    ok(server
        .patch(&meetup, Some(&m.admin), json!({"status": "open"}))
        .await);
    ok(server
        .post(
            &format!("{meetup}/finalize"),
            Some(&m.admin),
            json!({"startSlotId": m.slots[1]}),
        )
        .await);
    ok(server
        .patch(
            &meetup,
            Some(&m.admin),
            json!({"status": "closed", "deadline": null}),
        )
        .await);
    let last = server.get(&meetup).await.body;

    let events = server.events.0.lock().expect("not poisoned").clone();
    let frames: Vec<Value> = events
        .iter()
        .map(|event| {
            let live = LiveEvent::from_event(event).expect("serializes");
            assert!(
                live.frame.len() <= MAX_EVENT_BYTES,
                "{} bytes: {}",
                live.frame.len(),
                live.frame.as_str()
            );
            serde_json::from_str(live.frame.as_str()).expect("json")
        })
        .collect();
    let revisions: Vec<i64> = frames
        .iter()
        .map(|f| f["revision"].as_i64().expect("revision"))
        .collect();
    let first_revision = initial["revision"].as_i64().expect("revision") + 1;
    assert_eq!(
        revisions,
        (first_revision..first_revision + revisions.len() as i64).collect::<Vec<_>>(),
        "one event per write, revisions without gaps"
    );
    assert_eq!(last["revision"], json!(revisions.last().copied()));
    let kinds: Vec<&str> = frames
        .iter()
        .map(|f| f["event"]["kind"].as_str().unwrap_or_default())
        .collect();
    for kind in [
        "participantJoined",
        "participantUpdated",
        "participantLeft",
        "placeAdded",
        "placeUpdated",
        "placeRemoved",
        "commentAdded",
        "commentRemoved",
        "meetupUpdated",
        "meetupFinalized",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // Only what changed: the title patch names the title, not the places or the status history.
    let retitled = &frames[kinds
        .iter()
        .position(|k| *k == "meetupUpdated")
        .expect("update")];
    assert_eq!(
        retitled["event"]["changes"],
        json!({
            "title": "Saturday beer",
            "description": null,
            "deadline": deadline,
            "status": "open",
            "updatedAt": retitled["event"]["changes"]["updatedAt"],
        })
    );

    let recording = json!({"initial": initial, "frames": frames, "final": last});
    if kind != StoreKind::Embedded {
        return;
    }
    let path = recording_path();
    if std::env::var_os("RECORD_LIVE_EVENTS").is_some() {
        let text = serde_json::to_string_pretty(&recording).expect("json") + "\n";
        std::fs::write(&path, text).expect("recording written");
        return;
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the recording is committed"))
            .expect("json");
    let committed_frames = committed["frames"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        shapes(&committed_frames),
        shapes(&frames),
        "the events changed shape: RECORD_LIVE_EVENTS=1 cargo test -p api-server --test live_deltas, \
         then cd web && npm test"
    );
}

for_each_store!(every_event_is_a_small_delta);
