//! MongoDB adaptor (official driver). Written to the subset FerretDB v1 also speaks: separate
//! collections, unique indexes, single-document `$set`/`$inc`/`$pull` and findOneAndUpdate.
//! No transactions: a join inserts the participant first (the unique index decides name
//! clashes) and then reserves a seat with a conditional `$inc`, undoing the insert if full.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc, to_bson, to_document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};

use super::{Revision, Store, StoreError, StoreResult, suggestion_key};
use crate::domain::{CommentRecord, MeetupRecord, ParticipantRecord, PlaceSuggestion};

const DUPLICATE_KEY: i32 = 11000;

#[derive(Clone)]
pub struct MongoStore {
    db: Database,
    meetups: Collection<MeetupRecord>,
    participants: Collection<ParticipantRecord>,
    comments: Collection<CommentRecord>,
    suggestions: Collection<Document>,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn is_duplicate_key(error: &MongoError) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
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

impl MongoStore {
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
        let client = Client::with_options(options).map_err(backend)?;
        let db = client.database(database);
        let store = Self {
            meetups: db.collection("meetups"),
            participants: db.collection("participants"),
            comments: db.collection("comments"),
            suggestions: db.collection("placeSuggestions"),
            db,
        };
        store.ping().await?;
        store.create_indexes().await?;
        Ok(store)
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

    /// Bumps the meetup revision (plus any extra counters) atomically and returns the new one.
    async fn bump(&self, meetup_id: &str, extra: Document) -> StoreResult<Option<Revision>> {
        let mut inc = doc! {"revision": 1_i64};
        inc.extend(extra);
        let updated = self
            .meetups
            .find_one_and_update(
                doc! {"_id": meetup_id},
                doc! {"$inc": inc, "$set": {"updatedAt": now_bson()?}},
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(backend)?;
        Ok(updated.map(|m| m.revision))
    }

    async fn meetup_exists(&self, meetup_id: &str) -> StoreResult<bool> {
        let count = self
            .meetups
            .count_documents(doc! {"_id": meetup_id})
            .await
            .map_err(backend)?;
        Ok(count > 0)
    }
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn ping(&self) -> StoreResult<()> {
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
        // Organizer first: a meetup never exists without the person who owns it.
        self.participants
            .insert_one(organizer)
            .await
            .map_err(name_conflict)?;
        self.meetups.insert_one(meetup).await.map_err(backend)?;
        Ok(())
    }

    async fn meetup(&self, id: &str) -> StoreResult<Option<MeetupRecord>> {
        self.meetups
            .find_one(doc! {"_id": id})
            .await
            .map_err(backend)
    }

    async fn replace_meetup(&self, meetup: &MeetupRecord) -> StoreResult<Option<Revision>> {
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
        let updated = self
            .meetups
            .find_one_and_update(
                doc! {"_id": &meetup.id, "revision": meetup.revision},
                doc! {"$set": fields, "$inc": {"revision": 1_i64}},
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(backend)?;
        match updated {
            Some(m) => Ok(Some(m.revision)),
            None if self.meetup_exists(&meetup.id).await? => Ok(None),
            None => Err(StoreError::MeetupNotFound),
        }
    }

    async fn delete_meetup(&self, id: &str) -> StoreResult<bool> {
        let deleted = self
            .meetups
            .delete_one(doc! {"_id": id})
            .await
            .map_err(backend)?;
        self.participants
            .delete_many(doc! {"meetupId": id})
            .await
            .map_err(backend)?;
        self.comments
            .delete_many(doc! {"meetupId": id})
            .await
            .map_err(backend)?;
        Ok(deleted.deleted_count > 0)
    }

    async fn participants(&self, meetup_id: &str) -> StoreResult<Vec<ParticipantRecord>> {
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
        self.participants
            .find_one(doc! {"tokenHash": token_hash, "meetupId": meetup_id})
            .await
            .map_err(backend)
    }

    async fn add_participant(
        &self,
        participant: &ParticipantRecord,
        max: usize,
    ) -> StoreResult<Revision> {
        self.participants
            .insert_one(participant)
            .await
            .map_err(name_conflict)?;
        let reserved = self
            .meetups
            .find_one_and_update(
                doc! {"_id": &participant.meetup_id, "participantCount": {"$lt": max as i64}},
                doc! {
                    "$inc": {"participantCount": 1_i64, "revision": 1_i64},
                    "$set": {"updatedAt": now_bson()?},
                },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(backend)?;
        if let Some(meetup) = reserved {
            return Ok(meetup.revision);
        }
        self.participants
            .delete_one(doc! {"_id": &participant.id})
            .await
            .map_err(backend)?;
        if self.meetup_exists(&participant.meetup_id).await? {
            Err(StoreError::Full("participants"))
        } else {
            Err(StoreError::MeetupNotFound)
        }
    }

    async fn update_participant(
        &self,
        participant: &ParticipantRecord,
    ) -> StoreResult<Option<Revision>> {
        let availability = to_bson(&participant.availability).map_err(backend)?;
        let result = self
            .participants
            .update_one(
                doc! {"_id": &participant.id, "meetupId": &participant.meetup_id},
                doc! {"$set": {
                    "name": &participant.name,
                    "nameKey": &participant.name_key,
                    "timeZone": participant.time_zone.as_deref(),
                    "availability": availability,
                    "placeVotes": &participant.place_votes,
                    "note": participant.note.as_deref(),
                }},
            )
            .await
            .map_err(name_conflict)?;
        if result.matched_count == 0 {
            return Ok(None);
        }
        self.bump(&participant.meetup_id, Document::new()).await
    }

    async fn remove_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<Revision>> {
        let deleted = self
            .participants
            .delete_one(doc! {"_id": participant_id, "meetupId": meetup_id})
            .await
            .map_err(backend)?;
        if deleted.deleted_count == 0 {
            return Ok(None);
        }
        self.bump(meetup_id, doc! {"participantCount": -1_i64})
            .await
    }

    async fn remove_place_votes(&self, meetup_id: &str, place_id: &str) -> StoreResult<()> {
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
        self.comments
            .find_one(doc! {"_id": comment_id, "meetupId": meetup_id})
            .await
            .map_err(backend)
    }

    async fn add_comment(&self, comment: &CommentRecord, max: usize) -> StoreResult<Revision> {
        // Reserve first: a comment must never be visible beyond the cap.
        let reserved = self
            .meetups
            .find_one_and_update(
                doc! {"_id": &comment.meetup_id, "commentCount": {"$lt": max as i64}},
                doc! {
                    "$inc": {"commentCount": 1_i64, "revision": 1_i64},
                    "$set": {"updatedAt": now_bson()?},
                },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(backend)?;
        let Some(meetup) = reserved else {
            return if self.meetup_exists(&comment.meetup_id).await? {
                Err(StoreError::Full("comments"))
            } else {
                Err(StoreError::MeetupNotFound)
            };
        };
        if let Err(error) = self.comments.insert_one(comment).await {
            self.bump(&comment.meetup_id, doc! {"commentCount": -1_i64})
                .await?;
            return Err(backend(error));
        }
        Ok(meetup.revision)
    }

    async fn remove_comment(
        &self,
        meetup_id: &str,
        comment_id: &str,
    ) -> StoreResult<Option<Revision>> {
        let deleted = self
            .comments
            .delete_one(doc! {"_id": comment_id, "meetupId": meetup_id})
            .await
            .map_err(backend)?;
        if deleted.deleted_count == 0 {
            return Ok(None);
        }
        self.bump(meetup_id, doc! {"commentCount": -1_i64}).await
    }

    async fn remember_place(&self, place: &PlaceSuggestion) -> StoreResult<()> {
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
}
