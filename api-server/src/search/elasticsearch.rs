//! Elasticsearch adaptor over its REST API (JSON with `reqwest`): one document per place of a
//! meetup in one index, created with its mapping on first use.
//!
//! Calls: `HEAD /{index}`, `PUT /{index}` (mapping), `PUT /{index}/_doc/{id}`,
//! `DELETE /{index}/_doc/{id}`, `POST /{index}/_search`. The base URL may carry a path prefix
//! (an Elasticsearch-compatible server under `/es/`, a proxy).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{PlaceSearch, SearchError, SearchResult, dedup_by_name};
use crate::domain::{PlaceRecord, PlaceSuggestion};
use crate::store::suggestion_key;

/// Longest an index or search request may take (a hung server costs no more).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Hits fetched per wanted suggestion, so duplicates of one name leave room for others
/// (Elasticsearch collapses them itself; this covers servers that ignore `collapse`).
const HITS_PER_SUGGESTION: usize = 4;
const MAX_HITS: usize = 100;

/// Where the index lives and how to log in (what the operator puts in the environment).
#[derive(Clone)]
pub struct ElasticsearchConfig {
    /// e.g. `http://beer-elasticsearch:9200`.
    pub url: String,
    pub index: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ElasticsearchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticsearchConfig")
            .field("index", &self.index)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The document stored per place of a meetup; its id is `<meetupId>-<placeId>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceDocument {
    pub meetup_id: String,
    pub place_id: String,
    pub name: String,
    /// The name case-folded with whitespace collapsed: the key suggestions are grouped by.
    pub name_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// When this version of the place was written (added or last changed); places carry no
    /// creation time of their own.
    pub updated_at: chrono::DateTime<Utc>,
}

impl PlaceDocument {
    pub fn new(meetup_id: &str, place: &PlaceRecord) -> Self {
        Self {
            meetup_id: meetup_id.to_owned(),
            place_id: place.id.clone(),
            name: place.name.clone(),
            name_key: suggestion_key(&place.name),
            address: place.address.clone(),
            link: place.link.clone(),
            updated_at: Utc::now(),
        }
    }
}

/// The mapping the index is created with.
pub fn index_definition() -> Value {
    json!({
        "mappings": {
            "properties": {
                "meetupId": {"type": "keyword"},
                "placeId": {"type": "keyword"},
                "name": {"type": "text"},
                "nameKey": {"type": "keyword"},
                "address": {"type": "text"},
                "link": {"type": "keyword", "index": false},
                "updatedAt": {"type": "date"}
            }
        }
    })
}

/// The `_search` body: the name by prefix of its last word or fuzzily (typos), or the address
/// by prefix; one hit per name; an empty query lists the most recently written places.
pub fn search_body(query: &str, scope: &[String], limit: usize) -> Value {
    let size = (limit * HITS_PER_SUGGESTION).clamp(1, MAX_HITS);
    let query = query.trim();
    // Only places of the meetups the caller proved it belongs to.
    let in_scope = json!([{"terms": {"meetupId": scope}}]);
    if query.is_empty() {
        return json!({
            "size": size,
            "query": {"bool": {"filter": in_scope}},
            "sort": [{"updatedAt": {"order": "desc"}}],
            "collapse": {"field": "nameKey"},
            "_source": ["name", "address", "link"]
        });
    }
    json!({
        "size": size,
        "query": {
            "bool": {
                "should": [
                    {"match_bool_prefix": {"name": {"query": query, "operator": "and", "boost": 3.0}}},
                    {"match": {"name": {"query": query, "operator": "and", "fuzziness": "AUTO", "boost": 1.0}}},
                    {"match_bool_prefix": {"address": {"query": query, "operator": "and", "boost": 1.0}}}
                ],
                "minimum_should_match": 1,
                "filter": in_scope
            }
        },
        "collapse": {"field": "nameKey"},
        "_source": ["name", "address", "link"]
    })
}

#[derive(Debug, Deserialize)]
struct SearchResponse {
    hits: Hits,
}

#[derive(Debug, Deserialize)]
struct Hits {
    #[serde(default)]
    hits: Vec<Hit>,
}

#[derive(Debug, Deserialize)]
struct Hit {
    #[serde(rename = "_source")]
    source: HitSource,
}

#[derive(Debug, Deserialize)]
struct HitSource {
    name: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    link: Option<String>,
}

/// Suggestions from a `_search` response body, deduplicated by name.
pub fn parse_search_response(body: &[u8], limit: usize) -> SearchResult<Vec<PlaceSuggestion>> {
    let response: SearchResponse =
        serde_json::from_slice(body).map_err(|e| SearchError::Decode(e.to_string()))?;
    let places = response.hits.hits.into_iter().map(|hit| PlaceSuggestion {
        name: hit.source.name,
        address: hit.source.address.filter(|a| !a.is_empty()),
        link: hit.source.link.filter(|l| !l.is_empty()),
    });
    Ok(dedup_by_name(places, limit))
}

pub struct ElasticsearchSearch {
    client: reqwest::Client,
    base: Url,
    index: String,
    username: Option<String>,
    password: Option<String>,
    /// The index is known to exist (checked or created once, again after it went missing).
    index_ready: AtomicBool,
}

impl ElasticsearchSearch {
    pub fn new(config: ElasticsearchConfig) -> SearchResult<Self> {
        let base = Url::parse(&config.url)
            .map_err(|e| SearchError::Config(format!("ELASTICSEARCH_URL: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(SearchError::Config(
                "ELASTICSEARCH_URL must be an http(s) URL".to_owned(),
            ));
        }
        if config.index.is_empty()
            || !config
                .index
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        {
            return Err(SearchError::Config(
                "the index name must be lowercase letters, digits, '-', '_' or '.'".to_owned(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| SearchError::Config(e.to_string()))?;
        Ok(Self {
            client,
            base,
            index: config.index,
            username: config.username.filter(|u| !u.is_empty()),
            password: config.password,
            index_ready: AtomicBool::new(false),
        })
    }

    fn url(&self, segments: &[&str]) -> SearchResult<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| SearchError::Config("ELASTICSEARCH_URL cannot be a base".to_owned()))?
            .pop_if_empty()
            .push(&self.index)
            .extend(segments);
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> SearchResult<(StatusCode, Vec<u8>)> {
        let mut request = self.client.request(method, url);
        if let Some(username) = &self.username {
            request = request.basic_auth(username, self.password.as_deref());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SearchError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SearchError::Unreachable(e.without_url().to_string()))?;
        Ok((status, bytes.to_vec()))
    }

    /// Creates the index with its mapping unless it exists.
    async fn ensure_index(&self) -> SearchResult<()> {
        if self.index_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (status, body) = self.send(Method::HEAD, self.url(&[])?, None).await?;
        if status == StatusCode::NOT_FOUND {
            let (status, body) = self
                .send(Method::PUT, self.url(&[])?, Some(&index_definition()))
                .await?;
            if !status.is_success() {
                // Another replica may have created it in between.
                let (again, _) = self.send(Method::HEAD, self.url(&[])?, None).await?;
                if !again.is_success() {
                    return Err(status_error(status, &body));
                }
            } else {
                tracing::info!(index = %self.index, "created the place search index");
            }
        } else if !status.is_success() {
            return Err(status_error(status, &body));
        }
        self.index_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Remembers to check the index again if an answer says it is gone.
    fn check_missing_index(&self, status: StatusCode, body: &[u8]) {
        if status == StatusCode::NOT_FOUND
            && String::from_utf8_lossy(body).contains("index_not_found")
        {
            self.index_ready.store(false, Ordering::Relaxed);
        }
    }
}

fn document_id(meetup_id: &str, place_id: &str) -> String {
    format!("{meetup_id}-{place_id}")
}

fn status_error(status: StatusCode, body: &[u8]) -> SearchError {
    let mut body = String::from_utf8_lossy(body).into_owned();
    if body.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| body.is_char_boundary(*i))
            .unwrap_or(0);
        body.truncate(cut);
        body.push('…');
    }
    SearchError::Status {
        status: status.as_u16(),
        body,
    }
}

#[async_trait]
impl PlaceSearch for ElasticsearchSearch {
    fn backend(&self) -> &'static str {
        "elasticsearch"
    }

    async fn place_saved(&self, meetup_id: &str, place: &PlaceRecord) -> SearchResult<()> {
        self.ensure_index().await?;
        let document = serde_json::to_value(PlaceDocument::new(meetup_id, place))
            .map_err(|e| SearchError::Decode(e.to_string()))?;
        let id = document_id(meetup_id, &place.id);
        let (status, body) = self
            .send(Method::PUT, self.url(&["_doc", &id])?, Some(&document))
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            self.check_missing_index(status, &body);
            Err(status_error(status, &body))
        }
    }

    async fn place_removed(&self, meetup_id: &str, place_id: &str) -> SearchResult<()> {
        self.ensure_index().await?;
        let id = document_id(meetup_id, place_id);
        let (status, body) = self
            .send(Method::DELETE, self.url(&["_doc", &id])?, None)
            .await?;
        // Never indexed (e.g. added during an outage): nothing to remove. Elasticsearch says
        // 404; ZincSearch says 400 "id not found".
        let missing = status == StatusCode::NOT_FOUND
            || (status == StatusCode::BAD_REQUEST
                && String::from_utf8_lossy(&body).contains("not found"));
        if status.is_success() || missing {
            Ok(())
        } else {
            Err(status_error(status, &body))
        }
    }

    async fn suggestions(
        &self,
        query: &str,
        scope: &[String],
        limit: usize,
    ) -> SearchResult<Vec<PlaceSuggestion>> {
        if scope.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_index().await?;
        let (status, body) = self
            .send(
                Method::POST,
                self.url(&["_search"])?,
                Some(&search_body(query, scope, limit)),
            )
            .await?;
        if !status.is_success() {
            self.check_missing_index(status, &body);
            return Err(status_error(status, &body));
        }
        parse_search_response(&body, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(url: &str) -> ElasticsearchSearch {
        ElasticsearchSearch::new(ElasticsearchConfig {
            url: url.to_owned(),
            index: "places".to_owned(),
            username: None,
            password: None,
        })
        .expect("valid config")
    }

    #[test]
    fn urls_keep_a_path_prefix_and_encode_ids() {
        let es = search("http://127.0.0.1:9200");
        assert_eq!(
            es.url(&["_doc", "a-b"]).expect("url").as_str(),
            "http://127.0.0.1:9200/places/_doc/a-b"
        );
        let zinc = search("http://127.0.0.1:4080/es/");
        assert_eq!(
            zinc.url(&["_search"]).expect("url").as_str(),
            "http://127.0.0.1:4080/es/places/_search"
        );
        assert_eq!(
            zinc.url(&["_doc", "a/b c"]).expect("url").as_str(),
            "http://127.0.0.1:4080/es/places/_doc/a%2Fb%20c"
        );
    }

    #[test]
    fn bad_configuration_is_refused() {
        let config = |url: &str, index: &str| ElasticsearchConfig {
            url: url.to_owned(),
            index: index.to_owned(),
            username: None,
            password: None,
        };
        assert!(ElasticsearchSearch::new(config("not a url", "places")).is_err());
        assert!(ElasticsearchSearch::new(config("ftp://host", "places")).is_err());
        assert!(ElasticsearchSearch::new(config("http://host", "Places")).is_err());
        assert!(ElasticsearchSearch::new(config("http://host", "")).is_err());
    }

    #[test]
    fn the_search_body_matches_name_prefix_fuzzy_and_address() {
        let scope = ["m1".to_string(), "m2".to_string()];
        let body = search_body("  golden ho ", &scope, 10);
        assert_eq!(body["size"], 40);
        assert_eq!(
            body["query"]["bool"]["filter"],
            json!([{"terms": {"meetupId": ["m1", "m2"]}}])
        );
        let should = &body["query"]["bool"]["should"];
        assert_eq!(should[0]["match_bool_prefix"]["name"]["query"], "golden ho");
        assert_eq!(should[1]["match"]["name"]["fuzziness"], "AUTO");
        assert_eq!(
            should[2]["match_bool_prefix"]["address"]["query"],
            "golden ho"
        );
        assert_eq!(body["collapse"]["field"], "nameKey");
        let empty = search_body("", &scope, 10);
        assert_eq!(
            empty["query"],
            json!({"bool": {"filter": [{"terms": {"meetupId": ["m1", "m2"]}}]}})
        );
    }

    #[test]
    fn documents_carry_the_meetup_and_the_grouping_key() {
        let place = PlaceRecord {
            id: "p1".into(),
            name: "  The Golden  Hop ".into(),
            address: Some("Main St 1".into()),
            link: None,
            note: Some("not indexed".into()),
            added_by_id: None,
            added_by_name: "Anna".into(),
        };
        let doc = serde_json::to_value(PlaceDocument::new("m1", &place)).expect("serializes");
        assert_eq!(doc["meetupId"], "m1");
        assert_eq!(doc["placeId"], "p1");
        assert_eq!(doc["nameKey"], "the golden hop");
        assert!(doc.get("link").is_none());
        assert!(doc.get("note").is_none());
        assert!(doc["updatedAt"].is_string());
    }

    /// The documented `_search` response shape (hits.hits[]._source), deduplicated by name.
    #[test]
    fn search_responses_become_suggestions() {
        let body = json!({
            "took": 3, "timed_out": false,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "total": {"value": 3, "relation": "eq"},
                "max_score": 2.1,
                "hits": [
                    {"_index": "places", "_id": "m1-p1", "_score": 2.1,
                     "_source": {"name": "Golden Hop", "address": "Main St 1"}},
                    {"_index": "places", "_id": "m2-p7", "_score": 1.9,
                     "_source": {"name": "golden hop"}},
                    {"_index": "places", "_id": "m3-p2", "_score": 0.4,
                     "_source": {"name": "Hopfen", "link": "https://example.org"}}
                ]
            }
        });
        let got = parse_search_response(body.to_string().as_bytes(), 10).expect("parses");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "Golden Hop");
        assert_eq!(got[0].address.as_deref(), Some("Main St 1"));
        assert_eq!(got[1].link.as_deref(), Some("https://example.org"));
        assert!(parse_search_response(b"{\"error\":{}}", 10).is_err());
    }
}
