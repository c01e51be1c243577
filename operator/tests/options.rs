//! The optional parts of a platform on the local control plane: the Ingress with its own HAProxy
//! controller, Elasticsearch, Prometheus + Thanos (and a ServiceMonitor when the Prometheus
//! Operator's CRD exists), replicated Redis with Sentinels, external databases, NetworkPolicies,
//! disruption budgets and pod hardening. Each option is switched on, reaches Ready, and is switched
//! off again, after which what it created is gone (data volumes excepted).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use beer_meetup_operator::crd::{BeerMeetupPlatform, ConditionStatus};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use test_fixtures::{TestCluster, eventually};

/// Generous: the cluster shares two cores with compilers in CI.
const CONVERGE: Duration = Duration::from_secs(300);
/// How often the operator under test resyncs an unchanged platform.
const RESYNC: Duration = Duration::from_secs(2);

mod common;
use common::{
    Operator, applies_sent, create_platform, install_crd, reconcile_count, start_operator,
    wait_established, wait_ready,
};

/// A minimal stand-in for the Prometheus Operator's ServiceMonitor CRD (schema left open).
async fn install_service_monitor_crd(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "servicemonitors.monitoring.coreos.com" },
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {
                "plural": "servicemonitors", "singular": "servicemonitor",
                "kind": "ServiceMonitor", "listKind": "ServiceMonitorList"
            },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": true
                } }
            }]
        }
    }))?;
    crds.patch(
        "servicemonitors.monitoring.coreos.com",
        &PatchParams::apply("beer-meetup-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .context("applying the ServiceMonitor CRD")?;
    wait_established(&crds, "servicemonitors.monitoring.coreos.com", CONVERGE).await
}

/// resourceVersion of every namespaced object labelled for the platform, by `Kind/name`.
async fn versions(client: &Client, ns: &str, platform: &str) -> Result<BTreeSet<String>> {
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={platform}"));
    let mut out = BTreeSet::new();
    macro_rules! collect {
        ($($kind:ty),*) => {$(
            for o in Api::<$kind>::namespaced(client.clone(), ns).list(&lp).await? {
                out.insert(format!(
                    "{}/{}@{}",
                    <$kind as kube::Resource>::kind(&()),
                    o.name_any(),
                    o.resource_version().unwrap_or_default()
                ));
            }
        )*};
    }
    collect!(
        Deployment,
        StatefulSet,
        Service,
        ConfigMap,
        Secret,
        Job,
        PodDisruptionBudget,
        NetworkPolicy,
        Ingress,
        Role,
        RoleBinding,
        ServiceAccount
    );
    Ok(out)
}

/// Two more reconciles of the unchanged platform write none of its children.
async fn assert_idle(operator: &Operator, client: &Client, ns: &str, platform: &str) -> Result<()> {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = versions(client, ns, platform).await?;
    let count = reconcile_count(&operator.metrics);
    let sent = applies_sent(&operator.metrics);
    eventually("two more reconciles", CONVERGE, || async {
        ensure!(reconcile_count(&operator.metrics) >= count + 2);
        Ok(())
    })
    .await?;
    // Namespaced children are compared with the watch caches and not sent; only what is not
    // watched (a ServiceMonitor) is applied again.
    let reconciles = reconcile_count(&operator.metrics) - count;
    let resent = applies_sent(&operator.metrics) - sent;
    ensure!(
        resent <= 4 * reconciles,
        "{resent} applies sent by {reconciles} idle reconciles"
    );
    let after = versions(client, ns, platform).await?;
    let changed: Vec<_> = after.difference(&before).collect();
    ensure!(
        changed.is_empty(),
        "written by an idle reconcile: {changed:?}"
    );
    eprintln!(
        "[options] idle reconciles of {platform} wrote none of its {} children",
        after.len()
    );
    Ok(())
}

async fn patch_spec(
    api: &Api<BeerMeetupPlatform>,
    name: &str,
    spec: serde_json::Value,
) -> Result<()> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await?;
    Ok(())
}

fn condition_types(platform: &BeerMeetupPlatform) -> BTreeSet<String> {
    platform
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .filter(|c| c.status == ConditionStatus::True)
        .map(|c| c.type_.clone())
        .collect()
}

/// Names of the objects of kind `K` labelled for the platform.
async fn names_of<K>(client: &Client, ns: &str, platform: &str) -> Result<BTreeSet<String>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={platform}"));
    Ok(Api::<K>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect())
}

/// The `app.kubernetes.io/component` a selector matches.
fn selected_component(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> String {
    selector
        .and_then(|s| s.match_labels.as_ref())
        .and_then(|l| l.get("app.kubernetes.io/component").cloned())
        .unwrap_or_default()
}

/// Every pod template of the platform runs hardened: non-root, RuntimeDefault seccomp, no
/// privilege escalation (the HAProxy controller included), capabilities dropped, resource
/// requests.
fn assert_hardened(what: &str, pod: &PodSpec) -> Result<()> {
    let security = pod
        .security_context
        .clone()
        .context("pod securityContext")?;
    ensure!(
        security.run_as_non_root == Some(true),
        "{what}: runAsNonRoot"
    );
    ensure!(
        security.seccomp_profile.map(|s| s.type_).as_deref() == Some("RuntimeDefault"),
        "{what}: seccomp RuntimeDefault"
    );
    for container in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        let name = format!("{what}/{}", container.name);
        let sc = container
            .security_context
            .clone()
            .with_context(|| format!("{name}: securityContext"))?;
        ensure!(
            sc.allow_privilege_escalation == Some(false),
            "{name}: allowPrivilegeEscalation false"
        );
        let drops = sc.capabilities.and_then(|c| c.drop).unwrap_or_default();
        ensure!(drops == ["ALL"], "{name}: drops ALL capabilities");
        ensure!(
            container
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")),
            "{name}: cpu and memory requests"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn own_haproxy_is_configured_by_the_operator_and_removed_when_off() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-ingress").await;
    let operator = start_operator(client.clone(), &ns, RESYNC);
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    let class = ns.clone();
    create_platform(
        &platforms,
        "web",
        json!({
            "apiServer": { "replicas": 1 },
            "web": { "replicas": 1 },
            "mongodb": { "members": 1, "storage": { "size": "1Gi" } },
            "ingress": {
                "enabled": true,
                "host": "meetups.example.org",
                "className": class,
                "tls": { "secretName": "meetups-tls" },
                "rateLimit": { "requests": 50, "period": "10s" },
                "controller": { "replicas": 2 },
            },
        }),
    )
    .await?;
    let ready = wait_ready(&platforms, "web", CONVERGE).await?;
    let status = ready.status.clone().context("status")?;
    assert_eq!(status.url.as_deref(), Some("https://meetups.example.org/"));
    assert!(condition_types(&ready).contains("IngressReady"));
    assert_eq!(status.ingress.map(|c| c.ready), Some(2));
    assert!(
        ready.finalizers().is_empty(),
        "nothing cluster-scoped to finalize"
    );
    assert_idle(&operator, &client, &ns, "web").await?;

    // No Ingress: the platform's HAProxy reads its ConfigMap, not the API.
    assert!(names_of::<Ingress>(&client, &ns, "web").await?.is_empty());
    let config = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("web-haproxy")
        .await?;
    let cfg = config.data.clone().unwrap_or_default()["haproxy.cfg"].clone();
    for expected in [
        "timeout tunnel 1h\n".to_owned(),
        "store http_req_rate(10s)".to_owned(),
        "gt 50 }".to_owned(),
        format!("server-template api 50 web-api-pods.{ns}.svc.cluster.local:8080"),
        "bind :8443 ssl crt /etc/haproxy/tls/tls.pem".to_owned(),
    ] {
        assert!(cfg.contains(&expected), "{expected} in\n{cfg}");
    }
    let headless = Api::<Service>::namespaced(client.clone(), &ns)
        .get("web-api-pods")
        .await?;
    assert_eq!(
        headless.spec.and_then(|s| s.cluster_ip).as_deref(),
        Some("None")
    );
    let proxy = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("web-haproxy")
        .await?;
    let pod = proxy
        .spec
        .and_then(|s| s.template.spec)
        .context("proxy pod")?;
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.service_account_name, None);
    assert_hardened("web-haproxy", &pod)?;

    // No identity and no RBAC of its own; nothing cluster-wide.
    let identities = [
        names_of::<Role>(&client, &ns, "web").await?.len(),
        names_of::<RoleBinding>(&client, &ns, "web").await?.len(),
        names_of::<ServiceAccount>(&client, &ns, "web").await?.len(),
    ];
    assert_eq!(identities, [0, 0, 0]);
    let cluster_selector =
        format!("app.kubernetes.io/instance=web,beermeetup.io/platform-namespace={ns}");
    let count_cluster_scoped = || async {
        anyhow::Ok([
            Api::<ClusterRole>::all(client.clone())
                .list(&ListParams::default().labels(&cluster_selector))
                .await?
                .items
                .len(),
            Api::<ClusterRoleBinding>::all(client.clone())
                .list(&ListParams::default().labels(&cluster_selector))
                .await?
                .items
                .len(),
            Api::<IngressClass>::all(client.clone())
                .list(&ListParams::default().labels(&cluster_selector))
                .await?
                .items
                .len(),
        ])
    };
    assert_eq!(count_cluster_scoped().await?, [0, 0, 0]);
    let pdb = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
        .get("web-ingress")
        .await?;
    assert_eq!(
        selected_component(pdb.spec.as_ref().and_then(|s| s.selector.as_ref())),
        "ingress"
    );

    // The cluster's own controller instead: an Ingress naming the class, and no proxy.
    patch_spec(
        &platforms,
        "web",
        json!({ "ingress": { "controller": { "deploy": false } } }),
    )
    .await?;
    wait_ready(&platforms, "web", CONVERGE).await?;
    eventually("the Ingress to replace the proxy", CONVERGE, || async {
        let ingress = Api::<Ingress>::namespaced(client.clone(), &ns)
            .get_opt("web")
            .await?
            .context("no Ingress yet")?;
        let annotations = ingress.annotations();
        ensure!(annotations["haproxy.org/rate-limit-requests"] == "50");
        let spec = ingress.spec.clone().context("ingress spec")?;
        ensure!(spec.ingress_class_name.as_deref() == Some(class.as_str()));
        let paths: Vec<(String, String)> = spec.rules.unwrap_or_default()[0]
            .http
            .clone()
            .context("http")?
            .paths
            .into_iter()
            .map(|p| {
                (
                    p.path.unwrap_or_default(),
                    p.backend.service.map(|s| s.name).unwrap_or_default(),
                )
            })
            .collect();
        ensure!(
            paths
                == [
                    ("/api".to_owned(), "web-api".to_owned()),
                    ("/".to_owned(), "web-web".to_owned())
                ],
            "{paths:?}"
        );
        let deployments = names_of::<Deployment>(&client, &ns, "web").await?;
        ensure!(!deployments.contains("web-haproxy"), "{deployments:?}");
        let services = names_of::<Service>(&client, &ns, "web").await?;
        ensure!(
            !services.contains("web-haproxy") && !services.contains("web-api-pods"),
            "{services:?}"
        );
        Ok(())
    })
    .await?;
    assert_eq!(count_cluster_scoped().await?, [0, 0, 0]);

    // Ingress off: everything it created goes, the URL is the in-cluster one again.
    patch_spec(
        &platforms,
        "web",
        json!({ "ingress": { "enabled": false, "controller": { "deploy": true } } }),
    )
    .await?;
    let ready = wait_ready(&platforms, "web", CONVERGE).await?;
    assert!(!condition_types(&ready).contains("IngressReady"));
    assert!(
        ready
            .status
            .as_ref()
            .and_then(|s| s.url.as_deref())
            .is_some_and(|u| u.starts_with("http://web-web."))
    );
    eventually("ingress objects to be deleted", CONVERGE, || async {
        ensure!(names_of::<Ingress>(&client, &ns, "web").await?.is_empty());
        let deployments = names_of::<Deployment>(&client, &ns, "web").await?;
        ensure!(!deployments.contains("web-haproxy"), "{deployments:?}");
        let services = names_of::<Service>(&client, &ns, "web").await?;
        ensure!(!services.contains("web-haproxy"), "{services:?}");
        let configs = names_of::<ConfigMap>(&client, &ns, "web").await?;
        ensure!(!configs.contains("web-haproxy"), "{configs:?}");
        let pdbs = names_of::<PodDisruptionBudget>(&client, &ns, "web").await?;
        ensure!(!pdbs.contains("web-ingress"), "{pdbs:?}");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn search_metrics_and_replicated_redis_come_and_go() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    install_service_monitor_crd(&client).await?;
    let ns = cluster.create_namespace("bmp-options").await;
    let operator = start_operator(client.clone(), &ns, RESYNC);
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    create_platform(
        &platforms,
        "all",
        json!({
            "apiServer": { "replicas": 1 },
            "web": { "replicas": 1 },
            "mongodb": { "members": 1, "storage": { "size": "1Gi" } },
            "redis": { "mode": "replicated", "replicas": 2 },
            "elasticsearch": { "enabled": true, "storage": { "size": "2Gi" } },
            "thanos": { "enabled": true, "storage": { "size": "2Gi" } },
        }),
    )
    .await?;
    let ready = wait_ready(&platforms, "all", CONVERGE).await?;
    let conditions = condition_types(&ready);
    for condition in ["ElasticsearchReady", "MetricsReady", "RedisReady"] {
        assert!(
            conditions.contains(condition),
            "{condition} in {conditions:?}"
        );
    }
    assert_idle(&operator, &client, &ns, "all").await?;

    let statefulsets = Api::<StatefulSet>::namespaced(client.clone(), &ns);
    let replicas = |sts: &StatefulSet| sts.spec.as_ref().and_then(|s| s.replicas);
    assert_eq!(replicas(&statefulsets.get("all-redis").await?), Some(3));
    assert_eq!(
        replicas(&statefulsets.get("all-redis-sentinel").await?),
        Some(3)
    );
    assert_eq!(
        replicas(&statefulsets.get("all-elasticsearch").await?),
        Some(1)
    );
    assert_eq!(
        replicas(&statefulsets.get("all-prometheus").await?),
        Some(1)
    );
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("all-thanos-query")
        .await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    secrets.get("all-elasticsearch-credentials").await?;
    let redis_secret = secrets.get("all-redis-credentials").await?;
    assert!(
        redis_secret
            .data
            .unwrap_or_default()
            .contains_key("sentinel-urls")
    );

    // The API server is wired to Sentinel and Elasticsearch.
    let api = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("all-api")
        .await?;
    let env: BTreeSet<String> = api
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].env.clone().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.name)
        .collect();
    for name in [
        "REDIS_SENTINEL_URLS",
        "REDIS_PASSWORD",
        "ELASTICSEARCH_PASSWORD",
    ] {
        assert!(env.contains(name), "{name} in {env:?}");
    }
    assert!(!env.contains("REDIS_URL"));
    let config = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("all-api-config")
        .await?
        .data
        .unwrap_or_default();
    assert_eq!(config["REDIS_SENTINEL_MASTER"], "mymaster");
    assert!(config["ELASTICSEARCH_URL"].starts_with("http://all-elasticsearch."));

    // Prometheus reads its namespace through a Role; the ServiceMonitor CRD was found.
    Api::<Role>::namespaced(client.clone(), &ns)
        .get("all-prometheus")
        .await?;
    let monitors: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
            "servicemonitors",
        ),
    );
    let monitor = monitors.get("all-api").await.context("ServiceMonitor")?;
    assert_eq!(
        monitor.data["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
        "api"
    );

    // NetworkPolicies: only the API (and the data services' own peers) reach the data pods.
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &ns);
    for (name, target, sources) in [
        ("all-elasticsearch", "elasticsearch", vec!["api"]),
        ("all-redis", "redis", vec!["api", "redis", "redis-sentinel"]),
        (
            "all-redis-sentinel",
            "redis-sentinel",
            vec!["api", "redis", "redis-sentinel"],
        ),
        (
            "all-mongodb",
            "mongodb",
            vec!["api", "mongodb", "mongodb-init"],
        ),
    ] {
        let spec = policies.get(name).await?.spec.context("policy spec")?;
        assert_eq!(selected_component(spec.pod_selector.as_ref()), target);
        let from: Vec<String> = spec.ingress.unwrap_or_default()[0]
            .from
            .iter()
            .flatten()
            .map(|p| selected_component(p.pod_selector.as_ref()))
            .collect();
        assert_eq!(from, sources, "{name}");
    }
    let pdbs = names_of::<PodDisruptionBudget>(&client, &ns, "all").await?;
    assert!(
        pdbs.contains("all-redis") && pdbs.contains("all-redis-sentinel"),
        "{pdbs:?}"
    );

    // Every workload is hardened.
    for sts in statefulsets.list(&ListParams::default()).await? {
        let pod = sts.spec.and_then(|s| s.template.spec).context("pod")?;
        assert_hardened(&sts.metadata.name.unwrap_or_default(), &pod)?;
    }
    for d in Api::<Deployment>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?
    {
        let pod = d.spec.and_then(|s| s.template.spec).context("pod")?;
        assert_hardened(&d.metadata.name.unwrap_or_default(), &pod)?;
    }
    for job in Api::<Job>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?
    {
        let pod = job.spec.and_then(|s| s.template.spec).context("pod")?;
        assert_hardened(&job.metadata.name.unwrap_or_default(), &pod)?;
    }

    // Everything off again: the workloads, Secrets, policies and monitors go; data volumes stay.
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    let claim_names = || async {
        Ok::<BTreeSet<String>, anyhow::Error>(
            claims
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .map(ResourceExt::name_any)
                .collect(),
        )
    };
    eventually("the data volumes to be claimed", CONVERGE, || async {
        let names = claim_names().await?;
        ensure!(
            names.contains("data-all-elasticsearch-0") && names.contains("data-all-prometheus-0"),
            "{names:?}"
        );
        Ok(())
    })
    .await?;
    patch_spec(
        &platforms,
        "all",
        json!({
            "redis": { "mode": "standalone" },
            "elasticsearch": { "enabled": false },
            "thanos": { "enabled": false },
        }),
    )
    .await?;
    let ready = wait_ready(&platforms, "all", CONVERGE).await?;
    let conditions = condition_types(&ready);
    assert!(!conditions.contains("ElasticsearchReady") && !conditions.contains("MetricsReady"));
    eventually("the options' objects to be deleted", CONVERGE, || async {
        let sts = names_of::<StatefulSet>(&client, &ns, "all").await?;
        ensure!(
            sts == BTreeSet::from(["all-mongodb".to_owned()]),
            "statefulsets: {sts:?}"
        );
        let deployments = names_of::<Deployment>(&client, &ns, "all").await?;
        ensure!(!deployments.contains("all-thanos-query"), "{deployments:?}");
        ensure!(
            deployments.contains("all-redis"),
            "standalone Redis back: {deployments:?}"
        );
        let secrets = names_of::<Secret>(&client, &ns, "all").await?;
        ensure!(
            secrets.contains("all-elasticsearch-credentials"),
            "the password of the kept volume stays: {secrets:?}"
        );
        let policies = names_of::<NetworkPolicy>(&client, &ns, "all").await?;
        // The Sentinel and Elasticsearch policies go; the API server's egress policy stays.
        ensure!(
            policies
                == BTreeSet::from([
                    "all-api".to_owned(),
                    "all-mongodb".to_owned(),
                    "all-redis".to_owned()
                ]),
            "policies: {policies:?}"
        );
        let roles = names_of::<Role>(&client, &ns, "all").await?;
        ensure!(roles.is_empty(), "roles: {roles:?}");
        if monitors.get_opt("all-api").await?.is_some() {
            bail!("ServiceMonitor still there");
        }
        Ok(())
    })
    .await?;
    let names = claim_names().await?;
    assert!(
        names.contains("data-all-elasticsearch-0") && names.contains("data-all-prometheus-0"),
        "data volumes are kept: {names:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn external_databases_replace_the_deployed_ones() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-external").await;
    let _operator = start_operator(client.clone(), &ns, RESYNC);
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    create_platform(
        &platforms,
        "ext",
        json!({ "mongodb": { "members": 3, "storage": { "size": "1Gi" } } }),
    )
    .await?;
    wait_ready(&platforms, "ext", CONVERGE).await?;

    // Disruption budgets of API, web and MongoDB select their own pods.
    let pdbs = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns);
    for (name, component) in [
        ("ext-api", "api"),
        ("ext-web", "web"),
        ("ext-mongodb", "mongodb"),
    ] {
        let pdb = pdbs
            .get(name)
            .await
            .with_context(|| format!("PDB {name}"))?;
        let spec = pdb.spec.context("pdb spec")?;
        assert_eq!(selected_component(spec.selector.as_ref()), component);
        assert_eq!(
            spec.max_unavailable,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        );
    }
    let policies = names_of::<NetworkPolicy>(&client, &ns, "ext").await?;
    // The data services' policies and the API server's egress policy.
    assert_eq!(
        policies,
        BTreeSet::from([
            "ext-api".to_owned(),
            "ext-mongodb".to_owned(),
            "ext-redis".to_owned()
        ])
    );

    // NetworkPolicies can be turned off (and back on).
    patch_spec(
        &platforms,
        "ext",
        json!({ "networkPolicies": { "enabled": false } }),
    )
    .await?;
    wait_ready(&platforms, "ext", CONVERGE).await?;
    eventually("the NetworkPolicies to be deleted", CONVERGE, || async {
        let policies = names_of::<NetworkPolicy>(&client, &ns, "ext").await?;
        ensure!(policies.is_empty(), "policies: {policies:?}");
        Ok(())
    })
    .await?;
    patch_spec(
        &platforms,
        "ext",
        json!({ "networkPolicies": { "enabled": true } }),
    )
    .await?;
    wait_ready(&platforms, "ext", CONVERGE).await?;
    ensure!(names_of::<NetworkPolicy>(&client, &ns, "ext").await?.len() == 3);

    // Switch to databases the platform does not run.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "managed-databases" },
        "stringData": {
            "mongodb-uri": "mongodb+srv://user:pw@cluster0.example.net/beermeetup",
            "redis-url": "rediss://:pw@cache.example.net:6380/0",
        },
    }))?;
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await?;
    patch_spec(
        &platforms,
        "ext",
        json!({
            "mongodb": { "external": { "secretName": "managed-databases", "key": "mongodb-uri" } },
            "redis": { "external": { "secretName": "managed-databases", "key": "redis-url" } },
        }),
    )
    .await?;
    let ready = wait_ready(&platforms, "ext", CONVERGE).await?;
    assert_eq!(
        ready.status.and_then(|s| s.mongodb_members).as_deref(),
        Some("external")
    );
    eventually(
        "the in-cluster databases to be removed",
        CONVERGE,
        || async {
            let sts = names_of::<StatefulSet>(&client, &ns, "ext").await?;
            ensure!(sts.is_empty(), "statefulsets: {sts:?}");
            let deployments = names_of::<Deployment>(&client, &ns, "ext").await?;
            ensure!(
                deployments == BTreeSet::from(["ext-api".to_owned(), "ext-web".to_owned()]),
                "deployments: {deployments:?}"
            );
            let jobs = names_of::<Job>(&client, &ns, "ext").await?;
            ensure!(jobs.is_empty(), "jobs: {jobs:?}");
            let policies = names_of::<NetworkPolicy>(&client, &ns, "ext").await?;
            ensure!(policies.is_empty(), "policies: {policies:?}");
            Ok(())
        },
    )
    .await?;
    let api = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("ext-api")
        .await?;
    let env = api
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].env.clone().unwrap_or_default())
        .unwrap_or_default();
    let from = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from.clone())
            .and_then(|v| v.secret_key_ref)
            .map(|r| (r.name, r.key))
    };
    assert_eq!(
        from("MONGODB_URI"),
        Some(("managed-databases".to_owned(), "mongodb-uri".to_owned()))
    );
    assert_eq!(
        from("REDIS_URL"),
        Some(("managed-databases".to_owned(), "redis-url".to_owned()))
    );
    // The replica set's volumes and keys are kept for a way back.
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    assert_eq!(claims.items.len(), 3, "MongoDB volumes kept");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .get("ext-mongodb-credentials")
        .await
        .context("MongoDB keys kept")?;
    Ok(())
}

/// A platform of an older operator carries the cluster-scoped finalizer and labelled
/// cluster-wide objects (IngressClass, ClusterRole, ClusterRoleBinding): the operator sweeps them
/// (it may here: the test's client is an admin) and drops the finalizer, so deleting works.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_scoped_leftovers_of_older_operators_are_swept() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-finalizer").await;
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    let class = ns.clone();
    let labels = json!({
        "app.kubernetes.io/managed-by": "beer-meetup-operator",
        "app.kubernetes.io/instance": "gone",
        "beermeetup.io/platform-namespace": ns,
    });
    // As an older operator left them (created before this operator starts).
    create_platform(
        &platforms,
        "gone",
        json!({
            "apiServer": { "replicas": 1 },
            "web": { "replicas": 1 },
            "mongodb": { "members": 1, "storage": { "size": "1Gi" } },
            "ingress": {
                "enabled": true,
                "host": "gone.example.org",
                "className": class,
                "controller": { "replicas": 1, "createIngressClass": true },
            },
        }),
    )
    .await?;
    platforms
        .patch(
            "gone",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "finalizers": [beer_meetup_operator::controller::FINALIZER] } })),
        )
        .await?;
    Api::<IngressClass>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": class, "labels": labels },
                "spec": { "controller": format!("haproxy.org/ingress-controller/{class}") },
            }))?,
        )
        .await?;
    let role_name = format!("beermeetup-{ns}-gone-haproxy");
    Api::<ClusterRole>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": role_name, "labels": labels },
                "rules": [],
            }))?,
        )
        .await?;

    let _operator = start_operator(client.clone(), &ns, RESYNC);
    let selector = format!("app.kubernetes.io/instance=gone,beermeetup.io/platform-namespace={ns}");
    eventually(
        "the leftovers swept and the finalizer dropped",
        CONVERGE,
        || async {
            let platform = platforms.get("gone").await?;
            ensure!(
                platform.finalizers().is_empty(),
                "{:?}",
                platform.finalizers()
            );
            ensure!(
                Api::<IngressClass>::all(client.clone())
                    .get_opt(&class)
                    .await?
                    .is_none(),
                "IngressClass still there"
            );
            let roles = Api::<ClusterRole>::all(client.clone())
                .list(&ListParams::default().labels(&selector))
                .await?;
            ensure!(roles.items.is_empty(), "ClusterRole still there");
            Ok(())
        },
    )
    .await?;
    wait_ready(&platforms, "gone", CONVERGE).await?;
    platforms
        .delete("gone", &kube::api::DeleteParams::default())
        .await?;
    eventually("the platform to be deleted", CONVERGE, || async {
        ensure!(platforms.get_opt("gone").await?.is_none(), "still there");
        Ok(())
    })
    .await
}
