use chrono::TimeZone;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 2, 10, 0, 0).unwrap()
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

fn input() -> CreateMeetup {
    CreateMeetup {
        title: "Beer".into(),
        organizer_name: "Anna".into(),
        time_zone: "Europe/Berlin".into(),
        places: Some(vec![PlaceInput {
            name: "Hops".into(),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

fn created() -> NewMeetup {
    create_meetup(input(), "admin".into(), "org".into(), now(), &mut rng()).expect("valid")
}

fn participant(meetup: &MeetupRecord, name: &str) -> ParticipantRecord {
    join_meetup(
        meetup,
        &JoinMeetup {
            name: name.into(),
            time_zone: None,
        },
        format!("hash-{name}"),
        now(),
        // Distinct ids per person, still deterministic.
        &mut StdRng::seed_from_u64(name.bytes().map(u64::from).sum()),
    )
    .expect("joins")
}

fn as_participant(p: &ParticipantRecord) -> Principal {
    Principal::Participant(Box::new(p.clone()))
}

fn invalid_fields(error: DomainError) -> Vec<String> {
    match error {
        DomainError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn create_fills_defaults() {
    let NewMeetup { meetup, organizer } = created();
    assert_eq!(meetup.slot_minutes, 60);
    assert_eq!(meetup.slots.len(), 35);
    assert_eq!(meetup.status, Status::Open);
    assert!(meetup.allow_participant_places);
    assert_eq!(meetup.revision, 1);
    assert_eq!(meetup.places[0].added_by_name, "Anna");
    assert_eq!(meetup.organizer_id, organizer.id);
    assert!(organizer.is_organizer);
    assert_eq!(organizer.meetup_id, meetup.id);
}

#[test]
fn create_drops_slots_that_are_already_over_today() {
    let evening = Utc.with_ymd_and_hms(2025, 6, 2, 19, 30, 0).unwrap(); // 21:30 in Berlin
    let new = create_meetup(input(), "a".into(), "o".into(), evening, &mut rng()).expect("ok");
    assert_eq!(new.meetup.slots.len(), 30 + 2);
    assert!(new.meetup.slots.iter().all(|s| s.end > evening));
}

#[test]
fn create_collects_every_field_error() {
    let bad = CreateMeetup {
        title: "".into(),
        organizer_name: "   ".into(),
        time_zone: "Nowhere".into(),
        slot_minutes: Some(20),
        deadline: Some(now()),
        description: Some("x".repeat(2001)),
        ..Default::default()
    };
    let fields = invalid_fields(
        create_meetup(bad, "a".into(), "o".into(), now(), &mut rng()).expect_err("invalid"),
    );
    for field in [
        "title",
        "organizerName",
        "timeZone",
        "slotMinutes",
        "deadline",
        "description",
    ] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }
}

#[test]
fn create_accepts_explicit_slots_and_rejects_duplicates() {
    let start = Utc.with_ymd_and_hms(2025, 7, 1, 18, 0, 0).unwrap();
    let slot = SlotInput {
        start,
        end: start + chrono::Duration::hours(2),
    };
    let ok = CreateMeetup {
        slots: Some(vec![slot.clone()]),
        ..input()
    };
    let new = create_meetup(ok, "a".into(), "o".into(), now(), &mut rng()).expect("ok");
    assert_eq!(new.meetup.slots.len(), 1);
    assert_eq!(new.meetup.slots[0].id, "20250701T1800Z");
    let dup = CreateMeetup {
        slots: Some(vec![slot.clone(), slot]),
        ..input()
    };
    let fields = invalid_fields(
        create_meetup(dup, "a".into(), "o".into(), now(), &mut rng()).expect_err("dup"),
    );
    assert_eq!(fields, vec!["slots"]);
}

#[test]
fn create_rejects_past_days_and_bad_windows() {
    let past = CreateMeetup {
        days: Some(vec!["2020-01-01".into()]),
        ..input()
    };
    assert_eq!(
        invalid_fields(create_meetup(past, "a".into(), "o".into(), now(), &mut rng()).unwrap_err()),
        vec!["days[0]"]
    );
    let short = CreateMeetup {
        days: Some(vec!["2025-06-03".into()]),
        window: Some(WindowInput {
            start: "18:00".into(),
            end: "18:30".into(),
        }),
        ..input()
    };
    assert_eq!(
        invalid_fields(
            create_meetup(short, "a".into(), "o".into(), now(), &mut rng()).unwrap_err()
        ),
        vec!["window"]
    );
}

#[test]
fn create_caps_places() {
    let many = CreateMeetup {
        places: Some(vec![
            PlaceInput {
                name: "p".into(),
                ..Default::default()
            };
            51
        ]),
        ..input()
    };
    assert!(
        invalid_fields(create_meetup(many, "a".into(), "o".into(), now(), &mut rng()).unwrap_err())
            .contains(&"places".to_string())
    );
}

#[test]
fn only_the_admin_patches_the_meetup() {
    let meetup = created().meetup;
    let ben = participant(&meetup, "Ben");
    let patch = MeetupPatch {
        title: Some("New".into()),
        ..Default::default()
    };
    assert!(matches!(
        patch_meetup(&meetup, &as_participant(&ben), patch.clone(), now()),
        Err(DomainError::Forbidden(_))
    ));
    let next = patch_meetup(&meetup, &Principal::Admin, patch, now()).expect("admin");
    assert_eq!(next.title, "New");
}

#[test]
fn reopening_a_finalized_meetup_clears_the_decision() {
    let meetup = created().meetup;
    let input = FinalizeInput {
        start_slot_id: meetup.slots[0].id.clone(),
        ..Default::default()
    };
    let finalized = finalize(&meetup, &Principal::Admin, &input, now()).expect("finalize");
    assert_eq!(finalized.status, Status::Finalized);
    let decision = require_finalized(&finalized).expect("decided");
    assert_eq!(decision.end, meetup.slots[0].end);
    let reopened = patch_meetup(
        &finalized,
        &Principal::Admin,
        MeetupPatch {
            status: Some(Status::Open),
            ..Default::default()
        },
        now(),
    )
    .expect("reopen");
    assert_eq!(reopened.status, Status::Open);
    assert_eq!(reopened.decision, None);
    assert_eq!(require_finalized(&reopened), Err(DomainError::NotFinalized));
}

#[test]
fn reopening_needs_a_future_deadline() {
    let mut meetup = created().meetup;
    meetup.status = Status::Closed;
    meetup.deadline = Some(now() - chrono::Duration::hours(1));
    let reopen = MeetupPatch {
        status: Some(Status::Open),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(
            patch_meetup(&meetup, &Principal::Admin, reopen.clone(), now()).unwrap_err()
        ),
        vec!["deadline"]
    );
    let with_new_deadline = MeetupPatch {
        deadline: Some(None),
        ..reopen
    };
    assert!(patch_meetup(&meetup, &Principal::Admin, with_new_deadline, now()).is_ok());
}

#[test]
fn a_passed_deadline_closes_the_meetup() {
    let mut meetup = created().meetup;
    meetup.deadline = Some(now() + chrono::Duration::minutes(1));
    assert_eq!(meetup.effective_status(now()), Status::Open);
    let later = now() + chrono::Duration::minutes(2);
    assert_eq!(meetup.effective_status(later), Status::Closed);
    let join = JoinMeetup {
        name: "Late".into(),
        time_zone: None,
    };
    assert_eq!(
        join_meetup(&meetup, &join, "h".into(), later, &mut rng()),
        Err(DomainError::NotOpen(Status::Closed))
    );
}

#[test]
fn participants_add_places_only_when_allowed() {
    let mut meetup = created().meetup;
    let ben = participant(&meetup, "Ben");
    let place = PlaceInput {
        name: "Garage".into(),
        ..Default::default()
    };
    let (next, added) =
        add_place(&meetup, &as_participant(&ben), &place, now(), &mut rng()).expect("allowed");
    assert_eq!(added.added_by_name, "Ben");
    assert_eq!(next.places.len(), 2);
    meetup.allow_participant_places = false;
    assert!(matches!(
        add_place(&meetup, &as_participant(&ben), &place, now(), &mut rng()),
        Err(DomainError::Forbidden(_))
    ));
    assert!(add_place(&meetup, &Principal::Admin, &place, now(), &mut rng()).is_ok());
}

#[test]
fn places_are_capped_and_edited_by_their_author() {
    let meetup = created().meetup;
    let ben = participant(&meetup, "Ben");
    let cleo = participant(&meetup, "Cleo");
    let (with_garage, garage) = add_place(
        &meetup,
        &as_participant(&ben),
        &PlaceInput {
            name: "Garage".into(),
            ..Default::default()
        },
        now(),
        &mut rng(),
    )
    .expect("add");
    let rename = PlacePatch {
        name: Some("Big Garage".into()),
        ..Default::default()
    };
    assert!(matches!(
        update_place(
            &with_garage,
            &as_participant(&cleo),
            &garage.id,
            rename.clone(),
            now()
        ),
        Err(DomainError::Forbidden(_))
    ));
    let (_, renamed) = update_place(
        &with_garage,
        &as_participant(&ben),
        &garage.id,
        rename,
        now(),
    )
    .expect("own");
    assert_eq!(renamed.name, "Big Garage");
    assert!(matches!(
        remove_place(&with_garage, &Principal::Admin, "nope", now()),
        Err(DomainError::NotFound { .. })
    ));

    let mut full = meetup.clone();
    full.places = (0..MAX_PLACES)
        .map(|i| PlaceRecord {
            id: format!("p{i}"),
            ..meetup.places[0].clone()
        })
        .collect();
    assert_eq!(
        add_place(
            &full,
            &Principal::Admin,
            &PlaceInput {
                name: "one more".into(),
                ..Default::default()
            },
            now(),
            &mut rng()
        ),
        Err(DomainError::Full("places"))
    );
}

#[test]
fn the_decided_place_stays_until_reopened() {
    let meetup = created().meetup;
    let finalized = finalize(
        &meetup,
        &Principal::Admin,
        &FinalizeInput {
            start_slot_id: meetup.slots[0].id.clone(),
            place_id: Some(meetup.places[0].id.clone()),
            ..Default::default()
        },
        now(),
    )
    .expect("finalize");
    assert_eq!(
        remove_place(&finalized, &Principal::Admin, &meetup.places[0].id, now()),
        Err(DomainError::NotOpen(Status::Finalized))
    );
    let mut closed_with_decision = finalized.clone();
    closed_with_decision.status = Status::Closed;
    assert_eq!(
        remove_place(
            &closed_with_decision,
            &Principal::Admin,
            &meetup.places[0].id,
            now()
        ),
        Err(DomainError::PlaceInDecision)
    );
}

#[test]
fn votes_must_name_real_slots_and_places() {
    let meetup = created().meetup;
    let ben = participant(&meetup, "Ben");
    let unknown_slot = ParticipantPatch {
        availability: Some(BTreeMap::from([("nope".to_string(), Availability::Yes)])),
        ..Default::default()
    };
    assert!(matches!(
        update_participant(&meetup, &as_participant(&ben), &ben, unknown_slot, now()),
        Err(DomainError::NotFound {
            what: Resource::Slot,
            ..
        })
    ));
    let unknown_place = ParticipantPatch {
        place_votes: Some(vec!["nope".into()]),
        ..Default::default()
    };
    assert!(matches!(
        update_participant(&meetup, &as_participant(&ben), &ben, unknown_place, now()),
        Err(DomainError::NotFound {
            what: Resource::Place,
            ..
        })
    ));
    let place = meetup.places[0].id.clone();
    let good = ParticipantPatch {
        availability: Some(BTreeMap::from([(
            meetup.slots[2].id.clone(),
            Availability::Maybe,
        )])),
        place_votes: Some(vec![place.clone(), place.clone()]),
        name: Some("  Benjamin  ".into()),
        time_zone: Some(Some("Asia/Tokyo".into())),
        note: Some(Some("late".into())),
    };
    let next = update_participant(&meetup, &as_participant(&ben), &ben, good, now()).expect("ok");
    assert_eq!(next.place_votes, vec![place]);
    assert_eq!(next.name, "Benjamin");
    assert_eq!(next.name_key, "benjamin");
    assert_eq!(next.time_zone.as_deref(), Some("Asia/Tokyo"));
}

#[test]
fn only_oneself_or_the_admin_changes_a_participant() {
    let meetup = created().meetup;
    let ben = participant(&meetup, "Ben");
    let cleo = participant(&meetup, "Cleo");
    let patch = ParticipantPatch {
        note: Some(Some("x".into())),
        ..Default::default()
    };
    assert!(matches!(
        update_participant(&meetup, &as_participant(&cleo), &ben, patch.clone(), now()),
        Err(DomainError::Forbidden(_))
    ));
    assert!(update_participant(&meetup, &Principal::Admin, &ben, patch, now()).is_ok());
    assert!(authorize_leave(&as_participant(&ben), &ben).is_ok());
    assert!(authorize_leave(&as_participant(&cleo), &ben).is_err());
}

#[test]
fn voting_needs_an_open_meetup_but_notes_do_not() {
    let mut meetup = created().meetup;
    let ben = participant(&meetup, "Ben");
    meetup.status = Status::Closed;
    let vote = ParticipantPatch {
        availability: Some(BTreeMap::new()),
        ..Default::default()
    };
    assert_eq!(
        update_participant(&meetup, &as_participant(&ben), &ben, vote, now()),
        Err(DomainError::NotOpen(Status::Closed))
    );
    let note = ParticipantPatch {
        note: Some(Some("sorry".into())),
        ..Default::default()
    };
    assert!(update_participant(&meetup, &as_participant(&ben), &ben, note, now()).is_ok());
}

#[test]
fn comments_are_signed_and_removed_by_author_or_admin() {
    let meetup = created().meetup;
    let ben = participant(&meetup, "Ben");
    let cleo = participant(&meetup, "Cleo");
    let text = CommentInput {
        text: " Prost! ".into(),
    };
    let comment =
        add_comment(&meetup, &as_participant(&ben), &text, now(), &mut rng()).expect("ok");
    assert_eq!(comment.text, "Prost!");
    assert_eq!(comment.author, "Ben");
    let by_admin = add_comment(&meetup, &Principal::Admin, &text, now(), &mut rng()).expect("ok");
    assert_eq!(by_admin.author, "Anna");
    assert!(authorize_comment_removal(&as_participant(&ben), &comment).is_ok());
    assert!(authorize_comment_removal(&as_participant(&cleo), &comment).is_err());
    assert!(authorize_comment_removal(&Principal::Admin, &comment).is_ok());
    let long = CommentInput {
        text: "x".repeat(MAX_COMMENT_CHARS + 1),
    };
    assert!(add_comment(&meetup, &as_participant(&ben), &long, now(), &mut rng()).is_err());
}

#[test]
fn finalize_checks_the_range() {
    let meetup = created().meetup;
    let backwards = FinalizeInput {
        start_slot_id: meetup.slots[3].id.clone(),
        end_slot_id: Some(meetup.slots[1].id.clone()),
        ..Default::default()
    };
    assert_eq!(
        invalid_fields(finalize(&meetup, &Principal::Admin, &backwards, now()).unwrap_err()),
        vec!["endSlotId"]
    );
    let range = FinalizeInput {
        start_slot_id: meetup.slots[1].id.clone(),
        end_slot_id: Some(meetup.slots[3].id.clone()),
        note: Some("bring cash".into()),
        ..Default::default()
    };
    let decided = finalize(&meetup, &Principal::Admin, &range, now()).expect("ok");
    let decision = decided.decision.clone().expect("decision");
    assert_eq!(decision.start, meetup.slots[1].start);
    assert_eq!(decision.end, meetup.slots[3].end);
    let ics = super::super::ics::decision_calendar(&decided, &decision, None);
    assert!(ics.contains("BEGIN:VEVENT") && ics.contains("DTSTART:20250602T170000Z"));
}

#[test]
fn the_view_tallies_names_and_ranks() {
    let meetup = created().meetup;
    let mut ben = participant(&meetup, "Ben");
    let mut cleo = participant(&meetup, "Cleo");
    cleo.joined_at = ben.joined_at + chrono::Duration::seconds(1);
    let (s0, s1, s2) = (
        meetup.slots[0].id.clone(),
        meetup.slots[1].id.clone(),
        meetup.slots[2].id.clone(),
    );
    ben.availability = BTreeMap::from([
        (s1.clone(), Availability::Maybe),
        (s2.clone(), Availability::Yes),
    ]);
    cleo.availability = BTreeMap::from([
        (s2.clone(), Availability::Yes),
        (s1.clone(), Availability::Maybe),
    ]);
    cleo.place_votes = vec![meetup.places[0].id.clone(), "removed-place".into()];
    let view = meetup_view(&meetup, vec![cleo, ben], Vec::new(), now());
    assert_eq!(view.participants[0].name, "Ben");
    assert_eq!(view.slots[2].yes, vec!["Ben", "Cleo"]);
    assert_eq!(view.slots[1].maybe, vec!["Ben", "Cleo"]);
    assert_eq!(view.slots[1].score, 1.0);
    assert_eq!(view.ranking.slots[..3], [s2, s1, s0]);
    assert_eq!(view.places[0].voters, vec!["Cleo"]);
    assert_eq!(
        view.participants[1].place_votes,
        vec![meetup.places[0].id.clone()]
    );
}

#[test]
fn names_fit_in_their_byte_budget_as_json() {
    let meetup = created().meetup;
    let join = |name: String| {
        join_meetup(
            &meetup,
            &JoinMeetup {
                name,
                time_zone: None,
            },
            "h".into(),
            now(),
            &mut rng(),
        )
    };
    let fits = "🍺".repeat(MAX_NAME_BYTES / 4);
    assert!(join(fits.clone()).is_ok());
    assert!(matches!(
        join(format!("{fits}x")),
        Err(DomainError::Invalid(errors)) if errors[0].field == "name"
    ));
    // Quotes and backslashes are escaped in JSON: they count twice. 60 quotes take 120 bytes
    // (fits); 30 backslashes (60 bytes) and 18 emoji (72) take 132 — over, though 102 unescaped.
    assert!(join("\"".repeat(MAX_NAME_CHARS)).is_ok());
    assert!(join(format!("{}{}", "\\".repeat(30), "🍺".repeat(18))).is_err());
}

#[test]
fn participant_changes_carry_only_the_fields_sent() {
    let meetup = created().meetup;
    let ben = participant(&meetup, "Ben");
    let patch = ParticipantPatch {
        note: Some(Some("late".into())),
        ..Default::default()
    };
    let changes = participant_changes(&meetup, Actor::Admin, &ben.id, patch, now()).expect("valid");
    assert_eq!(
        changes,
        ParticipantChanges {
            note: Some(Some("late".into())),
            ..Default::default()
        }
    );
}
