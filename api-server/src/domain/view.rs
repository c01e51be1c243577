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
    pub start: DateTime<Utc>,
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

pub fn participant_view(meetup: &MeetupRecord, p: &ParticipantRecord) -> ParticipantView {
    ParticipantView {
        id: p.id.clone(),
        name: p.name.clone(),
        time_zone: p.time_zone.clone(),
        // Votes for places removed since are not shown.
        availability: p
            .availability
            .iter()
            .filter(|(slot, _)| meetup.slot(slot).is_some())
            .map(|(slot, a)| (slot.clone(), *a))
            .collect(),
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
