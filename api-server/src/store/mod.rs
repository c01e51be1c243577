//! Persistence behind one trait, with two adaptors: MongoDB (store of record) and an embedded
//! redb database (for `make run` and single-node use). Every method touches what the common
//! subset of MongoDB and FerretDB can do atomically: one document per update, unique indexes,
//! `$inc` for the meetup revision. No transactions.

pub mod embedded;
pub mod instrumented;
pub mod mongo;

use async_trait::async_trait;

use crate::domain::{CommentRecord, MeetupRecord, ParticipantRecord, PlaceSuggestion};

pub use embedded::EmbeddedStore;
pub use instrumented::InstrumentedStore;
pub use mongo::MongoStore;

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

    /// Adds a participant unless the name is taken (`NameTaken`) or the meetup already has
    /// `max` participants (`Full`).
    async fn add_participant(
        &self,
        participant: &ParticipantRecord,
        max: usize,
    ) -> StoreResult<Revision>;

    /// Replaces one participant's own document (name, answers, votes, note).
    /// `Ok(None)` when the participant no longer exists.
    async fn update_participant(
        &self,
        participant: &ParticipantRecord,
    ) -> StoreResult<Option<Revision>>;

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
