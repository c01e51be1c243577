//! Persistence behind one trait, with two adaptors: MongoDB (store of record) and an embedded
//! redb database (for `make run` and single-node use). The MongoDB adaptor picks its write path
//! by what the server does atomically: single-document updates and transactions on MongoDB,
//! unique-key inserts (claim documents) on FerretDB v1 (see `mongo`).

pub mod embedded;
pub mod instrumented;
/// The MongoDB adaptor; left out of a build without the `mongodb` feature (`make run`).
#[cfg(feature = "mongodb")]
pub mod mongo;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    CommentRecord, MeetupRecord, ParticipantChanges, ParticipantRecord, PlaceSuggestion, Status,
};

pub use embedded::EmbeddedStore;
pub use instrumented::InstrumentedStore;
#[cfg(feature = "mongodb")]
pub use mongo::{Isolation, MongoStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the meetup does not exist")]
    MeetupNotFound,
    #[error("the name is already taken in this meetup")]
    NameTaken,
    #[error("the meetup already has the most {0} it can have")]
    Full(&'static str),
    #[error("store unavailable: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The new revision of the meetup after a write.
pub type Revision = i64;

/// What decides whether a cached view of a meetup is still the view the store would build now:
/// the revision, and the moment an open meetup's deadline turns it to closed (a change that
/// happens without a write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewStamp {
    pub revision: Revision,
    pub closes_at: Option<DateTime<Utc>>,
}

impl ViewStamp {
    pub fn of(meetup: &MeetupRecord) -> Self {
        Self {
            revision: meetup.revision,
            closes_at: match meetup.status {
                Status::Open => meetup.deadline,
                _ => None,
            },
        }
    }
}

/// Everything the view of one meetup is built from, read together.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetupState {
    pub meetup: MeetupRecord,
    pub participants: Vec<ParticipantRecord>,
    pub comments: Vec<CommentRecord>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "embedded" or "mongodb", for metrics and logs.
    fn backend(&self) -> &'static str;

    async fn ping(&self) -> StoreResult<()>;

    /// Stores a new meetup together with its organizer (participant count 1).
    async fn create_meetup(
        &self,
        meetup: &MeetupRecord,
        organizer: &ParticipantRecord,
    ) -> StoreResult<()>;

    async fn meetup(&self, id: &str) -> StoreResult<Option<MeetupRecord>>;

    /// The meetup's current revision (and deadline), cheaply: the read path checks cached
    /// views against it. `None` when the meetup does not exist.
    async fn view_stamp(&self, id: &str) -> StoreResult<Option<ViewStamp>> {
        Ok(self.meetup(id).await?.map(|m| ViewStamp::of(&m)))
    }

    /// The meetup with its participants and comments, each document read once. The data is
    /// never older than the revision it carries (adaptors read the revision first, or read
    /// everything from one snapshot), so a view built from it may be cached under that revision.
    async fn meetup_state(&self, id: &str) -> StoreResult<Option<MeetupState>> {
        let Some(meetup) = self.meetup(id).await? else {
            return Ok(None);
        };
        let (participants, comments) =
            futures::try_join!(self.participants(&meetup.id), self.comments(&meetup.id))?;
        Ok(Some(MeetupState {
            meetup,
            participants,
            comments,
        }))
    }

    /// Compare-and-swap of the meetup document's own fields (title, places, status, decision…):
    /// written only if the stored `doc_version` still equals `meetup.doc_version`, which then
    /// goes up by one, and the revision is bumped. `Ok(None)` means someone else wrote first:
    /// re-read and retry. Counters and the admin token are never overwritten by this.
    async fn replace_meetup(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>>;

    /// Deletes the meetup and everything in it. `false` if it did not exist.
    async fn delete_meetup(&self, id: &str) -> StoreResult<bool>;

    async fn participants(&self, meetup_id: &str) -> StoreResult<Vec<ParticipantRecord>>;

    async fn participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<ParticipantRecord>>;

    async fn participant_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<ParticipantRecord>>;

    /// Only the id of the participant holding this token in this meetup: a write that needs no
    /// more than who is asking skips reading and decoding the whole record (a vote's record
    /// carries every answer).
    async fn participant_id_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<String>>;

    /// The participant whose name has this key (`validate::name_key`, the key "name taken"
    /// checks), if any: reclaiming a name finds its owner by it.
    async fn participant_by_name_key(
        &self,
        meetup_id: &str,
        name_key: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        Ok(self
            .participants(meetup_id)
            .await?
            .into_iter()
            .find(|p| p.name_key == name_key))
    }

    /// Adds a participant unless the name is taken (`NameTaken`) or the meetup already has
    /// `max` participants (`Full`).
    async fn add_participant(
        &self,
        participant: &ParticipantRecord,
        max: usize,
    ) -> StoreResult<Revision>;

    /// Applies a PATCH to the participant as stored at the moment of writing: only the fields
    /// present in `changes` are written, so concurrent PATCHes of different fields both stay.
    /// Returns the new revision and the participant as written; `Ok(None)` when the participant
    /// no longer exists; `NameTaken` when the new name belongs to someone else. By value: the
    /// embedded store hands them to its writer thread (a vote's ~70 answers, not copied).
    async fn update_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
        changes: ParticipantChanges,
    ) -> StoreResult<Option<(Revision, ParticipantRecord)>>;

    async fn remove_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<Revision>>;

    /// Drops a removed place from everybody's votes.
    async fn remove_place_votes(&self, meetup_id: &str, place_id: &str) -> StoreResult<()>;

    async fn comments(&self, meetup_id: &str) -> StoreResult<Vec<CommentRecord>>;

    async fn comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<CommentRecord>>;

    async fn add_comment(&self, comment: &CommentRecord, max: usize) -> StoreResult<Revision>;

    async fn remove_comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<Revision>>;

    /// Remembers a place so later meetups can be offered it.
    async fn remember_place(&self, place: &PlaceSuggestion) -> StoreResult<()>;

    /// Places used before whose name starts with `prefix` (case-insensitive).
    async fn place_suggestions(
        &self,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<PlaceSuggestion>>;

    /// Ids of meetups whose every slot (and so their decision) ended before `cutoff`, at most
    /// `limit`: the retention sweeper deletes them. The default finds none.
    async fn meetups_ended_before(
        &self,
        _cutoff: chrono::DateTime<chrono::Utc>,
        _limit: usize,
    ) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
}

/// When a meetup's last slot (or its decision) ends: what retention counts from.
pub fn meetup_last_end(meetup: &MeetupRecord) -> chrono::DateTime<chrono::Utc> {
    meetup
        .slots
        .iter()
        .map(|slot| slot.end)
        .chain(meetup.decision.as_ref().map(|decision| decision.end))
        .max()
        .unwrap_or(meetup.created_at)
}

/// Key for place suggestions: case-folded, whitespace collapsed.
pub fn suggestion_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}
