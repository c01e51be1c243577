//! Prometheus metrics of the operator and the small HTTP server for `/metrics` and `/healthz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type ReasonLabels = Vec<(String, String)>;

/// Counters and timings of reconciliations.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<ReasonLabels, Counter>,
    duration: Histogram,
    writes: Counter,
    applies: Family<ReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("beer_meetup_operator");
        let reconciles = Counter::default();
        let failures = Family::<ReasonLabels, Counter>::default();
        // 5 ms … ~20 s: a no-op reconcile is a few requests, a first one a few dozen.
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        let writes = Counter::default();
        let applies = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciliations of BeerMeetupPlatforms",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Failed reconciliations by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconciliation took",
            duration.clone(),
        );
        registry.register(
            "child_changes",
            "Child objects created, changed or deleted (no-op applies are not counted)",
            writes.clone(),
        );
        registry.register(
            "child_applies",
            "Children per reconcile: applied (a request, possibly a no-op on the server) or \
             skipped because the cached live object already matched",
            applies.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
            writes,
            applies,
        }
    }

    pub fn reconciled(&self, took: Duration) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn failed(&self, reason: &str) {
        self.failures
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }

    /// A server-side apply of a child was sent.
    pub fn apply_sent(&self) {
        self.apply_outcome("applied");
    }

    /// A child's apply was skipped: its cached live object already matched.
    pub fn apply_skipped(&self) {
        self.apply_outcome("skipped");
    }

    fn apply_outcome(&self, outcome: &str) {
        self.applies
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
    }

    pub fn child_changed(&self) {
        self.writes.inc();
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// The router for `/metrics` and `/healthz`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .with_state(metrics)
}

/// Serve `/metrics` and `/healthz` until the process ends.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics and /healthz");
    axum::serve(listener, router(metrics)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric() {
        let m = Metrics::new();
        m.reconciled(Duration::from_millis(12));
        m.failed("apply");
        m.child_changed();
        m.apply_sent();
        m.apply_skipped();
        let text = m.render();
        assert!(
            text.contains("beer_meetup_operator_reconciles_total 1"),
            "{text}"
        );
        assert!(text.contains("beer_meetup_operator_reconcile_failures_total{reason=\"apply\"} 1"));
        assert!(text.contains("beer_meetup_operator_reconcile_duration_seconds_count 1"));
        assert!(text.contains("beer_meetup_operator_child_changes_total 1"));
        assert!(text.contains("beer_meetup_operator_child_applies_total{outcome=\"applied\"} 1"));
        assert!(text.contains("beer_meetup_operator_child_applies_total{outcome=\"skipped\"} 1"));
    }
}
