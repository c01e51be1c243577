//! MongoDB adaptor (official driver), written to the subset FerretDB v1 also speaks.
//!
//! FerretDB v1 applies update operators as read-modify-write without isolation: 50 concurrent
//! `$inc`s on one document end up as a handful (see the conformance suite), and a conditional
//! `$set` is no compare-and-swap either. What both servers do atomically is an insert against a
//! unique key. So everything that must not race is an insert:
//! - each participant, comment and vote lives in its own document (no shared read-modify-write);
//! - the meetup revision is claimed by inserting `claims/{meetupId}:r:{n}`: exactly one writer
//!   gets each number, so no increment is lost and no two events share a revision;
//! - edits of the meetup document itself first claim `{meetupId}:d:{version}`; only the winner
//!   writes, losers re-read and retry (optimistic concurrency without transactions).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc, to_bson, to_document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};

use super::{Revision, Store, StoreError, StoreResult, suggestion_key};
use crate::domain::{
    CommentRecord, MeetupRecord, ParticipantChanges, ParticipantRecord, PlaceSuggestion,
};

const DUPLICATE_KEY: i32 = 11000;
/// A document-version claim older than this whose owner never wrote is considered abandoned.
const ABANDONED_CLAIM: chrono::TimeDelta = chrono::TimeDelta::seconds(30);
/// Revision claims older than this many revisions are pruned.
const KEEP_REVISION_CLAIMS: i64 = 64;

/// What the server does atomically, learned once when connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// MongoDB: an update of one document is atomic, so a `$set` of some fields never loses a
    /// concurrent `$set` of others.
    AtomicDocument,
    /// FerretDB v1: updates are read-modify-write without isolation; only an insert against a
    /// unique key is atomic, so writers of one document take a claim first.
    ReadModifyWrite,
}

/// Tries of one participant PATCH against concurrent PATCHes of the same participant.
const PARTICIPANT_WRITE_ATTEMPTS: u32 = 64;

#[derive(Clone)]
pub struct MongoStore {
    /// Commands sent to the server so far (each one a round trip).
    sent: Arc<AtomicU64>,
    /// Set once the server has answered and the indexes exist ([`MongoStore::prepared`]).
    prepared: Arc<tokio::sync::OnceCell<Isolation>>,
    db: Database,
    meetups: Collection<MeetupRecord>,
    participants: Collection<ParticipantRecord>,
    comments: Collection<CommentRecord>,
    claims: Collection<Document>,
    suggestions: Collection<Document>,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// MongoDB reports E11000; FerretDB v1 reports SQLite's constraint error for updates.
fn is_duplicate_key(error: &MongoError) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => {
            e.code == DUPLICATE_KEY
                || e.message.contains("UNIQUE constraint failed")
                || e.message.contains("duplicate key")
        }
        _ => false,
    }
}

fn name_conflict(error: MongoError) -> StoreError {
    if is_duplicate_key(&error) {
        StoreError::NameTaken
    } else {
        backend(error)
    }
}

fn now_bson() -> StoreResult<Bson> {
    to_bson(&Utc::now()).map_err(backend)
}

/// Zero-padded so that claims sort by number as strings.
fn revision_key(meetup_id: &str, n: i64) -> String {
    format!("{meetup_id}:r:{n:012}")
}

fn version_key(meetup_id: &str, version: i64) -> String {
    format!("{meetup_id}:d:{version:012}")
}

/// Every key of one meetup (';' sorts right after ':').
fn meetup_keys(meetup_id: &str) -> Document {
    doc! {"$gte": format!("{meetup_id}:"), "$lt": format!("{meetup_id};")}
}

/// FerretDB answers `buildInfo` with a `ferretdbVersion`; anything else is taken for MongoDB.
/// If the question fails, assume the weaker server (the claim path is correct on both).
async fn detect_isolation(db: &Database) -> Isolation {
    match db.run_command(doc! {"buildInfo": 1}).await {
        Ok(info) if !info.contains_key("ferretdbVersion") => Isolation::AtomicDocument,
        Ok(_) => Isolation::ReadModifyWrite,
        Err(error) => {
            tracing::warn!(%error, "buildInfo failed; assuming updates are not isolated");
            Isolation::ReadModifyWrite
        }
    }
}

fn participant_claim_key(meetup_id: &str, participant_id: &str, version: i64) -> String {
    format!("{meetup_id}:p:{participant_id}:{version:012}")
}

/// The document's `writeVersion` (absent on documents written before it existed: 0).
fn write_version_filter(version: i64) -> Document {
    if version == 0 {
        doc! {"$or": [{"writeVersion": {"$exists": false}}, {"writeVersion": 0_i64}]}
    } else {
        doc! {"writeVersion": version}
    }
}

impl MongoStore {
    /// Removes everything of a tombstoned meetup, the meetup document last. Idempotent.
    async fn sweep(&self, id: &str) -> StoreResult<()> {
        self.participants
            .delete_many(doc! {"meetupId": id})
            .await
            .map_err(backend)?;
        self.comments
            .delete_many(doc! {"meetupId": id})
            .await
            .map_err(backend)?;
        self.claims
            .delete_many(doc! {"_id": meetup_keys(id)})
            .await
            .map_err(backend)?;
        self.meetups
            .delete_one(doc! {"_id": id, "deleted": true})
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Finishes deletions that were cut short. Best effort: a failure is logged and retried at
    /// the next start or by deleting again.
    async fn sweep_tombstones(&self) {
        let raw = self.db.collection::<Document>("meetups");
        let tombstones: Result<Vec<Document>, _> = match raw
            .find(doc! {"deleted": true})
            .projection(doc! {"_id": 1})
            .await
        {
            Ok(cursor) => cursor.try_collect().await,
            Err(error) => Err(error),
        };
        let tombstones = match tombstones {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "could not look for meetups whose deletion was cut short");
                return;
            }
        };
        for tombstone in tombstones {
            let Ok(id) = tombstone.get_str("_id") else {
                continue;
            };
            match self.sweep(id).await {
                Ok(()) => tracing::info!(meetup = id, "finished a deletion that was cut short"),
                Err(error) => tracing::warn!(%error, meetup = id, "could not finish a deletion"),
            }
        }
    }

    /// Commands (round trips) this store has sent so far.
    pub fn commands_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// What this server does atomically (decides the write path for participant PATCHes);
    /// the weaker assumption until the server has answered.
    pub fn isolation(&self) -> Isolation {
        self.prepared
            .get()
            .copied()
            .unwrap_or(Isolation::ReadModifyWrite)
    }

    /// The first time the server answers: what it isolates, the indexes (the unique name index
    /// guards every join), unfinished deletes swept. Until then every operation fails as in an
    /// outage (503, readiness false) and the next one tries again, so the API can start before
    /// its database and never needs a restart to find it.
    async fn prepared(&self) -> StoreResult<Isolation> {
        self.prepared
            .get_or_try_init(|| async {
                self.db
                    .run_command(doc! {"ping": 1})
                    .await
                    .map_err(backend)?;
                let isolation = detect_isolation(&self.db).await;
                self.create_indexes().await?;
                self.sweep_tombstones().await;
                tracing::info!(?isolation, "connected to the document store");
                Ok(isolation)
            })
            .await
            .copied()
    }

    /// Participant PATCH where updates are not isolated (FerretDB v1). Each participant
    /// document carries a `writeVersion`. A writer reads it (v), inserts the claim `v+1` (only
    /// one writer wins it), applies the changes to what it read and replaces the document on
    /// the condition that it is still at `v`. Losers re-read after the winner wrote. The
    /// condition, not the claim, is what keeps a stalled writer from reverting a later one: a
    /// claim older than [`ABANDONED_CLAIM`] may be taken over, and the stalled owner's write
    /// then matches nothing and starts over.
    async fn update_participant_claimed(
        &self,
        meetup_id: &str,
        participant_id: &str,
        changes: &ParticipantChanges,
    ) -> StoreResult<Option<(Revision, ParticipantRecord)>> {
        let raw = self.db.collection::<Document>("participants");
        let owner: i64 = rand::random();
        for attempt in 0..PARTICIPANT_WRITE_ATTEMPTS {
            let Some(mut stored) = raw
                .find_one(doc! {"_id": participant_id, "meetupId": meetup_id})
                .await
                .map_err(backend)?
            else {
                return Ok(None);
            };
            let version = stored.get_i64("writeVersion").unwrap_or(0);
            stored.remove("writeVersion");
            let mut record: ParticipantRecord =
                mongodb::bson::from_document(stored).map_err(backend)?;
            let key = participant_claim_key(meetup_id, participant_id, version + 1);
            if !self
                .claim_owned(&key, meetup_id, version + 1, owner)
                .await?
            {
                if !self.take_over_stale_claim(&key).await? {
                    let backoff = 2_u64.saturating_pow(attempt.min(6));
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                }
                continue;
            }
            changes.apply_to(&mut record);
            let mut next = to_document(&record).map_err(backend)?;
            next.insert("writeVersion", version + 1);
            let mut filter = doc! {"_id": participant_id, "meetupId": meetup_id};
            filter.extend(write_version_filter(version));
            let written = raw.replace_one(filter, next).await;
            let release_own = doc! {"_id": &key, "owner": owner};
            match written {
                Ok(result) if result.matched_count == 1 => {
                    // The claim before this one is no longer needed by anybody.
                    let previous = participant_claim_key(meetup_id, participant_id, version);
                    self.claims
                        .delete_one(doc! {"_id": previous})
                        .await
                        .map_err(backend)?;
                    let revision = self.next_revision(meetup_id).await?;
                    return Ok(Some((revision, record)));
                }
                Ok(_) => {
                    // Taken over while stalled, or deleted: read again.
                    self.claims.delete_one(release_own).await.map_err(backend)?;
                }
                Err(error) => {
                    // Our claim, and the document did not move to v+1 through us (or if it did,
                    // the condition stops any later writer of v+1): free it for the next one.
                    self.claims.delete_one(release_own).await.map_err(backend)?;
                    return Err(name_conflict(error));
                }
            }
        }
        Err(StoreError::Backend(
            "this participant is changing too fast; try again".into(),
        ))
    }

    /// Inserts a claim carrying its owner; `false` if somebody already holds that key.
    async fn claim_owned(
        &self,
        key: &str,
        meetup_id: &str,
        n: i64,
        owner: i64,
    ) -> StoreResult<bool> {
        let claim =
            doc! {"_id": key, "meetupId": meetup_id, "n": n, "owner": owner, "at": now_bson()?};
        match self.claims.insert_one(claim).await {
            Ok(_) => Ok(true),
            Err(error) if is_duplicate_key(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    /// Deletes a participant claim older than [`ABANDONED_CLAIM`] so a new writer can take it.
    async fn take_over_stale_claim(&self, key: &str) -> StoreResult<bool> {
        let cutoff = to_bson(&(Utc::now() - ABANDONED_CLAIM)).map_err(backend)?;
        let released = self
            .claims
            .delete_one(doc! {"_id": key, "at": {"$lt": cutoff}})
            .await
            .map_err(backend)?;
        Ok(released.deleted_count > 0)
    }

    /// Connects, checks the server answers, and creates the indexes.
    pub async fn connect(uri: &str, database: &str) -> StoreResult<Self> {
        let mut options = ClientOptions::parse(uri).await.map_err(backend)?;
        options
            .app_name
            .get_or_insert_with(|| "beer-meetup-api".into());
        // Fail fast on readiness checks instead of the driver's 30 s default.
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(5));
        // Every command is a round trip: counted so the cost of each operation can be measured.
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        options.command_event_handler = Some(EventHandler::callback(move |event| {
            if matches!(event, CommandEvent::Started(_)) {
                counter.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("mongodb_commands_total").increment(1);
            }
        }));
        let client = Client::with_options(options).map_err(backend)?;
        let db = client.database(database);
        let store = Self {
            sent,
            prepared: Arc::default(),
            meetups: db.collection("meetups"),
            participants: db.collection("participants"),
            comments: db.collection("comments"),
            claims: db.collection("claims"),
            suggestions: db.collection("placeSuggestions"),
            db,
        };
        if let Err(error) = store.prepared().await {
            tracing::warn!(%error, "the document store does not answer yet; not ready until it does");
        }
        Ok(store)
    }

    /// Deletes one document of a meetup (a participant or a comment) and, if it existed, claims
    /// the meetup's next revision.
    async fn delete_and_bump<T: Send + Sync>(
        &self,
        collection: &Collection<T>,
        meetup_id: &str,
        id: &str,
    ) -> StoreResult<Option<Revision>> {
        let deleted = collection
            .delete_one(doc! {"_id": id, "meetupId": meetup_id})
            .await
            .map_err(backend)?;
        if deleted.deleted_count == 0 {
            return Ok(None);
        }
        self.next_revision(meetup_id).await.map(Some)
    }

    async fn create_indexes(&self) -> StoreResult<()> {
        let unique = || IndexOptions::builder().unique(true).build();
        self.participants
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"meetupId": 1, "nameKey": 1})
                    .options(unique())
                    .build(),
            )
            .await
            .map_err(backend)?;
        self.participants
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"tokenHash": 1})
                    .options(unique())
                    .build(),
            )
            .await
            .map_err(backend)?;
        self.comments
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"meetupId": 1, "createdAt": 1})
                    .build(),
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Inserts a claim; `false` if somebody already holds that key.
    async fn claim(&self, key: String, meetup_id: &str, n: i64) -> StoreResult<bool> {
        let claim = doc! {"_id": key, "meetupId": meetup_id, "n": n, "at": now_bson()?};
        match self.claims.insert_one(claim).await {
            Ok(_) => Ok(true),
            Err(error) if is_duplicate_key(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    async fn latest_revision(&self, meetup_id: &str) -> StoreResult<Option<Revision>> {
        let from = revision_key(meetup_id, 0);
        let to = format!("{meetup_id}:r;");
        let latest = self
            .claims
            .find_one(doc! {"_id": {"$gte": from, "$lt": to}})
            .sort(doc! {"_id": -1})
            .await
            .map_err(backend)?;
        Ok(latest.and_then(|claim| claim.get_i64("n").ok()))
    }

    /// Claims the next free revision number of a meetup: the atomic counter.
    async fn next_revision(&self, meetup_id: &str) -> StoreResult<Revision> {
        let mut n = self.latest_revision(meetup_id).await?.unwrap_or(0) + 1;
        for _ in 0..10_000 {
            if self.claim(revision_key(meetup_id, n), meetup_id, n).await? {
                if n % KEEP_REVISION_CLAIMS == 0 {
                    self.prune_revision_claims(meetup_id, n).await?;
                }
                return Ok(n);
            }
            n += 1;
        }
        Err(StoreError::Backend(
            "could not claim a revision number".into(),
        ))
    }

    async fn prune_revision_claims(&self, meetup_id: &str, latest: Revision) -> StoreResult<()> {
        let from = revision_key(meetup_id, 0);
        let to = revision_key(meetup_id, latest - KEEP_REVISION_CLAIMS);
        self.claims
            .delete_many(doc! {"_id": {"$gte": from, "$lt": to}})
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn meetup_exists(&self, meetup_id: &str) -> StoreResult<bool> {
        let count = self
            .meetups
            .count_documents(doc! {"_id": meetup_id, "deleted": {"$ne": true}})
            .await
            .map_err(backend)?;
        Ok(count > 0)
    }

    /// Frees a document-version claim whose owner vanished before writing. Returns whether
    /// the caller may try to claim again.
    async fn release_abandoned_claim(&self, meetup_id: &str, basis: i64) -> StoreResult<bool> {
        let stored = self.meetup(meetup_id).await?;
        let Some(stored) = stored else {
            return Err(StoreError::MeetupNotFound);
        };
        if stored.doc_version != basis {
            return Ok(false);
        }
        let cutoff = to_bson(&(Utc::now() - ABANDONED_CLAIM)).map_err(backend)?;
        let released = self
            .claims
            .delete_one(doc! {"_id": version_key(meetup_id, basis + 1), "at": {"$lt": cutoff}})
            .await
            .map_err(backend)?;
        Ok(released.deleted_count > 0)
    }

    async fn count(&self, collection: &str, meetup_id: &str) -> StoreResult<u64> {
        self.db
            .collection::<Document>(collection)
            .count_documents(doc! {"meetupId": meetup_id})
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.prepared().await?;
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_meetup(
        &self,
        meetup: &MeetupRecord,
        organizer: &ParticipantRecord,
    ) -> StoreResult<()> {
        self.prepared().await?;
        // Organizer first: a meetup never exists without the person who owns it.
        self.participants
            .insert_one(organizer)
            .await
            .map_err(name_conflict)?;
        self.meetups.insert_one(meetup).await.map_err(backend)?;
        self.claim(
            revision_key(&meetup.id, meetup.revision),
            &meetup.id,
            meetup.revision,
        )
        .await?;
        Ok(())
    }

    async fn meetup(&self, id: &str) -> StoreResult<Option<MeetupRecord>> {
        self.prepared().await?;
        let Some(mut meetup) = self
            .meetups
            .find_one(doc! {"_id": id, "deleted": {"$ne": true}})
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        if let Some(revision) = self.latest_revision(id).await? {
            meetup.revision = meetup.revision.max(revision);
        }
        Ok(Some(meetup))
    }

    async fn replace_meetup(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>> {
        self.prepared().await?;
        let basis = meetup.doc_version;
        let mut claimed = false;
        for _ in 0..2 {
            if self
                .claim(version_key(&meetup.id, basis + 1), &meetup.id, basis + 1)
                .await?
            {
                claimed = true;
                break;
            }
            if !self.release_abandoned_claim(&meetup.id, basis).await? {
                return Ok(None);
            }
        }
        if !claimed {
            return Ok(None);
        }
        let mut fields = to_document(meetup).map_err(backend)?;
        for owned_elsewhere in [
            "_id",
            "revision",
            "participantCount",
            "commentCount",
            "adminTokenHash",
        ] {
            fields.remove(owned_elsewhere);
        }
        fields.insert("docVersion", basis + 1);
        fields.insert("updatedAt", now_bson()?);
        let written = self
            .meetups
            .update_one(doc! {"_id": &meetup.id}, doc! {"$set": fields})
            .await
            .map_err(backend)?;
        if written.matched_count == 0 {
            return Err(StoreError::MeetupNotFound);
        }
        self.next_revision(&meetup.id).await.map(Some)
    }

    /// Tombstone first, then sweep: once the meetup is marked deleted every read and write
    /// treats it as gone, whatever happens to the sweep; a sweep cut short (an error, a crash)
    /// is finished by the next delete or at the next start (`sweep_tombstones`).
    async fn delete_meetup(&self, id: &str) -> StoreResult<bool> {
        self.prepared().await?;
        let marked = self
            .meetups
            .update_one(
                doc! {"_id": id, "deleted": {"$ne": true}},
                doc! {"$set": {"deleted": true}},
            )
            .await
            .map_err(backend)?;
        self.sweep(id).await?;
        Ok(marked.matched_count > 0)
    }

    async fn participants(&self, meetup_id: &str) -> StoreResult<Vec<ParticipantRecord>> {
        self.prepared().await?;
        self.participants
            .find(doc! {"meetupId": meetup_id})
            .await
            .map_err(backend)?
            .try_collect()
            .await
            .map_err(backend)
    }

    async fn participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        self.prepared().await?;
        self.participants
            .find_one(doc! {"_id": participant_id, "meetupId": meetup_id})
            .await
            .map_err(backend)
    }

    async fn participant_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        self.prepared().await?;
        self.participants
            .find_one(doc! {"tokenHash": token_hash, "meetupId": meetup_id})
            .await
            .map_err(backend)
    }

    async fn participant_by_name_key(
        &self,
        meetup_id: &str,
        name_key: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        self.participants
            .find_one(doc! {"meetupId": meetup_id, "nameKey": name_key})
            .await
            .map_err(backend)
    }

    /// The cap is checked by counting first; under a burst of simultaneous joins it may be
    /// passed by a few (no transactions), which is harmless for an abuse limit.
    async fn add_participant(
        &self,
        participant: &ParticipantRecord,
        max: usize,
    ) -> StoreResult<Revision> {
        self.prepared().await?;
        if !self.meetup_exists(&participant.meetup_id).await? {
            return Err(StoreError::MeetupNotFound);
        }
        if self.count("participants", &participant.meetup_id).await? >= max as u64 {
            return Err(StoreError::Full("participants"));
        }
        self.participants
            .insert_one(participant)
            .await
            .map_err(name_conflict)?;
        self.next_revision(&participant.meetup_id).await
    }

    async fn update_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
        changes: &ParticipantChanges,
    ) -> StoreResult<Option<(Revision, ParticipantRecord)>> {
        if self.prepared().await? == Isolation::ReadModifyWrite {
            return self
                .update_participant_claimed(meetup_id, participant_id, changes)
                .await;
        }
        // Only the fields the PATCH carries: a concurrent PATCH of other fields survives.
        let mut set = Document::new();
        if let Some(name) = &changes.name {
            set.insert("name", &name.name);
            set.insert("nameKey", &name.name_key);
        }
        if let Some(time_zone) = &changes.time_zone {
            set.insert("timeZone", time_zone.as_deref());
        }
        if let Some(availability) = &changes.availability {
            set.insert("availability", to_bson(availability).map_err(backend)?);
        }
        if let Some(place_votes) = &changes.place_votes {
            set.insert("placeVotes", place_votes.clone());
        }
        if let Some(note) = &changes.note {
            set.insert("note", note.as_deref());
        }
        if let Some(secret) = &changes.secret {
            set.insert("secret", to_bson(secret).map_err(backend)?);
        }
        let filter = doc! {"_id": participant_id, "meetupId": meetup_id};
        let updated = if set.is_empty() {
            self.participants.find_one(filter).await.map_err(backend)?
        } else {
            self.participants
                .find_one_and_update(filter, doc! {"$set": set})
                .return_document(ReturnDocument::After)
                .await
                .map_err(name_conflict)?
        };
        let Some(updated) = updated else {
            return Ok(None);
        };
        let revision = self.next_revision(meetup_id).await?;
        Ok(Some((revision, updated)))
    }

    async fn remove_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<Revision>> {
        self.prepared().await?;
        self.delete_and_bump(&self.participants, meetup_id, participant_id)
            .await
    }

    async fn remove_place_votes(&self, meetup_id: &str, place_id: &str) -> StoreResult<()> {
        self.prepared().await?;
        self.participants
            .update_many(
                doc! {"meetupId": meetup_id, "placeVotes": place_id},
                doc! {"$pull": {"placeVotes": place_id}},
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn comments(&self, meetup_id: &str) -> StoreResult<Vec<CommentRecord>> {
        self.prepared().await?;
        self.comments
            .find(doc! {"meetupId": meetup_id})
            .await
            .map_err(backend)?
            .try_collect()
            .await
            .map_err(backend)
    }

    async fn comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<CommentRecord>> {
        self.prepared().await?;
        self.comments
            .find_one(doc! {"_id": comment_id, "meetupId": meetup_id})
            .await
            .map_err(backend)
    }

    async fn add_comment(&self, comment: &CommentRecord, max: usize) -> StoreResult<Revision> {
        self.prepared().await?;
        if !self.meetup_exists(&comment.meetup_id).await? {
            return Err(StoreError::MeetupNotFound);
        }
        if self.count("comments", &comment.meetup_id).await? >= max as u64 {
            return Err(StoreError::Full("comments"));
        }
        self.comments.insert_one(comment).await.map_err(backend)?;
        self.next_revision(&comment.meetup_id).await
    }

    async fn remove_comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<Revision>> {
        self.prepared().await?;
        self.delete_and_bump(&self.comments, meetup_id, comment_id)
            .await
    }

    async fn remember_place(&self, place: &PlaceSuggestion) -> StoreResult<()> {
        self.prepared().await?;
        let mut document = to_document(place).map_err(backend)?;
        document.insert("_id", suggestion_key(&place.name));
        self.suggestions
            .replace_one(doc! {"_id": suggestion_key(&place.name)}, document)
            .upsert(true)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn place_suggestions(
        &self,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<PlaceSuggestion>> {
        self.prepared().await?;
        let from = suggestion_key(prefix);
        // A range on the key instead of a regex: no escaping, and it uses the _id index.
        let to = format!("{from}\u{10FFFF}");
        let documents: Vec<Document> = self
            .suggestions
            .find(doc! {"_id": {"$gte": &from, "$lt": &to}})
            .sort(doc! {"_id": 1})
            .limit(limit as i64)
            .await
            .map_err(backend)?
            .try_collect()
            .await
            .map_err(backend)?;
        documents
            .into_iter()
            .map(|mut d| {
                d.remove("_id");
                mongodb::bson::from_document(d).map_err(backend)
            })
            .collect()
    }

    async fn meetups_ended_before(
        &self,
        cutoff: chrono::DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        self.prepared().await?;
        // Only the slot ends are read; the filter is applied here so it works the same on
        // MongoDB and FerretDB whatever the dates are stored as.
        let mut cursor = self
            .db
            .collection::<Document>("meetups")
            .find(doc! {})
            .projection(doc! {"slots.end": 1, "decision.end": 1, "createdAt": 1})
            .await
            .map_err(backend)?;
        let instant = |value: Option<&Bson>| -> Option<chrono::DateTime<Utc>> {
            match value? {
                Bson::String(text) => text.parse().ok(),
                Bson::DateTime(at) => {
                    chrono::DateTime::from_timestamp_millis(at.timestamp_millis())
                }
                _ => None,
            }
        };
        let mut out = Vec::new();
        while let Some(meetup) = cursor.try_next().await.map_err(backend)? {
            let ends = meetup
                .get_array("slots")
                .map(|slots| {
                    slots
                        .iter()
                        .filter_map(|slot| instant(slot.as_document()?.get("end")))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let decided = meetup
                .get_document("decision")
                .ok()
                .and_then(|decision| instant(decision.get("end")));
            let last = ends
                .into_iter()
                .chain(decided)
                .max()
                .or_else(|| instant(meetup.get("createdAt")));
            if let (Some(last), Ok(id)) = (last, meetup.get_str("_id"))
                && last < cutoff
            {
                out.push(id.to_string());
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}
