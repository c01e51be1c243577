//! The assembled meetup as the web app sees it: tallies with the names behind every count,
//! and the best slots and places first.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    pub id: String,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub start: DateTime<Utc>,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub end: DateTime<Utc>,
    /// Names of participants who said yes.
    pub yes: Vec<String>,
    /// Names of participants who said "if the beer is good".
    pub maybe: Vec<String>,
    /// yes = 1, maybe = 0.5
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaceView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Name of whoever added it.
    pub added_by: String,
    /// Names of participants who voted for it.
    pub voters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub availability: BTreeMap<String, Availability>,
    pub place_votes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub is_organizer: bool,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<String>,
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Ranking {
    /// Slot ids, best first.
    pub slots: Vec<String>,
    /// Place ids, best first.
    pub places: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeetupView {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub organizer_name: String,
    pub time_zone: String,
    pub slot_minutes: u32,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    pub allow_participant_places: bool,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub slots: Vec<SlotView>,
    pub places: Vec<PlaceView>,
    pub participants: Vec<ParticipantView>,
    pub comments: Vec<CommentView>,
    pub ranking: Ranking,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// The meetup's own fields one write changed, as the `meetupUpdated`/`meetupFinalized` live
/// events carry them: an absent field is unchanged, `null` means removed. Lists (slots, places,
/// participants, comments) never change through these events; they have their own.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeetupChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `null`: the description was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `null`: the deadline was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub deadline: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_participant_places: Option<bool>,
    /// Always sent: the status as the view shows it now (a passed deadline closes a meetup
    /// without any write, so the client's copy may be stale even when the stored one is not).
    pub status: Status,
    /// `null`: the decision was withdrawn (the meetup was reopened or closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Decision>)]
    pub decision: Option<Option<Decision>>,
    /// Always sent.
    pub updated_at: DateTime<Utc>,
}

/// What a write changed between two versions of the meetup document.
pub fn meetup_changes(
    before: &MeetupRecord,
    after: &MeetupRecord,
    now: DateTime<Utc>,
) -> MeetupChanges {
    fn changed<T: PartialEq + Clone>(before: &T, after: &T) -> Option<T> {
        (before != after).then(|| after.clone())
    }
    MeetupChanges {
        title: changed(&before.title, &after.title),
        description: changed(&before.description, &after.description),
        deadline: changed(&before.deadline, &after.deadline),
        allow_participant_places: changed(
            &before.allow_participant_places,
            &after.allow_participant_places,
        ),
        status: after.effective_status(now),
        decision: changed(&before.decision, &after.decision),
        updated_at: after.updated_at,
    }
}

pub fn participant_view(meetup: &MeetupRecord, p: &ParticipantRecord) -> ParticipantView {
    ParticipantView {
        id: p.id.clone(),
        name: p.name.clone(),
        time_zone: p.time_zone.clone(),
        // Answers for slots that are gone are not shown. Usually none are: then a clone of the
        // map is much cheaper than collecting it anew.
        availability: if all_slots_known(meetup, &p.availability) {
            p.availability.clone()
        } else {
            p.availability
                .iter()
                .filter(|(slot, _)| meetup.slot(slot).is_some())
                .map(|(slot, a)| (slot.clone(), *a))
                .collect()
        },
        place_votes: p
            .place_votes
            .iter()
            .filter(|id| meetup.place(id).is_some())
            .cloned()
            .collect(),
        note: p.note.clone(),
        is_organizer: p.is_organizer,
        joined_at: p.joined_at,
    }
}

/// [`participant_view`] of a record that is not needed afterwards: its answers move into the
/// view instead of being copied (a vote's ~70).
pub fn into_participant_view(meetup: &MeetupRecord, p: ParticipantRecord) -> ParticipantView {
    let mut availability = p.availability;
    if !all_slots_known(meetup, &availability) {
        availability.retain(|slot, _| meetup.slot(slot).is_some());
    }
    let mut place_votes = p.place_votes;
    place_votes.retain(|id| meetup.place(id).is_some());
    ParticipantView {
        id: p.id,
        name: p.name,
        time_zone: p.time_zone,
        availability,
        place_votes,
        note: p.note,
        is_organizer: p.is_organizer,
        joined_at: p.joined_at,
    }
}

fn all_slots_known(meetup: &MeetupRecord, availability: &BTreeMap<String, Availability>) -> bool {
    meetup
        .first_unknown_slot(availability.keys().map(String::as_str))
        .is_none()
}

pub fn comment_view(c: &CommentRecord) -> CommentView {
    CommentView {
        id: c.id.clone(),
        participant_id: c.participant_id.clone(),
        author: c.author.clone(),
        text: c.text.clone(),
        created_at: c.created_at,
    }
}

/// Participants in join order (ties broken by id so every replica agrees).
pub fn sort_participants(participants: &mut [ParticipantRecord]) {
    participants.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then_with(|| a.id.cmp(&b.id)));
}

pub fn sort_comments(comments: &mut [CommentRecord]) {
    comments.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.id.cmp(&b.id))
    });
}

pub fn place_view(place: &PlaceRecord, participants: &[ParticipantRecord]) -> PlaceView {
    PlaceView {
        id: place.id.clone(),
        name: place.name.clone(),
        address: place.address.clone(),
        link: place.link.clone(),
        note: place.note.clone(),
        added_by: place.added_by_name.clone(),
        voters: participants
            .iter()
            .filter(|p| p.place_votes.contains(&place.id))
            .map(|p| p.name.clone())
            .collect(),
    }
}

/// Assembles the full view. `participants` and `comments` may come in any order.
pub fn meetup_view(
    meetup: &MeetupRecord,
    mut participants: Vec<ParticipantRecord>,
    mut comments: Vec<CommentRecord>,
    now: DateTime<Utc>,
) -> MeetupView {
    sort_participants(&mut participants);
    sort_comments(&mut comments);

    let mut slot_names: HashMap<&str, (Vec<String>, Vec<String>)> = HashMap::new();
    for p in &participants {
        for (slot, answer) in &p.availability {
            let entry = slot_names.entry(slot.as_str()).or_default();
            match answer {
                Availability::Yes => entry.0.push(p.name.clone()),
                Availability::Maybe => entry.1.push(p.name.clone()),
            }
        }
    }
    let slots: Vec<SlotView> = meetup
        .slots
        .iter()
        .map(|s| {
            let (yes, maybe) = slot_names.remove(s.id.as_str()).unwrap_or_default();
            SlotView {
                id: s.id.clone(),
                start: s.start,
                end: s.end,
                score: yes.len() as f64 + maybe.len() as f64 * 0.5,
                yes,
                maybe,
            }
        })
        .collect();
    let places: Vec<PlaceView> = meetup
        .places
        .iter()
        .map(|place| place_view(place, &participants))
        .collect();

    let ranking = Ranking {
        slots: rank(&slots, |s| s.score),
        places: rank(&places, |p| p.voters.len() as f64),
    };

    MeetupView {
        id: meetup.id.clone(),
        title: meetup.title.clone(),
        description: meetup.description.clone(),
        organizer_name: meetup.organizer_name.clone(),
        time_zone: meetup.time_zone.clone(),
        slot_minutes: meetup.slot_minutes,
        status: meetup.effective_status(now),
        deadline: meetup.deadline,
        allow_participant_places: meetup.allow_participant_places,
        revision: meetup.revision,
        created_at: meetup.created_at,
        updated_at: meetup.updated_at,
        participants: participants
            .iter()
            .map(|p| participant_view(meetup, p))
            .collect(),
        comments: comments.iter().map(comment_view).collect(),
        slots,
        places,
        ranking,
        decision: meetup.decision.clone(),
    }
}

/// Ids ordered by score, highest first; the stable sort keeps the original (chronological or
/// added) order among equals.
trait HasId {
    fn id(&self) -> &str;
}
impl HasId for SlotView {
    fn id(&self) -> &str {
        &self.id
    }
}
impl HasId for PlaceView {
    fn id(&self) -> &str {
        &self.id
    }
}

fn rank<T: HasId>(items: &[T], score: impl Fn(&T) -> f64) -> Vec<String> {
    let mut order: Vec<&T> = items.iter().collect();
    order.sort_by(|a, b| score(b).total_cmp(&score(a)));
    order
        .into_iter()
        .map(|item| item.id().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limits::*;
    use chrono::{Duration, TimeZone};

    /// The widest text a field may hold: `chars` characters of four UTF-8 bytes each (JSON
    /// escapes of `"` and `\` take two, control characters are refused).
    fn widest(chars: usize) -> String {
        "🍺".repeat(chars)
    }

    fn id(prefix: char, i: usize, len: usize) -> String {
        format!("{prefix}{i:0>width$}", width = len - 1)
    }

    /// A meetup filled to every documented limit with the widest characters.
    fn fullest_meetup() -> (MeetupRecord, Vec<ParticipantRecord>, Vec<CommentRecord>) {
        let start = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let slots: Vec<SlotDef> = (0..MAX_SLOTS)
            .map(|i| {
                let at = start + Duration::minutes(15 * i as i64);
                SlotDef {
                    id: super::super::slots::slot_id(at),
                    start: at,
                    end: at + Duration::minutes(15),
                }
            })
            .collect();
        let places: Vec<PlaceRecord> = (0..MAX_PLACES)
            .map(|i| PlaceRecord {
                id: id('p', i, 10),
                name: widest(MAX_PLACE_NAME_CHARS),
                address: Some(widest(MAX_ADDRESS_CHARS)),
                link: Some(format!("https://{}", widest(MAX_LINK_CHARS - 8))),
                note: Some(widest(MAX_NOTE_CHARS)),
                added_by_id: Some(id('u', i, 10)),
                added_by_name: widest(MAX_NAME_BYTES / 4),
            })
            .collect();
        let meetup = MeetupRecord {
            id: "m".repeat(12),
            admin_token_hash: "h".repeat(64),
            title: widest(MAX_TITLE_CHARS),
            description: Some(widest(MAX_DESCRIPTION_CHARS)),
            organizer_name: widest(MAX_NAME_BYTES / 4),
            organizer_id: id('u', 0, 10),
            time_zone: "America/Argentina/ComodRivadavia".into(),
            slot_minutes: 15,
            status: Status::Finalized,
            deadline: Some(start),
            allow_participant_places: true,
            revision: i64::MAX,
            doc_version: i64::MAX,
            participant_count: MAX_PARTICIPANTS as i64,
            comment_count: MAX_COMMENTS as i64,
            created_at: start,
            updated_at: start,
            decision: Some(Decision {
                start_slot_id: slots[0].id.clone(),
                end_slot_id: slots[MAX_SLOTS - 1].id.clone(),
                start,
                end: start,
                place_id: Some(places[0].id.clone()),
                note: Some(widest(MAX_NOTE_CHARS)),
                decided_at: start,
            }),
            slots,
            places,
        };
        let participants = (0..MAX_PARTICIPANTS)
            .map(|i| ParticipantRecord {
                id: id('u', i, 10),
                meetup_id: meetup.id.clone(),
                // Distinct names as wide as JSON makes them: quotes are escaped to two bytes.
                name: format!("{}{}", "\"".repeat((MAX_NAME_BYTES - 3) / 2), id('n', i, 3)),
                name_key: String::new(),
                token_hash: String::new(),
                time_zone: Some("America/Argentina/ComodRivadavia".into()),
                availability: meetup
                    .slots
                    .iter()
                    .map(|s| (s.id.clone(), Availability::Maybe))
                    .collect(),
                place_votes: meetup.places.iter().map(|p| p.id.clone()).collect(),
                note: Some(widest(MAX_NOTE_CHARS)),
                is_organizer: i == 0,
                joined_at: start,
                secret: None,
            })
            .collect();
        let comments = (0..MAX_COMMENTS)
            .map(|i| CommentRecord {
                id: id('c', i, 10),
                meetup_id: meetup.id.clone(),
                participant_id: Some(id('u', i % MAX_PARTICIPANTS, 10)),
                author: widest(MAX_NAME_BYTES / 4),
                text: widest(MAX_COMMENT_CHARS),
                created_at: start,
            })
            .collect();
        (meetup, participants, comments)
    }

    #[test]
    fn a_meetup_at_every_limit_stays_under_the_view_cap() {
        let (meetup, participants, comments) = fullest_meetup();
        let view = meetup_view(&meetup, participants, comments, Utc::now());
        assert_eq!(view.slots[0].maybe.len(), MAX_PARTICIPANTS);
        let bytes = serde_json::to_vec(&view).expect("serializes").len();
        println!("fullest view: {bytes} bytes, cap {MAX_VIEW_BYTES}");
        assert!(
            bytes <= MAX_VIEW_BYTES,
            "{bytes} bytes is over the {MAX_VIEW_BYTES} byte cap"
        );
    }

    #[test]
    fn a_participant_view_shows_answers_for_existing_slots_only() {
        let (meetup, participants, _) = fullest_meetup();
        let mut person = participants[1].clone();
        let all = participant_view(&meetup, &person);
        assert_eq!(all.availability, person.availability);
        person
            .availability
            .insert("19990101T0000Z".into(), Availability::Yes);
        let filtered = participant_view(&meetup, &person);
        assert_eq!(filtered.availability, all.availability);
    }

    #[test]
    fn the_view_of_an_owned_record_is_the_view_of_a_borrowed_one() {
        let (meetup, participants, _) = fullest_meetup();
        let mut person = participants[1].clone();
        person.place_votes = meetup.places.iter().map(|p| p.id.clone()).collect();
        person.note = Some("first round on me".into());
        assert_eq!(
            into_participant_view(&meetup, person.clone()),
            participant_view(&meetup, &person)
        );
        // A slot and a place that are gone are left out of both.
        person
            .availability
            .insert("19990101T0000Z".into(), Availability::Yes);
        person.place_votes.push("gone".into());
        let borrowed = participant_view(&meetup, &person);
        assert!(!borrowed.availability.contains_key("19990101T0000Z"));
        assert!(!borrowed.place_votes.contains(&"gone".to_string()));
        assert_eq!(into_participant_view(&meetup, person), borrowed);
    }

    #[test]
    fn meetup_changes_name_only_what_changed() {
        let (before, _, _) = fullest_meetup();
        let now = before.updated_at + Duration::hours(1);
        let mut after = before.clone();
        after.updated_at = now;
        let changes = meetup_changes(&before, &after, now);
        assert_eq!(
            serde_json::to_value(&changes).expect("serializes"),
            serde_json::json!({"status": "finalized", "updatedAt": now}),
            "an unchanged meetup names only the status and the time"
        );

        after.title = "Beer".into();
        after.description = None;
        after.deadline = Some(now + Duration::days(1));
        after.allow_participant_places = false;
        after.status = Status::Open;
        after.decision = None;
        let json = serde_json::to_value(meetup_changes(&before, &after, now)).expect("ok");
        assert_eq!(
            json,
            serde_json::json!({
                "title": "Beer",
                "description": null,
                "deadline": now + Duration::days(1),
                "allowParticipantPlaces": false,
                "status": "open",
                "decision": null,
                "updatedAt": now,
            })
        );

        // Finalizing names the decision; a passed deadline shows as closed.
        let reopened = after.clone();
        let mut finalized = reopened.clone();
        finalized.status = Status::Finalized;
        finalized.decision = before.decision.clone();
        let changes = meetup_changes(&reopened, &finalized, now);
        assert_eq!(changes.decision, Some(before.decision.clone()));
        assert_eq!(changes.title, None);
        let late = now + Duration::days(2);
        assert_eq!(
            meetup_changes(&reopened, &reopened, late).status,
            Status::Closed
        );
    }

    #[test]
    fn slots_are_found_by_id_in_order_and_out_of_order() {
        let (mut meetup, _, _) = fullest_meetup();
        let last = meetup.slots[MAX_SLOTS - 1].id.clone();
        assert_eq!(meetup.slot(&last).map(|(i, _)| i), Some(MAX_SLOTS - 1));
        assert!(meetup.slot("nope").is_none());
        let first = meetup.slots[0].id.clone();
        let known = [first.as_str(), last.as_str()];
        assert_eq!(meetup.first_unknown_slot(known), None);
        assert_eq!(
            meetup.first_unknown_slot([first.as_str(), "nope"]),
            Some("nope")
        );
        assert_eq!(meetup.first_unknown_slot(["0", last.as_str()]), Some("0"));
        meetup.slots.reverse();
        assert_eq!(meetup.slot(&last).map(|(i, _)| i), Some(0));
        // Out of order (slots or ids) only costs speed.
        assert_eq!(meetup.first_unknown_slot(known), None);
        assert_eq!(
            meetup.first_unknown_slot([last.as_str(), first.as_str()]),
            None
        );
        assert_eq!(
            meetup.first_unknown_slot([last.as_str(), "nope"]),
            Some("nope")
        );
    }
}
