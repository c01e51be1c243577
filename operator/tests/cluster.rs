//! The operator against a real control plane (kube-apiserver, controller-manager with the garbage
//! collector, scheduler, kwok fake nodes that run pods and complete Jobs, a pool of PVs).
//!
//! The controller runs in-process, scoped to the test's own namespace, so tests sharing the cluster
//! do not see each other's platforms.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use beer_meetup_operator::crd::{BeerMeetupPlatform, Phase};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use test_fixtures::{TestCluster, eventually};

/// Generous: the cluster shares two cores with compilers in CI.
const CONVERGE: Duration = Duration::from_secs(240);

mod common;
use common::{
    applies_sent, create_platform, install_crd, reconcile_count, start_operator, wait_ready,
};

/// Create a platform from raw JSON, so the API server (not serde) judges the spec.
async fn create_raw(client: &Client, ns: &str, name: &str, spec: serde_json::Value) -> Result<()> {
    let resource = ApiResource::erase::<BeerMeetupPlatform>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "beermeetup.io/v1alpha1",
        "kind": "BeerMeetupPlatform",
        "metadata": { "name": name },
        "spec": spec,
    }))?;
    api.create(&PostParams::default(), &object).await?;
    Ok(())
}

/// resourceVersion of every object labelled for the platform, keyed by `Kind/name`.
async fn child_versions(client: &Client, ns: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let selector = format!("app.kubernetes.io/instance={name}");
    let lp = ListParams::default().labels(&selector);
    let mut versions = BTreeMap::new();
    macro_rules! collect {
        ($kind:ty) => {
            for o in Api::<$kind>::namespaced(client.clone(), ns)
                .list(&lp)
                .await?
            {
                versions.insert(
                    format!("{}/{}", <$kind>::kind(&()), o.name_any()),
                    o.resource_version().unwrap_or_default(),
                );
            }
        };
    }
    collect!(Deployment);
    collect!(StatefulSet);
    collect!(Service);
    collect!(ConfigMap);
    collect!(Secret);
    collect!(Job);
    collect!(PodDisruptionBudget);
    Ok(versions)
}

#[tokio::test(flavor = "multi_thread")]
async fn minimal_platform_becomes_ready_restores_children_and_is_collected() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-minimal").await;
    let operator = start_operator(client.clone(), &ns, Duration::from_secs(1));
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);

    // A minimal CR: every field defaulted by the schema.
    let created = create_platform(&platforms, "demo", json!({})).await?;
    assert_eq!(created.spec.mongodb.members, 3, "schema defaults apply");
    let ready = wait_ready(&platforms, "demo", CONVERGE).await?;
    let status = ready.status.context("status")?;
    assert_eq!(status.phase, Some(Phase::Ready));
    assert_eq!(status.ready_components.as_deref(), Some("4/4"));
    assert_eq!(status.mongodb_members.as_deref(), Some("3/3"));
    assert!(
        status
            .url
            .as_deref()
            .is_some_and(|u| u.contains("demo-web"))
    );
    assert_eq!(status.conditions.len(), 5, "Ready plus one per component");

    // Every child exists and is controlled by the platform.
    let uid = ready.metadata.uid.clone().context("uid")?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    for name in ["demo-api", "demo-web", "demo-redis"] {
        let d = deployments.get(name).await?;
        ensure!(
            d.owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true)),
            "{name} is controlled by the platform"
        );
    }
    let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .get("demo-mongodb")
        .await?;
    assert_eq!(sts.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    for name in ["demo-api", "demo-web", "demo-mongodb", "demo-redis"] {
        services
            .get(name)
            .await
            .with_context(|| format!("Service {name}"))?;
    }
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("demo-api-config")
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mongo_secret = secrets.get("demo-mongodb-credentials").await?;
    secrets.get("demo-redis-credentials").await?;
    let jobs = Api::<Job>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("app.kubernetes.io/instance=demo"))
        .await?;
    assert_eq!(jobs.items.len(), 1, "one init Job for the membership");
    Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
        .get("demo-mongodb")
        .await?;

    // A second (and third …) reconcile of the unchanged platform writes nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = child_versions(&client, &ns, "demo").await?;
    let platform_before = platforms.get("demo").await?.resource_version();
    let reconciles_before = reconcile_count(&operator.metrics);
    let applies_before = applies_sent(&operator.metrics);
    eventually("two more reconciles", CONVERGE, || async {
        ensure!(reconcile_count(&operator.metrics) >= reconciles_before + 2);
        Ok(())
    })
    .await?;
    let after = child_versions(&client, &ns, "demo").await?;
    assert_eq!(before, after, "no child was written by an idle reconcile");
    assert_eq!(
        platform_before,
        platforms.get("demo").await?.resource_version(),
        "the status was not rewritten"
    );
    // Not even a no-op apply is sent: the watch caches show every child as the operator left it.
    assert_eq!(
        applies_sent(&operator.metrics),
        applies_before,
        "an idle reconcile sends no server-side apply"
    );
    eprintln!(
        "[operator] {} reconciles of an unchanged platform wrote none of its {} children",
        reconcile_count(&operator.metrics) - reconciles_before,
        after.len()
    );

    // A deleted child Service comes back.
    let old_uid = services.get("demo-api").await?.uid();
    services
        .delete("demo-api", &DeleteParams::default())
        .await?;
    eventually("Service demo-api to be restored", CONVERGE, || async {
        let svc = services.get("demo-api").await?;
        ensure!(svc.uid() != old_uid, "still the old Service");
        Ok(())
    })
    .await?;
    // An edited child is put back.
    deployments
        .patch(
            "demo-web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 7 } })),
        )
        .await?;
    eventually(
        "Deployment demo-web back to 2 replicas",
        CONVERGE,
        || async {
            let d = deployments.get("demo-web").await?;
            ensure!(d.spec.and_then(|s| s.replicas) == Some(2));
            Ok(())
        },
    )
    .await?;

    // Deleting the platform collects its children but keeps the data volumes and their keys.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let claims_before = pvcs.list(&ListParams::default()).await?.items.len();
    assert_eq!(claims_before, 3, "one volume per member");
    platforms
        .delete("demo", &DeleteParams::foreground())
        .await?;
    eventually("children to be garbage-collected", CONVERGE, || async {
        let left = child_versions(&client, &ns, "demo").await?;
        let unexpected: Vec<_> = left
            .keys()
            .filter(|k| {
                *k != "Secret/demo-mongodb-credentials"
                    && *k != "Secret/demo-mongodb-credentials-backup"
            })
            .collect();
        ensure!(unexpected.is_empty(), "still there: {unexpected:?}");
        Ok(())
    })
    .await?;
    assert_eq!(
        pvcs.list(&ListParams::default()).await?.items.len(),
        3,
        "PersistentVolumeClaims are kept (retentionPolicy Retain)"
    );
    let kept = secrets.get("demo-mongodb-credentials").await?;
    assert_eq!(
        kept.data, mongo_secret.data,
        "credentials kept with the data"
    );
    let kept_backup = secrets.get("demo-mongodb-credentials-backup").await?;
    assert_eq!(
        kept_backup.data, mongo_secret.data,
        "and so is their backup copy"
    );
    drop(operator);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn scaling_and_spec_changes_are_followed() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-scale").await;
    let _operator = start_operator(client.clone(), &ns, Duration::from_secs(60));
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    create_platform(
        &platforms,
        "scaled",
        json!({ "mongodb": { "members": 1, "storage": { "size": "1Gi" } }, "web": { "replicas": 2 } }),
    )
    .await?;
    wait_ready(&platforms, "scaled", CONVERGE).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let job_selector = ListParams::default().labels("app.kubernetes.io/instance=scaled");
    let first_job = jobs.list(&job_selector).await?.items[0].name_any();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    pdbs.get("scaled-web")
        .await
        .context("web PDB with 2 replicas")?;

    platforms
        .patch(
            "scaled",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": {
                "mongodb": { "members": 3 },
                "apiServer": { "replicas": 3 },
                "web": { "replicas": 1 },
                "redis": { "maxMemoryPolicy": "volatile-lfu" },
            } })),
        )
        .await?;
    let ready = wait_ready(&platforms, "scaled", CONVERGE).await?;
    assert_eq!(
        ready.status.and_then(|s| s.mongodb_members).as_deref(),
        Some("3/3")
    );
    let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .get("scaled-mongodb")
        .await?;
    assert_eq!(sts.spec.and_then(|s| s.replicas), Some(3));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let api = deployments.get("scaled-api").await?;
    assert_eq!(api.spec.and_then(|s| s.replicas), Some(3));
    let redis = deployments.get("scaled-redis").await?;
    let args = redis
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].args.clone().unwrap_or_default())
        .unwrap_or_default();
    assert!(args.contains(&"volatile-lfu".to_owned()), "{args:?}");
    eventually(
        "the old init Job and the web PDB to be deleted",
        CONVERGE,
        || async {
            let names: Vec<String> = jobs
                .list(&job_selector)
                .await?
                .iter()
                .map(|j| j.name_any())
                .collect();
            ensure!(names.len() == 1 && names[0] != first_job, "jobs: {names:?}");
            if pdbs.get_opt("scaled-web").await?.is_some() {
                bail!("web PDB still there with one replica");
            }
            Ok(())
        },
    )
    .await?;
    Ok(())
}

/// API and web pinned to one node with `separateNodes`: one tier can never be placed. The status
/// says so with the scheduler's reason and what to change (it used to say "0/2 pods ready" for
/// ever — seen with the production example on three nodes, where the API's three replicas may
/// take every node first); with room for both tiers the platform turns Ready.
#[tokio::test(flavor = "multi_thread")]
async fn a_tier_without_a_node_is_reported_unschedulable_with_the_fix() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-unschedulable").await;
    let _operator = start_operator(client.clone(), &ns, Duration::from_secs(60));
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    let one_node = json!({ "kubernetes.io/hostname": "kwok-node-0" });
    create_platform(
        &platforms,
        "crowded",
        json!({
            "mongodb": { "members": 1, "storage": { "size": "1Gi" } },
            "apiServer": { "replicas": 1, "nodeSelector": one_node },
            "web": { "replicas": 1, "nodeSelector": one_node },
        }),
    )
    .await?;
    let condition = eventually(
        "API or web to be reported Unschedulable",
        CONVERGE,
        || async {
            let status = platforms
                .get("crowded")
                .await?
                .status
                .context("no status")?;
            status
                .conditions
                .iter()
                .find(|c| {
                    (c.type_ == "ApiServerReady" || c.type_ == "WebReady")
                        && c.reason == "Unschedulable"
                })
                .cloned()
                .with_context(|| format!("conditions: {:?}", status.conditions))
        },
    )
    .await?;
    for words in [
        "anti-affinity",
        "placement.separateNodes",
        "at least 2 schedulable nodes",
    ] {
        ensure!(
            condition.message.contains(words),
            "{}: {:?} lacks {words:?}",
            condition.type_,
            condition.message
        );
    }

    // Room for both tiers: unpinned, the new pods find nodes of their own. (Turning
    // `separateNodes` off works too, but the scheduler retries the pending pod only after its
    // five-minute sweep: it ignores the deletion of a pod whose anti-affinity kept it out,
    // kubernetes/kubernetes#134393.)
    platforms
        .patch(
            "crowded",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": {
                "apiServer": { "nodeSelector": null },
                "web": { "nodeSelector": null },
            } })),
        )
        .await?;
    if let Err(error) = wait_ready(&platforms, "crowded", CONVERGE).await {
        let pods = Api::<Pod>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await?;
        let lines: Vec<String> = pods
            .iter()
            .map(|p| {
                let status = p.status.clone().unwrap_or_default();
                format!(
                    "{} node={:?} phase={:?} deleting={} conditions={:?}",
                    p.name_any(),
                    p.spec.as_ref().and_then(|s| s.node_name.clone()),
                    status.phase,
                    p.metadata.deletion_timestamp.is_some(),
                    status
                        .conditions
                        .unwrap_or_default()
                        .iter()
                        .map(|c| format!("{}={} {:?}", c.type_, c.status, c.message))
                        .collect::<Vec<_>>()
                )
            })
            .collect();
        bail!("{error:#}\npods:\n{}", lines.join("\n"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_platforms_are_rejected_by_the_api_server() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-invalid").await;
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);

    let cases = [
        (
            json!({ "mongodb": { "members": 4 } }),
            "mongodb.members must be odd",
        ),
        (
            json!({ "mongodb": { "members": 9 } }),
            "spec.mongodb.members",
        ),
        (
            json!({ "apiServer": { "image": "Not An Image!" } }),
            "apiServer.image must be an image reference",
        ),
        (
            json!({ "web": { "image": "web:" } }),
            "web.image must be an image reference",
        ),
        (
            json!({ "redis": { "maxMemory": "lots" } }),
            "redis.maxMemory must be a whole number",
        ),
        (
            json!({ "redis": { "maxMemoryPolicy": "random" } }),
            "spec.redis.maxMemoryPolicy",
        ),
        (
            json!({ "apiServer": { "replicas": 51 } }),
            "spec.apiServer.replicas",
        ),
        (
            json!({ "ingress": { "enabled": true, "host": "beer.example.org", "rateLimit": {
                "requests": 100, "whitelist": ["10.0.0.0/8", "the office"],
            } } }),
            "ingress.rateLimit.whitelist entries must be IP addresses or CIDRs",
        ),
    ];
    for (i, (spec, expected)) in cases.into_iter().enumerate() {
        let name = format!("bad-{i}");
        match create_raw(&client, &ns, &name, spec.clone()).await {
            Ok(_) => bail!("{spec} was accepted"),
            Err(error) => {
                let text = format!("{error:#}");
                ensure!(
                    text.contains(expected),
                    "{spec}: expected {expected:?} in {text}"
                );
            }
        }
    }
    // The admission check on whitelist entries lets every address and network form through.
    create_raw(
        &client,
        &ns,
        "whitelisted",
        json!({ "ingress": { "enabled": true, "host": "beer.example.org", "rateLimit": {
            "requests": 100,
            "whitelist": ["10.0.0.0/8", "192.168.1.1", "fd00::/64", "::ffff:10.0.0.1", "2001:DB8::1"],
        } } }),
    )
    .await
    .context("valid whitelist entries were refused")?;
    let long = "x".repeat(41);
    let error = create_raw(&client, &ns, &long, json!({}))
        .await
        .err()
        .context("a 41-character name was accepted")?;
    ensure!(
        format!("{error:#}").contains("at most 40 characters"),
        "{error:#}"
    );

    // Immutable storage: changing the size after creation is refused with the reason.
    create_platform(&platforms, "fixed", json!({ "mongodb": { "members": 1 } })).await?;
    let error = platforms
        .patch(
            "fixed",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "mongodb": { "storage": { "size": "20Gi" } } } })),
        )
        .await
        .err()
        .context("storage size change was accepted")?;
    ensure!(
        format!("{error:#}").contains("cannot change after creation"),
        "{error:#}"
    );
    Ok(())
}
