//! Request metrics and the per-client write rate limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::Settings;
use super::problem::Problem;

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
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "http_requests_total",
        "method" => method.clone(),
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

/// Keyed token bucket over client IPs; only non-read methods spend tokens.
#[derive(Clone)]
pub struct WriteLimiter {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    trust_forwarded_for: bool,
}

impl WriteLimiter {
    pub fn new(settings: &Settings) -> Self {
        let limiter = settings.write_rate_limit.and_then(|limit| {
            let per_minute = NonZeroU32::new(limit.per_minute)?;
            let burst = NonZeroU32::new(limit.burst.max(1))?;
            let quota = Quota::per_minute(per_minute).allow_burst(burst);
            Some(Arc::new(DefaultKeyedRateLimiter::keyed(quota)))
        });
        Self {
            limiter,
            trust_forwarded_for: settings.trust_forwarded_for,
        }
    }

    fn client_ip(&self, request: &Request) -> IpAddr {
        if self.trust_forwarded_for {
            let forwarded = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if let Some(ip) = forwarded {
                return ip;
            }
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
    }
}

pub async fn limit_writes(
    State(limiter): State<WriteLimiter>,
    request: Request,
    next: Next,
) -> Response {
    let is_write = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if let (true, Some(bucket)) = (is_write, &limiter.limiter) {
        let ip = limiter.client_ip(&request);
        if let Err(not_until) = bucket.check_key(&ip) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("http_rate_limited_total").increment(1);
            return Problem::rate_limited(wait.as_secs().max(1)).into_response();
        }
        // Forget idle clients now and then so the map stays small.
        if bucket.len() > 10_000 {
            bucket.retain_recent();
        }
    }
    next.run(request).await
}
