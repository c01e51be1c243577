//! Benchmark (not a test; ignored by default): time from creating N platforms to every child
//! applied, and to every platform Ready, on the local control plane with kwok nodes.
//!
//!   cargo test -p beer-meetup-operator --test convergence_bench -- --ignored --nocapture
//!
//! "Applied" is when every platform's status has an observedGeneration: the operator writes
//! status only after it has applied every child. The controller runs in-process; memory is the
//! growth of this process's resident set while it holds N platforms in its caches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use beer_meetup_operator::crd::{BeerMeetupPlatform, ConditionStatus};
use beer_meetup_operator::metrics::Metrics;
use beer_meetup_operator::{ControllerConfig, run_controller};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};
use serde_json::json;
use test_fixtures::{ClusterOptions, TestCluster, eventually};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One member and one pod per tier: the kwok nodes and the PV pool bound the count.
fn minimal_spec() -> serde_json::Value {
    json!({
        "apiServer": { "replicas": 1 },
        "web": { "replicas": 1 },
        "mongodb": { "members": 1, "storage": { "size": "1Gi" } },
    })
}

/// Every option on: the platform's own HAProxy, Elasticsearch, Prometheus + Thanos,
/// replicated Redis with Sentinels (3 volumes per platform).
fn everything_spec(i: usize) -> serde_json::Value {
    json!({
        "apiServer": { "replicas": 1 },
        "web": { "replicas": 1 },
        "mongodb": { "members": 1, "storage": { "size": "1Gi" } },
        "redis": { "mode": "replicated", "replicas": 1 },
        "ingress": {
            "enabled": true,
            "host": format!("p{i}.example.org"),
            "rateLimit": { "requests": 100, "period": "10s" },
            "controller": { "replicas": 1, "serviceType": "ClusterIP" },
        },
        "elasticsearch": { "enabled": true, "storage": { "size": "1Gi" } },
        "thanos": { "enabled": true, "storage": { "size": "1Gi" } },
    })
}

async fn converge(
    cluster: &TestCluster,
    label: &str,
    count: usize,
    concurrency: u16,
    spec: fn(usize) -> serde_json::Value,
) -> Result<()> {
    let client = cluster.client();
    let ns = cluster
        .create_namespace(&format!("bench-{label}-{count}"))
        .await;
    let metrics = Arc::new(Metrics::new());
    let config = ControllerConfig {
        namespaces: vec![ns.clone()],
        converging_requeue: Duration::from_secs(5),
        concurrency,
        ..ControllerConfig::default()
    };
    let rss_before = rss_kib();
    let operator = tokio::spawn(run_controller(client.clone(), config, metrics.clone()));
    let api: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);

    let started = Instant::now();
    for i in 0..count {
        let platform: BeerMeetupPlatform = serde_json::from_value(json!({
            "apiVersion": "beermeetup.io/v1alpha1",
            "kind": "BeerMeetupPlatform",
            "metadata": { "name": format!("p{i}") },
            "spec": spec(i),
        }))?;
        api.create(&PostParams::default(), &platform).await?;
    }
    let created = started.elapsed();

    let timeout = Duration::from_secs(900);
    eventually("every platform applied", timeout, || async {
        let list = api.list(&ListParams::default()).await?;
        let applied = list
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.observed_generation)
                    .is_some()
            })
            .count();
        ensure!(applied == count, "{applied}/{count} applied");
        Ok(())
    })
    .await?;
    let applied = started.elapsed();
    eventually("every platform Ready", timeout, || async {
        let list = api.list(&ListParams::default()).await?;
        let ready = list
            .iter()
            .filter(|p| {
                p.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
                })
            })
            .count();
        ensure!(ready == count, "{ready}/{count} ready");
        Ok(())
    })
    .await?;
    let ready = started.elapsed();
    let rss_after = rss_kib();
    let rendered = metrics.render();
    let metric = |name: &str| {
        rendered
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let reconciles = metric("beer_meetup_operator_reconciles_total");
    // Where the time goes: reconciles run `concurrency` at a time, so the summed reconcile time
    // over the concurrency is the lower bound of the wall time the operator itself needs.
    let reconcile_seconds = metric("beer_meetup_operator_reconcile_duration_seconds_sum");
    let writes = metric("beer_meetup_operator_child_changes_total");
    let applies_sent = metric("beer_meetup_operator_child_applies_total{outcome=\"applied\"}");
    let applies_skipped = metric("beer_meetup_operator_child_applies_total{outcome=\"skipped\"}");
    println!(
        "[bench] {label} platforms={count} created={:.2}s applied={:.2}s ready={:.2}s reconciles={reconciles} reconcile_time_total={reconcile_seconds:.1}s mean_reconcile={:.3}s concurrency={concurrency} applies_sent={applies_sent} applies_skipped={applies_skipped} child_changes_after_first_apply={writes} rss_before={} MiB rss_after={} MiB",
        created.as_secs_f64(),
        applied.as_secs_f64(),
        ready.as_secs_f64(),
        reconcile_seconds / reconciles.max(1.0),
        rss_before / 1024,
        rss_after / 1024,
    );
    operator.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn operator_convergence() -> Result<()> {
    let cluster = TestCluster::start_with(ClusterOptions {
        // Kwok nodes admit 110 pods each; the four runs together hold about 400.
        nodes: 6,
        persistent_volumes: 100,
        ..ClusterOptions::default()
    })
    .await?;
    let client = cluster.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = BeerMeetupPlatform::crd();
    crds.patch(
        &crd.name_any(),
        &PatchParams::apply("bench").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    converge(&cluster, "minimal", 1, 8, |_| minimal_spec()).await?;
    converge(&cluster, "minimal", 50, 8, |_| minimal_spec()).await?;
    converge(&cluster, "everything", 1, 8, everything_spec).await?;
    converge(&cluster, "everything", 10, 8, everything_spec).await?;
    Ok(())
}

/// The 100-platform rows, on a cluster of their own (200 volumes, 1,000 pods): the operator's
/// default concurrency (8, the reference) and then 32, each in its own namespace.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn operator_convergence_100() -> Result<()> {
    let cluster = TestCluster::start_with(ClusterOptions {
        nodes: 10,
        persistent_volumes: 210,
        ..ClusterOptions::default()
    })
    .await?;
    let client = cluster.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = BeerMeetupPlatform::crd();
    crds.patch(
        &crd.name_any(),
        &PatchParams::apply("bench").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    converge(&cluster, "minimal", 100, 8, |_| minimal_spec()).await?;
    converge(&cluster, "minimal", 100, 32, |_| minimal_spec()).await?;
    Ok(())
}
