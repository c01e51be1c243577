//! Place search against a real Elasticsearch-API server.
//!
//! No Elasticsearch can run on this machine (no package, no JVM image), so these tests use
//! **ZincSearch** v0.4.10 and its Elasticsearch-compatible API under `/es/` — a real server that
//! indexes and searches, built by `make test-deps` (`.tools/bin/zincsearch`, see
//! tests/tools/zincsearch/main.go). The adaptor makes exactly the documented Elasticsearch calls
//! (`HEAD`/`PUT /{index}`, `PUT`/`DELETE /{index}/_doc/{id}`, `POST /{index}/_search` with
//! `match_bool_prefix`, fuzzy `match`, `collapse`); ZincSearch ignores `collapse`, which is why
//! the adaptor also deduplicates by name itself. The unit tests in `src/search/elasticsearch.rs`
//! parse a response shaped as Elasticsearch documents it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api_server::domain::{PlaceRecord, PlaceSuggestion};
use api_server::http::{RateLimit, Settings};
use api_server::search::elasticsearch::REQUEST_TIMEOUT;
use api_server::search::{
    ElasticsearchConfig, ElasticsearchSearch, PlaceSearch, StoreSearch, WithFallback,
};
use api_server::store::{EmbeddedStore, Store, suggestion_key};
use api_server::{AppState, app};
use serde_json::{Value, json};
use test_fixtures::{eventually, free_port, tool_path};
use tokio::process::{Child, Command};

const USER: &str = "elastic";
const PASSWORD: &str = "test-password";
const WAIT: Duration = Duration::from_secs(15);

/// A ZincSearch process on a free loopback port with its own data folder, killed on drop.
struct ZincSearch {
    port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ZincSearch {
    async fn start() -> Result<Self> {
        let binary = tool_path("zincsearch")?;
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let log = dir.path().join("zincsearch.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(binary)
            .env_clear()
            .env("ZINC_SERVER_ADDRESS", "127.0.0.1")
            .env("ZINC_SERVER_PORT", port.to_string())
            .env("ZINC_DATA_PATH", dir.path().join("data"))
            .env("ZINC_FIRST_ADMIN_USER", USER)
            .env("ZINC_FIRST_ADMIN_PASSWORD", PASSWORD)
            .env("ZINC_TELEMETRY", "false")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .context("starting zincsearch")?;
        let mut zinc = Self {
            port,
            child,
            log,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        let url = format!("{}/", zinc.url());
        let started = eventually("zincsearch to answer", WAIT, || async {
            let response = http
                .get(&url)
                .basic_auth(USER, Some(PASSWORD))
                .send()
                .await?;
            if response.status().is_success() {
                Ok(())
            } else {
                bail!("status {}", response.status())
            }
        })
        .await;
        if let Err(error) = started {
            bail!("{error:#}\nlog:\n{}", zinc.log_tail());
        }
        if let Ok(Some(status)) = zinc.child.try_wait() {
            bail!("zincsearch exited ({status}):\n{}", zinc.log_tail());
        }
        Ok(zinc)
    }

    /// The Elasticsearch-compatible base URL.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/es", self.port)
    }

    fn search(&self, index: &str) -> ElasticsearchSearch {
        ElasticsearchSearch::new(ElasticsearchConfig {
            url: self.url(),
            index: index.to_owned(),
            username: Some(USER.to_owned()),
            password: Some(PASSWORD.to_owned()),
        })
        .expect("valid configuration")
    }

    async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn place(id: &str, name: &str, address: Option<&str>) -> PlaceRecord {
    PlaceRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        address: address.map(str::to_owned),
        link: None,
        note: None,
        added_by_id: None,
        added_by_name: "Anna".to_owned(),
    }
}

/// Names as suggestions are grouped (case-folded): which spelling of a name wins is up to the
/// ranking of equal scores.
fn names(places: &[PlaceSuggestion]) -> Vec<String> {
    places.iter().map(|p| suggestion_key(&p.name)).collect()
}

/// The meetups the adaptor test's caller belongs to.
fn scope() -> Vec<String> {
    vec!["m1".to_owned(), "m2".to_owned()]
}

/// Waits until `query` suggests exactly `expected` (indexing is near-real-time).
async fn suggests(search: &dyn PlaceSearch, query: &str, expected: &[&str]) -> Result<()> {
    eventually(
        &format!("{query:?} to suggest {expected:?}"),
        WAIT,
        || async {
            let got = search.suggestions(query, &scope(), 10).await?;
            if names(&got) == expected {
                Ok(())
            } else {
                bail!("got {:?}", names(&got))
            }
        },
    )
    .await
}

#[tokio::test]
async fn the_elasticsearch_adaptor_indexes_searches_and_removes_on_zincsearch() -> Result<()> {
    let zinc = ZincSearch::start().await?;
    let search = zinc.search("places-adaptor");

    // The index is created with its mapping by the first call.
    search
        .place_saved("m1", &place("p1", "The Golden Hop", Some("Main Street 1")))
        .await?;
    search
        .place_saved("m2", &place("p1", "the golden  hop", None))
        .await?;
    search
        .place_saved(
            "m2",
            &place("p2", "Barley Corner", Some("Kastanienallee 3")),
        )
        .await?;
    let mapping: Value = reqwest::Client::new()
        .get(format!("{}/places-adaptor/_mapping", zinc.url()))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await?
        .json()
        .await?;
    let properties = &mapping["places-adaptor"]["mappings"]["properties"];
    assert_eq!(properties["nameKey"]["type"], "keyword", "{mapping}");
    assert_eq!(properties["name"]["type"], "text", "{mapping}");

    // Prefix of the last word, one suggestion per name although two meetups use it.
    suggests(&search, "golden ho", &["the golden hop"]).await?;
    // Fuzzy: a typo still finds it.
    suggests(&search, "goldne", &["the golden hop"]).await?;
    // By address prefix.
    suggests(&search, "kastanien", &["barley corner"]).await?;
    suggests(&search, "nothing like it", &[]).await?;
    // An empty query lists places used recently.
    let recent = search.suggestions("", &scope(), 10).await?;
    assert_eq!(recent.len(), 2, "{recent:?}");
    // Nothing from meetups outside the caller's scope.
    let secret = place("p1", "Secret Cellar", None);
    search.place_saved("m3", &secret).await?;
    let only_m3 = ["m3".to_owned()];
    eventually("m3's place to be indexed", WAIT, || async {
        let got = search.suggestions("secret", &only_m3, 10).await?;
        if names(&got) == ["secret cellar"] {
            Ok(())
        } else {
            bail!("got {:?}", names(&got))
        }
    })
    .await?;
    suggests(&search, "secret", &[]).await?;
    assert!(search.suggestions("golden", &[], 10).await?.is_empty());

    // Removing a place from one meetup keeps the name while another meetup uses it.
    search.place_removed("m2", "p1").await?;
    search.place_removed("m2", "p2").await?;
    suggests(&search, "kastanien", &[]).await?;
    suggests(&search, "golden", &["the golden hop"]).await?;
    // Removing what was never indexed is fine.
    search.place_removed("m9", "nope").await?;
    Ok(())
}

struct Api {
    base: String,
    /// The meetups (id and token) the caller belongs to, sent with every suggestion request.
    scope: std::sync::Mutex<Vec<Value>>,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Api {
    /// The API as `main` wires it with `ELASTICSEARCH_URL` set: Elasticsearch with the store as
    /// fallback.
    async fn start(search: ElasticsearchSearch) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path())?);
        let search = WithFallback::new(
            Arc::new(search),
            Arc::new(StoreSearch::new(Arc::clone(&store))),
        );
        let settings = Settings {
            write_rate_limit: Some(RateLimit {
                per_minute: 1_000_000,
                burst: 100_000,
            }),
            ..Settings::default()
        };
        let state = AppState::new(store, settings).with_search(Arc::new(search));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        Ok(Self {
            base: format!("http://{addr}/api/v1"),
            scope: std::sync::Mutex::default(),
            http: reqwest::Client::new(),
            server,
            _dir: dir,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn suggestions(&self, q: &str) -> Result<Vec<String>> {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/places/suggestions",
                None,
                Some(json!({"q": q, "meetups": self.scope.lock().expect("lock").clone()})),
            )
            .await?;
        if status != 200 {
            bail!("suggestions answered {status}: {body}");
        }
        Ok(body
            .as_array()
            .context("a list")?
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect())
    }

    async fn suggests(&self, q: &str, expected: &[&str]) -> Result<()> {
        eventually(&format!("?q={q} to suggest {expected:?}"), WAIT, || async {
            let got = self.suggestions(q).await?;
            if got == expected {
                Ok(())
            } else {
                bail!("got {got:?}")
            }
        })
        .await
    }
}

#[tokio::test]
async fn the_api_suggests_from_elasticsearch_and_falls_back_to_the_store() -> Result<()> {
    let mut zinc = ZincSearch::start().await?;
    let api = Api::start(zinc.search("places-api")).await?;

    let (status, created) = api
        .call(
            reqwest::Method::POST,
            "/meetups",
            None,
            Some(json!({
                "title": "Friday beer",
                "organizerName": "Anna",
                "timeZone": "Europe/Berlin",
                "places": [{"name": "Zum Goldenen Hirsch", "address": "Marktplatz 2"}],
            })),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    let id = created["meetup"]["id"]
        .as_str()
        .context("meetup id")?
        .to_owned();
    let admin = created["adminToken"]
        .as_str()
        .context("admin token")?
        .to_owned();
    api.scope
        .lock()
        .expect("lock")
        .push(json!({"id": id, "token": admin}));
    let (status, added) = api
        .call(
            reqwest::Method::POST,
            &format!("/meetups/{id}/places"),
            Some(&admin),
            Some(json!({"name": "Hopfenkönig", "address": "Brauhausgasse 5"})),
        )
        .await?;
    assert_eq!(status, 201, "{added}");
    let hop_id = added["id"].as_str().context("place id")?.to_owned();

    // Only Elasticsearch matches by address and forgives typos; the store matches name prefixes.
    api.suggests("marktpl", &["Zum Goldenen Hirsch"]).await?;
    api.suggests("hopfenkonig", &["Hopfenkönig"]).await?;
    api.suggests("brauhaus", &["Hopfenkönig"]).await?;

    // Removing the place from its meetup removes it from the index.
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/meetups/{id}/places/{hop_id}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 204);
    api.suggests("brauhaus", &[]).await?;

    // Elasticsearch hangs: a server on its port that accepts and never answers. A write that
    // waited for the index would take the adaptor's whole request timeout; it must not wait.
    zinc.stop().await;
    let black_hole = tokio::net::TcpListener::bind(("127.0.0.1", zinc.port)).await?;
    let hung = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = black_hole.accept().await {
            held.push(connection);
        }
    });
    let started = Instant::now();
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &format!("/meetups/{id}/places"),
            Some(&admin),
            Some(json!({"name": "Zapfhahn"})),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "a write waited {:?} for a hung search index",
        started.elapsed()
    );
    // Then it is gone for good: suggestions come from the store.
    hung.abort();
    assert_eq!(api.suggestions("zum").await?, ["Zum Goldenen Hirsch"]);
    assert_eq!(api.suggestions("zapf").await?, ["Zapfhahn"]);
    // The store knows no addresses or typos: the fallback is plain name prefixes.
    assert!(api.suggestions("marktpl").await?.is_empty());
    Ok(())
}
