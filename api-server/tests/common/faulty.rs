//! The embedded store with one injected fault: the next read of participants fails. A mock
//! because "the store fails exactly between the commit and the response" cannot be caused for
//! real at that point (every write handler reads participants to build its answer).

use std::sync::atomic::{AtomicBool, Ordering};

use api_server::domain::{
    CommentRecord, MeetupRecord, ParticipantChanges, ParticipantRecord, PlaceSuggestion,
};
use api_server::store::{
    EmbeddedStore, MeetupState, Revision, Store, StoreError, StoreResult, ViewStamp,
};
use async_trait::async_trait;

pub struct FaultyStore {
    inner: EmbeddedStore,
    fail_participants: AtomicBool,
}

impl FaultyStore {
    pub fn new(inner: EmbeddedStore) -> Self {
        Self {
            inner,
            fail_participants: AtomicBool::new(false),
        }
    }

    /// The next read of a meetup's participants fails (once).
    pub fn fail_next_participants_read(&self) {
        self.fail_participants.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for FaultyStore {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn create_meetup(&self, m: &MeetupRecord, o: &ParticipantRecord) -> StoreResult<()> {
        self.inner.create_meetup(m, o).await
    }
    async fn meetup(&self, id: &str) -> StoreResult<Option<MeetupRecord>> {
        self.inner.meetup(id).await
    }
    // Reads as the embedded store reads (one snapshot), not the trait's composed defaults: the
    // fault is the only difference.
    async fn view_stamp(&self, id: &str) -> StoreResult<Option<ViewStamp>> {
        self.inner.view_stamp(id).await
    }
    async fn meetup_state(&self, id: &str) -> StoreResult<Option<MeetupState>> {
        self.inner.meetup_state(id).await
    }
    async fn replace_meetup(&self, m: &MeetupRecord) -> StoreResult<Option<Revision>> {
        self.inner.replace_meetup(m).await
    }
    async fn delete_meetup(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_meetup(id).await
    }
    async fn participants(&self, meetup_id: &str) -> StoreResult<Vec<ParticipantRecord>> {
        if self.fail_participants.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Backend("injected fault".into()));
        }
        self.inner.participants(meetup_id).await
    }
    async fn participant(&self, m: &str, p: &str) -> StoreResult<Option<ParticipantRecord>> {
        self.inner.participant(m, p).await
    }
    async fn participant_by_token(
        &self,
        m: &str,
        t: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        self.inner.participant_by_token(m, t).await
    }
    async fn participant_id_by_token(&self, m: &str, t: &str) -> StoreResult<Option<String>> {
        self.inner.participant_id_by_token(m, t).await
    }
    async fn add_participant(&self, p: &ParticipantRecord, max: usize) -> StoreResult<Revision> {
        self.inner.add_participant(p, max).await
    }
    async fn update_participant(
        &self,
        m: &str,
        p: &str,
        changes: ParticipantChanges,
    ) -> StoreResult<Option<(Revision, ParticipantRecord)>> {
        self.inner.update_participant(m, p, changes).await
    }
    async fn remove_participant(&self, m: &str, p: &str) -> StoreResult<Option<Revision>> {
        self.inner.remove_participant(m, p).await
    }
    async fn remove_place_votes(&self, m: &str, p: &str) -> StoreResult<()> {
        self.inner.remove_place_votes(m, p).await
    }
    async fn comments(&self, m: &str) -> StoreResult<Vec<CommentRecord>> {
        self.inner.comments(m).await
    }
    async fn comment(&self, m: &str, c: &str) -> StoreResult<Option<CommentRecord>> {
        self.inner.comment(m, c).await
    }
    async fn add_comment(&self, c: &CommentRecord, max: usize) -> StoreResult<Revision> {
        self.inner.add_comment(c, max).await
    }
    async fn remove_comment(&self, m: &str, c: &str) -> StoreResult<Option<Revision>> {
        self.inner.remove_comment(m, c).await
    }
    async fn remember_place(&self, p: &PlaceSuggestion) -> StoreResult<()> {
        self.inner.remember_place(p).await
    }
    async fn place_suggestions(&self, q: &str, l: usize) -> StoreResult<Vec<PlaceSuggestion>> {
        self.inner.place_suggestions(q, l).await
    }
}
