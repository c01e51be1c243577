//! A decorator that times every store call into the `store_operation_duration_seconds`
//! histogram, labelled by backend, operation and outcome.

use std::future::Future;
use std::time::Instant;

use async_trait::async_trait;

use super::{MeetupState, Revision, Store, StoreError, StoreResult, ViewStamp};
use crate::domain::{
    CommentRecord, MeetupRecord, ParticipantChanges, ParticipantRecord, PlaceSuggestion,
};

pub struct InstrumentedStore<S> {
    inner: S,
}

impl<S: Store> InstrumentedStore<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::Backend(_)) => "error",
            Err(_) => "rejected",
        };
        metrics::histogram!(
            "store_operation_duration_seconds",
            "backend" => self.inner.backend(),
            "operation" => operation,
            "outcome" => outcome,
        )
        .record(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl<S: Store> Store for InstrumentedStore<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn create_meetup(
        &self,
        meetup: &MeetupRecord,
        organizer: &ParticipantRecord,
    ) -> StoreResult<()> {
        self.timed("create_meetup", self.inner.create_meetup(meetup, organizer))
            .await
    }

    async fn meetup(&self, id: &str) -> StoreResult<Option<MeetupRecord>> {
        self.timed("meetup", self.inner.meetup(id)).await
    }

    async fn view_stamp(&self, id: &str) -> StoreResult<Option<ViewStamp>> {
        self.timed("view_stamp", self.inner.view_stamp(id)).await
    }

    async fn meetup_state(&self, id: &str) -> StoreResult<Option<MeetupState>> {
        self.timed("meetup_state", self.inner.meetup_state(id))
            .await
    }

    async fn replace_meetup(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>> {
        self.timed("replace_meetup", self.inner.replace_meetup(meetup))
            .await
    }

    async fn delete_meetup(&self, id: &str) -> StoreResult<bool> {
        self.timed("delete_meetup", self.inner.delete_meetup(id))
            .await
    }

    async fn participants(&self, meetup_id: &str) -> StoreResult<Vec<ParticipantRecord>> {
        self.timed("participants", self.inner.participants(meetup_id))
            .await
    }

    async fn participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        self.timed(
            "participant",
            self.inner.participant(meetup_id, participant_id),
        )
        .await
    }

    async fn participant_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        self.timed(
            "participant_by_token",
            self.inner.participant_by_token(meetup_id, token_hash),
        )
        .await
    }

    async fn participant_id_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<String>> {
        self.timed(
            "participant_id_by_token",
            self.inner.participant_id_by_token(meetup_id, token_hash),
        )
        .await
    }

    async fn participant_by_name_key(
        &self,
        meetup_id: &str,
        name_key: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        self.timed(
            "participant_by_name_key",
            self.inner.participant_by_name_key(meetup_id, name_key),
        )
        .await
    }

    async fn add_participant(
        &self,
        participant: &ParticipantRecord,
        max: usize,
    ) -> StoreResult<Revision> {
        self.timed(
            "add_participant",
            self.inner.add_participant(participant, max),
        )
        .await
    }

    async fn update_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
        changes: ParticipantChanges,
    ) -> StoreResult<Option<(Revision, ParticipantRecord)>> {
        self.timed(
            "update_participant",
            self.inner
                .update_participant(meetup_id, participant_id, changes),
        )
        .await
    }

    async fn remove_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<Revision>> {
        self.timed(
            "remove_participant",
            self.inner.remove_participant(meetup_id, participant_id),
        )
        .await
    }

    async fn remove_place_votes(&self, meetup_id: &str, place_id: &str) -> StoreResult<()> {
        self.timed(
            "remove_place_votes",
            self.inner.remove_place_votes(meetup_id, place_id),
        )
        .await
    }

    async fn comments(&self, meetup_id: &str) -> StoreResult<Vec<CommentRecord>> {
        self.timed("comments", self.inner.comments(meetup_id)).await
    }

    async fn comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<CommentRecord>> {
        self.timed("comment", self.inner.comment(meetup_id, comment_id))
            .await
    }

    async fn add_comment(&self, comment: &CommentRecord, max: usize) -> StoreResult<Revision> {
        self.timed("add_comment", self.inner.add_comment(comment, max))
            .await
    }

    async fn remove_comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<Revision>> {
        self.timed(
            "remove_comment",
            self.inner.remove_comment(meetup_id, comment_id),
        )
        .await
    }

    async fn remember_place(&self, place: &PlaceSuggestion) -> StoreResult<()> {
        self.timed("remember_place", self.inner.remember_place(place))
            .await
    }

    async fn place_suggestions(
        &self,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<PlaceSuggestion>> {
        self.timed(
            "place_suggestions",
            self.inner.place_suggestions(prefix, limit),
        )
        .await
    }

    async fn meetups_ended_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        self.timed(
            "meetups_ended_before",
            self.inner.meetups_ended_before(cutoff, limit),
        )
        .await
    }
}
