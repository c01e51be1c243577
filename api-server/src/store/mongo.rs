//! MongoDB adaptor (official driver). Which write path it takes depends on what the server does
//! atomically, asked once when it first answers ([`isolation_of`]):
//!
//! - **MongoDB** (atomic single-document updates): the meetup revision is a field of the meetup
//!   document, bumped with `$inc` by `findOneAndUpdate`; an edit of the meetup document is one
//!   `findOneAndUpdate` filtered on its `docVersion` that also bumps the revision. On a replica
//!   set (transactions) a write to a participant or comment and its revision bump commit together
//!   in one transaction; on a standalone server the data is written first, then the revision.
//! - **FerretDB v1** applies update operators as read-modify-write without isolation: 50
//!   concurrent `$inc`s on one document end up as a handful (see the conformance suite), and a
//!   conditional `$set` is no compare-and-swap either. What it does atomically is an insert
//!   against a unique key, so everything that must not race is an insert (a claim document):
//!   - each participant, comment and vote lives in its own document;
//!   - the meetup revision is claimed by inserting `claims/{meetupId}:r:{n}`: exactly one writer
//!     gets each number, and revision claims are kept for the meetup's life so no number is
//!     ever handed out twice (a writer stalled for many revisions gets a fresh one);
//!   - edits of the meetup document first claim `{meetupId}:d:{version}` with a lease: the owner
//!     writes only while its lease runs, and only on the condition that the document is still at
//!     the version it read; others free the claim only when it is far older than any lease and
//!     the document shows no progress. So a writer stalled past the lease never reverts a later
//!     write: it finds its lease gone and starts over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc, to_bson, to_document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use tokio::sync::Notify;

use super::{MeetupState, Revision, Store, StoreError, StoreResult, suggestion_key};
use crate::domain::{
    CommentRecord, MeetupRecord, ParticipantChanges, ParticipantRecord, PlaceSuggestion,
};

const DUPLICATE_KEY: i32 = 11000;
/// How long the owner of a claim may still write, counted on its own monotonic clock from just
/// before it sent the claim. Past it, the owner gives up and starts over.
const CLAIM_LEASE: Duration = Duration::from_secs(10);
/// How old (by the claim's wall-clock stamp) a claim must be before others may free it: well
/// past any lease, with room for clock differences between replicas.
const ABANDON_CLAIM_AFTER: Duration = Duration::from_secs(30);
/// Reads of a meetup's state that saw the revision move while reading before settling for
/// data at least as new as the revision it carries.
const CONSISTENT_READ_ATTEMPTS: u32 = 3;

/// What the server does atomically, learned once when connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// MongoDB replica set: atomic single-document updates and multi-document transactions.
    Transactions,
    /// MongoDB without a replica set: an update of one document is atomic (a `$set` of some
    /// fields never loses a concurrent `$set` of others, `$inc` never loses a count), but a
    /// write spanning documents is not.
    AtomicDocument,
    /// FerretDB v1: updates are read-modify-write without isolation; only an insert against a
    /// unique key is atomic, so writers of one document take a claim first.
    ReadModifyWrite,
}

/// The write path for a server, from its `buildInfo` and `hello` answers: FerretDB (it names
/// its version in `buildInfo`) gets the claim path whatever it claims to support; MongoDB gets
/// transactions when it is a replica set member with sessions (`setName` and
/// `logicalSessionTimeoutMinutes` in `hello`), atomic single-document updates otherwise.
pub fn isolation_of(build_info: &Document, hello: &Document) -> Isolation {
    if build_info.contains_key("ferretdbVersion") {
        return Isolation::ReadModifyWrite;
    }
    let replica_set = matches!(hello.get("setName"), Some(Bson::String(name)) if !name.is_empty());
    let sessions = hello
        .get("logicalSessionTimeoutMinutes")
        .is_some_and(|minutes| !matches!(minutes, Bson::Null));
    if replica_set && sessions {
        Isolation::Transactions
    } else {
        Isolation::AtomicDocument
    }
}

/// A point where a test holds a writer (fault injection: a writer stalled by a pause or a
/// failover at exactly this point cannot be caused for real). The writer signals `reached`,
/// then waits for `release`.
#[derive(Clone, Debug, Default)]
pub struct PausePoint {
    pub reached: Arc<Notify>,
    pub release: Arc<Notify>,
}

/// Runs a driver action inside the session's transaction when there is one.
macro_rules! in_session {
    ($action:expr, $session:expr) => {
        match $session.as_mut() {
            Some(session) => $action.session(session).await,
            None => $action.await,
        }
    };
}

/// Tries of one participant PATCH against concurrent PATCHes of the same participant.
const PARTICIPANT_WRITE_ATTEMPTS: u32 = 64;

#[derive(Clone)]
pub struct MongoStore {
    /// Commands sent to the server so far (each one a round trip).
    sent: Arc<AtomicU64>,
    client: Client,
    /// See [`CLAIM_LEASE`] and [`ABANDON_CLAIM_AFTER`]; shorter in tests.
    claim_lease: Duration,
    abandon_claim_after: chrono::TimeDelta,
    /// Test hook: the next meetup-document writer on the claim path stops after its claim.
    pause_after_meetup_claim: Arc<std::sync::Mutex<Option<PausePoint>>>,
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

/// Where the newest revision claim of a meetup was last seen (a hint: it may lag, never lead).
fn revision_hint_key(meetup_id: &str) -> String {
    format!("{meetup_id}:h")
}

fn version_key(meetup_id: &str, version: i64) -> String {
    format!("{meetup_id}:d:{version:012}")
}

/// Every key of one meetup (';' sorts right after ':').
fn meetup_keys(meetup_id: &str) -> Document {
    doc! {"$gte": format!("{meetup_id}:"), "$lt": format!("{meetup_id};")}
}

/// Asks the server what it isolates. A failed question fails the preparation (retried by the
/// next operation) rather than guessing: two replicas on different write paths would hand out
/// revisions two different ways.
async fn detect_isolation(db: &Database) -> StoreResult<Isolation> {
    let build_info = db
        .run_command(doc! {"buildInfo": 1})
        .await
        .map_err(backend)?;
    let hello = db.run_command(doc! {"hello": 1}).await.map_err(backend)?;
    Ok(isolation_of(&build_info, &hello))
}

/// Matches a meetup document at `docVersion` (absent on documents written before it: 0).
fn doc_version_filter(version: i64) -> Document {
    if version == 0 {
        doc! {"$or": [{"docVersion": {"$exists": false}}, {"docVersion": 0_i64}]}
    } else {
        doc! {"docVersion": version}
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

    /// Shorter claim timings than the defaults, for tests that stall a writer past them.
    /// `abandon_after` must exceed `lease` (with room for clock differences between replicas).
    pub fn with_claim_timing(
        mut self,
        lease: Duration,
        abandon_after: Duration,
    ) -> StoreResult<Self> {
        if abandon_after <= lease {
            return Err(StoreError::Backend(
                "a claim must outlive its owner's lease before others may free it".into(),
            ));
        }
        self.claim_lease = lease;
        self.abandon_claim_after = chrono::TimeDelta::from_std(abandon_after).map_err(backend)?;
        Ok(self)
    }

    /// Test hook (fault injection): the next writer of a meetup document on the claim path
    /// stops right after taking its claim until `release` is notified.
    pub fn pause_next_meetup_write_after_claim(&self) -> PausePoint {
        let point = PausePoint::default();
        *self
            .pause_after_meetup_claim
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(point.clone());
        point
    }

    async fn pause_point_after_meetup_claim(&self) {
        let point = self
            .pause_after_meetup_claim
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(point) = point {
            point.reached.notify_one();
            point.release.notified().await;
        }
    }

    /// Earlier versions kept revisions as claim documents on MongoDB too. Before the first
    /// `$inc`, each meetup's `revision` field is raised to its newest claim (an atomic `$max`)
    /// and the claims are dropped, so no revision number goes back or is handed out twice.
    /// Idempotent; replicas of an older version must be gone first (a rollout, not a mix).
    async fn adopt_revision_claims(&self) -> StoreResult<()> {
        let mut cursor = self
            .claims
            .find(doc! {"_id": {"$regex": ":r:"}})
            .projection(doc! {"meetupId": 1, "n": 1})
            .await
            .map_err(backend)?;
        let raw = self.db.collection::<Document>("meetups");
        while let Some(claim) = cursor.try_next().await.map_err(backend)? {
            let (Ok(meetup_id), Ok(n)) = (claim.get_str("meetupId"), claim.get_i64("n")) else {
                continue;
            };
            raw.update_one(doc! {"_id": meetup_id}, doc! {"$max": {"revision": n}})
                .await
                .map_err(backend)?;
            self.claims
                .delete_one(doc! {"_id": claim.get("_id").cloned().unwrap_or(Bson::Null)})
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    /// Commands (round trips) this store has sent so far.
    pub fn commands_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// What this server does atomically (decides the write path); the weaker assumption until
    /// the server has answered.
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
                let isolation = detect_isolation(&self.db).await?;
                self.create_indexes().await?;
                if isolation != Isolation::ReadModifyWrite {
                    self.adopt_revision_claims().await?;
                }
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
    /// the condition that it is still at `v`. Losers re-read after the winner wrote. A stalled
    /// writer cannot revert a later one: it writes only within its lease ([`CLAIM_LEASE`]),
    /// others take a claim over only when it is older than [`ABANDON_CLAIM_AFTER`], and the
    /// write is conditional on `v` besides.
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
            let claimed_at = Instant::now();
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
            let release_own = doc! {"_id": &key, "owner": owner};
            if claimed_at.elapsed() >= self.claim_lease {
                // Stalled past the lease: the claim may be someone else's by now. Start over.
                self.claims.delete_one(release_own).await.map_err(backend)?;
                continue;
            }
            changes.apply_to(&mut record);
            let mut next = to_document(&record).map_err(backend)?;
            next.insert("writeVersion", version + 1);
            let mut filter = doc! {"_id": participant_id, "meetupId": meetup_id};
            filter.extend(write_version_filter(version));
            let written = raw.replace_one(filter, next).await;
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

    /// Deletes a participant claim older than [`ABANDON_CLAIM_AFTER`] so a new writer can take
    /// it (its owner's lease ran out long before).
    async fn take_over_stale_claim(&self, key: &str) -> StoreResult<bool> {
        let cutoff = to_bson(&(Utc::now() - self.abandon_claim_after)).map_err(backend)?;
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
            client,
            claim_lease: CLAIM_LEASE,
            abandon_claim_after: chrono::TimeDelta::from_std(ABANDON_CLAIM_AFTER)
                .map_err(backend)?,
            pause_after_meetup_claim: Arc::default(),
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
        let isolation = self.prepared().await?;
        let mut session = self.begin(isolation).await?;
        let deleted = in_session!(
            collection.delete_one(doc! {"_id": id, "meetupId": meetup_id}),
            session
        )
        .map_err(backend)?;
        if deleted.deleted_count == 0 {
            return Ok(None);
        }
        self.bump_and_commit(meetup_id, isolation, session)
            .await
            .map(Some)
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

    /// The newest revision claim. FerretDB v1 pushes neither range filters nor sorts down to its
    /// backend (its `explain` says so), so a "newest claim" query reads every claim there is;
    /// lookups by `_id` are cheap. So: start at the hint and probe upwards by `_id`. Claims are
    /// contiguous (each number is taken right after one that exists, and none is deleted while
    /// the meetup lives), so the first missing number ends the newest run.
    async fn latest_revision(&self, meetup_id: &str) -> StoreResult<Option<Revision>> {
        let hint = self
            .claims
            .find_one(doc! {"_id": revision_hint_key(meetup_id)})
            .await
            .map_err(backend)?
            .and_then(|hint| hint.get_i64("n").ok());
        let Some(mut latest) = hint else {
            // A meetup from before hints existed.
            return self.latest_revision_by_scan(meetup_id).await;
        };
        while self
            .claims
            .find_one(doc! {"_id": revision_key(meetup_id, latest + 1)})
            .projection(doc! {"_id": 1})
            .await
            .map_err(backend)?
            .is_some()
        {
            latest += 1;
        }
        Ok(Some(latest))
    }

    /// Moves the hint up to `n` (a claimed number). Not isolated on FerretDB: a concurrent
    /// update may set it lower again, which only makes the next probe walk a step further.
    async fn raise_revision_hint(&self, meetup_id: &str, n: Revision) {
        let raised = self
            .claims
            .update_one(
                doc! {"_id": revision_hint_key(meetup_id)},
                doc! {"$max": {"n": n}, "$set": {"meetupId": meetup_id}},
            )
            .upsert(true)
            .await;
        if let Err(error) = raised {
            tracing::warn!(%error, meetup = meetup_id, "could not move the revision hint; lookups probe further");
        }
    }

    async fn latest_revision_by_scan(&self, meetup_id: &str) -> StoreResult<Option<Revision>> {
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
        for attempt in 1..=1_000 {
            if self.claim(revision_key(meetup_id, n), meetup_id, n).await? {
                self.raise_revision_hint(meetup_id, n).await;
                return Ok(n);
            }
            n += 1;
            // Usually the next number is free; a writer that stalled while many others wrote
            // looks up the newest claim again instead of walking up one number at a time.
            if attempt % 4 == 0 {
                n = n.max(self.latest_revision(meetup_id).await?.unwrap_or(0) + 1);
            }
        }
        Err(StoreError::Backend(
            "could not claim a revision number".into(),
        ))
    }

    async fn meetup_exists(&self, meetup_id: &str) -> StoreResult<bool> {
        let count = self
            .meetups
            .count_documents(doc! {"_id": meetup_id, "deleted": {"$ne": true}})
            .await
            .map_err(backend)?;
        Ok(count > 0)
    }

    /// Frees a document-version claim whose owner vanished before writing: only when the
    /// claim is older than [`ABANDON_CLAIM_AFTER`] (its owner's lease ran out long before, so
    /// it no longer writes) and the document shows no progress (still at `basis`). Returns
    /// whether the caller may try to claim again.
    async fn release_abandoned_claim(&self, meetup_id: &str, basis: i64) -> StoreResult<bool> {
        let stored = self.meetup_document(meetup_id).await?;
        let Some(stored) = stored else {
            return Err(StoreError::MeetupNotFound);
        };
        if stored.doc_version != basis {
            return Ok(false);
        }
        let cutoff = to_bson(&(Utc::now() - self.abandon_claim_after)).map_err(backend)?;
        let released = self
            .claims
            .delete_one(doc! {"_id": version_key(meetup_id, basis + 1), "at": {"$lt": cutoff}})
            .await
            .map_err(backend)?;
        Ok(released.deleted_count > 0)
    }

    /// The meetup document as stored (its `revision` field is current only off the claim path).
    async fn meetup_document(&self, id: &str) -> StoreResult<Option<MeetupRecord>> {
        self.meetups
            .find_one(doc! {"_id": id, "deleted": {"$ne": true}})
            .await
            .map_err(backend)
    }

    /// The meetup's current revision as the write path keeps it: the newest revision claim on
    /// FerretDB, the document's `revision` field on MongoDB. `None`: no claim / no meetup.
    async fn current_revision(
        &self,
        id: &str,
        isolation: Isolation,
    ) -> StoreResult<Option<Revision>> {
        if isolation == Isolation::ReadModifyWrite {
            return self.latest_revision(id).await;
        }
        let found = self
            .db
            .collection::<Document>("meetups")
            .find_one(doc! {"_id": id, "deleted": {"$ne": true}})
            .projection(doc! {"revision": 1})
            .await
            .map_err(backend)?;
        Ok(found.and_then(|meetup| meetup.get_i64("revision").ok()))
    }

    /// A session with a transaction started, where the server has transactions: the data
    /// write and its revision bump then commit together.
    async fn begin(&self, isolation: Isolation) -> StoreResult<Option<ClientSession>> {
        if isolation != Isolation::Transactions {
            return Ok(None);
        }
        let mut session = self.client.start_session().await.map_err(backend)?;
        session.start_transaction().await.map_err(backend)?;
        Ok(Some(session))
    }

    /// Commits what [`Self::begin`] started (nothing to do without a transaction). A session
    /// dropped without this aborts its transaction.
    async fn commit(session: Option<ClientSession>) -> StoreResult<()> {
        if let Some(mut session) = session {
            session.commit_transaction().await.map_err(backend)?;
        }
        Ok(())
    }

    /// `$inc` of the revision in the meetup document (atomic on MongoDB), inside the session's
    /// transaction if there is one. The bumped revision, or `MeetupNotFound`.
    async fn inc_revision(
        &self,
        meetup_id: &str,
        session: &mut Option<ClientSession>,
    ) -> StoreResult<Revision> {
        let raw = self.db.collection::<Document>("meetups");
        let updated = in_session!(
            raw.find_one_and_update(
                doc! {"_id": meetup_id, "deleted": {"$ne": true}},
                doc! {"$inc": {"revision": 1_i64}},
            )
            .projection(doc! {"revision": 1})
            .return_document(ReturnDocument::After),
            session
        )
        .map_err(backend)?;
        updated
            .ok_or(StoreError::MeetupNotFound)?
            .get_i64("revision")
            .map_err(backend)
    }

    /// Bumps the revision after a data write: a claim on FerretDB, `$inc` on MongoDB (in the
    /// write's transaction, which this commits).
    async fn bump_and_commit(
        &self,
        meetup_id: &str,
        isolation: Isolation,
        mut session: Option<ClientSession>,
    ) -> StoreResult<Revision> {
        if isolation == Isolation::ReadModifyWrite {
            return self.next_revision(meetup_id).await;
        }
        let revision = self.inc_revision(meetup_id, &mut session).await?;
        Self::commit(session).await?;
        Ok(revision)
    }

    /// The meetup document's own fields as a `$set` for `replace_meetup` (never the counters,
    /// the revision or the admin token), moved to `docVersion` `basis + 1`.
    fn meetup_fields(meetup: &MeetupRecord, basis: i64) -> StoreResult<Document> {
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
        Ok(fields)
    }

    /// `replace_meetup` on MongoDB: one `findOneAndUpdate` on the version read, bumping the
    /// revision in the same atomic document update.
    async fn replace_meetup_atomic(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>> {
        let basis = meetup.doc_version;
        let mut filter = doc! {"_id": &meetup.id, "deleted": {"$ne": true}};
        filter.extend(doc_version_filter(basis));
        let updated = self
            .db
            .collection::<Document>("meetups")
            .find_one_and_update(
                filter,
                doc! {"$set": Self::meetup_fields(meetup, basis)?, "$inc": {"revision": 1_i64}},
            )
            .projection(doc! {"revision": 1})
            .return_document(ReturnDocument::After)
            .await
            .map_err(backend)?;
        match updated {
            Some(written) => written.get_i64("revision").map(Some).map_err(backend),
            None if self.meetup_exists(&meetup.id).await? => Ok(None),
            None => Err(StoreError::MeetupNotFound),
        }
    }

    /// `replace_meetup` on FerretDB: claim `basis + 1` (with a lease), write only while the
    /// lease runs and only if the document is still at `basis`, then claim the revision.
    async fn replace_meetup_claimed(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>> {
        let basis = meetup.doc_version;
        let key = version_key(&meetup.id, basis + 1);
        let owner: i64 = rand::random();
        let mut claimed_at = None;
        for _ in 0..2 {
            let started = Instant::now();
            if self.claim_owned(&key, &meetup.id, basis + 1, owner).await? {
                claimed_at = Some(started);
                break;
            }
            if !self.release_abandoned_claim(&meetup.id, basis).await? {
                return Ok(None);
            }
        }
        let Some(claimed_at) = claimed_at else {
            return Ok(None);
        };
        self.pause_point_after_meetup_claim().await;
        if claimed_at.elapsed() >= self.claim_lease {
            // Stalled past the lease: someone may have freed the claim and written since, and
            // writing now could revert them. Give the claim back if it is still ours; the
            // caller re-reads and tries again.
            self.claims
                .delete_one(doc! {"_id": &key, "owner": owner})
                .await
                .map_err(backend)?;
            return Ok(None);
        }
        let mut filter = doc! {"_id": &meetup.id, "deleted": {"$ne": true}};
        filter.extend(doc_version_filter(basis));
        let written = self
            .meetups
            .update_one(filter, doc! {"$set": Self::meetup_fields(meetup, basis)?})
            .await
            .map_err(backend)?;
        if written.matched_count == 0 {
            // Deleted, or moved on without us (our claim was taken over): nothing written.
            return if self.meetup_exists(&meetup.id).await? {
                Ok(None)
            } else {
                Err(StoreError::MeetupNotFound)
            };
        }
        self.next_revision(&meetup.id).await.map(Some)
    }

    async fn count(&self, collection: &str, meetup_id: &str) -> StoreResult<u64> {
        self.db
            .collection::<Document>(collection)
            .count_documents(doc! {"meetupId": meetup_id})
            .await
            .map_err(backend)
    }
}

/// The participant holding this token in this meetup (a token works only inside its own meetup).
fn token_filter(meetup_id: &str, token_hash: &str) -> Document {
    doc! {"tokenHash": token_hash, "meetupId": meetup_id}
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
        let isolation = self.prepared().await?;
        // Organizer first: a meetup never exists without the person who owns it.
        self.participants
            .insert_one(organizer)
            .await
            .map_err(name_conflict)?;
        self.meetups.insert_one(meetup).await.map_err(backend)?;
        if isolation == Isolation::ReadModifyWrite {
            self.claim(
                revision_key(&meetup.id, meetup.revision),
                &meetup.id,
                meetup.revision,
            )
            .await?;
            self.raise_revision_hint(&meetup.id, meetup.revision).await;
        }
        Ok(())
    }

    async fn meetup(&self, id: &str) -> StoreResult<Option<MeetupRecord>> {
        let isolation = self.prepared().await?;
        let Some(mut meetup) = self.meetup_document(id).await? else {
            return Ok(None);
        };
        if isolation == Isolation::ReadModifyWrite
            && let Some(revision) = self.latest_revision(id).await?
        {
            meetup.revision = meetup.revision.max(revision);
        }
        Ok(Some(meetup))
    }

    /// Revision, then everything, then the revision again: equal means no write completed in
    /// between, so the data is exactly that revision's (writers bump the revision after their
    /// data write, or in the same transaction). If writes keep landing, the data is returned
    /// under the revision read first: never older than it, and the next read sees a newer
    /// revision and rebuilds. Every read goes to the primary, so reads are monotonic whichever
    /// replica asks.
    async fn meetup_state(&self, id: &str) -> StoreResult<Option<MeetupState>> {
        let isolation = self.prepared().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = self.current_revision(id, isolation).await?;
            let (meetup, participants, comments) = futures::try_join!(
                self.meetup_document(id),
                self.participants(id),
                self.comments(id)
            )?;
            let Some(mut meetup) = meetup else {
                return Ok(None);
            };
            let after = self.current_revision(id, isolation).await?;
            if before == after || attempt >= CONSISTENT_READ_ATTEMPTS {
                meetup.revision = match before {
                    Some(revision) if isolation == Isolation::ReadModifyWrite => {
                        meetup.revision.max(revision)
                    }
                    Some(revision) => revision,
                    None => meetup.revision,
                };
                return Ok(Some(MeetupState {
                    meetup,
                    participants,
                    comments,
                }));
            }
        }
    }

    async fn replace_meetup(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>> {
        match self.prepared().await? {
            Isolation::ReadModifyWrite => self.replace_meetup_claimed(meetup).await,
            Isolation::AtomicDocument | Isolation::Transactions => {
                self.replace_meetup_atomic(meetup).await
            }
        }
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
            .find_one(token_filter(meetup_id, token_hash))
            .await
            .map_err(backend)
    }

    async fn participant_id_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<String>> {
        self.prepared().await?;
        let found = self
            .participants
            .clone_with_type::<Document>()
            .find_one(token_filter(meetup_id, token_hash))
            .projection(doc! {"_id": 1})
            .await
            .map_err(backend)?;
        Ok(found.and_then(|d| d.get_str("_id").ok().map(str::to_owned)))
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
        let isolation = self.prepared().await?;
        if !self.meetup_exists(&participant.meetup_id).await? {
            return Err(StoreError::MeetupNotFound);
        }
        if self.count("participants", &participant.meetup_id).await? >= max as u64 {
            return Err(StoreError::Full("participants"));
        }
        let mut session = self.begin(isolation).await?;
        in_session!(self.participants.insert_one(participant), session).map_err(name_conflict)?;
        self.bump_and_commit(&participant.meetup_id, isolation, session)
            .await
    }

    async fn update_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
        changes: ParticipantChanges,
    ) -> StoreResult<Option<(Revision, ParticipantRecord)>> {
        let changes = &changes;
        let isolation = self.prepared().await?;
        if isolation == Isolation::ReadModifyWrite {
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
        let mut session = self.begin(isolation).await?;
        let updated = if set.is_empty() {
            in_session!(self.participants.find_one(filter), session).map_err(backend)?
        } else {
            in_session!(
                self.participants
                    .find_one_and_update(filter, doc! {"$set": set})
                    .return_document(ReturnDocument::After),
                session
            )
            .map_err(name_conflict)?
        };
        let Some(updated) = updated else {
            return Ok(None);
        };
        let revision = self.bump_and_commit(meetup_id, isolation, session).await?;
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
        let isolation = self.prepared().await?;
        if !self.meetup_exists(&comment.meetup_id).await? {
            return Err(StoreError::MeetupNotFound);
        }
        if self.count("comments", &comment.meetup_id).await? >= max as u64 {
            return Err(StoreError::Full("comments"));
        }
        let mut session = self.begin(isolation).await?;
        in_session!(self.comments.insert_one(comment), session).map_err(backend)?;
        self.bump_and_commit(&comment.meetup_id, isolation, session)
            .await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ferretdb() -> Document {
        doc! {"version": "7.0.77", "ferretdbVersion": "v1.24.2", "ok": 1.0}
    }

    fn mongodb() -> Document {
        doc! {"version": "7.0.14", "ok": 1.0}
    }

    #[test]
    fn ferretdb_takes_the_claim_path_even_if_it_says_replica_set() {
        let hello =
            doc! {"isWritablePrimary": true, "setName": "rs0", "logicalSessionTimeoutMinutes": 30};
        assert_eq!(
            isolation_of(&ferretdb(), &hello),
            Isolation::ReadModifyWrite
        );
        assert_eq!(
            isolation_of(&ferretdb(), &doc! {"isWritablePrimary": true}),
            Isolation::ReadModifyWrite
        );
    }

    #[test]
    fn a_mongodb_replica_set_with_sessions_gets_transactions() {
        let hello = doc! {"isWritablePrimary": true, "setName": "rs0", "logicalSessionTimeoutMinutes": 30_i32};
        assert_eq!(isolation_of(&mongodb(), &hello), Isolation::Transactions);
    }

    #[test]
    fn a_standalone_mongodb_gets_atomic_documents_without_transactions() {
        let standalone = doc! {"isWritablePrimary": true, "logicalSessionTimeoutMinutes": 30};
        assert_eq!(
            isolation_of(&mongodb(), &standalone),
            Isolation::AtomicDocument
        );
        // A replica set member without sessions (or with an empty name) cannot run them.
        let no_sessions = doc! {"isWritablePrimary": true, "setName": "rs0"};
        assert_eq!(
            isolation_of(&mongodb(), &no_sessions),
            Isolation::AtomicDocument
        );
        let null_sessions = doc! {"setName": "rs0", "logicalSessionTimeoutMinutes": Bson::Null};
        assert_eq!(
            isolation_of(&mongodb(), &null_sessions),
            Isolation::AtomicDocument
        );
        let empty_name = doc! {"setName": "", "logicalSessionTimeoutMinutes": 30};
        assert_eq!(
            isolation_of(&mongodb(), &empty_name),
            Isolation::AtomicDocument
        );
    }
}
