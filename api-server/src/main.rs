//! `api-server`: the Beer Meetup API and the built web app on one port.

use std::sync::Arc;
use std::time::Duration;

use api_server::http::Settings;
use api_server::http::server::serve;
use api_server::redis_layer::RedisLayer;
#[cfg(feature = "mongodb")]
use api_server::store::MongoStore;
use api_server::store::{EmbeddedStore, InstrumentedStore, Store};
use api_server::{AppState, Config, app};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Every request allocates many small strings (slot ids in JSON maps); with glibc's malloc that
/// was about a quarter of the server's CPU per vote (issue 16 profile). mimalloc's per-thread
/// free lists make those allocations cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if config.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let store: Arc<dyn Store> = match &config.mongodb_uri {
        #[cfg(feature = "mongodb")]
        Some(uri) => {
            let store = MongoStore::connect(uri, &config.mongodb_database).await?;
            tracing::info!(database = %config.mongodb_database, "using the MongoDB store");
            Arc::new(InstrumentedStore::new(store))
        }
        #[cfg(not(feature = "mongodb"))]
        Some(_) => {
            return Err(
                "this api-server was built without MongoDB support (cargo feature \
                        `mongodb`); unset MONGODB_URI to use the embedded store, or build with \
                        default features"
                    .into(),
            );
        }
        None => {
            let store = EmbeddedStore::open(&config.data_dir)?;
            tracing::info!(data_dir = %config.data_dir.display(), "using the embedded store");
            Arc::new(InstrumentedStore::new(store))
        }
    };

    let web_dir = config.web_dir.clone();
    match &web_dir {
        Some(dir) if dir.join("index.html").is_file() => {
            tracing::info!(web_dir = %dir.display(), "serving the web app");
        }
        Some(dir) => tracing::warn!(
            web_dir = %dir.display(),
            "no index.html there: build the web app with `make web-build` (the API works without it)"
        ),
        None => tracing::info!("no --web-dir given: serving the API only"),
    }

    let settings = Settings {
        web_dir,
        ..config.settings()
    };
    let search = api_server::search::from_config(&config, Arc::clone(&store))?;
    let state = AppState::new(store, settings).with_search(search);
    let state = match config.redis_target() {
        Some(target) => {
            let timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
            let redis = RedisLayer::start(target, timeout, state.live.clone()).await?;
            state.with_redis(redis)
        }
        None => {
            tracing::info!("no Redis configured: live events stay in this process, no view cache");
            state
        }
    };

    if config.meetup_retention_days > 0 {
        let retention = Duration::from_secs(config.meetup_retention_days * 24 * 3600);
        api_server::retention::spawn_sweeper(state.clone(), retention, Duration::from_secs(3600));
        tracing::info!(
            days = config.meetup_retention_days,
            "meetups are deleted that long after their last slot"
        );
    }

    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let lifecycle = Arc::clone(&state.lifecycle);
    let live_slots = Arc::clone(&state.live_slots);
    let search = Arc::clone(&state.search);
    let stop = async move {
        shutdown_signal().await;
        // Readiness false and live connections closed with 1001 at once; in-flight requests
        // finish below.
        lifecycle.begin_shutdown();
    };
    serve(listener, app(state), config.server_limits(), stop).await?;
    // Give the live connections their close frames (and pending resyncs a moment to go out).
    let closing = tokio::time::Instant::now();
    while live_slots.total() > 0 && closing.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Index updates the stopped requests queued (Elasticsearch) go out, within a deadline.
    search.flush(SEARCH_FLUSH_DEADLINE).await;
    tracing::info!("stopped");
    Ok(())
}

/// How long a stopping replica waits for queued search-index updates (the pod's grace period
/// is longer than the 20 s for requests plus this).
const SEARCH_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
