//! The meetup domain: records as stored, views as served, and the pure rules between them.
//! Nothing in here does I/O; time and randomness come in as arguments.

pub mod commands;
pub mod ics;
pub mod ids;
pub mod rfc3339;
pub mod secret;
pub mod slots;
pub mod validate;
pub mod view;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use commands::*;
pub use view::*;

/// Hard limits from the API contract.
pub mod limits {
    pub const MAX_SLOTS: usize = 336;
    pub const MAX_PLACES: usize = 50;
    /// 100 people and 200 comments keep the fullest view under [`MAX_VIEW_BYTES`]: every slot
    /// lists the names behind its count, so the view grows with slots × participants × name.
    pub const MAX_PARTICIPANTS: usize = 100;
    pub const MAX_COMMENTS: usize = 200;
    pub const MAX_COMMENT_CHARS: usize = 1000;
    pub const MAX_NAME_CHARS: usize = 60;
    /// A display name also fits in 128 UTF-8 bytes as JSON (`"` and `\` count twice): 60 Latin
    /// or Cyrillic letters (a 60-letter Russian name must fit), 42 CJK characters or 32 emoji.
    /// Names are repeated in every slot and place their owner voted for.
    pub const MAX_NAME_BYTES: usize = 128;
    pub const MAX_TITLE_CHARS: usize = 120;
    pub const MAX_DESCRIPTION_CHARS: usize = 2000;
    pub const MAX_PLACE_NAME_CHARS: usize = 120;
    pub const MAX_ADDRESS_CHARS: usize = 300;
    pub const MAX_LINK_CHARS: usize = 500;
    pub const MAX_NOTE_CHARS: usize = 1000;
    pub const MAX_DAYS: usize = 60;
    /// A participant's optional PIN or password (see `secret`).
    pub const MIN_SECRET_CHARS: usize = 4;
    pub const MAX_SECRET_CHARS: usize = 64;
    /// The most bytes one meetup's serialized view may take. The limits above are chosen so
    /// that a meetup filled to every one of them, with the widest characters, stays below it
    /// (tested in `view::tests`), so memory per meetup is bounded by construction.
    pub const MAX_VIEW_BYTES: usize = 8 * 1024 * 1024;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Closed,
    Finalized,
}

/// `maybe` means "if the beer is good".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Yes,
    Maybe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotDef {
    pub id: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub start: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceRecord {
    pub id: String,
    pub name: String,
    pub address: Option<String>,
    pub link: Option<String>,
    pub note: Option<String>,
    /// Participant id of whoever added it; `None` when it came with the meetup.
    pub added_by_id: Option<String>,
    /// Kept by value so the name survives the participant leaving.
    pub added_by_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub start_slot_id: String,
    pub end_slot_id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub place_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    pub decided_at: DateTime<Utc>,
}

/// The meetup document. Participants and comments live in their own documents so that
/// concurrent votes never rewrite each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetupRecord {
    #[serde(rename = "_id")]
    pub id: String,
    pub admin_token_hash: String,
    pub title: String,
    pub description: Option<String>,
    pub organizer_name: String,
    pub organizer_id: String,
    pub time_zone: String,
    pub slot_minutes: u32,
    pub status: Status,
    pub deadline: Option<DateTime<Utc>>,
    pub allow_participant_places: bool,
    /// Bumped by every write to the meetup or anything in it; events carry it.
    pub revision: i64,
    /// Version of the meetup document's own fields, the basis of optimistic concurrency for
    /// edits of title, places, status and decision.
    #[serde(default)]
    pub doc_version: i64,
    /// Seat counters kept by the embedded store; the caps themselves are enforced by the
    /// store (`add_participant`, `add_comment`), which is the only place that can see races.
    pub participant_count: i64,
    pub comment_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub slots: Vec<SlotDef>,
    pub places: Vec<PlaceRecord>,
    pub decision: Option<Decision>,
}

impl MeetupRecord {
    /// The status people see: an open meetup whose deadline has passed is closed.
    pub fn effective_status(&self, now: DateTime<Utc>) -> Status {
        match (self.status, self.deadline) {
            (Status::Open, Some(deadline)) if deadline <= now => Status::Closed,
            (status, _) => status,
        }
    }

    /// Slots are kept in chronological order and their ids are the start instant written as
    /// `YYYYMMDDTHHMMZ`, so ids sort like the slots: a binary search finds one. The linear scan
    /// behind it only runs for an id that is not there (or for records stored out of order).
    pub fn slot(&self, id: &str) -> Option<(usize, &SlotDef)> {
        match self.slots.binary_search_by(|s| s.id.as_str().cmp(id)) {
            Ok(index) => Some((index, &self.slots[index])),
            Err(_) => self.slots.iter().enumerate().find(|(_, s)| s.id == id),
        }
    }

    /// The first of `ids` that is not a slot of this meetup. Ids in ascending order (a
    /// `BTreeMap`'s keys) are matched in one walk along the slots instead of a search each;
    /// any id the walk misses is looked up with [`Self::slot`], so the order only affects speed.
    pub fn first_unknown_slot<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let mut next = 0;
        for id in ids {
            while next < self.slots.len() && self.slots[next].id.as_str() < id {
                next += 1;
            }
            if next < self.slots.len() && self.slots[next].id == id {
                next += 1;
            } else if self.slot(id).is_none() {
                return Some(id);
            }
        }
        None
    }

    pub fn place(&self, id: &str) -> Option<&PlaceRecord> {
        self.places.iter().find(|p| p.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantRecord {
    #[serde(rename = "_id")]
    pub id: String,
    pub meetup_id: String,
    pub name: String,
    /// Case-folded name; unique per meetup.
    pub name_key: String,
    pub token_hash: String,
    pub time_zone: Option<String>,
    pub availability: BTreeMap<String, Availability>,
    pub place_votes: Vec<String>,
    pub note: Option<String>,
    pub is_organizer: bool,
    pub joined_at: DateTime<Utc>,
    /// The optional PIN/password that gets this name back on another device (hashed, and the
    /// token sealed under it); absent until the participant sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<secret::ParticipantSecret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentRecord {
    #[serde(rename = "_id")]
    pub id: String,
    pub meetup_id: String,
    pub participant_id: Option<String>,
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// A place used before, offered as a suggestion when adding places.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaceSuggestion {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Meetup,
    Slot,
    Place,
    Participant,
    Comment,
}

impl Resource {
    pub fn noun(self) -> &'static str {
        match self {
            Resource::Meetup => "meetup",
            Resource::Slot => "time slot",
            Resource::Place => "place",
            Resource::Participant => "participant",
            Resource::Comment => "comment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("Some fields are not valid.")]
    Invalid(Vec<FieldError>),
    #[error("There is no {} with id \"{id}\" here.", .what.noun())]
    NotFound {
        what: Resource,
        id: String,
        field: Option<String>,
    },
    #[error("The name \"{0}\" is already taken in this meetup; pick another one.")]
    NameTaken(String),
    #[error("This meetup is {}, so that cannot change now.", status_word(*.0))]
    NotOpen(Status),
    #[error("This meetup has not been finalized yet.")]
    NotFinalized,
    #[error("This meetup already has the most {0} it can have.")]
    Full(&'static str),
    #[error("This place is part of the decision; reopen the meetup before removing it.")]
    PlaceInDecision,
    #[error("{0}")]
    Forbidden(&'static str),
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Open => "open",
        Status::Closed => "closed",
        Status::Finalized => "finalized",
    }
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: Resource, id: impl Into<String>) -> Self {
        DomainError::NotFound {
            what,
            id: id.into(),
            field: None,
        }
    }

    pub fn not_found_in(what: Resource, id: impl Into<String>, field: impl Into<String>) -> Self {
        DomainError::NotFound {
            what,
            id: id.into(),
            field: Some(field.into()),
        }
    }
}

/// Who is acting, established from the bearer token.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// Holder of the admin token (the organizer).
    Admin,
    Participant(Box<ParticipantRecord>),
}

/// Who is acting, when the identity is all a rule needs: a vote is checked against it without
/// reading the voter's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// Holder of the admin token (the organizer).
    Admin,
    /// The participant with this id.
    Participant(&'a str),
}

/// Who a bearer token belongs to, without the participant's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Admin,
    Participant(String),
}

impl Identity {
    pub fn actor(&self) -> Actor<'_> {
        match self {
            Identity::Admin => Actor::Admin,
            Identity::Participant(id) => Actor::Participant(id),
        }
    }
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Admin)
    }

    pub fn actor(&self) -> Actor<'_> {
        match self {
            Principal::Admin => Actor::Admin,
            Principal::Participant(p) => Actor::Participant(&p.id),
        }
    }

    pub fn participant_id(&self) -> Option<&str> {
        match self {
            Principal::Admin => None,
            Principal::Participant(p) => Some(&p.id),
        }
    }
}
