//! HTTP layer: router, shared state, and the helpers every handler uses.

pub mod client;
pub mod extract;
pub mod handlers;
pub mod headers;
pub mod lifecycle;
pub mod live;
pub mod live_slots;
pub mod middleware;
pub mod openapi;
pub mod problem;
pub mod secrets;
pub mod server;
pub mod write_path;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, Utc};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::domain::ids::{hash_matches, hash_token, is_valid_id};
use crate::domain::{
    self, DomainError, Identity, MeetupRecord, MeetupView, ParticipantRecord, PlaceRecord,
    Principal, Resource,
};
use crate::events::{BroadcastHub, Event, EventSink};
use crate::redis_layer::{CachedView, RedisLayer};
use crate::search::{PlaceSearch, StoreSearch};
use crate::store::Store;
use crate::view_cache::{LocalViews, ViewJson};
use extract::Bearer;
use problem::Problem;

/// How many times a meetup-document change is retried when another write won the race.
const MAX_CHANGE_ATTEMPTS: usize = 16;

/// Write rate limit per client IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

/// Caps on live (WebSocket) connections, so one client or one meetup cannot hold a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLimits {
    /// Open live connections per client (see [`client::ClientKey`]).
    pub per_client: usize,
    /// Open live connections per meetup on this replica.
    pub per_meetup: usize,
    /// A client that has not taken its snapshot within this long is closed.
    pub snapshot_deadline: Duration,
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self {
            per_client: 32,
            per_meetup: 500,
            snapshot_deadline: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_body_bytes: usize,
    /// `None` turns the write limit off.
    pub write_rate_limit: Option<RateLimit>,
    /// GET/HEAD per client (WebSocket upgrades included); `None` turns it off.
    pub read_rate_limit: Option<RateLimit>,
    /// Proxies whose X-Forwarded-For entries are believed (none by default).
    pub trusted_proxies: client::TrustedProxies,
    /// Longest time a request may take (a WebSocket only for its upgrade).
    pub request_timeout: Duration,
    pub live_limits: LiveLimits,
    /// Meetups one client may create per day; `None` turns the quota off.
    pub meetups_per_client_per_day: Option<u32>,
    /// Built web app; `None` or a missing folder serves a hint instead.
    pub web_dir: Option<PathBuf>,
    /// Public address of the web app (links in calendar files); `None`: from the request.
    pub public_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            write_rate_limit: Some(RateLimit {
                per_minute: 300,
                burst: 60,
            }),
            read_rate_limit: Some(RateLimit {
                per_minute: 1200,
                burst: 200,
            }),
            trusted_proxies: client::TrustedProxies::default(),
            request_timeout: Duration::from_secs(30),
            live_limits: LiveLimits::default(),
            meetups_per_client_per_day: Some(100),
            web_dir: None,
            public_url: None,
        }
    }
}

/// Everything a handler needs. Cheap to clone.
/// Concurrent view builds per replica (see [`AppState::view_builds`]).
pub const VIEW_BUILD_STRIPES: usize = 8;

fn view_build_stripe(meetup_id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meetup_id.hash(&mut hasher);
    (hasher.finish() % VIEW_BUILD_STRIPES as u64) as usize
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Every successful write is published here, after it is stored. By default this is
    /// `live` itself; a replacement (e.g. Redis fan-out across replicas) must in turn deliver
    /// every event to `live` so local WebSocket clients see it.
    pub events: Arc<dyn EventSink>,
    /// Local fan-out that WebSocket connections subscribe to.
    pub live: Arc<BroadcastHub>,
    pub settings: Arc<Settings>,
    /// Cache and cross-replica fan-out; `None` without Redis.
    pub redis: Option<Arc<RedisLayer>>,
    /// Place suggestions: the store, or Elasticsearch with the store as fallback.
    pub search: Arc<dyn PlaceSearch>,
    /// Open live connections per client and per meetup.
    pub live_slots: Arc<live_slots::LiveSlots>,
    /// Shutdown state: readiness and live connections follow it.
    pub lifecycle: Arc<lifecycle::Lifecycle>,
    /// Serialized views by revision, shared by GETs, WebSocket snapshots and the Redis fill.
    pub views: LocalViews,
    /// Failed PIN attempts and the argon2 slots (see [`secrets`]).
    pub reclaims: Arc<secrets::ReclaimGuard>,
    /// Who may build a view now: one build per meetup at a time (the others wait and take its
    /// result from `views`), and at most [`VIEW_BUILD_STRIPES`] at once per replica. Without
    /// it, every request that arrives right after a write builds its own copy of the view
    /// (tens of MiB at the limits), so a GET flood multiplies memory by its concurrency.
    pub view_builds: Arc<[tokio::sync::Mutex<()>; VIEW_BUILD_STRIPES]>,
}

impl AppState {
    /// State with the in-process hub as the event sink.
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Self {
        let live = Arc::new(BroadcastHub::default());
        let search = Arc::new(StoreSearch::new(Arc::clone(&store)));
        let live_slots = Arc::new(live_slots::LiveSlots::new(settings.live_limits));
        Self {
            store,
            live_slots,
            lifecycle: Arc::default(),
            search,
            events: live.clone(),
            live,
            settings: Arc::new(settings),
            redis: None,
            views: LocalViews::default(),
            reclaims: Arc::default(),
            view_builds: Arc::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
        }
    }

    /// Uses Redis for the view cache and for fan-out across replicas. The layer must deliver
    /// into this state's `live` hub (see [`RedisLayer::start`]).
    pub fn with_redis(mut self, redis: RedisLayer) -> Self {
        self.events = redis.fanout.clone();
        self.redis = Some(Arc::new(redis));
        self
    }

    /// The meetup's view as JSON with its revision. Served from the in-process view cache when
    /// its entry is the store's current revision, else from Redis (same check), else built from
    /// one read of the store, serialized once and kept for every later reader.
    pub async fn view_json(&self, id: &str) -> Result<CachedView, Problem> {
        if !is_valid_id(id) {
            return Err(Problem::meetup_not_found(id));
        }
        let stamp = self
            .store
            .view_stamp(id)
            .await?
            .ok_or_else(|| Problem::meetup_not_found(id))?;
        let now = Utc::now();
        if let Some(json) = self.views.get(id, &stamp, now) {
            return Ok(CachedView {
                revision: stamp.revision,
                json,
            });
        }
        let _building = self.view_builds[view_build_stripe(id)].lock().await;
        // Whoever held the lock may have built this very revision meanwhile.
        if let Some(json) = self.views.get(id, &stamp, Utc::now()) {
            return Ok(CachedView {
                revision: stamp.revision,
                json,
            });
        }
        let cache = self.redis.as_ref().map(|redis| &redis.cache);
        // A Redis copy is served only at the store's current revision: a lost invalidation, an
        // evicted key or a failover can cost a rebuild, never show an older state (issue 13).
        if let Some(cache) = cache
            && let Some(cached) = cache.get(id).await
        {
            if cached.revision == stamp.revision {
                self.views
                    .put(id, cached.revision, now, cached.json.clone());
                return Ok(cached);
            }
            metrics::counter!("cache_stale_total").increment(1);
        }
        let state = self
            .store
            .meetup_state(id)
            .await?
            .ok_or_else(|| Problem::meetup_not_found(id))?;
        let built_at = Utc::now();
        let view = domain::meetup_view(&state.meetup, state.participants, state.comments, built_at);
        let json = ViewJson::from(
            serde_json::to_string(&view)
                .map_err(|_| Problem::internal("Something went wrong on our side."))?,
        );
        self.views.put(id, view.revision, built_at, json.clone());
        if let Some(cache) = cache {
            cache.fill(&view, json.as_str());
        }
        Ok(CachedView {
            revision: view.revision,
            json,
        })
    }

    /// Replaces the event sink (the hub stays the subscription point for WebSockets).
    pub fn with_event_sink(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// Replaces the place search (see `search::from_config`).
    pub fn with_search(mut self, search: Arc<dyn PlaceSearch>) -> Self {
        self.search = search;
        self
    }

    pub async fn load_meetup(&self, id: &str) -> Result<MeetupRecord, Problem> {
        if !is_valid_id(id) {
            return Err(Problem::meetup_not_found(id));
        }
        self.store
            .meetup(id)
            .await?
            .ok_or_else(|| Problem::meetup_not_found(id))
    }

    pub async fn load_participant(
        &self,
        meetup_id: &str,
        participant_id: &str,
    ) -> Result<ParticipantRecord, Problem> {
        let found = if is_valid_id(participant_id) {
            self.store.participant(meetup_id, participant_id).await?
        } else {
            None
        };
        found.ok_or_else(|| DomainError::not_found(Resource::Participant, participant_id).into())
    }

    /// The meetup and who the bearer is in it (404 / 401), before anything else is read.
    pub async fn authenticated(
        &self,
        id: &str,
        bearer: &Bearer,
    ) -> Result<(MeetupRecord, Principal), Problem> {
        let meetup = self.load_meetup(id).await?;
        let principal = self.authenticate(&meetup, bearer).await?;
        Ok((meetup, principal))
    }

    /// Admin token, or the token of one of this meetup's participants; otherwise 401.
    pub async fn authenticate(
        &self,
        meetup: &MeetupRecord,
        bearer: &Bearer,
    ) -> Result<Principal, Problem> {
        let Some(hash) = participant_token_hash(meetup, bearer)? else {
            return Ok(Principal::Admin);
        };
        match self.store.participant_by_token(&meetup.id, &hash).await? {
            Some(p) if hash_matches(&hash, &p.token_hash) => {
                Ok(Principal::Participant(Box::new(p)))
            }
            _ => Err(Problem::unauthorized()),
        }
    }

    /// Like [`Self::authenticate`], but only who is asking: no participant record is read or
    /// decoded (for writes whose rules need no more, like a vote).
    pub async fn identify(
        &self,
        meetup: &MeetupRecord,
        bearer: &Bearer,
    ) -> Result<Identity, Problem> {
        let Some(hash) = participant_token_hash(meetup, bearer)? else {
            return Ok(Identity::Admin);
        };
        self.store
            .participant_id_by_token(&meetup.id, &hash)
            .await?
            .map(Identity::Participant)
            .ok_or_else(Problem::unauthorized)
    }

    /// The assembled view of a meetup as stored now.
    pub async fn view(&self, meetup: &MeetupRecord) -> Result<MeetupView, Problem> {
        let (participants, comments) = tokio::try_join!(
            self.store.participants(&meetup.id),
            self.store.comments(&meetup.id)
        )?;
        Ok(domain::meetup_view(
            meetup,
            participants,
            comments,
            Utc::now(),
        ))
    }

    /// Applies a domain rule to the meetup document with optimistic concurrency: if another
    /// write bumped the revision in between, re-read and apply the rule again.
    pub async fn change_meetup<T>(
        &self,
        id: &str,
        bearer: &Bearer,
        change: impl FnMut(
            &MeetupRecord,
            &Principal,
            DateTime<Utc>,
        ) -> Result<(MeetupRecord, T), DomainError>,
    ) -> Result<(MeetupRecord, T), Problem> {
        let meetup = self.load_meetup(id).await?;
        let principal = self.authenticate(&meetup, bearer).await?;
        self.change_authenticated(meetup, &principal, change).await
    }

    /// [`Self::change_meetup`] for a meetup already loaded and a caller already authenticated
    /// (handlers authenticate before they parse the body).
    pub async fn change_authenticated<T>(
        &self,
        mut meetup: MeetupRecord,
        principal: &Principal,
        mut change: impl FnMut(
            &MeetupRecord,
            &Principal,
            DateTime<Utc>,
        ) -> Result<(MeetupRecord, T), DomainError>,
    ) -> Result<(MeetupRecord, T), Problem> {
        let id = meetup.id.clone();
        for attempt in 0..MAX_CHANGE_ATTEMPTS {
            let (mut next, value) = change(&meetup, principal, Utc::now())?;
            next.doc_version = meetup.doc_version;
            match self.store.replace_meetup(&next).await? {
                Some(revision) => {
                    next.revision = revision;
                    next.doc_version += 1;
                    return Ok((next, value));
                }
                None => {
                    // Let the winner finish its write before looking again.
                    let backoff = 2_u64.saturating_pow(attempt.min(6) as u32);
                    tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                    meetup = self.load_meetup(&id).await?;
                }
            }
        }
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "This meetup is changing very fast right now; please try again.",
        ))
    }

    /// Invalidates and publishes in one step, for writes whose event is ready at commit
    /// time (see [`write_path`]).
    pub async fn publish(&self, meetup_id: &str, revision: i64, event: Event) {
        self.committed(meetup_id, revision).await.publish(event);
    }

    /// Best effort: a failed suggestion write must not fail the user's request.
    pub async fn remember_place(&self, meetup_id: &str, place: &PlaceRecord) {
        if let Err(error) = self.search.place_saved(meetup_id, place).await {
            tracing::warn!(%error, "could not remember place for suggestions");
        }
    }

    /// Best effort, like `remember_place`.
    pub async fn forget_place(&self, meetup_id: &str, place_id: &str) {
        if let Err(error) = self.search.place_removed(meetup_id, place_id).await {
            tracing::warn!(%error, "could not drop place from suggestions");
        }
    }
}

/// The whole HTTP surface: `/api/v1/...`, `/api/openapi.json`, health, metrics and the web app.
pub fn app(state: AppState) -> Router {
    // Install the recorder before the first request so no early metric is dropped.
    middleware::metrics_handle();
    let settings = Arc::clone(&state.settings);
    let v1 = Router::new()
        .route(
            "/meetups",
            post(handlers::create_meetup).route_layer(axum::middleware::from_fn_with_state(
                middleware::CreationQuota::new(settings.meetups_per_client_per_day),
                middleware::limit_creation,
            )),
        )
        .route(
            "/meetups/{id}",
            get(handlers::get_meetup)
                .patch(handlers::patch_meetup)
                .delete(handlers::delete_meetup),
        )
        .route("/meetups/{id}/places", post(handlers::add_place))
        .route(
            "/meetups/{id}/places/{place_id}",
            patch(handlers::patch_place).delete(handlers::delete_place),
        )
        .route("/meetups/{id}/participants", post(handlers::join_meetup))
        .route("/meetups/{id}/participants/me", get(handlers::get_me))
        .route("/meetups/{id}/participants/reclaim", post(secrets::reclaim))
        .route(
            "/meetups/{id}/participants/{participant_id}/secret",
            axum::routing::put(secrets::put_secret).delete(secrets::delete_secret),
        )
        .route(
            "/meetups/{id}/participants/{participant_id}",
            patch(handlers::patch_participant).delete(handlers::delete_participant),
        )
        .route(
            "/meetups/{id}/comments",
            get(handlers::list_comments).post(handlers::add_comment),
        )
        .route(
            "/meetups/{id}/comments/{comment_id}",
            axum::routing::delete(handlers::delete_comment),
        )
        .route("/meetups/{id}/finalize", post(handlers::finalize))
        .route("/meetups/{id}/event.ics", get(handlers::event_ics))
        .route("/meetups/{id}/live", get(live::live))
        .route(
            "/places/suggestions",
            get(handlers::place_suggestions).post(handlers::suggest_places),
        );

    let api = Router::new()
        .nest("/v1", v1)
        .route("/openapi.json", get(openapi::serve))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            middleware::RateLimiter::new(&settings),
            middleware::limit_rate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(settings.trusted_proxies.clone()),
            client::identify_client,
        ));

    let router = Router::new()
        .nest("/api", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    let router = with_web_app(router, settings.web_dir.as_ref());

    router
        .layer(axum::middleware::from_fn_with_state(
            settings.request_timeout,
            middleware::time_out,
        ))
        .layer(axum::middleware::from_fn(middleware::track_metrics))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_panic| {
            Problem::internal("Something went wrong on our side.").into_response()
        }))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// `Cache-Control` of the built files: Vite names everything under `assets/` by its content
/// hash, so those never change; `index.html` (and the SPA routes it answers) always revalidates.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

fn with_web_app(router: Router<AppState>, web_dir: Option<&PathBuf>) -> Router<AppState> {
    match web_dir {
        Some(dir) if dir.join("index.html").is_file() => {
            let web = Router::new()
                // A missing hashed file is a 404, not index.html (which would be cached as JS).
                .nest_service("/assets", ServeDir::new(dir.join("assets")))
                // Client-side routes (e.g. /m/abc) get index.html so deep links work.
                .fallback_service(
                    ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html"))),
                )
                .layer(axum::middleware::from_fn(web_cache_headers))
                .layer(CompressionLayer::new().gzip(true));
            router.merge(web)
        }
        _ => router.fallback(web_app_missing),
    }
}

/// Hashed assets are kept for a year; everything else of the web app revalidates.
async fn web_cache_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let ok = response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED;
    let value = match (is_asset, ok) {
        (true, true) => IMMUTABLE,
        (true, false) => "no-store",
        (false, _) => REVALIDATE,
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static(value),
    );
    response
}

async fn web_app_missing() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "The web app is not built here. Run `make run` (it builds web/dist), or use the API under /api/v1.\n",
    )
        .into_response()
}

async fn api_not_found() -> Problem {
    Problem::not_found(
        "There is no such API route. The API lives under /api/v1; see /api/openapi.json.",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "This route does not accept that method; see /api/openapi.json.",
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<AppState>) -> Response {
    if app.lifecycle.is_stopping() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "This replica is shutting down.",
        )
        .into_response();
    }
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                format!("The {} store is not reachable.", app.store.backend()),
            )
            .into_response()
        }
    }
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        middleware::metrics_handle().render(),
    )
        .into_response()
}

/// The hash of the bearer token when it is not the meetup's admin token (`None` when it is); 401
/// without a token.
fn participant_token_hash(
    meetup: &MeetupRecord,
    bearer: &Bearer,
) -> Result<Option<String>, Problem> {
    let token = bearer.0.as_deref().ok_or_else(Problem::unauthorized)?;
    let hash = hash_token(token);
    Ok((!hash_matches(&hash, &meetup.admin_token_hash)).then_some(hash))
}
