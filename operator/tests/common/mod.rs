//! Helpers shared by the integration tests that run the operator against the local control plane
//! (`cluster.rs`, `options.rs`). Each test file keeps its own `CONVERGE` budget and passes it in.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use beer_meetup_operator::crd::{BeerMeetupPlatform, ConditionStatus};
use beer_meetup_operator::metrics::Metrics;
use beer_meetup_operator::{ControllerConfig, run_controller};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::json;
use test_fixtures::eventually;
use tokio::task::JoinHandle;

/// Apply the platform CRD and wait, up to `timeout`, until it is Established.
pub async fn install_crd(client: &Client, timeout: Duration) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = BeerMeetupPlatform::crd();
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply("beer-meetup-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .context("applying the CRD (is the schema structural?)")?;
    wait_established(&crds, &name, timeout).await
}

/// Wait, up to `timeout`, until the CRD `name` is Established.
pub async fn wait_established(
    crds: &Api<CustomResourceDefinition>,
    name: &str,
    timeout: Duration,
) -> Result<()> {
    eventually(&format!("CRD {name} Established"), timeout, || async {
        let crd = crds.get(name).await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        ensure!(established, "not established yet");
        Ok(())
    })
    .await
}

/// The operator, running in this test's runtime; stopped when dropped.
pub struct Operator {
    task: JoinHandle<Result<()>>,
    pub metrics: Arc<Metrics>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Run the controller in-process, scoped to `namespace`.
pub fn start_operator(client: Client, namespace: &str, resync: Duration) -> Operator {
    // The operator's log in the test's output (shown when it fails).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("beer_meetup_operator=info")
        .try_init();
    let metrics = Arc::new(Metrics::new());
    let config = ControllerConfig {
        namespaces: vec![namespace.to_owned()],
        resync,
        converging_requeue: Duration::from_secs(3),
        ..ControllerConfig::default()
    };
    let task = tokio::spawn(run_controller(client, config, metrics.clone()));
    Operator { task, metrics }
}

/// `beer_meetup_operator_reconciles_total` as the operator's metrics report it.
pub fn reconcile_count(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("beer_meetup_operator_reconciles_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Server-side applies of children the operator sent (applies skipped as unchanged not counted).
pub fn applies_sent(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .find_map(|l| {
            l.strip_prefix("beer_meetup_operator_child_applies_total{outcome=\"applied\"} ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub async fn create_platform(
    api: &Api<BeerMeetupPlatform>,
    name: &str,
    spec: serde_json::Value,
) -> Result<BeerMeetupPlatform> {
    let platform: BeerMeetupPlatform = serde_json::from_value(json!({
        "apiVersion": "beermeetup.io/v1alpha1",
        "kind": "BeerMeetupPlatform",
        "metadata": { "name": name },
        "spec": spec,
    }))?;
    Ok(api.create(&PostParams::default(), &platform).await?)
}

/// Wait, up to `timeout`, until the platform reports Ready=True for its current generation.
pub async fn wait_ready(
    api: &Api<BeerMeetupPlatform>,
    name: &str,
    timeout: Duration,
) -> Result<BeerMeetupPlatform> {
    eventually(&format!("{name} to be Ready"), timeout, || async {
        let platform = api.get(name).await?;
        let status = platform.status.clone().context("no status yet")?;
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .context("no Ready condition")?;
        ensure!(
            ready.status == ConditionStatus::True
                && status.observed_generation == platform.metadata.generation,
            "Ready={:?} ({}: {}), observed {:?} of {:?}",
            ready.status,
            ready.reason,
            ready.message,
            status.observed_generation,
            platform.metadata.generation
        );
        Ok(platform)
    })
    .await
}
