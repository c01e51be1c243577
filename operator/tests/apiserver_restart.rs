//! The operator keeps working across a kube-apiserver restart: every watch recovers on its own
//! short backoff (no shared pause), so drift and spec changes are handled within seconds of the
//! API server's return rather than at the next resync.
//!
//! A test binary of its own: the restart disturbs every client of the cluster.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use beer_meetup_operator::crd::BeerMeetupPlatform;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use test_fixtures::{TestCluster, eventually};

#[allow(dead_code)]
mod common;
use common::{create_platform, install_crd, start_operator, wait_ready};

const CONVERGE: Duration = Duration::from_secs(240);
/// What the issue asks after the API server is back.
const AFTER_RESTART: Duration = Duration::from_secs(30);
/// How long the API server stays down: long enough for every watch to fail and back off.
const DOWN_FOR: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn drift_and_spec_changes_are_handled_within_seconds_after_an_apiserver_restart() -> Result<()>
{
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-restart").await;
    // A resync far beyond the test: only the watches can bring the changes in.
    let _operator = start_operator(client.clone(), &ns, Duration::from_secs(3600));
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    create_platform(
        &platforms,
        "demo",
        json!({"mongodb": {"members": 1}, "apiServer": {"replicas": 1}, "web": {"replicas": 1}}),
    )
    .await?;
    wait_ready(&platforms, "demo", CONVERGE).await?;

    cluster.restart_apiserver(DOWN_FOR).await?;
    let back = Instant::now();

    // A fresh client: the old one's connections died with the server.
    let client = cluster.client();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    let before = services.get("demo-api").await?.metadata.uid;
    services
        .delete("demo-api", &DeleteParams::default())
        .await?;
    platforms
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"web": {"replicas": 2}}})),
        )
        .await?;
    eventually(
        "the deleted Service restored and the spec change applied",
        AFTER_RESTART,
        || async {
            let service = services.get("demo-api").await?;
            ensure!(service.metadata.uid != before, "Service not re-created yet");
            let replicas = deployments
                .get("demo-web")
                .await?
                .spec
                .and_then(|s| s.replicas);
            ensure!(replicas == Some(2), "web replicas {replicas:?}");
            Ok(())
        },
    )
    .await?;
    eprintln!(
        "[apiserver-restart] restored {:.1}s after the API server was back",
        back.elapsed().as_secs_f64()
    );
    Ok(())
}
