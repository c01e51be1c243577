//! Place search: suggestions of places used before, offered while adding a place.
//!
//! One [`PlaceSearch`] trait with two adaptors:
//! - [`StoreSearch`]: the store's own suggestion list (prefix of the name), always there;
//! - [`ElasticsearchSearch`]: an Elasticsearch index of every meetup's places (prefix and fuzzy
//!   match on name and address), used when `ELASTICSEARCH_URL` is set.
//!
//! [`WithFallback`] combines them the way the API needs: the store is always written (so it can
//! answer when Elasticsearch cannot), index updates go to Elasticsearch from a background queue
//! (a write never waits for it or fails because of it), and suggestions come from Elasticsearch
//! unless it errs, then from the store. An outage is logged once, and its end once.
//!
//! Index updates missed during an outage are not replayed: those places are suggested again once
//! they are saved again.
//!
//! Suggestions are **scoped**: a caller gets places only from the meetups it proves it belongs
//! to (a token of each; see `POST /places/suggestions`), never from anyone else's. A deleted
//! meetup can no longer be proven, so its places are gone with it, and a stranger's place of
//! the same name cannot replace the caller's.

/// Left out of a build without the `elasticsearch` feature (`make run`).
#[cfg(feature = "elasticsearch")]
pub mod elasticsearch;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use axum::http::StatusCode;
use tokio::sync::{mpsc, oneshot};

use crate::domain::{PlaceRecord, PlaceSuggestion};
use crate::http::problem::Problem;
use crate::store::{Store, StoreError, suggestion_key};

#[cfg(feature = "elasticsearch")]
pub use elasticsearch::{ElasticsearchConfig, ElasticsearchSearch};
pub use store::StoreSearch;

/// Index updates waiting for Elasticsearch; beyond this they are dropped (and logged).
const QUEUE_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search backend not reachable: {0}")]
    Unreachable(String),
    #[error("search backend answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected answer from the search backend: {0}")]
    Decode(String),
    #[error("invalid search configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type SearchResult<T> = Result<T, SearchError>;

impl From<SearchError> for Problem {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::Store(error) => error.into(),
            other => {
                tracing::error!(error = %other, "place search failed");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "search-unavailable",
                    "Place suggestions are not available right now.",
                )
            }
        }
    }
}

#[async_trait]
pub trait PlaceSearch: Send + Sync + 'static {
    /// "store" or "elasticsearch", for logs.
    fn backend(&self) -> &'static str;

    /// A place was added to a meetup or changed.
    async fn place_saved(&self, meetup_id: &str, place: &PlaceRecord) -> SearchResult<()>;

    /// A place was removed from a meetup.
    async fn place_removed(&self, meetup_id: &str, place_id: &str) -> SearchResult<()>;

    /// Places of the meetups in `scope` that match `query`, at most one per name
    /// (case-insensitive), best first; an empty query lists recent places. An empty scope
    /// finds nothing.
    async fn suggestions(
        &self,
        query: &str,
        scope: &[String],
        limit: usize,
    ) -> SearchResult<Vec<PlaceSuggestion>>;

    /// Waits until the index updates queued so far have been sent, at most `deadline`; `false`
    /// if some were still waiting then. For shutdown: a replica that stops should not drop
    /// updates it has accepted. Searches without a queue have nothing to wait for.
    async fn flush(&self, _deadline: std::time::Duration) -> bool {
        true
    }
}

/// The search the configuration asks for: Elasticsearch with the store as fallback when
/// `ELASTICSEARCH_URL` is set, otherwise the store alone. Call from within the Tokio runtime.
pub fn from_config(
    config: &crate::Config,
    store: Arc<dyn Store>,
) -> SearchResult<Arc<dyn PlaceSearch>> {
    let fallback = Arc::new(StoreSearch::new(store));
    let Some(url) = config
        .elasticsearch_url
        .as_ref()
        .filter(|url| !url.trim().is_empty())
    else {
        return Ok(fallback);
    };
    #[cfg(feature = "elasticsearch")]
    {
        let elastic = ElasticsearchSearch::new(ElasticsearchConfig {
            url: url.trim().to_owned(),
            index: config.elasticsearch_index.clone(),
            username: config.elasticsearch_username.clone(),
            password: config.elasticsearch_password.clone(),
        })?;
        tracing::info!(index = %config.elasticsearch_index, "place suggestions from Elasticsearch");
        Ok(Arc::new(WithFallback::new(Arc::new(elastic), fallback)))
    }
    #[cfg(not(feature = "elasticsearch"))]
    {
        let _ = (url, fallback);
        Err(SearchError::Config(
            "this api-server was built without Elasticsearch support (cargo feature \
             `elasticsearch`); unset ELASTICSEARCH_URL or build with default features"
                .into(),
        ))
    }
}

/// Keeps the first of each name (case-folded, whitespace collapsed), at most `limit`.
pub fn dedup_by_name(
    places: impl IntoIterator<Item = PlaceSuggestion>,
    limit: usize,
) -> Vec<PlaceSuggestion> {
    let mut seen = std::collections::HashSet::new();
    places
        .into_iter()
        .filter(|place| seen.insert(suggestion_key(&place.name)))
        .take(limit)
        .collect()
}

enum Job {
    Saved(String, Box<PlaceRecord>),
    Removed(String, String),
    /// Answered when every job queued before it is done (the queue is worked in order).
    Flushed(oneshot::Sender<()>),
}

/// Whether the primary backend is failing; logs each change of state once.
#[derive(Debug)]
struct Health {
    backend: &'static str,
    down: AtomicBool,
}

impl Health {
    fn failed(&self, error: &SearchError) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                backend = self.backend,
                %error,
                "place search unavailable: suggestions come from the store and index updates are skipped until it answers again"
            );
        }
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!(backend = self.backend, "place search answers again");
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}

/// A primary search (Elasticsearch) that never fails a write and falls back to another
/// (the store) for suggestions. See the module documentation.
pub struct WithFallback {
    primary: Arc<dyn PlaceSearch>,
    fallback: Arc<dyn PlaceSearch>,
    jobs: mpsc::Sender<Job>,
    health: Arc<Health>,
}

impl WithFallback {
    /// Starts the background task that feeds index updates to `primary` in order.
    pub fn new(primary: Arc<dyn PlaceSearch>, fallback: Arc<dyn PlaceSearch>) -> Self {
        let health = Arc::new(Health {
            backend: primary.backend(),
            down: AtomicBool::new(false),
        });
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE_CAPACITY);
        let worker_primary = Arc::clone(&primary);
        let worker_health = Arc::clone(&health);
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                let result = match job {
                    Job::Saved(meetup_id, place) => {
                        worker_primary.place_saved(&meetup_id, &place).await
                    }
                    Job::Removed(meetup_id, place_id) => {
                        worker_primary.place_removed(&meetup_id, &place_id).await
                    }
                    Job::Flushed(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                match result {
                    Ok(()) => worker_health.answered(),
                    Err(error) => worker_health.failed(&error),
                }
            }
        });
        Self {
            primary,
            fallback,
            jobs,
            health,
        }
    }

    fn enqueue(&self, job: Job) {
        if self.jobs.try_send(job).is_err() && !self.health.is_down() {
            self.health.failed(&SearchError::Unreachable(
                "too many index updates waiting; dropping some".to_owned(),
            ));
        }
    }
}

#[async_trait]
impl PlaceSearch for WithFallback {
    fn backend(&self) -> &'static str {
        self.primary.backend()
    }

    async fn place_saved(&self, meetup_id: &str, place: &PlaceRecord) -> SearchResult<()> {
        self.enqueue(Job::Saved(meetup_id.to_owned(), Box::new(place.clone())));
        self.fallback.place_saved(meetup_id, place).await
    }

    async fn place_removed(&self, meetup_id: &str, place_id: &str) -> SearchResult<()> {
        self.enqueue(Job::Removed(meetup_id.to_owned(), place_id.to_owned()));
        self.fallback.place_removed(meetup_id, place_id).await
    }

    async fn flush(&self, deadline: std::time::Duration) -> bool {
        let (done, flushed) = oneshot::channel();
        let waited = tokio::time::timeout(deadline, async {
            // Waits for room in a full queue rather than dropping the marker.
            self.jobs.send(Job::Flushed(done)).await.is_ok() && flushed.await.is_ok()
        })
        .await;
        let flushed = matches!(waited, Ok(true));
        if !flushed {
            tracing::warn!(
                backend = self.backend(),
                "stopping with index updates still queued; those places are suggested again once saved again"
            );
        }
        flushed
    }

    async fn suggestions(
        &self,
        query: &str,
        scope: &[String],
        limit: usize,
    ) -> SearchResult<Vec<PlaceSuggestion>> {
        match self.primary.suggestions(query, scope, limit).await {
            Ok(places) => {
                self.health.answered();
                Ok(places)
            }
            Err(error) => {
                self.health.failed(&error);
                self.fallback.suggestions(query, scope, limit).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str) -> PlaceSuggestion {
        PlaceSuggestion {
            name: name.to_owned(),
            address: None,
            link: None,
        }
    }

    #[tokio::test]
    async fn the_configuration_picks_the_search() {
        use clap::Parser;
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(crate::store::EmbeddedStore::open(dir.path()).expect("embedded store opens"));
        let config = |args: &[&str]| {
            crate::Config::try_parse_from(["api-server"].iter().chain(args)).expect("valid flags")
        };
        let search = |args: &[&str]| from_config(&config(args), Arc::clone(&store));
        assert_eq!(search(&[]).expect("store").backend(), "store");
        assert_eq!(
            search(&["--elasticsearch-url", " "])
                .expect("store")
                .backend(),
            "store"
        );
        let elastic = search(&[
            "--elasticsearch-url",
            "http://127.0.0.1:9200",
            "--elasticsearch-username",
            "elastic",
        ])
        .expect("elasticsearch");
        assert_eq!(elastic.backend(), "elasticsearch");
        assert!(search(&["--elasticsearch-url", "elasticsearch:9200"]).is_err());
    }

    /// A primary that takes `delay` per update and counts the updates it finished. A stand-in:
    /// a slow or hanging Elasticsearch cannot be caused on demand in a unit test.
    struct SlowIndex {
        delay: std::time::Duration,
        done: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl PlaceSearch for SlowIndex {
        fn backend(&self) -> &'static str {
            "slow"
        }
        async fn place_saved(&self, _: &str, _: &PlaceRecord) -> SearchResult<()> {
            tokio::time::sleep(self.delay).await;
            self.done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn place_removed(&self, _: &str, _: &str) -> SearchResult<()> {
            tokio::time::sleep(self.delay).await;
            self.done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn suggestions(
            &self,
            _: &str,
            _: &[String],
            _: usize,
        ) -> SearchResult<Vec<PlaceSuggestion>> {
            Ok(Vec::new())
        }
    }

    fn record(id: &str) -> PlaceRecord {
        PlaceRecord {
            id: id.to_owned(),
            name: format!("Place {id}"),
            address: None,
            link: None,
            note: None,
            added_by_id: None,
            added_by_name: "Anna".to_owned(),
        }
    }

    #[tokio::test]
    async fn flush_waits_for_queued_updates_within_its_deadline() {
        use std::time::Duration;
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(crate::store::EmbeddedStore::open(dir.path()).expect("embedded store opens"));
        let with = |delay| {
            let slow = Arc::new(SlowIndex {
                delay,
                done: Default::default(),
            });
            let search =
                WithFallback::new(slow.clone(), Arc::new(StoreSearch::new(Arc::clone(&store))));
            (slow, search)
        };
        let (slow, search) = with(Duration::from_millis(20));
        for id in ["p1", "p2", "p3"] {
            search.place_saved("m1", &record(id)).await.expect("saved");
        }
        search.place_removed("m1", "p1").await.expect("removed");
        assert!(search.flush(Duration::from_secs(60)).await);
        assert_eq!(
            slow.done.load(Ordering::SeqCst),
            4,
            "all four were sent first"
        );

        // An index that hangs does not hold the shutdown beyond the deadline.
        let (hanging, search) = with(Duration::from_secs(3600));
        search
            .place_saved("m1", &record("p4"))
            .await
            .expect("saved");
        assert!(!search.flush(Duration::from_millis(100)).await);
        assert_eq!(hanging.done.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn dedup_keeps_the_first_of_each_name_up_to_the_limit() {
        let got = dedup_by_name(
            [
                place("Hops"),
                place("hops "),
                place("Barley"),
                place("  HOPS"),
                place("Malt"),
            ],
            2,
        );
        assert_eq!(got, [place("Hops"), place("Barley")]);
    }
}
