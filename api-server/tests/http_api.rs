//! The HTTP contract of docs/api.md, over real HTTP against the router on a loopback port,
//! on both stores.

mod common;

use std::sync::Arc;

use api_server::http::{RateLimit, Settings};
use common::{StoreKind, TestServer, test_settings};
use reqwest::Method;
use serde_json::{Value, json};

/// A date `offset` days from today (UTC), as "YYYY-MM-DD": slots must lie within a year.
fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(offset as u64))
        .format("%Y-%m-%d")
        .to_string()
}

/// The next Saturday before Berlin's spring-forward (the last Sunday of March), within a year.
fn saturday_before_spring_forward() -> chrono::NaiveDate {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    (1..=366)
        .map(|offset| today + chrono::Days::new(offset))
        .find(|date| {
            date.month() == 3
                && date.weekday() == chrono::Weekday::Sat
                && (*date + chrono::Days::new(1)).month() == 3
                && (*date + chrono::Days::new(8)).month() == 4
        })
        .expect("a last Saturday of March within a year")
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

async fn create_join_vote_and_read_tallies_with_names(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    assert!(!m.slots.is_empty() && m.slots.len() <= 35);
    assert_eq!(m.id.len(), 12);
    let (ben, ben_token) = server.join(&m.id, "Ben").await;
    let (cleo, cleo_token) = server.join(&m.id, "Cleo").await;
    let path = |pid: &str| format!("/api/v1/meetups/{}/participants/{pid}", m.id);

    let reply = server
        .patch(
            &path(&ben),
            Some(&ben_token),
            json!({"availability": {m.slots[0].clone(): "yes", m.slots[1].clone(): "maybe"},
                   "placeVotes": [m.places[1].clone()], "note": "after work"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["availability"][&m.slots[1]], "maybe");
    assert_eq!(reply.body["note"], "after work");
    server
        .patch(
            &path(&cleo),
            Some(&cleo_token),
            json!({"availability": {m.slots[1].clone(): "yes"}, "placeVotes": [m.places[1].clone(), m.places[0].clone()]}),
        )
        .await;

    let view = server.get(&format!("/api/v1/meetups/{}", m.id)).await;
    assert_eq!(view.status, 200);
    let v = &view.body;
    assert_eq!(v["title"], "Friday beer");
    assert_eq!(v["organizerName"], "Anna");
    assert_eq!(v["status"], "open");
    assert_eq!(v["slotMinutes"], 60);
    assert_eq!(names(&v["slots"][0]["yes"]), vec!["Ben"]);
    assert_eq!(names(&v["slots"][1]["yes"]), vec!["Cleo"]);
    assert_eq!(names(&v["slots"][1]["maybe"]), vec!["Ben"]);
    assert_eq!(v["slots"][1]["score"], 1.5);
    assert_eq!(names(&v["places"][1]["voters"]), vec!["Ben", "Cleo"]);
    assert_eq!(v["places"][0]["addedBy"], "Anna");
    assert_eq!(v["ranking"]["slots"][0], m.slots[1].as_str());
    assert_eq!(v["ranking"]["places"][0], m.places[1].as_str());
    let people: Vec<_> = v["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(people, vec!["Anna", "Ben", "Cleo"]);
    assert_eq!(v["participants"][0]["isOrganizer"], true);
    assert!(v.get("adminTokenHash").is_none() && v["participants"][0].get("tokenHash").is_none());
    // create = 1, two joins, two votes.
    assert_eq!(v["revision"], 5);
    assert_eq!(
        server.events.kinds(),
        vec![
            "participantJoined",
            "participantJoined",
            "participantUpdated",
            "participantUpdated"
        ]
    );
    assert_eq!(server.events.revisions(), vec![2, 3, 4, 5]);
}

async fn create_validates_every_field(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let reply = server
        .post(
            "/api/v1/meetups",
            None,
            json!({"title": " ", "organizerName": "x".repeat(61), "timeZone": "Mars/Base",
                   "slotMinutes": 45, "deadline": "2001-01-01T00:00:00Z"}),
        )
        .await;
    let problem = reply.assert_problem(422);
    let fields: Vec<_> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default())
        .collect();
    for field in [
        "title",
        "organizerName",
        "timeZone",
        "slotMinutes",
        "deadline",
    ] {
        assert!(fields.contains(&field), "{field} missing in {fields:?}");
    }

    let base = json!({"title": "t", "organizerName": "A", "timeZone": "UTC"});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let too_many = with(json!({"days": (1..=8).map(day).collect::<Vec<_>>(),
        "window": {"start": "00:00", "end": "00:00"}, "slotMinutes": 30}));
    let reply = server.post("/api/v1/meetups", None, too_many).await;
    assert!(
        reply.assert_problem(422)["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("336")
    );
    let tomorrow = day(1);
    for bad in [
        json!({"days": ["2027-02-30"]}),
        json!({"days": []}),
        json!({"window": {"start": "18:00", "end": "7pm"}}),
        json!({"slots": [{"start": format!("{tomorrow}T18:00:00Z"), "end": format!("{tomorrow}T17:00:00Z")}]}),
        json!({"slots": [{"start": format!("{tomorrow}T18:00:00Z"), "end": format!("{tomorrow}T19:00:00Z")}], "days": [tomorrow]}),
        json!({"places": [{"name": "ok", "link": "ftp://nope"}]}),
        json!({"description": "d".repeat(2001)}),
    ] {
        let reply = server
            .post("/api/v1/meetups", None, with(bad.clone()))
            .await;
        reply.assert_problem(422);
    }
    // A wrongly typed field is a validation problem too.
    let reply = server
        .post(
            "/api/v1/meetups",
            None,
            with(json!({"slotMinutes": "sixty"})),
        )
        .await;
    reply.assert_problem(422);

    // Explicit days and window crossing midnight.
    let saturday = saturday_before_spring_forward();
    let reply = server
        .post(
            "/api/v1/meetups",
            None,
            with(json!({"timeZone": "Europe/Berlin", "days": [saturday.format("%Y-%m-%d").to_string()], "window": {"start": "22:00", "end": "02:00"}, "slotMinutes": 30})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let slots = reply.body["meetup"]["slots"].as_array().expect("slots");
    // 22:00 CET to 02:00 CET the night clocks go forward (at 02:00): four hours.
    assert_eq!(slots.len(), 8);
    assert_eq!(
        slots[0]["start"],
        format!("{}T21:00:00Z", saturday.format("%Y-%m-%d"))
    );
    // Nothing was stored by the failed attempts: only one meetup exists with suggestions empty.
    assert_eq!(server.events.kinds().len(), 0);
}

async fn bad_requests_get_problem_json(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let url = format!("{}/api/v1/meetups", server.base);
    let malformed = server
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .expect("answer");
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.headers()["content-type"],
        "application/problem+json"
    );
    let wrong_type = server
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong_type.status(), 415);
    let body: Value = wrong_type.json().await.expect("json");
    assert_eq!(body["status"], 415);
    let huge = json!({"title": "x", "organizerName": "A", "timeZone": "UTC", "description": "d".repeat(20_000)});
    let reply = server.post("/api/v1/meetups", None, huge).await;
    reply.assert_problem(413);

    server.get("/api/v1/nothing-here").await.assert_problem(404);
    server.get("/api/v2/meetups").await.assert_problem(404);
    server
        .get("/api/v1/meetups/nope!")
        .await
        .assert_problem(404);
    server
        .get("/api/v1/meetups/abcdefghijkl")
        .await
        .assert_problem(404);
    server
        .send(Method::PUT, "/api/v1/meetups", None, Some(json!({})))
        .await
        .assert_problem(405);
    server
        .get(&format!("/api/v1/places/suggestions?q={}", "x".repeat(200)))
        .await
        .assert_problem(400);
}

async fn tokens_are_checked(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let other = server.create_meetup(json!({})).await;
    let (ben, ben_token) = server.join(&m.id, "Ben").await;
    let (cleo, _) = server.join(&m.id, "Cleo").await;
    let meetup = format!("/api/v1/meetups/{}", m.id);

    server
        .patch(&meetup, None, json!({"title": "x"}))
        .await
        .assert_problem(401);
    server
        .patch(&meetup, Some("not-a-token"), json!({"title": "x"}))
        .await
        .assert_problem(401);
    // Another meetup's admin token means nothing here.
    server
        .patch(&meetup, Some(&other.admin), json!({"title": "x"}))
        .await
        .assert_problem(401);
    server
        .patch(&meetup, Some(&ben_token), json!({"title": "x"}))
        .await
        .assert_problem(403);
    server
        .delete(&meetup, Some(&ben_token))
        .await
        .assert_problem(403);
    server
        .patch(
            &format!("{meetup}/participants/{cleo}"),
            Some(&ben_token),
            json!({"note": "hijack"}),
        )
        .await
        .assert_problem(403);
    server
        .post(
            &format!("{meetup}/finalize"),
            Some(&ben_token),
            json!({"startSlotId": m.slots[0]}),
        )
        .await
        .assert_problem(403);
    // The admin may act for anyone; the organizer's participant token is a participant.
    let reply = server
        .patch(
            &format!("{meetup}/participants/{ben}"),
            Some(&m.admin),
            json!({"note": "set by organizer"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server
        .patch(&meetup, Some(&m.organizer_token), json!({"title": "x"}))
        .await
        .assert_problem(403);

    let me = server
        .send(
            Method::GET,
            &format!("{meetup}/participants/me"),
            Some(&ben_token),
            None,
        )
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["name"], "Ben");
    let me = server
        .send(
            Method::GET,
            &format!("{meetup}/participants/me"),
            Some(&m.admin),
            None,
        )
        .await;
    assert_eq!(me.body["id"], m.organizer_id.as_str());
    server
        .send(
            Method::GET,
            &format!("{meetup}/participants/me"),
            None,
            None,
        )
        .await
        .assert_problem(401);
    let wrong_scheme = server
        .http
        .get(format!("{}{meetup}/participants/me", server.base))
        .header("authorization", format!("Basic {ben_token}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong_scheme.status(), 401);
}

async fn organizer_edits_closes_and_reopens(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server
        .create_meetup(json!({"description": "bring friends"}))
        .await;
    let meetup = format!("/api/v1/meetups/{}", m.id);
    let (ben, ben_token) = server.join(&m.id, "Ben").await;

    let reply = server
        .patch(
            &meetup,
            Some(&m.admin),
            json!({"title": "Saturday beer", "description": null, "deadline": format!("{}T12:00:00Z", day(30)), "allowParticipantPlaces": false}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["title"], "Saturday beer");
    assert!(reply.body.get("description").is_none());
    assert_eq!(reply.body["deadline"], format!("{}T12:00:00Z", day(30)));
    assert_eq!(reply.body["allowParticipantPlaces"], false);
    let reply = server
        .patch(&meetup, Some(&m.admin), json!({"deadline": null}))
        .await;
    assert!(reply.body.get("deadline").is_none());
    server
        .patch(
            &meetup,
            Some(&m.admin),
            json!({"deadline": "2001-01-01T00:00:00Z"}),
        )
        .await
        .assert_problem(422);
    server
        .patch(&meetup, Some(&m.admin), json!({"status": "finalized"}))
        .await
        .assert_problem(422);
    server
        .patch(&meetup, Some(&m.admin), json!({"title": ""}))
        .await
        .assert_problem(422);

    let reply = server
        .patch(&meetup, Some(&m.admin), json!({"status": "closed"}))
        .await;
    assert_eq!(reply.body["status"], "closed");
    let vote = json!({"availability": {m.slots[0].clone(): "yes"}});
    server
        .patch(
            &format!("{meetup}/participants/{ben}"),
            Some(&ben_token),
            vote.clone(),
        )
        .await
        .assert_problem(409);
    server
        .post(
            &format!("{meetup}/participants"),
            None,
            json!({"name": "Late"}),
        )
        .await
        .assert_problem(409);
    // Notes and comments still work on a closed meetup.
    let reply = server
        .patch(
            &format!("{meetup}/participants/{ben}"),
            Some(&ben_token),
            json!({"note": "sorry"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    server
        .patch(&meetup, Some(&m.admin), json!({"status": "open"}))
        .await;
    let reply = server
        .patch(
            &format!("{meetup}/participants/{ben}"),
            Some(&ben_token),
            vote,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        server
            .events
            .kinds()
            .iter()
            .filter(|k| *k == "meetupUpdated")
            .count()
            >= 4
    );
}

async fn places_follow_the_rules(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let meetup = format!("/api/v1/meetups/{}", m.id);
    let (ben, ben_token) = server.join(&m.id, "Ben").await;
    let (_, cleo_token) = server.join(&m.id, "Cleo").await;

    let reply = server
        .post(
            &format!("{meetup}/places"),
            Some(&ben_token),
            json!({"name": "Ben's Garage", "link": "https://garage.example", "note": "bring chairs"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["addedBy"], "Ben");
    let garage = reply.body["id"].as_str().expect("id").to_string();
    server
        .post(
            &format!("{meetup}/places"),
            Some(&ben_token),
            json!({"name": ""}),
        )
        .await
        .assert_problem(422);
    server
        .post(&format!("{meetup}/places"), None, json!({"name": "x"}))
        .await
        .assert_problem(401);

    let reply = server
        .patch(
            &format!("{meetup}/places/{garage}"),
            Some(&ben_token),
            json!({"name": "Ben's Big Garage", "link": null}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["name"], "Ben's Big Garage");
    assert!(reply.body.get("link").is_none());
    assert_eq!(reply.body["note"], "bring chairs");
    server
        .patch(
            &format!("{meetup}/places/{garage}"),
            Some(&cleo_token),
            json!({"name": "Mine"}),
        )
        .await
        .assert_problem(403);
    server
        .patch(
            &format!("{meetup}/places/nope"),
            Some(&m.admin),
            json!({"name": "x"}),
        )
        .await
        .assert_problem(404);

    // Votes for a removed place disappear.
    server
        .patch(
            &format!("{meetup}/participants/{ben}"),
            Some(&ben_token),
            json!({"placeVotes": [garage.clone(), m.places[0].clone(), garage.clone()]}),
        )
        .await;
    server
        .delete(&format!("{meetup}/places/{garage}"), Some(&cleo_token))
        .await
        .assert_problem(403);
    let reply = server
        .delete(&format!("{meetup}/places/{garage}"), Some(&ben_token))
        .await;
    assert_eq!(reply.status, 204);
    let view = server.get(&meetup).await;
    assert_eq!(view.body["places"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        view.body["participants"][1]["placeVotes"],
        json!([m.places[0]])
    );
    server
        .delete(&format!("{meetup}/places/{garage}"), Some(&m.admin))
        .await
        .assert_problem(404);

    // The organizer can switch participant places off.
    server
        .patch(
            &meetup,
            Some(&m.admin),
            json!({"allowParticipantPlaces": false}),
        )
        .await;
    server
        .post(
            &format!("{meetup}/places"),
            Some(&cleo_token),
            json!({"name": "Cleo's"}),
        )
        .await
        .assert_problem(403);
    let reply = server
        .post(
            &format!("{meetup}/places"),
            Some(&m.admin),
            json!({"name": "Admin's pick"}),
        )
        .await;
    assert_eq!(reply.status, 201);

    // Places of the caller's own meetups are suggested, case-insensitively by prefix.
    let scope = json!([{"id": m.id, "token": ben_token}]);
    let reply = server
        .post(
            "/api/v1/places/suggestions",
            None,
            json!({"q": "hops", "meetups": scope}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body[0]["name"], "Hops & Barley");
    assert_eq!(reply.body[0]["address"], "Wühlischstr. 22");
    // Never from a meetup the caller has no token for: a stranger's, or one with a wrong token.
    let stranger = server
        .create_meetup(json!({"places": [{"name": "Hops Secret Bar", "address": "Hidden 1"}]}))
        .await;
    for meetups in [
        json!([]),
        json!([{"id": stranger.id, "token": ben_token}]),
        json!([{"id": stranger.id, "token": "made-up"}]),
    ] {
        let reply = server
            .post(
                "/api/v1/places/suggestions",
                None,
                json!({"q": "hops", "meetups": meetups}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.body, json!([]), "{meetups}");
    }
    let reply = server.get("/api/v1/places/suggestions?q=hops").await;
    assert_eq!(reply.body, json!([]));
    // A stranger adding a place of the same name changes nothing for this caller.
    server
        .post(
            &format!("/api/v1/meetups/{}/places", stranger.id),
            Some(&stranger.admin),
            json!({"name": "hops & barley", "address": "Elsewhere 9"}),
        )
        .await;
    let reply = server
        .post(
            "/api/v1/places/suggestions",
            None,
            json!({"q": "hops", "meetups": scope}),
        )
        .await;
    assert_eq!(reply.body[0]["address"], "Wühlischstr. 22");
    // Gone with the meetup.
    let own = server
        .create_meetup(json!({"places": [{"name": "Mine Only"}]}))
        .await;
    let own_scope = json!([{"id": own.id, "token": own.admin}]);
    let ask = json!({"q": "mine", "meetups": own_scope});
    let reply = server
        .post("/api/v1/places/suggestions", None, ask.clone())
        .await;
    assert_eq!(reply.body[0]["name"], "Mine Only");
    server
        .delete(&format!("/api/v1/meetups/{}", own.id), Some(&own.admin))
        .await;
    let reply = server.post("/api/v1/places/suggestions", None, ask).await;
    assert_eq!(reply.body, json!([]));

    let kinds = server.events.kinds();
    for kind in ["placeAdded", "placeUpdated", "placeRemoved"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} not published");
    }
}

async fn participants_join_vote_and_leave(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let meetup = format!("/api/v1/meetups/{}", m.id);
    let (ben, ben_token) = server.join(&m.id, "Ben").await;

    server
        .post(
            &format!("{meetup}/participants"),
            None,
            json!({"name": "  BEN "}),
        )
        .await
        .assert_problem(409);
    server
        .post(
            &format!("{meetup}/participants"),
            None,
            json!({"name": "anna"}),
        )
        .await
        .assert_problem(409);
    server
        .post(&format!("{meetup}/participants"), None, json!({"name": ""}))
        .await
        .assert_problem(422);
    server
        .post(
            &format!("{meetup}/participants"),
            None,
            json!({"name": "Tz", "timeZone": "Nowhere/City"}),
        )
        .await
        .assert_problem(422);
    server
        .post(
            "/api/v1/meetups/missingmeet1/participants",
            None,
            json!({"name": "X"}),
        )
        .await
        .assert_problem(404);
    let reply = server
        .post(
            &format!("{meetup}/participants"),
            None,
            json!({"name": "Dora", "timeZone": "Asia/Tokyo"}),
        )
        .await;
    assert_eq!(reply.body["participant"]["timeZone"], "Asia/Tokyo");

    let ben_path = format!("{meetup}/participants/{ben}");
    let reply = server
        .patch(
            &ben_path,
            Some(&ben_token),
            json!({"availability": {"20990101T1800Z": "yes"}}),
        )
        .await;
    reply.assert_problem(404);
    server
        .patch(
            &ben_path,
            Some(&ben_token),
            json!({"availability": {m.slots[0].clone(): "no"}}),
        )
        .await
        .assert_problem(422);
    server
        .patch(&ben_path, Some(&ben_token), json!({"placeVotes": ["nope"]}))
        .await
        .assert_problem(404);
    server
        .patch(&ben_path, Some(&ben_token), json!({"name": "Dora"}))
        .await
        .assert_problem(409);
    server
        .patch(
            &format!("{meetup}/participants/ghost"),
            Some(&m.admin),
            json!({"note": "x"}),
        )
        .await
        .assert_problem(404);

    // Availability replaces, it does not merge.
    server
        .patch(
            &ben_path,
            Some(&ben_token),
            json!({"availability": {m.slots[0].clone(): "yes"}}),
        )
        .await;
    let reply = server
        .patch(
            &ben_path,
            Some(&ben_token),
            json!({"availability": {m.slots[1].clone(): "maybe"}, "name": "Benjamin"}),
        )
        .await;
    assert_eq!(
        reply.body["availability"],
        json!({m.slots[1].clone(): "maybe"})
    );
    assert_eq!(reply.body["name"], "Benjamin");

    let reply = server.delete(&ben_path, Some(&ben_token)).await;
    assert_eq!(reply.status, 204);
    server
        .delete(&ben_path, Some(&ben_token))
        .await
        .assert_problem(401);
    server
        .delete(&ben_path, Some(&m.admin))
        .await
        .assert_problem(404);
    let view = server.get(&meetup).await;
    assert_eq!(view.body["participants"].as_array().map(Vec::len), Some(2));
    assert!(
        server
            .events
            .kinds()
            .contains(&"participantLeft".to_string())
    );

    // The organizer removes someone.
    let (eve, _) = server.join(&m.id, "Eve").await;
    let reply = server
        .delete(&format!("{meetup}/participants/{eve}"), Some(&m.admin))
        .await;
    assert_eq!(reply.status, 204);
}

async fn comments_can_be_added_listed_and_deleted(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let comments = format!("/api/v1/meetups/{}/comments", m.id);
    let (_, ben_token) = server.join(&m.id, "Ben").await;
    let (_, cleo_token) = server.join(&m.id, "Cleo").await;

    let reply = server
        .post(
            &comments,
            Some(&ben_token),
            json!({"text": "Recent research shows beer jokes only get better."}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["author"], "Ben");
    let first = reply.body["id"].as_str().expect("id").to_string();
    let reply = server
        .post(&comments, Some(&m.admin), json!({"text": "Agreed."}))
        .await;
    assert_eq!(reply.body["author"], "Anna");
    assert_eq!(reply.body["participantId"], m.organizer_id.as_str());
    server
        .post(&comments, None, json!({"text": "anonymous"}))
        .await
        .assert_problem(401);
    server
        .post(&comments, Some(&ben_token), json!({"text": " "}))
        .await
        .assert_problem(422);
    server
        .post(
            &comments,
            Some(&ben_token),
            json!({"text": "x".repeat(1001)}),
        )
        .await
        .assert_problem(422);

    let list = server.get(&comments).await;
    assert_eq!(list.status, 200);
    let texts: Vec<_> = list
        .body
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts.len(), 2);
    assert_eq!(texts[1], "Agreed.");

    server
        .delete(&format!("{comments}/{first}"), Some(&cleo_token))
        .await
        .assert_problem(403);
    let reply = server
        .delete(&format!("{comments}/{first}"), Some(&ben_token))
        .await;
    assert_eq!(reply.status, 204);
    server
        .delete(&format!("{comments}/{first}"), Some(&m.admin))
        .await
        .assert_problem(404);
    server
        .get("/api/v1/meetups/missingmeet1/comments")
        .await
        .assert_problem(404);
    let kinds = server.events.kinds();
    assert!(kinds.contains(&"commentAdded".to_string()));
    assert!(kinds.contains(&"commentRemoved".to_string()));
}

async fn finalize_exports_ics_and_reopen_clears_it(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({"description": "Cheers"})).await;
    let meetup = format!("/api/v1/meetups/{}", m.id);
    let ics = format!("{meetup}/event.ics");

    server.get(&ics).await.assert_problem(409);
    server
        .post(
            &format!("{meetup}/finalize"),
            Some(&m.admin),
            json!({"startSlotId": "nope"}),
        )
        .await
        .assert_problem(404);
    server
        .post(
            &format!("{meetup}/finalize"),
            Some(&m.admin),
            json!({"startSlotId": m.slots[1], "endSlotId": m.slots[0]}),
        )
        .await
        .assert_problem(422);
    server
        .post(
            &format!("{meetup}/finalize"),
            Some(&m.admin),
            json!({"startSlotId": m.slots[0], "placeId": "nope"}),
        )
        .await
        .assert_problem(404);
    let reply = server
        .post(
            &format!("{meetup}/finalize"),
            Some(&m.admin),
            json!({"startSlotId": m.slots[0], "endSlotId": m.slots[1], "placeId": m.places[0], "note": "first round on me"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["status"], "finalized");
    assert_eq!(reply.body["decision"]["startSlotId"], m.slots[0].as_str());
    assert_eq!(reply.body["decision"]["placeId"], m.places[0].as_str());

    let calendar = server.get(&ics).await;
    assert_eq!(calendar.status, 200);
    assert!(calendar.content_type().starts_with("text/calendar"));
    for line in [
        "BEGIN:VCALENDAR",
        "BEGIN:VEVENT",
        "SUMMARY:Friday beer",
        "LOCATION:Hops & Barley",
        "END:VEVENT",
    ] {
        assert!(
            calendar.text.contains(line),
            "{line} missing in {}",
            calendar.text
        );
    }
    // The event links back to the meetup page on the address it was fetched from.
    let page = format!("URL:{}/m/{}", server.base, m.id);
    assert!(
        calendar.text.contains(&page),
        "{page} missing in {}",
        calendar.text
    );
    assert!(!calendar.text.contains("X-WR-CALNAME"), "{}", calendar.text);
    // The decided place cannot be removed while the meetup is finalized.
    server
        .delete(&format!("{meetup}/places/{}", m.places[0]), Some(&m.admin))
        .await
        .assert_problem(409);

    let reply = server
        .patch(&meetup, Some(&m.admin), json!({"status": "open"}))
        .await;
    assert_eq!(reply.body["status"], "open");
    assert!(reply.body.get("decision").is_none());
    server.get(&ics).await.assert_problem(409);
    assert!(
        server
            .events
            .kinds()
            .contains(&"meetupFinalized".to_string())
    );
}

async fn deleting_a_meetup_makes_it_gone(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let meetup = format!("/api/v1/meetups/{}", m.id);
    let reply = server.delete(&meetup, Some(&m.admin)).await;
    assert_eq!(reply.status, 204);
    server.get(&meetup).await.assert_problem(404);
    server
        .delete(&meetup, Some(&m.admin))
        .await
        .assert_problem(404);
    assert_eq!(server.events.kinds(), vec!["meetupDeleted"]);
}

async fn health_metrics_and_openapi(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    server.create_meetup(json!({})).await;
    assert_eq!(server.get("/healthz").await.status, 200);
    assert_eq!(server.get("/readyz").await.status, 200);
    let openapi = server.get("/api/openapi.json").await;
    assert_eq!(openapi.status, 200);
    for path in [
        "/api/v1/meetups",
        "/api/v1/meetups/{id}",
        "/api/v1/meetups/{id}/participants/{participant_id}",
        "/api/v1/meetups/{id}/event.ics",
        "/api/v1/places/suggestions",
    ] {
        assert!(
            openapi.body["paths"].get(path).is_some(),
            "{path} undocumented"
        );
    }
    assert!(
        openapi.body["components"]["schemas"]
            .get("MeetupView")
            .is_some()
    );
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.text.contains("http_requests_total"));
    assert!(metrics.text.contains("route=\"/api/v1/meetups\""));
    assert!(
        metrics
            .text
            .contains("http_request_duration_seconds_bucket")
    );
    assert!(metrics.text.contains("store_operation_duration_seconds"));
}

async fn fifty_people_vote_at_once_and_no_vote_is_lost(kind: StoreKind) {
    let server = Arc::new(TestServer::start(kind).await);
    let m = server.create_meetup(json!({})).await;
    let mut people = Vec::new();
    for i in 0..50 {
        people.push(server.join(&m.id, &format!("Friend {i:02}")).await);
    }
    let before = server.get(&format!("/api/v1/meetups/{}", m.id)).await.body["revision"]
        .as_i64()
        .expect("revision");
    let slot = m.slots[0].clone();
    let place = m.places[0].clone();
    let votes: Vec<_> = people
        .iter()
        .cloned()
        .map(|(pid, token)| {
            let server = Arc::clone(&server);
            let path = format!("/api/v1/meetups/{}/participants/{pid}", m.id);
            let body =
                json!({"availability": {slot.clone(): "yes"}, "placeVotes": [place.clone()]});
            tokio::spawn(async move { server.patch(&path, Some(&token), body).await.status })
        })
        .collect();
    for vote in votes {
        assert_eq!(vote.await.expect("task"), 200);
    }
    let view = server.get(&format!("/api/v1/meetups/{}", m.id)).await;
    assert_eq!(
        view.body["slots"][0]["yes"].as_array().map(Vec::len),
        Some(50)
    );
    assert_eq!(
        view.body["places"][0]["voters"].as_array().map(Vec::len),
        Some(50)
    );
    assert_eq!(view.body["revision"], before + 50);
    // Every vote got its own revision.
    let mut revisions = server.events.revisions();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), 100);
}

async fn concurrent_place_additions_are_all_kept(kind: StoreKind) {
    let server = Arc::new(TestServer::start(kind).await);
    let m = server.create_meetup(json!({})).await;
    let adds: Vec<_> = (0..12)
        .map(|i| {
            let server = Arc::clone(&server);
            let path = format!("/api/v1/meetups/{}/places", m.id);
            let admin = m.admin.clone();
            tokio::spawn(async move {
                server
                    .post(&path, Some(&admin), json!({"name": format!("Bar {i}")}))
                    .await
                    .status
            })
        })
        .collect();
    for add in adds {
        assert_eq!(add.await.expect("task"), 201);
    }
    let view = server.get(&format!("/api/v1/meetups/{}", m.id)).await;
    assert_eq!(view.body["places"].as_array().map(Vec::len), Some(14));
}

async fn live_socket_sends_a_snapshot_then_events(kind: StoreKind) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let (ben, ben_token) = server.join(&m.id, "Ben").await;
    let url = format!(
        "{}/api/v1/meetups/{}/live",
        server.base.replace("http://", "ws://"),
        m.id
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("websocket connects");
    async fn next_json<S>(socket: &mut S) -> Value
    where
        S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    {
        // Control frames (ping/pong) may come in between; the protocol is in text frames.
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("json");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["revision"], 2);
    assert_eq!(snapshot["meetup"]["participants"][1]["name"], "Ben");
    assert_eq!(snapshot["presence"], 1);

    server
        .patch(
            &format!("/api/v1/meetups/{}/participants/{ben}", m.id),
            Some(&ben_token),
            json!({"availability": {m.slots[0].clone(): "yes"}}),
        )
        .await;
    let event = next_json(&mut socket).await;
    assert_eq!(event["type"], "event");
    assert_eq!(event["revision"], 3);
    assert_eq!(event["event"]["kind"], "participantUpdated");
    assert_eq!(
        event["event"]["participant"]["availability"][&m.slots[0]],
        "yes"
    );

    server
        .delete(&format!("/api/v1/meetups/{}", m.id), Some(&m.admin))
        .await;
    let event = next_json(&mut socket).await;
    assert_eq!(event["event"]["kind"], "meetupDeleted");

    // Without an upgrade it is a problem, and unknown meetups are 404.
    server
        .get(&format!("/api/v1/meetups/{}/live", m.id))
        .await
        .assert_problem(404);
    let plain = server.create_meetup(json!({})).await;
    server
        .get(&format!("/api/v1/meetups/{}/live", plain.id))
        .await
        .assert_problem(400);
}

for_each_store!(
    live_socket_sends_a_snapshot_then_events,
    create_join_vote_and_read_tallies_with_names,
    create_validates_every_field,
    bad_requests_get_problem_json,
    tokens_are_checked,
    organizer_edits_closes_and_reopens,
    places_follow_the_rules,
    participants_join_vote_and_leave,
    comments_can_be_added_listed_and_deleted,
    finalize_exports_ics_and_reopen_clears_it,
    deleting_a_meetup_makes_it_gone,
    health_metrics_and_openapi,
    fifty_people_vote_at_once_and_no_vote_is_lost,
    concurrent_place_additions_are_all_kept,
);

#[tokio::test]
async fn writes_are_rate_limited_per_client() {
    let settings = Settings {
        write_rate_limit: Some(RateLimit {
            per_minute: 1,
            burst: 2,
        }),
        ..test_settings()
    };
    let server = TestServer::start_with(StoreKind::Embedded, settings).await;
    let body = json!({"title": "t", "organizerName": "A", "timeZone": "UTC"});
    assert_eq!(
        server
            .post("/api/v1/meetups", None, body.clone())
            .await
            .status,
        201
    );
    assert_eq!(
        server
            .post("/api/v1/meetups", None, body.clone())
            .await
            .status,
        201
    );
    let limited = server.post("/api/v1/meetups", None, body).await;
    limited.assert_problem(429);
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!(retry_after >= 1);
    // Reads are never limited.
    assert_eq!(server.get("/healthz").await.status, 200);
    assert_eq!(server.get("/api/v1/places/suggestions").await.status, 200);
}

#[tokio::test]
async fn serves_the_web_app_with_index_fallback() {
    let web = tempfile::tempdir().expect("temp dir");
    std::fs::write(web.path().join("index.html"), "<html>beer app</html>").expect("write");
    std::fs::write(web.path().join("app.js"), "console.log('hi')").expect("write");
    let settings = Settings {
        web_dir: Some(web.path().to_path_buf()),
        ..test_settings()
    };
    let server = TestServer::start_with(StoreKind::Embedded, settings).await;
    assert_eq!(server.get("/").await.text, "<html>beer app</html>");
    assert_eq!(server.get("/app.js").await.text, "console.log('hi')");
    assert_eq!(server.get("/m/abc123").await.text, "<html>beer app</html>");
    server.get("/api/v1/unknown").await.assert_problem(404);
}

#[tokio::test]
async fn without_a_web_app_the_root_explains_itself() {
    let server = TestServer::start(StoreKind::Embedded).await;
    let reply = server.get("/").await;
    assert_eq!(reply.status, 404);
    assert!(reply.text.contains("make run"));
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    use api_server::store::{InstrumentedStore, MongoStore};

    let ferret = common::start_ferretdb().await;
    let store = MongoStore::connect(&ferret.uri(), "readiness")
        .await
        .expect("connects");
    let state = api_server::AppState::new(Arc::new(InstrumentedStore::new(store)), test_settings());
    let served =
        common::serve_on_loopback(state, api_server::http::server::ServerLimits::default()).await;
    let base = served.base.clone();
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(ready.status(), 200);
    drop(ferret);
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["content-type"], "application/problem+json");
    // Liveness does not depend on the database.
    let live = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(live.status(), 200);
    drop(served);
}

/// The API starts before its database (a rollout, a database restarted at the same time): it
/// serves liveness, answers 503 problems and is not ready, then finds the database by itself —
/// with its indexes, so a name is still unique — without a restart.
#[tokio::test]
async fn starts_before_the_database_and_becomes_ready_when_it_answers() {
    use api_server::store::{InstrumentedStore, MongoStore};

    let port = test_fixtures::free_port();
    let store = MongoStore::connect(&format!("mongodb://127.0.0.1:{port}/"), "late")
        .await
        .expect("starts without the database");
    let state = api_server::AppState::new(Arc::new(InstrumentedStore::new(store)), test_settings());
    let served =
        common::serve_on_loopback(state, api_server::http::server::ServerLimits::default()).await;
    let base = served.base.clone();
    let http = reqwest::Client::new();
    let meetup =
        json!({"title": "Late start", "organizerName": "Anna", "timeZone": "Europe/Berlin"});
    let status = |path: &'static str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http.get(url).send().await.expect("answer").status() }
    };
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(status("/readyz").await, 503);
    let create = http
        .post(format!("{base}/api/v1/meetups"))
        .json(&meetup)
        .send()
        .await
        .expect("answer");
    assert_eq!(create.status(), 503);
    assert_eq!(create.headers()["content-type"], "application/problem+json");

    let _ferret = test_fixtures::FerretDb::start_on(port)
        .await
        .expect("ferretdb starts");
    test_fixtures::eventually(
        "ready once the database answers",
        std::time::Duration::from_secs(30),
        || async {
            anyhow::ensure!(status("/readyz").await == 200, "not ready yet");
            Ok(())
        },
    )
    .await
    .expect("ready");
    let created: Value = http
        .post(format!("{base}/api/v1/meetups"))
        .json(&meetup)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let id = created["meetup"]["id"].as_str().expect("id").to_owned();
    let join = |name: &'static str| {
        let http = http.clone();
        let url = format!("{base}/api/v1/meetups/{id}/participants");
        async move {
            http.post(url)
                .json(&json!({ "name": name }))
                .send()
                .await
                .expect("answer")
                .status()
        }
    };
    assert_eq!(join("Mia").await, 201);
    assert_eq!(join("Mia").await, 409, "the unique name index exists");
    drop(served);
}
