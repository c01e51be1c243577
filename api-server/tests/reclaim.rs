//! Getting a name back on another device with a PIN, over real HTTP on both stores.

mod common;

use common::{StoreKind, TestServer};
use reqwest::Method;
use serde_json::json;

async fn a_pin_gets_the_same_name_and_token_back_and_nothing_else_does(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let (petya, token) = server.join(&m.id, "Петя").await;
    let (_, other_token) = server.join(&m.id, "Ben").await;
    let secret = |pid: &str| format!("/api/v1/meetups/{}/participants/{pid}/secret", m.id);
    let reclaim = format!("/api/v1/meetups/{}/participants/reclaim", m.id);

    // Only Petya's own link sets Petya's PIN.
    let set = |token: Option<String>, body: serde_json::Value| {
        let (server, path) = (&server, secret(&petya));
        async move {
            server
                .send(Method::PUT, &path, token.as_deref(), Some(body))
                .await
        }
    };
    set(None, json!({"secret": "4711"}))
        .await
        .assert_problem(401);
    set(Some(other_token.clone()), json!({"secret": "4711"}))
        .await
        .assert_problem(403);
    set(Some(m.admin.clone()), json!({"secret": "4711"}))
        .await
        .assert_problem(403);
    let short = set(Some(token.clone()), json!({"secret": "471"})).await;
    assert_eq!(short.assert_problem(422)["errors"][0]["field"], "secret");
    let revision_before = server.get(&format!("/api/v1/meetups/{}", m.id)).await.body["revision"]
        .as_i64()
        .expect("revision");
    let ok = set(Some(token.clone()), json!({"secret": "4711"})).await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    let view = server.get(&format!("/api/v1/meetups/{}", m.id)).await;
    assert!(view.body["revision"].as_i64().expect("revision") > revision_before);
    assert!(
        !view.text.contains("argon2") && !view.text.contains("secret"),
        "nothing of the PIN shows in the view: {}",
        view.text
    );

    // Another device: the name in any case and spacing plus the PIN give the same token.
    let back = server
        .post(&reclaim, None, json!({"name": "  пЕТЯ ", "secret": "4711"}))
        .await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(back.body["token"], token.as_str());
    assert_eq!(back.body["participant"]["id"], petya.as_str());
    assert_eq!(back.body["participant"]["name"], "Петя");
    let me = server
        .send(
            Method::GET,
            &format!("/api/v1/meetups/{}/participants/me", m.id),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(me.status, 200, "the first device keeps working");

    // Wrong PIN, a name without a PIN and an unknown name all read the same.
    let wrong = server
        .post(&reclaim, None, json!({"name": "Петя", "secret": "4712"}))
        .await;
    let no_pin = server
        .post(&reclaim, None, json!({"name": "Ben", "secret": "4711"}))
        .await;
    let unknown = server
        .post(&reclaim, None, json!({"name": "Nobody", "secret": "4711"}))
        .await;
    for reply in [&wrong, &no_pin, &unknown] {
        assert_eq!(reply.assert_problem(401)["detail"], wrong.body["detail"]);
    }
    assert!(!wrong.text.contains("4712"), "the secret is never echoed");
    server
        .post(
            "/api/v1/meetups/nosuchmeetup/participants/reclaim",
            None,
            json!({"name": "Петя", "secret": "4711"}),
        )
        .await
        .assert_problem(404);

    // A changed PIN replaces the old one; a removed PIN leaves only the link.
    assert_eq!(
        set(Some(token.clone()), json!({"secret": "пиво 2026"}))
            .await
            .status,
        204
    );
    server
        .post(&reclaim, None, json!({"name": "Петя", "secret": "4711"}))
        .await
        .assert_problem(401);
    let changed = server
        .post(
            &reclaim,
            None,
            json!({"name": "петя", "secret": "пиво 2026"}),
        )
        .await;
    assert_eq!(changed.body["token"], token.as_str(), "{}", changed.text);
    let removed = server.delete(&secret(&petya), Some(&token)).await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    server
        .post(
            &reclaim,
            None,
            json!({"name": "Петя", "secret": "пиво 2026"}),
        )
        .await
        .assert_problem(401);
}

async fn wrong_pins_are_limited_per_name_with_retry_after(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let (petya, token) = server.join(&m.id, "Petya").await;
    let path = format!("/api/v1/meetups/{}/participants/{petya}/secret", m.id);
    let set = server
        .send(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"secret": "2468"})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.text);
    let reclaim = format!("/api/v1/meetups/{}/participants/reclaim", m.id);
    for guess in 0..5 {
        server
            .post(
                &reclaim,
                None,
                json!({"name": "Petya", "secret": format!("000{guess}")}),
            )
            .await
            .assert_problem(401);
    }
    // The sixth try waits, even with the right PIN: a guesser cannot tell.
    let limited = server
        .post(&reclaim, None, json!({"name": "PETYA", "secret": "2468"}))
        .await;
    limited.assert_problem(429);
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=15 * 60).contains(&wait), "{wait}");
}

async fn the_organizer_gets_organizer_rights_back_with_their_pin(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let m = server.create_meetup(json!({})).await;
    let (petya, petya_token) = server.join(&m.id, "Petya").await;
    let secret = |pid: &str| format!("/api/v1/meetups/{}/participants/{pid}/secret", m.id);
    let reclaim = format!("/api/v1/meetups/{}/participants/reclaim", m.id);

    // Only the organizer's own link may keep the admin token, and only the real one.
    let keep = |pid: &str, token: &str, admin: &str| {
        let (server, path) = (&server, secret(pid));
        let (token, body) = (
            token.to_owned(),
            json!({"secret": "4711", "adminToken": admin}),
        );
        async move {
            server
                .send(Method::PUT, &path, Some(&token), Some(body))
                .await
        }
    };
    keep(&petya, &petya_token, &m.admin)
        .await
        .assert_problem(403);
    keep(&m.organizer_id, &m.organizer_token, "not-the-admin-token")
        .await
        .assert_problem(403);
    let ok = keep(&m.organizer_id, &m.organizer_token, &m.admin).await;
    assert_eq!(ok.status, 204, "{}", ok.text);

    // Another device: name + PIN give both tokens back; the admin token manages the meetup.
    let back = server
        .post(&reclaim, None, json!({"name": "anna", "secret": "4711"}))
        .await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(back.body["token"], m.organizer_token.as_str());
    assert_eq!(back.body["adminToken"], m.admin.as_str());
    let patched = server
        .send(
            Method::PATCH,
            &format!("/api/v1/meetups/{}", m.id),
            back.body["adminToken"].as_str(),
            Some(json!({"title": "Friday beer, new device"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);

    // A friend's reclaim never carries an admin token.
    let set = server
        .send(
            Method::PUT,
            &secret(&petya),
            Some(&petya_token),
            Some(json!({"secret": "2468"})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.text);
    let friend = server
        .post(&reclaim, None, json!({"name": "Petya", "secret": "2468"}))
        .await;
    assert_eq!(friend.status, 200, "{}", friend.text);
    assert!(friend.body.get("adminToken").is_none(), "{}", friend.text);
}

for_each_store!(
    a_pin_gets_the_same_name_and_token_back_and_nothing_else_does,
    the_organizer_gets_organizer_rights_back_with_their_pin,
    wrong_pins_are_limited_per_name_with_retry_after,
);
