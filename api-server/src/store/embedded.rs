//! Embedded adaptor on redb: one file in the data directory, ACID write transactions, survives
//! restarts. Records are stored as JSON so schema changes are cheap, the same trade-off as the
//! document store; records of a page (4 KiB) and more are LZ4-compressed (a new meetup's 140
//! slots: 11.8 KB of JSON → about 1.4 KB), plain JSON records of earlier versions still read.
//!
//! Speed without giving up durability:
//! - **Group commit.** Every write goes to one writer thread through a queue. The thread takes
//!   whatever has queued up, runs it all in one redb transaction and commits once (one fsync),
//!   then answers each request. A request is answered only after its transaction is durable, so
//!   kill -9 loses nothing that was acknowledged; under load, many writes share one sync.
//!   Each write checks everything that may refuse it *before* it writes, so a refused write
//!   (name taken, meetup full) leaves nothing behind in the shared transaction; a backend
//!   error fails the whole batch (nothing of it is committed).
//! - **Counters apart from the document.** The revision, seat counters, `updatedAt` and
//!   `docVersion` live in a small fixed-size record per meetup, so a vote bumps the revision
//!   without decoding and re-encoding the meetup document (slots, places).
//! - **Hot meetups decoded in memory.** Recently used meetup documents stay decoded, bounded in
//!   bytes. Only the writer changes them, after its commit and before it answers, under the
//!   same lock a reader holds while it loads a missing one from the file, so the memory copy
//!   never falls behind the file.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::{MeetupState, Revision, Store, StoreError, StoreResult, ViewStamp, suggestion_key};
use crate::domain::{
    CommentRecord, MeetupRecord, ParticipantChanges, ParticipantRecord, PlaceSuggestion,
};

const MEETUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("meetups");
/// Key: meetup id → [`Counters`] as a tuple. Newer than the document's own copy of them.
const COUNTERS: TableDefinition<&str, CountersTuple> = TableDefinition::new("meetup_counters");
/// Key: "<meetupId>/<participantId>".
const PARTICIPANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("participants");
/// Key: "<meetupId>/<nameKey>" → participant id; enforces unique names per meetup.
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("participant_names");
/// Key: token hash → "<meetupId>/<participantId>".
const TOKENS: TableDefinition<&str, &str> = TableDefinition::new("participant_tokens");
/// Key: "<meetupId>/<commentId>".
const COMMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("comments");
/// Key: case-folded place name.
const SUGGESTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("place_suggestions");

pub const FILE_NAME: &str = "meetups.redb";

/// Most writes one transaction carries; the rest wait for the next commit.
const MAX_BATCH: usize = 512;
/// redb's page cache (reads and the write buffer). redb's default is 1 GiB, which a busy server
/// fills with pages it just wrote: memory a small pod does not have, and every fresh page costs
/// a page fault the single writer pays (a fifth of its CPU on creates).
const PAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Byte budget of the decoded hot meetups (approximated by their JSON size).
const HOT_BYTES: u64 = 64 * 1024 * 1024;

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// First byte of a compressed record; a record stored as plain JSON (by earlier versions, or
/// kept below [`COMPRESS_FROM`]) starts with `{`.
const LZ4_JSON: u8 = 1;
/// Records shorter than a page stay plain JSON: the page is copied and written whole anyway,
/// and a vote's participant record (~1.8 KB) is re-encoded by the single writer every time —
/// compressing it was 3 % of the writer's CPU for no page saved.
const COMPRESS_FROM: usize = 4096;
/// Far above any record the domain's limits allow (slots, places, comment length).
const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// JSON, LZ4-compressed when that pays: a meetup's slots are 11.8 KB of very repetitive JSON
/// (1.4 KB compressed), and every byte of a record is copied, checksummed, written and synced
/// by the single writer (a new meetup is encoded on the request's task, before the queue).
/// Compressed: [`LZ4_JSON`], the JSON's length (u32, little-endian), the LZ4 block.
fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    let json = serde_json::to_vec(value).map_err(backend)?;
    if json.len() < COMPRESS_FROM {
        return Ok(json);
    }
    let length = u32::try_from(json.len()).map_err(backend)?;
    let mut out = vec![0; 5 + lz4_flex::block::get_maximum_output_size(json.len())];
    out[0] = LZ4_JSON;
    out[1..5].copy_from_slice(&length.to_le_bytes());
    let written = lz4_flex::block::compress_into(&json, &mut out[5..]).map_err(backend)?;
    out.truncate(5 + written);
    Ok(out)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    match compressed_parts(bytes) {
        Some((length, block)) => {
            // A damaged length must not become a huge allocation.
            if length > MAX_RECORD_BYTES {
                return Err(backend(
                    "a stored record is damaged (its length is implausible)",
                ));
            }
            let json = lz4_flex::block::decompress(block, length).map_err(backend)?;
            serde_json::from_slice(&json).map_err(backend)
        }
        None if bytes.first() == Some(&LZ4_JSON) => {
            Err(backend("a stored record is damaged (too short)"))
        }
        None => serde_json::from_slice(bytes).map_err(backend),
    }
}

/// The JSON's length and the LZ4 block of a record [`encode`] compressed; `None` for JSON.
fn compressed_parts(bytes: &[u8]) -> Option<(usize, &[u8])> {
    match bytes {
        [LZ4_JSON, a, b, c, d, block @ ..] => {
            Some((u32::from_le_bytes([*a, *b, *c, *d]) as usize, block))
        }
        _ => None,
    }
}

/// Length of a stored record's JSON, compressed or not: the hot set's measure of a meetup.
fn json_len(bytes: &[u8]) -> usize {
    compressed_parts(bytes).map_or(bytes.len(), |(length, _)| length)
}

fn child_key(meetup_id: &str, child_id: &str) -> String {
    format!("{meetup_id}/{child_id}")
}

/// The key range holding every child of one meetup: "<id>/" up to "<id>0" ('0' follows '/').
fn children(meetup_id: &str) -> (String, String) {
    (format!("{meetup_id}/"), format!("{meetup_id}0"))
}

/// revision, participant count, comment count, updated-at seconds, updated-at nanoseconds,
/// document version.
type CountersTuple = (i64, i64, i64, i64, i64, i64);

/// The parts of a meetup that change on every write, stored apart from its document.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counters {
    revision: i64,
    participants: i64,
    comments: i64,
    updated_at: DateTime<Utc>,
    doc_version: i64,
}

impl Counters {
    fn of(meetup: &MeetupRecord) -> Self {
        Self {
            revision: meetup.revision,
            participants: meetup.participant_count,
            comments: meetup.comment_count,
            updated_at: meetup.updated_at,
            doc_version: meetup.doc_version,
        }
    }

    fn apply(&self, meetup: &mut MeetupRecord) {
        meetup.revision = self.revision;
        meetup.participant_count = self.participants;
        meetup.comment_count = self.comments;
        meetup.updated_at = self.updated_at;
        meetup.doc_version = self.doc_version;
    }

    fn to_tuple(self) -> CountersTuple {
        (
            self.revision,
            self.participants,
            self.comments,
            self.updated_at.timestamp(),
            i64::from(self.updated_at.timestamp_subsec_nanos()),
            self.doc_version,
        )
    }

    fn from_tuple(t: CountersTuple) -> Self {
        let nanos = u32::try_from(t.4).unwrap_or(0);
        Self {
            revision: t.0,
            participants: t.1,
            comments: t.2,
            updated_at: DateTime::from_timestamp(t.3, nanos).unwrap_or_default(),
            doc_version: t.5,
        }
    }
}

/// A decoded meetup document with its current counters.
#[derive(Debug, Clone)]
struct HotMeetup {
    doc: Arc<MeetupRecord>,
    counters: Counters,
    /// Approximate memory (the document's JSON size).
    weight: u32,
}

impl HotMeetup {
    fn new(doc: MeetupRecord, counters: Counters, weight: usize) -> Self {
        Self {
            doc: Arc::new(doc),
            counters,
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        }
    }

    fn record(&self) -> MeetupRecord {
        let mut record = MeetupRecord::clone(&self.doc);
        self.counters.apply(&mut record);
        record
    }

    fn stamp(&self) -> ViewStamp {
        let mut stamp = ViewStamp::of(&self.doc);
        stamp.revision = self.counters.revision;
        stamp
    }
}

/// What the writer tells the hot set after a commit.
enum HotChange {
    Counters(String, Counters),
    Meetup(String, HotMeetup),
    Gone(String),
}

struct HotMeetups {
    entries: moka::sync::Cache<String, HotMeetup>,
    /// Held by a reader while it loads a missing meetup from the file and by the writer while
    /// it applies a commit's changes: a load that read the file before a commit is overwritten
    /// by that commit's changes, never the other way round.
    coherence: Mutex<()>,
}

impl HotMeetups {
    fn new() -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(HOT_BYTES)
                .weigher(|id: &String, hot: &HotMeetup| {
                    hot.weight
                        .saturating_add(u32::try_from(id.len()).unwrap_or(0))
                })
                .build(),
            coherence: Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.coherence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The meetup from memory, or loaded from the file (and kept). `None` if it does not exist.
    fn get_or_load(&self, db: &Database, id: &str) -> StoreResult<Option<HotMeetup>> {
        if let Some(hot) = self.entries.get(id) {
            return Ok(Some(hot));
        }
        let _guard = self.lock();
        if let Some(hot) = self.entries.get(id) {
            return Ok(Some(hot));
        }
        let txn = db.begin_read().map_err(backend)?;
        let Some(hot) = load_hot(&txn, id)? else {
            return Ok(None);
        };
        self.entries.insert(id.to_string(), hot.clone());
        Ok(Some(hot))
    }

    /// Applies a batch's changes, then runs `commit`. Readers take a meetup's revision from
    /// here, so it must never lag what a fresh read transaction shows — else one reader could
    /// build the new view while another still serves the cached old one as current (seen by the
    /// consistency test under load). So memory moves first, under the lock loaders take, and the
    /// commit follows; a failed commit drops the touched entries, which then reload from the
    /// file. Until the commit, a reader may see the new revision with the old data: it builds
    /// and serves the old view under the old revision, which nobody has been told is gone.
    fn apply_then_commit<E>(
        &self,
        changes: Vec<HotChange>,
        commit: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let _guard = self.lock();
        let mut touched = Vec::with_capacity(changes.len());
        for change in changes {
            match change {
                HotChange::Counters(id, counters) => {
                    // Only meetups in memory are updated; others load fresh when read.
                    if let Some(mut hot) = self.entries.get(&id) {
                        hot.counters = counters;
                        self.entries.insert(id.clone(), hot);
                    }
                    touched.push(id);
                }
                HotChange::Meetup(id, hot) => {
                    self.entries.insert(id.clone(), hot);
                    touched.push(id);
                }
                HotChange::Gone(id) => {
                    self.entries.invalidate(&id);
                    touched.push(id);
                }
            }
        }
        let committed = commit();
        if committed.is_err() {
            for id in touched {
                self.entries.invalidate(&id);
            }
        }
        committed
    }
}

fn load_hot(txn: &ReadTransaction, id: &str) -> StoreResult<Option<HotMeetup>> {
    let meetups = txn.open_table(MEETUPS).map_err(backend)?;
    let Some(bytes) = meetups.get(id).map_err(backend)? else {
        return Ok(None);
    };
    let bytes = bytes.value();
    let doc: MeetupRecord = decode(bytes)?;
    let counters = txn
        .open_table(COUNTERS)
        .map_err(backend)?
        .get(id)
        .map_err(backend)?
        .map(|c| Counters::from_tuple(c.value()))
        .unwrap_or_else(|| Counters::of(&doc));
    Ok(Some(HotMeetup::new(doc, counters, json_len(bytes))))
}

/// One write transaction shared by a batch of requests, and what they changed.
struct Batch<'t> {
    tables: Tables<'t>,
    hot: Vec<HotChange>,
}

type Records<'t> = Table<'t, &'static str, &'static [u8]>;
type Links<'t> = Table<'t, &'static str, &'static str>;

/// The tables of a batch's transaction, each opened on first use and kept open until the
/// commit. Opening a table looks it up in redb's table tree, checks its types and registers it
/// as open; per write that was four to six openings, paid by the single writer every request
/// waits for.
struct Tables<'t> {
    txn: &'t WriteTransaction,
    meetups: Option<Records<'t>>,
    counters: Option<Table<'t, &'static str, CountersTuple>>,
    participants: Option<Records<'t>>,
    names: Option<Links<'t>>,
    tokens: Option<Links<'t>>,
    comments: Option<Records<'t>>,
    suggestions: Option<Records<'t>>,
}

/// The table in `slot`, opened in `txn` the first time.
fn opened<'s, 't, K: redb::Key + 'static, V: redb::Value + 'static>(
    slot: &'s mut Option<Table<'t, K, V>>,
    txn: &'t WriteTransaction,
    definition: TableDefinition<K, V>,
) -> StoreResult<&'s mut Table<'t, K, V>> {
    let table = match slot.take() {
        Some(table) => table,
        None => txn.open_table(definition).map_err(backend)?,
    };
    Ok(slot.insert(table))
}

impl<'t> Tables<'t> {
    fn new(txn: &'t WriteTransaction) -> Self {
        Self {
            txn,
            meetups: None,
            counters: None,
            participants: None,
            names: None,
            tokens: None,
            comments: None,
            suggestions: None,
        }
    }

    fn meetups(&mut self) -> StoreResult<&mut Records<'t>> {
        opened(&mut self.meetups, self.txn, MEETUPS)
    }

    fn counters(&mut self) -> StoreResult<&mut Table<'t, &'static str, CountersTuple>> {
        opened(&mut self.counters, self.txn, COUNTERS)
    }

    fn participants(&mut self) -> StoreResult<&mut Records<'t>> {
        opened(&mut self.participants, self.txn, PARTICIPANTS)
    }

    fn names(&mut self) -> StoreResult<&mut Links<'t>> {
        opened(&mut self.names, self.txn, NAMES)
    }

    fn tokens(&mut self) -> StoreResult<&mut Links<'t>> {
        opened(&mut self.tokens, self.txn, TOKENS)
    }

    fn comments(&mut self) -> StoreResult<&mut Records<'t>> {
        opened(&mut self.comments, self.txn, COMMENTS)
    }

    fn suggestions(&mut self) -> StoreResult<&mut Records<'t>> {
        opened(&mut self.suggestions, self.txn, SUGGESTIONS)
    }
}

/// A queued write: runs inside the shared transaction, then learns whether it committed.
trait Job: Send {
    fn run(self: Box<Self>, batch: &mut Batch<'_>) -> (bool, Box<dyn Finish>);
    fn fail(self: Box<Self>, why: String);
}

trait Finish: Send {
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct TypedJob<T, F> {
    work: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

struct Done<T> {
    result: StoreResult<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Batch<'_>) -> StoreResult<T> + Send + 'static,
{
    fn run(self: Box<Self>, batch: &mut Batch<'_>) -> (bool, Box<dyn Finish>) {
        let TypedJob { work, reply } = *self;
        let result = work(batch);
        // A refusal (name taken, full, not found) wrote nothing; a backend error may have
        // written half, so the batch must not commit.
        let poisons = matches!(result, Err(StoreError::Backend(_)));
        (poisons, Box::new(Done { result, reply }))
    }

    fn fail(self: Box<Self>, why: String) {
        let _ = self.reply.send(Err(StoreError::Backend(why)));
    }
}

impl<T: Send + 'static> Finish for Done<T> {
    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let result = match (committed, self.result) {
            (Ok(()), result) => result,
            (Err(_), Err(own)) => Err(own),
            (Err(why), Ok(_)) => Err(StoreError::Backend(why)),
        };
        // The requester may have gone away (client disconnected); the write stands.
        let _ = self.reply.send(result);
    }
}

/// The single writer: drains the queue into one transaction per round, updates the hot set,
/// commits durably, then answers.
fn writer_loop(db: Arc<Database>, hot: Arc<HotMeetups>, queue: Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("store_write_batch_size").record(jobs.len() as f64);
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(error) => {
                tracing::error!(%error, "could not start a write transaction");
                for job in jobs {
                    job.fail(error.to_string());
                }
                continue;
            }
        };
        // The batch's tables close at the end of this block, handing their new roots to the
        // transaction before it commits.
        let (finishes, poisoned, changes) = {
            let mut batch = Batch {
                tables: Tables::new(&txn),
                hot: Vec::new(),
            };
            let mut finishes = Vec::with_capacity(jobs.len());
            let mut poisoned = false;
            for job in jobs {
                let (poisons, finish) = job.run(&mut batch);
                poisoned |= poisons;
                finishes.push(finish);
            }
            (finishes, poisoned, batch.hot)
        };
        let committed = if poisoned {
            if let Err(error) = txn.abort() {
                tracing::error!(%error, "could not abort a failed write batch");
            }
            Err("another write in the same transaction failed; nothing was stored".to_string())
        } else {
            let started = std::time::Instant::now();
            let committed = hot.apply_then_commit(changes, || txn.commit());
            metrics::histogram!("store_commit_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            committed.map_err(|error| {
                tracing::error!(%error, "commit failed");
                error.to_string()
            })
        };
        for finish in finishes {
            finish.finish(committed.clone());
        }
    }
}

struct Inner {
    db: Arc<Database>,
    hot: Arc<HotMeetups>,
    queue: Option<Sender<Box<dyn Job>>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer after the writes already queued; waiting for it
        // releases the file, so the same process may open it again.
        self.queue.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the store's writer thread panicked");
        }
    }
}

#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl EmbeddedStore {
    /// Opens (or creates) the database file inside `data_dir` and starts its writer thread.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(backend)?;
        let db = redb::Builder::new()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create(data_dir.join(FILE_NAME))
            .map_err(backend)?;
        // Create every table up front so read transactions never meet a missing table.
        let txn = db.begin_write().map_err(backend)?;
        {
            txn.open_table(MEETUPS).map_err(backend)?;
            txn.open_table(COUNTERS).map_err(backend)?;
            txn.open_table(PARTICIPANTS).map_err(backend)?;
            txn.open_table(NAMES).map_err(backend)?;
            txn.open_table(TOKENS).map_err(backend)?;
            txn.open_table(COMMENTS).map_err(backend)?;
            txn.open_table(SUGGESTIONS).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        let db = Arc::new(db);
        let hot = Arc::new(HotMeetups::new());
        let (queue, jobs) = std::sync::mpsc::channel::<Box<dyn Job>>();
        let writer = {
            let (db, hot) = (Arc::clone(&db), Arc::clone(&hot));
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer_loop(db, hot, jobs))
                .map_err(backend)?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                hot,
                queue: Some(queue),
                writer: Some(writer),
            }),
        })
    }

    fn db(&self) -> &Database {
        &self.inner.db
    }

    async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.inner.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(backend)?
    }

    /// Queues `work` for the writer; resolves once its batch is durable (or failed).
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let queue = self
            .inner
            .queue
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
        queue
            .send(Box::new(TypedJob { work, reply }))
            .map_err(|_| StoreError::Backend("the store's writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the store's writer has stopped".into()))?
    }

    fn hot(&self, id: &str) -> StoreResult<Option<HotMeetup>> {
        self.inner.hot.get_or_load(self.db(), id)
    }

    /// One record by key. Runs on the calling task: a point lookup in redb's page cache costs
    /// about as much as hashing the token did, less than handing it to a blocking thread.
    fn read_one<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
    ) -> StoreResult<Option<T>> {
        let txn = self.db().begin_read().map_err(backend)?;
        let table = txn.open_table(table).map_err(backend)?;
        let value = table.get(key).map_err(backend)?;
        value.map(|v| decode(v.value())).transpose()
    }

    async fn read_children<T: DeserializeOwned + Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        meetup_id: &str,
    ) -> StoreResult<Vec<T>> {
        let meetup_id = meetup_id.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            children_in(&txn, table, &meetup_id)
        })
        .await
    }
}

fn children_in<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    meetup_id: &str,
) -> StoreResult<Vec<T>> {
    let (from, to) = children(meetup_id);
    let table = txn.open_table(table).map_err(backend)?;
    let mut out = Vec::new();
    for entry in table.range(from.as_str()..to.as_str()).map_err(backend)? {
        let (_, value) = entry.map_err(backend)?;
        out.push(decode(value.value())?);
    }
    Ok(out)
}

/// The meetup's counters inside a write transaction (from the document for files written
/// before counters were kept apart). `None` when the meetup does not exist.
fn counters(tables: &mut Tables<'_>, meetup_id: &str) -> StoreResult<Option<Counters>> {
    let stored = tables
        .counters()?
        .get(meetup_id)
        .map_err(backend)?
        .map(|c| Counters::from_tuple(c.value()));
    if stored.is_some() {
        return Ok(stored);
    }
    let doc: Option<MeetupRecord> = tables
        .meetups()?
        .get(meetup_id)
        .map_err(backend)?
        .map(|v| decode(v.value()))
        .transpose()?;
    Ok(doc.map(|doc| Counters::of(&doc)))
}

fn put_counters(batch: &mut Batch<'_>, meetup_id: &str, counters: Counters) -> StoreResult<()> {
    batch
        .tables
        .counters()?
        .insert(meetup_id, counters.to_tuple())
        .map_err(backend)?;
    batch
        .hot
        .push(HotChange::Counters(meetup_id.to_string(), counters));
    Ok(())
}

/// The meetup's counters after a write to it: next revision, `updatedAt` now.
fn bumped(mut counters: Counters) -> Counters {
    counters.revision += 1;
    counters.updated_at = Utc::now();
    counters
}

fn put_participant(tables: &mut Tables<'_>, p: &ParticipantRecord) -> StoreResult<()> {
    put_participant_bytes(tables, p, &encode(p)?)
}

/// Stores `p` as `bytes`, its encoding made beforehand.
fn put_participant_bytes(
    tables: &mut Tables<'_>,
    p: &ParticipantRecord,
    bytes: &[u8],
) -> StoreResult<()> {
    tables
        .participants()?
        .insert(child_key(&p.meetup_id, &p.id).as_str(), bytes)
        .map_err(backend)?;
    Ok(())
}

/// Refuses a name another participant of the meetup holds (checks only; writes nothing).
fn check_name_free(tables: &mut Tables<'_>, p: &ParticipantRecord) -> StoreResult<()> {
    let key = child_key(&p.meetup_id, &p.name_key);
    match tables.names()?.get(key.as_str()).map_err(backend)? {
        Some(owner) if owner.value() != p.id => Err(StoreError::NameTaken),
        _ => Ok(()),
    }
}

fn put_name(tables: &mut Tables<'_>, p: &ParticipantRecord) -> StoreResult<()> {
    tables
        .names()?
        .insert(child_key(&p.meetup_id, &p.name_key).as_str(), p.id.as_str())
        .map_err(backend)?;
    Ok(())
}

fn put_token(tables: &mut Tables<'_>, p: &ParticipantRecord) -> StoreResult<()> {
    tables
        .tokens()?
        .insert(
            p.token_hash.as_str(),
            child_key(&p.meetup_id, &p.id).as_str(),
        )
        .map_err(backend)?;
    Ok(())
}

fn drop_participant(tables: &mut Tables<'_>, p: &ParticipantRecord) -> StoreResult<()> {
    tables
        .participants()?
        .remove(child_key(&p.meetup_id, &p.id).as_str())
        .map_err(backend)?;
    tables
        .names()?
        .remove(child_key(&p.meetup_id, &p.name_key).as_str())
        .map_err(backend)?;
    tables
        .tokens()?
        .remove(p.token_hash.as_str())
        .map_err(backend)?;
    Ok(())
}

/// The id of the participant holding this token in this meetup. The token entry is written and
/// removed in the same transaction as its participant, so the id names a stored participant.
fn token_owner(
    txn: &ReadTransaction,
    meetup_id: &str,
    token_hash: &str,
) -> StoreResult<Option<String>> {
    let tokens = txn.open_table(TOKENS).map_err(backend)?;
    let Some(key) = tokens.get(token_hash).map_err(backend)? else {
        return Ok(None);
    };
    Ok(key
        .value()
        .strip_prefix(meetup_id)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(str::to_owned))
}

fn load_participant(
    tables: &mut Tables<'_>,
    meetup_id: &str,
    participant_id: &str,
) -> StoreResult<Option<ParticipantRecord>> {
    let table = tables.participants()?;
    let value = table
        .get(child_key(meetup_id, participant_id).as_str())
        .map_err(backend)?;
    value.map(|v| decode(v.value())).transpose()
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run(|db| {
            let txn = db.begin_read().map_err(backend)?;
            txn.open_table(MEETUPS).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn create_meetup(
        &self,
        meetup: &MeetupRecord,
        organizer: &ParticipantRecord,
    ) -> StoreResult<()> {
        // Encoded here, on the request's task: the writer thread serves every request in turn,
        // so it only copies bytes into the transaction.
        let meetup_bytes = encode(meetup)?;
        let organizer_bytes = encode(organizer)?;
        let (id, counters) = (meetup.id.clone(), Counters::of(meetup));
        let organizer = organizer.clone();
        self.write(move |batch| {
            let tables = &mut batch.tables;
            check_name_free(tables, &organizer)?;
            tables
                .meetups()?
                .insert(id.as_str(), meetup_bytes.as_slice())
                .map_err(backend)?;
            tables
                .counters()?
                .insert(id.as_str(), counters.to_tuple())
                .map_err(backend)?;
            put_name(tables, &organizer)?;
            put_participant_bytes(tables, &organizer, &organizer_bytes)?;
            put_token(tables, &organizer)?;
            // Not kept decoded yet: many meetups are created and never opened; the first read
            // loads it.
            Ok(())
        })
        .await
    }

    async fn meetup(&self, id: &str) -> StoreResult<Option<MeetupRecord>> {
        Ok(self.hot(id)?.map(|hot| hot.record()))
    }

    async fn view_stamp(&self, id: &str) -> StoreResult<Option<ViewStamp>> {
        Ok(self.hot(id)?.map(|hot| hot.stamp()))
    }

    async fn meetup_state(&self, id: &str) -> StoreResult<Option<MeetupState>> {
        let hot = self.hot(id)?;
        let id = id.to_string();
        self.run(move |db| {
            // One read transaction: the counters, participants and comments of one instant.
            let txn = db.begin_read().map_err(backend)?;
            let stored = txn
                .open_table(COUNTERS)
                .map_err(backend)?
                .get(id.as_str())
                .map_err(backend)?
                .map(|c| Counters::from_tuple(c.value()));
            let mut meetup = match (hot, stored) {
                // The decoded document is the one this snapshot holds: reuse it.
                (Some(hot), Some(counters)) if hot.doc.doc_version == counters.doc_version => {
                    let mut record = MeetupRecord::clone(&hot.doc);
                    counters.apply(&mut record);
                    record
                }
                _ => match load_hot(&txn, &id)? {
                    Some(hot) => hot.record(),
                    None => return Ok(None),
                },
            };
            if let Some(counters) = stored {
                counters.apply(&mut meetup);
            }
            Ok(Some(MeetupState {
                participants: children_in(&txn, PARTICIPANTS, &id)?,
                comments: children_in(&txn, COMMENTS, &id)?,
                meetup,
            }))
        })
        .await
    }

    async fn replace_meetup(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>> {
        let next = meetup.clone();
        self.write(move |batch| {
            let tables = &mut batch.tables;
            let Some(current) = counters(tables, &next.id)? else {
                return Err(StoreError::MeetupNotFound);
            };
            if current.doc_version != next.doc_version {
                return Ok(None);
            }
            let stored: MeetupRecord = {
                let table = tables.meetups()?;
                let value = table.get(next.id.as_str()).map_err(backend)?;
                match value {
                    Some(v) => decode(v.value())?,
                    None => return Err(StoreError::MeetupNotFound),
                }
            };
            let counters = Counters {
                revision: current.revision + 1,
                doc_version: current.doc_version + 1,
                updated_at: next.updated_at,
                ..current
            };
            let mut written = MeetupRecord {
                admin_token_hash: stored.admin_token_hash,
                ..next
            };
            counters.apply(&mut written);
            let bytes = encode(&written)?;
            tables
                .meetups()?
                .insert(written.id.as_str(), bytes.as_slice())
                .map_err(backend)?;
            tables
                .counters()?
                .insert(written.id.as_str(), counters.to_tuple())
                .map_err(backend)?;
            let id = written.id.clone();
            batch.hot.push(HotChange::Meetup(
                id,
                HotMeetup::new(written, counters, json_len(&bytes)),
            ));
            Ok(Some(counters.revision))
        })
        .await
    }

    async fn delete_meetup(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |batch| {
            let tables = &mut batch.tables;
            let existed = tables
                .meetups()?
                .remove(id.as_str())
                .map_err(backend)?
                .is_some();
            tables.counters()?.remove(id.as_str()).map_err(backend)?;
            let (from, to) = children(&id);
            let mut participants = Vec::new();
            {
                let table = tables.participants()?;
                for entry in table.range(from.as_str()..to.as_str()).map_err(backend)? {
                    let (_, value) = entry.map_err(backend)?;
                    participants.push(decode::<ParticipantRecord>(value.value())?);
                }
            }
            for p in &participants {
                drop_participant(tables, p)?;
            }
            tables
                .comments()?
                .retain_in(from.as_str()..to.as_str(), |_, _| false)
                .map_err(backend)?;
            batch.hot.push(HotChange::Gone(id));
            Ok(existed)
        })
        .await
    }

    async fn participants(&self, meetup_id: &str) -> StoreResult<Vec<ParticipantRecord>> {
        self.read_children(PARTICIPANTS, meetup_id).await
    }

    async fn participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        self.read_one(PARTICIPANTS, &child_key(meetup_id, participant_id))
    }

    async fn participant_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        let txn = self.db().begin_read().map_err(backend)?;
        let Some(participant_id) = token_owner(&txn, meetup_id, token_hash)? else {
            return Ok(None);
        };
        let participants = txn.open_table(PARTICIPANTS).map_err(backend)?;
        let value = participants
            .get(child_key(meetup_id, &participant_id).as_str())
            .map_err(backend)?;
        value.map(|v| decode(v.value())).transpose()
    }

    async fn participant_id_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<String>> {
        let txn = self.db().begin_read().map_err(backend)?;
        token_owner(&txn, meetup_id, token_hash)
    }

    async fn participant_by_name_key(
        &self,
        meetup_id: &str,
        name_key: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        let txn = self.db().begin_read().map_err(backend)?;
        let names = txn.open_table(NAMES).map_err(backend)?;
        let Some(owner) = names
            .get(child_key(meetup_id, name_key).as_str())
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let participants = txn.open_table(PARTICIPANTS).map_err(backend)?;
        let value = participants
            .get(child_key(meetup_id, owner.value()).as_str())
            .map_err(backend)?;
        value.map(|v| decode(v.value())).transpose()
    }

    async fn add_participant(
        &self,
        participant: &ParticipantRecord,
        max: usize,
    ) -> StoreResult<Revision> {
        let p = participant.clone();
        self.write(move |batch| {
            let tables = &mut batch.tables;
            let current = counters(tables, &p.meetup_id)?.ok_or(StoreError::MeetupNotFound)?;
            if current.participants >= max as i64 {
                return Err(StoreError::Full("participants"));
            }
            check_name_free(tables, &p)?;
            put_name(tables, &p)?;
            put_participant(tables, &p)?;
            put_token(tables, &p)?;
            let mut next = bumped(current);
            next.participants += 1;
            put_counters(batch, &p.meetup_id, next)?;
            Ok(next.revision)
        })
        .await
    }

    async fn update_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
        changes: ParticipantChanges,
    ) -> StoreResult<Option<(Revision, ParticipantRecord)>> {
        let (meetup_id, participant_id) = (meetup_id.to_string(), participant_id.to_string());
        self.write(move |batch| {
            let tables = &mut batch.tables;
            let Some(mut next) = load_participant(tables, &meetup_id, &participant_id)? else {
                return Ok(None);
            };
            let Some(current) = counters(tables, &meetup_id)? else {
                return Ok(None);
            };
            let stored_name_key = next.name_key.clone();
            changes.apply_into(&mut next);
            let renamed = stored_name_key != next.name_key;
            if renamed {
                check_name_free(tables, &next)?;
                put_name(tables, &next)?;
                tables
                    .names()?
                    .remove(child_key(&meetup_id, &stored_name_key).as_str())
                    .map_err(backend)?;
            }
            put_participant(tables, &next)?;
            let counters = bumped(current);
            put_counters(batch, &meetup_id, counters)?;
            Ok(Some((counters.revision, next)))
        })
        .await
    }

    async fn remove_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<Revision>> {
        let meetup_id = meetup_id.to_string();
        let participant_id = participant_id.to_string();
        self.write(move |batch| {
            let tables = &mut batch.tables;
            let Some(stored) = load_participant(tables, &meetup_id, &participant_id)? else {
                return Ok(None);
            };
            let Some(current) = counters(tables, &meetup_id)? else {
                return Ok(None);
            };
            drop_participant(tables, &stored)?;
            let mut next = bumped(current);
            next.participants = (next.participants - 1).max(0);
            put_counters(batch, &meetup_id, next)?;
            Ok(Some(next.revision))
        })
        .await
    }

    async fn remove_place_votes(&self, meetup_id: &str, place_id: &str) -> StoreResult<()> {
        let meetup_id = meetup_id.to_string();
        let place_id = place_id.to_string();
        self.write(move |batch| {
            let tables = &mut batch.tables;
            let (from, to) = children(&meetup_id);
            let mut changed = Vec::new();
            {
                let table = tables.participants()?;
                for entry in table.range(from.as_str()..to.as_str()).map_err(backend)? {
                    let (_, value) = entry.map_err(backend)?;
                    let mut p: ParticipantRecord = decode(value.value())?;
                    if p.place_votes.contains(&place_id) {
                        p.place_votes.retain(|id| id != &place_id);
                        changed.push(p);
                    }
                }
            }
            for p in &changed {
                put_participant(tables, p)?;
            }
            Ok(())
        })
        .await
    }

    async fn comments(&self, meetup_id: &str) -> StoreResult<Vec<CommentRecord>> {
        self.read_children(COMMENTS, meetup_id).await
    }

    async fn comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<CommentRecord>> {
        self.read_one(COMMENTS, &child_key(meetup_id, comment_id))
    }

    async fn add_comment(&self, comment: &CommentRecord, max: usize) -> StoreResult<Revision> {
        let c = comment.clone();
        self.write(move |batch| {
            let tables = &mut batch.tables;
            let current = counters(tables, &c.meetup_id)?.ok_or(StoreError::MeetupNotFound)?;
            if current.comments >= max as i64 {
                return Err(StoreError::Full("comments"));
            }
            tables
                .comments()?
                .insert(
                    child_key(&c.meetup_id, &c.id).as_str(),
                    encode(&c)?.as_slice(),
                )
                .map_err(backend)?;
            let mut next = bumped(current);
            next.comments += 1;
            put_counters(batch, &c.meetup_id, next)?;
            Ok(next.revision)
        })
        .await
    }

    async fn remove_comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<Revision>> {
        let meetup_id = meetup_id.to_string();
        let comment_id = comment_id.to_string();
        self.write(move |batch| {
            let tables = &mut batch.tables;
            let Some(current) = counters(tables, &meetup_id)? else {
                return Ok(None);
            };
            let removed = tables
                .comments()?
                .remove(child_key(&meetup_id, &comment_id).as_str())
                .map_err(backend)?
                .is_some();
            if !removed {
                return Ok(None);
            }
            let mut next = bumped(current);
            next.comments = (next.comments - 1).max(0);
            put_counters(batch, &meetup_id, next)?;
            Ok(Some(next.revision))
        })
        .await
    }

    async fn remember_place(&self, place: &PlaceSuggestion) -> StoreResult<()> {
        let place = place.clone();
        self.write(move |batch| {
            batch
                .tables
                .suggestions()?
                .insert(
                    suggestion_key(&place.name).as_str(),
                    encode(&place)?.as_slice(),
                )
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn place_suggestions(
        &self,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<PlaceSuggestion>> {
        let prefix = suggestion_key(prefix);
        self.run(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(SUGGESTIONS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in table.range(prefix.as_str()..).map_err(backend)? {
                let (key, value) = entry.map_err(backend)?;
                if !key.value().starts_with(prefix.as_str()) || out.len() >= limit {
                    break;
                }
                out.push(decode(value.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn meetups_ended_before(
        &self,
        cutoff: chrono::DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(MEETUPS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(backend)? {
                let (key, value) = entry.map_err(backend)?;
                let meetup: MeetupRecord = decode(value.value())?;
                if super::meetup_last_end(&meetup) < cutoff {
                    out.push(key.value().to_string());
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::domain::ids::hash_token;
    use crate::domain::{self, Availability, CreateMeetup};

    fn sample() -> (MeetupRecord, ParticipantRecord) {
        let mut rng = StdRng::seed_from_u64(16);
        let created = domain::create_meetup(
            CreateMeetup {
                title: "Stored beer".into(),
                organizer_name: "Anna".into(),
                time_zone: "Europe/Berlin".into(),
                // Seven evenings of quarter hours: 140 slots, as in the HTTP benchmark.
                slot_minutes: Some(15),
                ..Default::default()
            },
            hash_token("admin"),
            hash_token("anna"),
            Utc::now(),
            &mut rng,
        )
        .expect("valid meetup");
        (created.meetup, created.organizer)
    }

    #[test]
    fn a_large_record_is_stored_compressed_and_a_small_one_as_json() {
        let (meetup, organizer) = sample();
        let stored = encode(&meetup).expect("encodes");
        let json = serde_json::to_vec(&meetup).expect("json");
        assert_eq!(stored[0], LZ4_JSON);
        assert!(
            stored.len() * 3 < json.len(),
            "{} of {}",
            stored.len(),
            json.len()
        );
        assert_eq!(json_len(&stored), json.len());
        assert_eq!(decode::<MeetupRecord>(&stored).expect("decodes"), meetup);

        let small = encode(&organizer).expect("encodes");
        assert_eq!(small, serde_json::to_vec(&organizer).expect("json"));
        assert_eq!(json_len(&small), small.len());
        assert_eq!(
            decode::<ParticipantRecord>(&small).expect("decodes"),
            organizer
        );
    }

    #[test]
    fn a_damaged_compressed_record_is_an_error_not_a_panic() {
        let (meetup, _) = sample();
        let mut stored = encode(&meetup).expect("encodes");
        stored.truncate(stored.len() / 2);
        assert!(decode::<MeetupRecord>(&stored).is_err());
        assert!(decode::<MeetupRecord>(&[LZ4_JSON, 0xff, 0xff, 0xff, 0x7f, 1]).is_err());
        assert!(decode::<MeetupRecord>(&[LZ4_JSON, 1, 2]).is_err());
    }

    /// Files written before records were compressed hold plain JSON; they read and update as
    /// before, and a rewritten record is compressed from then on.
    #[tokio::test]
    async fn records_stored_as_plain_json_by_an_earlier_version_still_read_and_update() {
        let dir = tempfile::tempdir().expect("dir");
        let (meetup, organizer) = sample();
        {
            let store = EmbeddedStore::open(dir.path()).expect("opens");
            store
                .create_meetup(&meetup, &organizer)
                .await
                .expect("create");
            // What an earlier version wrote: the same records as plain JSON.
            let txn = store.db().begin_write().expect("txn");
            {
                let plain_meetup = serde_json::to_vec(&meetup).expect("json");
                let plain_organizer = serde_json::to_vec(&organizer).expect("json");
                txn.open_table(MEETUPS)
                    .expect("meetups")
                    .insert(meetup.id.as_str(), plain_meetup.as_slice())
                    .expect("insert");
                txn.open_table(PARTICIPANTS)
                    .expect("participants")
                    .insert(
                        child_key(&meetup.id, &organizer.id).as_str(),
                        plain_organizer.as_slice(),
                    )
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        let store = EmbeddedStore::open(dir.path()).expect("reopens");
        let read = store
            .meetup(&meetup.id)
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(read.slots, meetup.slots);
        assert_eq!(read.title, meetup.title);

        let slot = meetup.slots[0].id.clone();
        let changes = ParticipantChanges {
            availability: Some([(slot.clone(), Availability::Yes)].into_iter().collect()),
            ..Default::default()
        };
        let (_, updated) = store
            .update_participant(&meetup.id, &organizer.id, changes)
            .await
            .expect("updates")
            .expect("exists");
        assert_eq!(updated.name, organizer.name);
        assert_eq!(updated.availability.get(&slot), Some(&Availability::Yes));
        let state = store
            .meetup_state(&meetup.id)
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(state.participants, vec![updated]);
    }
}
