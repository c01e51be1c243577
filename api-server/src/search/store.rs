//! Suggestions from the store itself: the places of the meetups in scope, matched by the
//! prefix of their name.

use std::sync::Arc;

use async_trait::async_trait;

use super::{PlaceSearch, SearchResult, dedup_by_name};
use crate::domain::{PlaceRecord, PlaceSuggestion};
use crate::store::{Store, suggestion_key};

/// Reads the meetups in scope (a caller proves at most a handful) and matches their places.
/// Nothing is written: the places live in their meetup and go with it.
#[derive(Clone)]
pub struct StoreSearch {
    store: Arc<dyn Store>,
}

impl StoreSearch {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl PlaceSearch for StoreSearch {
    fn backend(&self) -> &'static str {
        "store"
    }

    async fn place_saved(&self, _meetup_id: &str, _place: &PlaceRecord) -> SearchResult<()> {
        Ok(())
    }

    async fn place_removed(&self, _meetup_id: &str, _place_id: &str) -> SearchResult<()> {
        Ok(())
    }

    async fn suggestions(
        &self,
        query: &str,
        scope: &[String],
        limit: usize,
    ) -> SearchResult<Vec<PlaceSuggestion>> {
        let prefix = suggestion_key(query);
        let mut found = Vec::new();
        for meetup_id in scope {
            let Some(meetup) = self.store.meetup(meetup_id).await? else {
                continue;
            };
            // Newest places first: they are the likeliest to be meant.
            found.extend(
                meetup
                    .places
                    .iter()
                    .rev()
                    .filter(|place| suggestion_key(&place.name).starts_with(&prefix))
                    .map(|place| PlaceSuggestion {
                        name: place.name.clone(),
                        address: place.address.clone(),
                        link: place.link.clone(),
                    }),
            );
        }
        Ok(dedup_by_name(found, limit))
    }
}
