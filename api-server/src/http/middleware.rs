//! Request metrics and the per-client read and write rate limits.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::client::ClientKey;
use super::problem::Problem;
use super::{RateLimit, Settings};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The process-wide Prometheus recorder (metrics has one global recorder per process).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding program); then this
        // handle simply renders nothing.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        handle
    })
}

/// Counts requests and records latency by method, matched route and status.
pub async fn track_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Labels come from fixed sets only: the route template (never the raw path) and a known
    // method name, so no client can mint new series (issue 12: made-up methods grew RSS).
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status,
    )
    .increment(1);
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The metrics label of a request method: the standard ones by name, anything else "other".
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Answers 503 problem JSON when a request takes longer than the limit. A WebSocket upgrade
/// answers at once, so a live connection is not bound by it.
pub async fn time_out(
    State(limit): State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("http_request_timeouts_total").increment(1);
            Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "This request took too long; please try again.",
            )
            .into_response()
        }
    }
}

type Buckets = Arc<DefaultKeyedRateLimiter<IpAddr>>;

fn buckets(limit: Option<RateLimit>) -> Option<Buckets> {
    let limit = limit?;
    let per_minute = NonZeroU32::new(limit.per_minute)?;
    let burst = NonZeroU32::new(limit.burst.max(1))?;
    let quota = Quota::per_minute(per_minute).allow_burst(burst);
    Some(Arc::new(DefaultKeyedRateLimiter::keyed(quota)))
}

/// Keyed token buckets over clients (see [`ClientKey`]): one for reads (GET/HEAD, WebSocket
/// upgrades included), one for every other method. A check is a hash lookup and an atomic, so
/// a flood is refused for about the price of parsing it.
#[derive(Clone)]
pub struct RateLimiter {
    reads: Option<Buckets>,
    writes: Option<Buckets>,
}

impl RateLimiter {
    pub fn new(settings: &Settings) -> Self {
        Self {
            reads: buckets(settings.read_rate_limit),
            writes: buckets(settings.write_rate_limit),
        }
    }
}

pub async fn limit_rate(
    State(limiter): State<RateLimiter>,
    request: Request,
    next: Next,
) -> Response {
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    let is_write = !is_read && *request.method() != Method::OPTIONS;
    let (bucket, kind) = match (is_read, is_write) {
        (true, _) => (&limiter.reads, "read"),
        (_, true) => (&limiter.writes, "write"),
        _ => (&None, ""),
    };
    if let Some(bucket) = bucket {
        let client = request
            .extensions()
            .get::<ClientKey>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |key| key.0);
        if let Err(not_until) = bucket.check_key(&client) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("http_rate_limited_total", "kind" => kind).increment(1);
            return Problem::rate_limited(wait.as_secs().max(1)).into_response();
        }
        // Forget idle clients now and then so the map stays small.
        if bucket.len() > 10_000 {
            bucket.retain_recent();
        }
    }
    next.run(request).await
}

/// Meetups one client may create per day (a token bucket that refills over the day).
#[derive(Clone)]
pub struct CreationQuota(Option<Buckets>);

impl CreationQuota {
    pub fn new(per_day: Option<u32>) -> Self {
        let buckets = per_day.and_then(NonZeroU32::new).and_then(|per_day| {
            let period = std::time::Duration::from_secs(24 * 3600) / per_day.get();
            Quota::with_period(period)
                .map(|quota| Arc::new(DefaultKeyedRateLimiter::keyed(quota.allow_burst(per_day))))
        });
        Self(buckets)
    }
}

pub async fn limit_creation(
    State(quota): State<CreationQuota>,
    request: Request,
    next: Next,
) -> Response {
    if let (Some(bucket), &Method::POST) = (&quota.0, request.method()) {
        let client = request
            .extensions()
            .get::<ClientKey>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |key| key.0);
        if let Err(not_until) = bucket.check_key(&client) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("http_rate_limited_total", "kind" => "create").increment(1);
            let secs = wait.as_secs().max(1);
            return Problem {
                retry_after_secs: Some(secs),
                ..Problem::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "creation-quota",
                    format!("Your address has created the most meetups allowed per day; try again in {} min.", secs.div_ceil(60)),
                )
            }
            .into_response();
        }
        if bucket.len() > 10_000 {
            bucket.retain_recent();
        }
    }
    next.run(request).await
}
