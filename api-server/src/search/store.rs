//! Suggestions from the store itself: every place name ever used, matched by prefix.

use std::sync::Arc;

use async_trait::async_trait;

use super::{PlaceSearch, SearchResult};
use crate::domain::{PlaceRecord, PlaceSuggestion};
use crate::store::Store;

/// The store's suggestion list. Removing a place from a meetup keeps its name there: it was
/// used before, and the list holds one entry per name, not per meetup.
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

    async fn place_saved(&self, _meetup_id: &str, place: &PlaceRecord) -> SearchResult<()> {
        let suggestion = PlaceSuggestion {
            name: place.name.clone(),
            address: place.address.clone(),
            link: place.link.clone(),
        };
        Ok(self.store.remember_place(&suggestion).await?)
    }

    async fn place_removed(&self, _meetup_id: &str, _place_id: &str) -> SearchResult<()> {
        Ok(())
    }

    async fn suggestions(&self, query: &str, limit: usize) -> SearchResult<Vec<PlaceSuggestion>> {
        Ok(self.store.place_suggestions(query, limit).await?)
    }
}
