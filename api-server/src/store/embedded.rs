//! Embedded adaptor on redb: one file in the data directory, ACID write transactions, survives
//! restarts. Records are stored as JSON so the file stays inspectable and schema changes are
//! cheap, the same trade-off as the document store.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Revision, Store, StoreError, StoreResult, suggestion_key};
use crate::domain::{CommentRecord, MeetupRecord, ParticipantRecord, PlaceSuggestion};

const MEETUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("meetups");
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

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(backend)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(backend)
}

fn child_key(meetup_id: &str, child_id: &str) -> String {
    format!("{meetup_id}/{child_id}")
}

/// The key range holding every child of one meetup: "<id>/" up to "<id>0" ('0' follows '/').
fn children(meetup_id: &str) -> (String, String) {
    (format!("{meetup_id}/"), format!("{meetup_id}0"))
}

impl EmbeddedStore {
    /// Opens (or creates) the database file inside `data_dir`.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(backend)?;
        let db = Database::create(data_dir.join(FILE_NAME)).map_err(backend)?;
        // Create every table up front so read transactions never meet a missing table.
        let txn = db.begin_write().map_err(backend)?;
        {
            txn.open_table(MEETUPS).map_err(backend)?;
            txn.open_table(PARTICIPANTS).map_err(backend)?;
            txn.open_table(NAMES).map_err(backend)?;
            txn.open_table(TOKENS).map_err(backend)?;
            txn.open_table(COMMENTS).map_err(backend)?;
            txn.open_table(SUGGESTIONS).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(backend)?
    }

    /// Runs `work` in a write transaction and commits only if it succeeds.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        self.run(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let value = work(&txn)?;
            txn.commit().map_err(backend)?;
            Ok(value)
        })
        .await
    }

    async fn read_children<T: DeserializeOwned + Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        meetup_id: &str,
    ) -> StoreResult<Vec<T>> {
        let (from, to) = children(meetup_id);
        self.run(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(table).map_err(backend)?;
            let mut out = Vec::new();
            for entry in table.range(from.as_str()..to.as_str()).map_err(backend)? {
                let (_, value) = entry.map_err(backend)?;
                out.push(decode(value.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn read_one<T: DeserializeOwned + Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: String,
    ) -> StoreResult<Option<T>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(table).map_err(backend)?;
            let value = table.get(key.as_str()).map_err(backend)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }
}

/// Reads the meetup inside a write transaction, lets `change` adjust it, bumps the revision and
/// writes it back. `None` when the meetup does not exist.
fn bump_meetup(
    txn: &WriteTransaction,
    meetup_id: &str,
    change: impl FnOnce(&mut MeetupRecord) -> StoreResult<()>,
) -> StoreResult<Option<Revision>> {
    let mut table = txn.open_table(MEETUPS).map_err(backend)?;
    let stored: Option<MeetupRecord> = table
        .get(meetup_id)
        .map_err(backend)?
        .map(|v| decode(v.value()))
        .transpose()?;
    let Some(mut meetup) = stored else {
        return Ok(None);
    };
    change(&mut meetup)?;
    meetup.revision += 1;
    meetup.updated_at = Utc::now();
    table
        .insert(meetup_id, encode(&meetup)?.as_slice())
        .map_err(backend)?;
    Ok(Some(meetup.revision))
}

fn put_participant(txn: &WriteTransaction, p: &ParticipantRecord) -> StoreResult<()> {
    let mut participants = txn.open_table(PARTICIPANTS).map_err(backend)?;
    participants
        .insert(
            child_key(&p.meetup_id, &p.id).as_str(),
            encode(p)?.as_slice(),
        )
        .map_err(backend)?;
    Ok(())
}

fn claim_name(txn: &WriteTransaction, p: &ParticipantRecord) -> StoreResult<()> {
    let mut names = txn.open_table(NAMES).map_err(backend)?;
    let key = child_key(&p.meetup_id, &p.name_key);
    let owner = names
        .get(key.as_str())
        .map_err(backend)?
        .map(|v| v.value().to_string());
    match owner {
        Some(owner) if owner != p.id => Err(StoreError::NameTaken),
        _ => {
            names.insert(key.as_str(), p.id.as_str()).map_err(backend)?;
            Ok(())
        }
    }
}

fn drop_participant(txn: &WriteTransaction, p: &ParticipantRecord) -> StoreResult<()> {
    txn.open_table(PARTICIPANTS)
        .map_err(backend)?
        .remove(child_key(&p.meetup_id, &p.id).as_str())
        .map_err(backend)?;
    txn.open_table(NAMES)
        .map_err(backend)?
        .remove(child_key(&p.meetup_id, &p.name_key).as_str())
        .map_err(backend)?;
    txn.open_table(TOKENS)
        .map_err(backend)?
        .remove(p.token_hash.as_str())
        .map_err(backend)?;
    Ok(())
}

fn load_participant(
    txn: &WriteTransaction,
    meetup_id: &str,
    participant_id: &str,
) -> StoreResult<Option<ParticipantRecord>> {
    let table = txn.open_table(PARTICIPANTS).map_err(backend)?;
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
        let meetup = meetup.clone();
        let organizer = organizer.clone();
        self.write(move |txn| {
            txn.open_table(MEETUPS)
                .map_err(backend)?
                .insert(meetup.id.as_str(), encode(&meetup)?.as_slice())
                .map_err(backend)?;
            claim_name(txn, &organizer)?;
            put_participant(txn, &organizer)?;
            txn.open_table(TOKENS)
                .map_err(backend)?
                .insert(
                    organizer.token_hash.as_str(),
                    child_key(&organizer.meetup_id, &organizer.id).as_str(),
                )
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn meetup(&self, id: &str) -> StoreResult<Option<MeetupRecord>> {
        self.read_one(MEETUPS, id.to_string()).await
    }

    async fn replace_meetup(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>> {
        let next = meetup.clone();
        self.write(move |txn| {
            let mut table = txn.open_table(MEETUPS).map_err(backend)?;
            let stored: Option<MeetupRecord> = table
                .get(next.id.as_str())
                .map_err(backend)?
                .map(|v| decode(v.value()))
                .transpose()?;
            let Some(stored) = stored else {
                return Err(StoreError::MeetupNotFound);
            };
            if stored.doc_version != next.doc_version {
                return Ok(None);
            }
            let written = MeetupRecord {
                revision: stored.revision + 1,
                doc_version: stored.doc_version + 1,
                participant_count: stored.participant_count,
                comment_count: stored.comment_count,
                admin_token_hash: stored.admin_token_hash,
                ..next
            };
            table
                .insert(written.id.as_str(), encode(&written)?.as_slice())
                .map_err(backend)?;
            Ok(Some(written.revision))
        })
        .await
    }

    async fn delete_meetup(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |txn| {
            let existed = txn
                .open_table(MEETUPS)
                .map_err(backend)?
                .remove(id.as_str())
                .map_err(backend)?
                .is_some();
            let (from, to) = children(&id);
            let mut participants = Vec::new();
            {
                let table = txn.open_table(PARTICIPANTS).map_err(backend)?;
                for entry in table.range(from.as_str()..to.as_str()).map_err(backend)? {
                    let (_, value) = entry.map_err(backend)?;
                    participants.push(decode::<ParticipantRecord>(value.value())?);
                }
            }
            for p in &participants {
                drop_participant(txn, p)?;
            }
            let mut comments = txn.open_table(COMMENTS).map_err(backend)?;
            comments
                .retain_in(from.as_str()..to.as_str(), |_, _| false)
                .map_err(backend)?;
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
        self.read_one(PARTICIPANTS, child_key(meetup_id, participant_id))
            .await
    }

    async fn participant_by_token(
        &self,
        meetup_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<ParticipantRecord>> {
        let meetup_id = meetup_id.to_string();
        let token_hash = token_hash.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let tokens = txn.open_table(TOKENS).map_err(backend)?;
            let Some(key) = tokens.get(token_hash.as_str()).map_err(backend)? else {
                return Ok(None);
            };
            let key = key.value().to_string();
            if !key.starts_with(&format!("{meetup_id}/")) {
                return Ok(None);
            }
            let participants = txn.open_table(PARTICIPANTS).map_err(backend)?;
            let value = participants.get(key.as_str()).map_err(backend)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn add_participant(
        &self,
        participant: &ParticipantRecord,
        max: usize,
    ) -> StoreResult<Revision> {
        let p = participant.clone();
        self.write(move |txn| {
            let revision = bump_meetup(txn, &p.meetup_id, |meetup| {
                if meetup.participant_count >= max as i64 {
                    return Err(StoreError::Full("participants"));
                }
                meetup.participant_count += 1;
                Ok(())
            })?
            .ok_or(StoreError::MeetupNotFound)?;
            claim_name(txn, &p)?;
            put_participant(txn, &p)?;
            txn.open_table(TOKENS)
                .map_err(backend)?
                .insert(
                    p.token_hash.as_str(),
                    child_key(&p.meetup_id, &p.id).as_str(),
                )
                .map_err(backend)?;
            Ok(revision)
        })
        .await
    }

    async fn update_participant(
        &self,
        participant: &ParticipantRecord,
    ) -> StoreResult<Option<Revision>> {
        let p = participant.clone();
        self.write(move |txn| {
            let Some(stored) = load_participant(txn, &p.meetup_id, &p.id)? else {
                return Ok(None);
            };
            if stored.name_key != p.name_key {
                claim_name(txn, &p)?;
                txn.open_table(NAMES)
                    .map_err(backend)?
                    .remove(child_key(&p.meetup_id, &stored.name_key).as_str())
                    .map_err(backend)?;
            }
            // The token and identity never change through an update.
            let next = ParticipantRecord {
                token_hash: stored.token_hash,
                is_organizer: stored.is_organizer,
                joined_at: stored.joined_at,
                ..p
            };
            put_participant(txn, &next)?;
            bump_meetup(txn, &next.meetup_id, |_| Ok(()))
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
        self.write(move |txn| {
            let Some(stored) = load_participant(txn, &meetup_id, &participant_id)? else {
                return Ok(None);
            };
            drop_participant(txn, &stored)?;
            bump_meetup(txn, &meetup_id, |meetup| {
                meetup.participant_count = (meetup.participant_count - 1).max(0);
                Ok(())
            })
        })
        .await
    }

    async fn remove_place_votes(&self, meetup_id: &str, place_id: &str) -> StoreResult<()> {
        let meetup_id = meetup_id.to_string();
        let place_id = place_id.to_string();
        self.write(move |txn| {
            let (from, to) = children(&meetup_id);
            let mut changed = Vec::new();
            {
                let table = txn.open_table(PARTICIPANTS).map_err(backend)?;
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
                put_participant(txn, p)?;
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
        self.read_one(COMMENTS, child_key(meetup_id, comment_id))
            .await
    }

    async fn add_comment(&self, comment: &CommentRecord, max: usize) -> StoreResult<Revision> {
        let c = comment.clone();
        self.write(move |txn| {
            let revision = bump_meetup(txn, &c.meetup_id, |meetup| {
                if meetup.comment_count >= max as i64 {
                    return Err(StoreError::Full("comments"));
                }
                meetup.comment_count += 1;
                Ok(())
            })?
            .ok_or(StoreError::MeetupNotFound)?;
            txn.open_table(COMMENTS)
                .map_err(backend)?
                .insert(
                    child_key(&c.meetup_id, &c.id).as_str(),
                    encode(&c)?.as_slice(),
                )
                .map_err(backend)?;
            Ok(revision)
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
        self.write(move |txn| {
            let removed = txn
                .open_table(COMMENTS)
                .map_err(backend)?
                .remove(child_key(&meetup_id, &comment_id).as_str())
                .map_err(backend)?
                .is_some();
            if !removed {
                return Ok(None);
            }
            bump_meetup(txn, &meetup_id, |meetup| {
                meetup.comment_count = (meetup.comment_count - 1).max(0);
                Ok(())
            })
        })
        .await
    }

    async fn remember_place(&self, place: &PlaceSuggestion) -> StoreResult<()> {
        let place = place.clone();
        self.write(move |txn| {
            txn.open_table(SUGGESTIONS)
                .map_err(backend)?
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
