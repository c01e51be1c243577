//! One conformance suite for every `Store` adaptor: the same cases run against the embedded
//! store and the MongoDB adaptor on a real FerretDB, on each of FerretDB v1's two backends
//! (SQLite and PostgreSQL).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use api_server::domain::ids::{hash_token, new_id};
use api_server::domain::{
    self, Availability, CommentRecord, CreateMeetup, MeetupRecord, ParticipantChanges,
    ParticipantRecord, PlaceInput, PlaceSuggestion,
};
use api_server::store::{Revision, Store, StoreError};
use chrono::Utc;
use common::{StoreKind, make_store};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn sample_meetup() -> (MeetupRecord, ParticipantRecord) {
    let mut rng = StdRng::from_os_rng();
    let input = CreateMeetup {
        title: "Conformance beer".into(),
        organizer_name: "Anna".into(),
        time_zone: "Europe/Berlin".into(),
        places: Some(vec![
            PlaceInput {
                name: "Hops".into(),
                ..Default::default()
            },
            PlaceInput {
                name: "Barley".into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let created = domain::create_meetup(
        input,
        hash_token("admin"),
        hash_token(&new_id(&mut rng, 20)),
        Utc::now(),
        &mut rng,
    )
    .expect("valid meetup");
    (created.meetup, created.organizer)
}

/// A MongoDB adaptor on a fresh FerretDB with one stored meetup, and a raw handle on the same
/// database for the tests that reach under the adaptor.
/// A sample meetup, created in `store`.
async fn stored_meetup(store: &dyn Store) -> (MeetupRecord, ParticipantRecord) {
    let (meetup, organizer) = sample_meetup();
    store
        .create_meetup(&meetup, &organizer)
        .await
        .expect("create");
    (meetup, organizer)
}

async fn ferretdb_with_a_meetup(
    database: &str,
) -> (
    common::FerretDb,
    api_server::store::MongoStore,
    mongodb::Database,
    MeetupRecord,
    ParticipantRecord,
) {
    let ferret = common::start_ferretdb().await;
    let store = api_server::store::MongoStore::connect(&ferret.uri(), database)
        .await
        .expect("connects");
    let (meetup, organizer) = stored_meetup(&store).await;
    let raw = mongodb::Client::with_uri_str(ferret.uri())
        .await
        .expect("client")
        .database(database);
    (ferret, store, raw, meetup, organizer)
}

fn participant(meetup: &MeetupRecord, name: &str) -> ParticipantRecord {
    let mut rng = StdRng::from_os_rng();
    ParticipantRecord {
        id: new_id(&mut rng, 10),
        meetup_id: meetup.id.clone(),
        name: name.to_string(),
        name_key: name.to_lowercase(),
        token_hash: hash_token(&new_id(&mut rng, 20)),
        time_zone: None,
        availability: BTreeMap::new(),
        place_votes: Vec::new(),
        note: None,
        is_organizer: false,
        joined_at: Utc::now(),
        secret: None,
    }
}

fn comment(meetup: &MeetupRecord, text: &str) -> CommentRecord {
    CommentRecord {
        id: new_id(&mut StdRng::from_os_rng(), 10),
        meetup_id: meetup.id.clone(),
        participant_id: Some(meetup.organizer_id.clone()),
        author: meetup.organizer_name.clone(),
        text: text.to_string(),
        created_at: Utc::now(),
    }
}

/// Writes every mutable field of `p` (a whole-record PATCH).
async fn replace_participant(
    store: &Arc<dyn Store>,
    p: &ParticipantRecord,
) -> Result<Option<Revision>, StoreError> {
    store
        .update_participant(&p.meetup_id, &p.id, ParticipantChanges::all_of(p))
        .await
        .map(|written| written.map(|(revision, _)| revision))
}

async fn stored(store: &Arc<dyn Store>, id: &str) -> MeetupRecord {
    store
        .meetup(id)
        .await
        .expect("read")
        .expect("meetup exists")
}

async fn create_and_read_back(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    store.ping().await.expect("ping");
    let (meetup, organizer) = stored_meetup(&*store).await;
    assert_eq!(stored(&store, &meetup.id).await, meetup);
    assert_eq!(
        store.participants(&meetup.id).await.expect("list"),
        vec![organizer.clone()]
    );
    assert_eq!(
        store
            .participant(&meetup.id, &organizer.id)
            .await
            .expect("one"),
        Some(organizer.clone())
    );
    let by_token = store
        .participant_by_token(&meetup.id, &organizer.token_hash)
        .await
        .expect("by token");
    assert_eq!(by_token, Some(organizer.clone()));
    assert_eq!(
        store
            .participant_id_by_token(&meetup.id, &organizer.token_hash)
            .await
            .expect("id by token"),
        Some(organizer.id.clone())
    );
    // A token only works inside its own meetup.
    assert_eq!(
        store
            .participant_by_token("otherMeetup1", &organizer.token_hash)
            .await
            .expect("by token"),
        None
    );
    // Not even in a meetup whose id starts like this one's.
    for other in ["otherMeetup1", &meetup.id[..meetup.id.len() - 1]] {
        assert_eq!(
            store
                .participant_id_by_token(other, &organizer.token_hash)
                .await
                .expect("id by token"),
            None,
            "{other}"
        );
    }
    assert_eq!(
        store
            .participant_id_by_token(&meetup.id, "0".repeat(64).as_str())
            .await
            .expect("id by token"),
        None
    );
    assert_eq!(store.meetup("missing12345").await.expect("read"), None);
}

async fn names_are_unique_per_meetup_case_insensitively(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let ben = participant(&meetup, "Ben");
    let revision = store.add_participant(&ben, 200).await.expect("join");
    assert_eq!(revision, meetup.revision + 1);
    let clash = participant(&meetup, "BEN");
    assert!(matches!(
        store.add_participant(&clash, 200).await,
        Err(StoreError::NameTaken)
    ));
    // The same name in another meetup is fine.
    let (other, _) = stored_meetup(&*store).await;
    store
        .add_participant(&participant(&other, "Ben"), 200)
        .await
        .expect("same name elsewhere");
    assert_eq!(store.participants(&meetup.id).await.expect("list").len(), 2);
}

async fn participant_cap_is_enforced(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    store
        .add_participant(&participant(&meetup, "Ben"), 2)
        .await
        .expect("second seat");
    assert!(matches!(
        store
            .add_participant(&participant(&meetup, "Cleo"), 2)
            .await,
        Err(StoreError::Full("participants"))
    ));
    assert_eq!(store.participants(&meetup.id).await.expect("list").len(), 2);
}

async fn joining_a_missing_meetup_fails(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = sample_meetup();
    assert!(matches!(
        store
            .add_participant(&participant(&meetup, "Ben"), 200)
            .await,
        Err(StoreError::MeetupNotFound)
    ));
}

async fn participant_updates_persist_and_bump_the_revision(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let ben = participant(&meetup, "Ben");
    store.add_participant(&ben, 200).await.expect("join");
    let mut changed = ben.clone();
    changed
        .availability
        .insert(meetup.slots[0].id.clone(), Availability::Yes);
    changed
        .availability
        .insert(meetup.slots[1].id.clone(), Availability::Maybe);
    changed.place_votes = vec![meetup.places[1].id.clone()];
    changed.note = Some("bringing snacks".into());
    let revision = replace_participant(&store, &changed)
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(revision, meetup.revision + 2);
    let read = store
        .participant(&meetup.id, &ben.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read, changed);

    // Renaming onto someone else's name is refused and changes nothing.
    let mut clash = changed.clone();
    clash.name = "anna".into();
    clash.name_key = "anna".into();
    assert!(matches!(
        replace_participant(&store, &clash).await,
        Err(StoreError::NameTaken)
    ));
    // Renaming frees the old name.
    let mut renamed = changed.clone();
    renamed.name = "Benno".into();
    renamed.name_key = "benno".into();
    replace_participant(&store, &renamed)
        .await
        .expect("rename")
        .expect("exists");
    store
        .add_participant(&participant(&meetup, "Ben"), 200)
        .await
        .expect("old name is free again");

    let ghost = participant(&meetup, "Ghost");
    assert_eq!(
        replace_participant(&store, &ghost).await.expect("update"),
        None
    );
}

async fn meetup_replace_is_compare_and_swap(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    store
        .add_participant(&participant(&meetup, "Ben"), 200)
        .await
        .expect("join");
    let current = stored(&store, &meetup.id).await;

    let mut fresh = current.clone();
    fresh.title = "Fresh".into();
    fresh.participant_count = 99; // counters are never written through replace
    let revision = store
        .replace_meetup(&fresh)
        .await
        .expect("cas")
        .expect("won");
    assert_eq!(revision, current.revision + 1);
    let after = stored(&store, &meetup.id).await;
    assert_eq!(after.title, "Fresh");
    assert_eq!(after.revision, revision);
    assert_eq!(after.doc_version, current.doc_version + 1);
    assert_ne!(after.participant_count, 99);

    // A writer that read before that change loses and must re-read.
    let mut stale = current.clone();
    stale.title = "Stale".into();
    assert_eq!(store.replace_meetup(&stale).await.expect("cas"), None);
    assert_eq!(stored(&store, &meetup.id).await.title, "Fresh");

    let (missing, _) = sample_meetup();
    assert!(matches!(
        store.replace_meetup(&missing).await,
        Err(StoreError::MeetupNotFound)
    ));
}

async fn leaving_frees_the_seat_and_the_name(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let ben = participant(&meetup, "Ben");
    store.add_participant(&ben, 200).await.expect("join");
    let revision = store
        .remove_participant(&meetup.id, &ben.id)
        .await
        .expect("leave")
        .expect("was there");
    assert_eq!(revision, meetup.revision + 2);
    assert_eq!(
        store
            .remove_participant(&meetup.id, &ben.id)
            .await
            .expect("leave twice"),
        None
    );
    assert_eq!(store.participants(&meetup.id).await.expect("list").len(), 1);
    assert_eq!(
        store
            .participant_by_token(&meetup.id, &ben.token_hash)
            .await
            .expect("token"),
        None
    );
    assert_eq!(
        store
            .participant_id_by_token(&meetup.id, &ben.token_hash)
            .await
            .expect("token"),
        None,
        "a participant who left has no token"
    );
    store
        .add_participant(&participant(&meetup, "ben"), 200)
        .await
        .expect("name free");
}

async fn removing_a_place_drops_its_votes(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let (hops, barley) = (meetup.places[0].id.clone(), meetup.places[1].id.clone());
    let mut ben = participant(&meetup, "Ben");
    ben.place_votes = vec![hops.clone(), barley.clone()];
    store.add_participant(&ben, 200).await.expect("join");
    let mut cleo = participant(&meetup, "Cleo");
    cleo.place_votes = vec![hops.clone()];
    store.add_participant(&cleo, 200).await.expect("join");
    store
        .remove_place_votes(&meetup.id, &hops)
        .await
        .expect("pull");
    for p in store.participants(&meetup.id).await.expect("list") {
        assert!(!p.place_votes.contains(&hops), "{} still votes", p.name);
    }
    let ben = store
        .participant(&meetup.id, &ben.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(ben.place_votes, vec![barley]);
}

async fn comments_round_trip_with_a_cap(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let first = comment(&meetup, "first");
    let second = comment(&meetup, "second");
    store.add_comment(&first, 2).await.expect("first");
    let revision = store.add_comment(&second, 2).await.expect("second");
    assert_eq!(revision, meetup.revision + 2);
    assert!(matches!(
        store.add_comment(&comment(&meetup, "third"), 2).await,
        Err(StoreError::Full("comments"))
    ));
    let mut listed = store.comments(&meetup.id).await.expect("list");
    domain::sort_comments(&mut listed);
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    assert_eq!(
        store.comment(&meetup.id, &first.id).await.expect("one"),
        Some(first.clone())
    );
    store
        .remove_comment(&meetup.id, &first.id)
        .await
        .expect("remove")
        .expect("was there");
    assert_eq!(
        store
            .remove_comment(&meetup.id, &first.id)
            .await
            .expect("remove twice"),
        None
    );
    store
        .add_comment(&comment(&meetup, "room again"), 2)
        .await
        .expect("a seat freed up");
    let (missing, _) = sample_meetup();
    assert!(matches!(
        store.add_comment(&comment(&missing, "x"), 2).await,
        Err(StoreError::MeetupNotFound)
    ));
}

async fn deleting_a_meetup_removes_everything(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, organizer) = stored_meetup(&*store).await;
    store
        .add_participant(&participant(&meetup, "Ben"), 200)
        .await
        .expect("join");
    store
        .add_comment(&comment(&meetup, "hi"), 500)
        .await
        .expect("comment");
    let (kept, _) = stored_meetup(&*store).await;

    assert!(store.delete_meetup(&meetup.id).await.expect("delete"));
    assert!(!store.delete_meetup(&meetup.id).await.expect("delete twice"));
    assert_eq!(store.meetup(&meetup.id).await.expect("read"), None);
    assert!(
        store
            .participants(&meetup.id)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(store.comments(&meetup.id).await.expect("list").is_empty());
    assert_eq!(
        store
            .participant_by_token(&meetup.id, &organizer.token_hash)
            .await
            .expect("token"),
        None
    );
    assert_eq!(
        store
            .participant_id_by_token(&meetup.id, &organizer.token_hash)
            .await
            .expect("token"),
        None
    );
    assert_eq!(stored(&store, &kept.id).await.title, kept.title);
    assert_eq!(store.participants(&kept.id).await.expect("list").len(), 1);
}

async fn place_suggestions_match_by_prefix(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    for name in ["Hops & Barley", "Hopfenreich", "Zapf", "hops & barley"] {
        store
            .remember_place(&PlaceSuggestion {
                name: name.into(),
                address: Some(format!("{name} street")),
                link: None,
            })
            .await
            .expect("remember");
    }
    let found = store.place_suggestions("HOP", 10).await.expect("search");
    let names: Vec<_> = found.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["Hopfenreich", "hops & barley"]);
    assert_eq!(store.place_suggestions("", 2).await.expect("all").len(), 2);
    assert!(
        store
            .place_suggestions("x", 10)
            .await
            .expect("none")
            .is_empty()
    );
}

async fn fifty_concurrent_voters_lose_no_vote(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let mut voters = Vec::new();
    for i in 0..50 {
        let p = participant(&meetup, &format!("Voter {i}"));
        store.add_participant(&p, 200).await.expect("join");
        voters.push(p);
    }
    let before = stored(&store, &meetup.id).await.revision;
    let slot = meetup.slots[0].id.clone();
    let tasks: Vec<_> = voters
        .into_iter()
        .map(|mut p| {
            let store = Arc::clone(&store);
            let slot = slot.clone();
            tokio::spawn(async move {
                p.availability.insert(slot, Availability::Yes);
                replace_participant(&store, &p).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("update").expect("exists");
    }
    let participants = store.participants(&meetup.id).await.expect("list");
    let yes = participants
        .iter()
        .filter(|p| p.availability.get(&slot) == Some(&Availability::Yes))
        .count();
    assert_eq!(yes, 50);
    assert_eq!(stored(&store, &meetup.id).await.revision, before + 50);
}

async fn meetups_past_their_last_slot_are_listed_for_retention(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (mut old, old_organizer) = sample_meetup();
    // Its only slot ended two hours ago; the sample's default slots lie ahead.
    let ended = Utc::now() - chrono::Duration::hours(2);
    old.slots.truncate(1);
    old.slots[0].start = ended - chrono::Duration::hours(1);
    old.slots[0].end = ended;
    store
        .create_meetup(&old, &old_organizer)
        .await
        .expect("create");
    // A meetup still ahead: never listed.
    stored_meetup(&*store).await;
    let listed = store
        .meetups_ended_before(Utc::now() - chrono::Duration::hours(1), 10)
        .await
        .expect("listed");
    assert_eq!(listed, vec![old.id.clone()]);
    let none = store
        .meetups_ended_before(Utc::now() - chrono::Duration::hours(3), 10)
        .await
        .expect("listed");
    assert!(none.is_empty(), "{none:?}");
}

async fn concurrent_patches_of_different_fields_both_survive(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let ben = participant(&meetup, "Ben");
    store.add_participant(&ben, 200).await.expect("join");
    let before = stored(&store, &meetup.id).await.revision;
    // The person paints availability while the organizer edits their note, again and again.
    let rounds = 10;
    for round in 0..rounds {
        let note = ParticipantChanges {
            note: Some(Some(format!("note {round}"))),
            ..Default::default()
        };
        let slot = meetup.slots[round % meetup.slots.len()].id.clone();
        let paint = ParticipantChanges {
            availability: Some(BTreeMap::from([(slot.clone(), Availability::Yes)])),
            ..Default::default()
        };
        let (a, b) = tokio::join!(
            store.update_participant(&meetup.id, &ben.id, note),
            store.update_participant(&meetup.id, &ben.id, paint)
        );
        let (a, b) = (
            a.expect("note").expect("exists"),
            b.expect("paint").expect("exists"),
        );
        assert_ne!(a.0, b.0, "each write gets its own revision");
        let read = store
            .participant(&meetup.id, &ben.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(read.note.as_deref(), Some(format!("note {round}").as_str()));
        assert_eq!(
            read.availability,
            BTreeMap::from([(slot, Availability::Yes)])
        );
        assert_eq!(read.name, "Ben", "fields nobody patched stay");
    }
    assert_eq!(
        stored(&store, &meetup.id).await.revision,
        before + 2 * rounds as i64
    );
}

async fn a_participant_secret_is_stored_found_by_name_and_removed(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let ben = participant(&meetup, "Ben");
    store.add_participant(&ben, 200).await.expect("join");
    assert_eq!(
        store
            .participant_by_name_key(&meetup.id, "ben")
            .await
            .expect("by name")
            .map(|p| p.id),
        Some(ben.id.clone())
    );
    assert_eq!(
        store
            .participant_by_name_key(&meetup.id, "nobody")
            .await
            .expect("by name"),
        None
    );
    let bens = domain::secret::SealedTokens {
        token: "bens-token".into(),
        admin_token: None,
    };
    let sealed =
        domain::secret::seal("4711", &bens, &mut StdRng::seed_from_u64(9)).expect("sealed");
    let set = ParticipantChanges {
        secret: Some(Some(sealed.clone())),
        ..Default::default()
    };
    let (_, written) = store
        .update_participant(&meetup.id, &ben.id, set)
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(written.secret.as_ref(), Some(&sealed));
    // Other fields stay, and a later PATCH of other fields keeps the secret.
    assert_eq!(written.name, "Ben");
    let note = ParticipantChanges {
        note: Some(Some("late".into())),
        ..Default::default()
    };
    store
        .update_participant(&meetup.id, &ben.id, note)
        .await
        .expect("note")
        .expect("exists");
    let found = store
        .participant_by_name_key(&meetup.id, "ben")
        .await
        .expect("by name")
        .expect("found");
    let stored_secret = found.secret.expect("the secret is stored");
    assert_eq!(domain::secret::open(&stored_secret, "4711"), Some(bens));
    assert_eq!(domain::secret::open(&stored_secret, "4712"), None);
    assert_eq!(found.note.as_deref(), Some("late"));
    // Renamed: found by the new key only.
    let rename = ParticipantChanges {
        name: Some(domain::NameChange {
            name: "Benjamin".into(),
            name_key: "benjamin".into(),
        }),
        ..Default::default()
    };
    store
        .update_participant(&meetup.id, &ben.id, rename)
        .await
        .expect("rename")
        .expect("exists");
    assert!(
        store
            .participant_by_name_key(&meetup.id, "ben")
            .await
            .expect("by name")
            .is_none()
    );
    let clear = ParticipantChanges {
        secret: Some(None),
        ..Default::default()
    };
    store
        .update_participant(&meetup.id, &ben.id, clear)
        .await
        .expect("clear")
        .expect("exists");
    let cleared = store
        .participant_by_name_key(&meetup.id, "benjamin")
        .await
        .expect("by name")
        .expect("found");
    assert_eq!(cleared.secret, None);
    assert_eq!(cleared.note.as_deref(), Some("late"));
}

/// A writer of the meetup document on FerretDB's claim path, stalled after taking its claim
/// for longer than the claim-release window (a GC or VM pause, a failover), must not revert
/// the writes that others made meanwhile. The stall is injected with the adaptor's pause hook
/// (a real pause at exactly that point cannot be caused from outside), and the windows are
/// shortened so the test waits about a second instead of 30 s. Run on both FerretDB backends.
async fn a_writer_paused_past_the_claim_window_cannot_revert_a_later_write(
    backend: common::FerretBackend,
) {
    use api_server::store::{Isolation, MongoStore};
    use std::time::Duration;

    let ferret = common::start_ferretdb_on(backend).await;
    let store = MongoStore::connect(&ferret.uri(), "stalled_writer")
        .await
        .expect("connects")
        .with_claim_timing(Duration::from_millis(300), Duration::from_millis(900))
        .expect("release window longer than the lease");
    let (meetup, _) = stored_meetup(&store).await;
    assert_eq!(
        store.isolation(),
        Isolation::ReadModifyWrite,
        "FerretDB v1 must get the claim path"
    );
    let basis = stored(&(Arc::new(store.clone()) as Arc<dyn Store>), &meetup.id).await;

    // Writer A claims the next document version, then stalls.
    let pause = store.pause_next_meetup_write_after_claim();
    let stalled = tokio::spawn({
        let store = store.clone();
        let mut edit = basis.clone();
        edit.title = "A, written late".into();
        async move { store.replace_meetup(&edit).await }
    });
    pause.reached.notified().await;

    // While A's claim is young, nobody takes it over.
    let mut b = basis.clone();
    b.title = "B".into();
    assert_eq!(
        store.replace_meetup(&b).await.expect("b while A holds"),
        None,
        "a live claim was taken over"
    );

    // Past the release window (and so past A's lease) with no progress: B takes it over.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let revision_b = store
        .replace_meetup(&b)
        .await
        .expect("b")
        .expect("B frees the abandoned claim and writes");
    let after_b = store
        .meetup(&meetup.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after_b.title, "B");
    assert_eq!(after_b.doc_version, basis.doc_version + 1);
    // And C writes on top of B (think: the organizer finalizes).
    let mut c = after_b.clone();
    c.title = "C".into();
    let revision_c = store
        .replace_meetup(&c)
        .await
        .expect("c")
        .expect("C writes on B");
    assert!(revision_c > revision_b);

    // A wakes up: it must learn that it lost (not report success), and write nothing.
    pause.release.notify_one();
    let outcome = stalled.await.expect("writer task").expect("no store error");
    assert_eq!(
        outcome, None,
        "the stalled writer reported a write it must not make"
    );
    let last = store
        .meetup(&meetup.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(last.title, "C", "the stalled writer reverted a later write");
    assert_eq!(last.doc_version, basis.doc_version + 2);
    assert_eq!(
        last.revision, revision_c,
        "a revision was reused or skipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferretdb_sqlite_writer_paused_past_the_claim_window_cannot_revert_a_later_write() {
    a_writer_paused_past_the_claim_window_cannot_revert_a_later_write(common::FerretBackend::Sqlite)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferretdb_postgres_writer_paused_past_the_claim_window_cannot_revert_a_later_write() {
    a_writer_paused_past_the_claim_window_cannot_revert_a_later_write(
        common::FerretBackend::Postgres,
    )
    .await
}

/// On FerretDB the newest revision is found from a hint by `_id` lookups; a hint that lags
/// (a lost non-isolated update) or is missing (a meetup from before hints) still gives the
/// newest revision, and the next write takes the number after it.
#[tokio::test]
async fn ferretdb_revision_hint_may_lag_or_be_missing() {
    use mongodb::bson::{Document, doc};

    let (_ferret, store, raw, meetup, _) = ferretdb_with_a_meetup("hints").await;
    let mut latest = meetup.revision;
    for name in ["Ben", "Cleo", "Dan"] {
        latest = store
            .add_participant(&participant(&meetup, name), 100)
            .await
            .expect("join");
    }
    let claims = raw.collection::<Document>("claims");
    let hint = format!("{}:h", meetup.id);
    claims
        .update_one(doc! {"_id": &hint}, doc! {"$set": {"n": meetup.revision}})
        .await
        .expect("lagging hint");
    let read = store
        .meetup(&meetup.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.revision, latest, "a lagging hint hid revisions");
    claims
        .delete_one(doc! {"_id": &hint})
        .await
        .expect("no hint");
    let read = store
        .meetup(&meetup.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        read.revision, latest,
        "without a hint the newest claim is still found"
    );
    let next = store
        .add_participant(&participant(&meetup, "Eve"), 100)
        .await
        .expect("join");
    assert_eq!(next, latest + 1, "a revision was skipped or reused");
}

/// A read of the whole meetup never returns data older than the revision it carries, even
/// while writes of the meetup document land: each title written is acknowledged with its
/// revision, and a state at revision R shows the title of the newest write at or below R, or a
/// newer one.
async fn meetup_state_is_never_older_than_its_revision(kind: StoreKind) {
    let (store, _guard) = make_store(kind).await;
    let (meetup, _) = stored_meetup(&*store).await;
    let writer = tokio::spawn({
        let store = Arc::clone(&store);
        let id = meetup.id.clone();
        async move {
            let mut acknowledged = Vec::new();
            for i in 0..15 {
                let mut edit = stored(&store, &id).await;
                edit.title = format!("title {i:02}");
                let revision = store
                    .replace_meetup(&edit)
                    .await
                    .expect("write")
                    .expect("the only writer never conflicts");
                acknowledged.push((revision, edit.title));
            }
            acknowledged
        }
    });
    let mut states = Vec::new();
    while !writer.is_finished() {
        let state = store
            .meetup_state(&meetup.id)
            .await
            .expect("read")
            .expect("exists");
        states.push((state.meetup.revision, state.meetup.title));
    }
    let acknowledged = writer.await.expect("writer");
    assert!(!states.is_empty());
    for (revision, title) in states {
        if let Some((_, due)) = acknowledged.iter().rev().find(|(r, _)| *r <= revision) {
            assert!(
                title >= *due,
                "state at revision {revision} shows {title:?}, older than {due:?} written at or below it"
            );
        }
    }
}

for_each_store!(
    all_backends;
    a_participant_secret_is_stored_found_by_name_and_removed,
    meetups_past_their_last_slot_are_listed_for_retention,
    create_and_read_back,
    concurrent_patches_of_different_fields_both_survive,
    names_are_unique_per_meetup_case_insensitively,
    participant_cap_is_enforced,
    joining_a_missing_meetup_fails,
    participant_updates_persist_and_bump_the_revision,
    meetup_replace_is_compare_and_swap,
    leaving_frees_the_seat_and_the_name,
    removing_a_place_drops_its_votes,
    comments_round_trip_with_a_cap,
    deleting_a_meetup_removes_everything,
    place_suggestions_match_by_prefix,
    fifty_concurrent_voters_lose_no_vote,
    meetup_state_is_never_older_than_its_revision,
);

#[tokio::test]
async fn embedded_store_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (meetup, organizer) = sample_meetup();
    {
        let store = api_server::store::EmbeddedStore::open(dir.path()).expect("open");
        store
            .create_meetup(&meetup, &organizer)
            .await
            .expect("create");
    }
    let reopened = api_server::store::EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(
        reopened.meetup(&meetup.id).await.expect("read"),
        Some(meetup)
    );
}

/// FerretDB v1 does not isolate updates: the adaptor must notice and take the claim path, and
/// that path must neither wait forever for a dead writer nor let a live one be overtaken.
#[tokio::test]
async fn ferretdb_participant_claims_are_taken_over_only_when_stale() {
    use api_server::store::Isolation;
    use mongodb::bson::{Document, doc};

    let (_ferret, store, raw, meetup, organizer) = ferretdb_with_a_meetup("claims_test").await;
    assert_eq!(store.isolation(), Isolation::ReadModifyWrite);
    let claims = raw.collection::<Document>("claims");
    let key = format!("{}:p:{}:{:012}", meetup.id, organizer.id, 1);
    let note = |text: &str| ParticipantChanges {
        note: Some(Some(text.to_string())),
        ..Default::default()
    };

    // A writer that claimed version 1 a moment ago may still write: nobody overtakes it.
    claims
        .insert_one(doc! {"_id": &key, "meetupId": &meetup.id, "n": 1_i64, "at": mongodb::bson::to_bson(&Utc::now()).expect("bson")})
        .await
        .expect("live claim");
    assert!(matches!(
        store
            .update_participant(&meetup.id, &organizer.id, note("overtaking"))
            .await,
        Err(StoreError::Backend(_))
    ));
    let read = store
        .participant(&meetup.id, &organizer.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.note, None);

    // A claim older than the abandon window belongs to a writer that died: taken over.
    let stale = Utc::now() - chrono::Duration::seconds(120);
    claims
        .update_one(
            doc! {"_id": &key},
            doc! {"$set": {"at": mongodb::bson::to_bson(&stale).expect("bson")}},
        )
        .await
        .expect("age the claim");
    let (_, written) = store
        .update_participant(&meetup.id, &organizer.id, note("after takeover"))
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(written.note.as_deref(), Some("after takeover"));
}

/// Deleting on the MongoDB adaptor marks the meetup first; a deletion cut short after the mark
/// leaves nothing visible and is finished at the next start.
#[tokio::test]
async fn mongo_deletion_cut_short_is_hidden_and_swept_at_start() {
    use api_server::store::MongoStore;
    use mongodb::bson::{Document, doc};

    let (ferret, store, db, meetup, _) = ferretdb_with_a_meetup("tombstones").await;
    store
        .add_comment(&comment(&meetup, "hello"), 10)
        .await
        .expect("comment");
    // A delete that died right after its first step: only the tombstone was written.
    db.collection::<Document>("meetups")
        .update_one(doc! {"_id": &meetup.id}, doc! {"$set": {"deleted": true}})
        .await
        .expect("tombstone");
    assert_eq!(store.meetup(&meetup.id).await.expect("read"), None);
    assert!(matches!(
        store
            .add_participant(&participant(&meetup, "Late"), 100)
            .await,
        Err(StoreError::MeetupNotFound)
    ));

    let restarted = MongoStore::connect(&ferret.uri(), "tombstones")
        .await
        .expect("reconnects");
    for collection in ["meetups", "participants", "comments", "claims"] {
        let left = db
            .collection::<Document>(collection)
            .count_documents(doc! {})
            .await
            .expect("count");
        assert_eq!(
            left, 0,
            "{collection} still holds documents of the deleted meetup"
        );
    }
    assert!(!restarted.delete_meetup(&meetup.id).await.expect("again"));
}
