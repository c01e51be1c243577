//! kill -9 under load: the real `api-server` binary with the embedded store (group commit on)
//! takes concurrent joins and votes; it is SIGKILLed mid-stream and started again on the same
//! data folder. Every write that was acknowledged before the kill must be there afterwards.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::process::ServerProcess;
use serde_json::{Value, json};
use tokio::sync::Mutex;

async fn start(data_dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start(&[("DATA_DIR", data_dir.display().to_string())]).await
}

/// What the writers had acknowledged when the server died.
#[derive(Default)]
struct Acknowledged {
    /// Names whose join was answered 201.
    joined: Vec<String>,
    /// Participant id → the highest note number whose PATCH was answered 200.
    notes: HashMap<String, u64>,
}

#[tokio::test]
async fn acknowledged_writes_survive_a_sigkill_under_concurrent_load() {
    let data = tempfile::tempdir().expect("data dir");
    let mut server = start(data.path()).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/v1/meetups", server.base))
        .json(&json!({"title": "Durable beer", "organizerName": "Org", "timeZone": "UTC"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let meetup = created["meetup"]["id"].as_str().expect("id").to_string();

    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let writers = 12;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (http, base, meetup) = (http.clone(), server.base.clone(), meetup.clone());
        let acknowledged = Arc::clone(&acknowledged);
        tasks.push(tokio::spawn(async move {
            // Each writer joins as its own person, then keeps changing its note (a sequence
            // number) and now and then brings a friend: joins and updates interleave.
            let join = |name: String| {
                let (http, base, meetup) = (http.clone(), base.clone(), meetup.clone());
                async move {
                    let reply = http
                        .post(format!("{base}/api/v1/meetups/{meetup}/participants"))
                        .json(&json!({ "name": name }))
                        .send()
                        .await
                        .ok()?;
                    if reply.status().as_u16() != 201 {
                        return None;
                    }
                    let body: Value = reply.json().await.ok()?;
                    Some((
                        body["participant"]["id"].as_str()?.to_string(),
                        body["token"].as_str()?.to_string(),
                    ))
                }
            };
            let me = format!("writer {w}");
            let Some((id, token)) = join(me.clone()).await else {
                return;
            };
            acknowledged.lock().await.joined.push(me);
            for n in 1_u64.. {
                let reply = http
                    .patch(format!("{base}/api/v1/meetups/{meetup}/participants/{id}"))
                    .bearer_auth(&token)
                    .json(&json!({ "note": format!("note {n}") }))
                    .send()
                    .await;
                match reply {
                    Ok(reply) if reply.status().as_u16() == 200 => {
                        acknowledged.lock().await.notes.insert(id.clone(), n);
                    }
                    // The server is gone: stop.
                    _ => return,
                }
                if n % 50 == 0 {
                    let friend = format!("friend {w}-{n}");
                    match join(friend.clone()).await {
                        Some(_) => acknowledged.lock().await.joined.push(friend),
                        None => return,
                    }
                }
            }
        }));
    }
    // Let the load run, then kill -9 (`Child::kill` sends SIGKILL) while requests are in flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    for task in tasks {
        task.await.expect("writer task");
    }
    let acknowledged = acknowledged.lock().await;
    assert!(
        acknowledged.notes.values().sum::<u64>() >= 20,
        "the load was too small to mean anything: {:?}",
        acknowledged.notes
    );

    let restarted = start(data.path()).await;
    let view: Value = http
        .get(format!("{}/api/v1/meetups/{meetup}", restarted.base))
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    let participants = view["participants"].as_array().expect("participants");
    let by_name: HashMap<&str, &Value> = participants
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?, p)))
        .collect();
    for name in &acknowledged.joined {
        assert!(
            by_name.contains_key(name.as_str()),
            "acknowledged join of {name} is lost"
        );
    }
    for (id, acked) in &acknowledged.notes {
        let stored = participants
            .iter()
            .find(|p| p["id"] == id.as_str())
            .and_then(|p| p["note"].as_str())
            .and_then(|note| note.strip_prefix("note "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        // A write in flight at the kill may have landed too (never acknowledged), never less.
        assert!(
            stored >= *acked,
            "participant {id}: note {acked} was acknowledged, {stored} survived"
        );
    }
}
