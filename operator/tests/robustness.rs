//! One bad object never stops the operator, credentials are never silently replaced, and the
//! operator's children get no more rights than the software they run needs — on the local control
//! plane.
//!
//! Tests here share one cluster. Two of them replace the CRD for a moment (to plant an object
//! the current schema would refuse); they hold [`CRD_LOCK`] so no other test sees that CRD.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use beer_meetup_operator::crd::{BeerMeetupPlatform, Phase};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::json;
use test_fixtures::{TestCluster, eventually};

#[allow(dead_code)]
mod common;
use common::{create_platform, install_crd, start_operator, wait_ready};

/// Generous: the cluster shares two cores with compilers.
const CONVERGE: Duration = Duration::from_secs(240);
/// What the issue asks of a restored child after a disturbance.
const RESTORE: Duration = Duration::from_secs(30);

/// Held while the CRD is not the real one.
static CRD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn small() -> serde_json::Value {
    json!({"mongodb": {"members": 1}, "apiServer": {"replicas": 1}, "web": {"replicas": 1}})
}

fn dynamic_platforms(client: &Client, ns: &str) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<BeerMeetupPlatform>(&());
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// The Ready condition's `(status, reason, message)` as stored, read without decoding the spec.
async fn ready_condition(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<(String, String, String)> {
    let object = dynamic_platforms(client, ns).get(name).await?;
    let conditions = object.data["status"]["conditions"]
        .as_array()
        .cloned()
        .context("no conditions yet")?;
    let ready = conditions
        .iter()
        .find(|c| c["type"] == "Ready")
        .context("no Ready condition")?;
    let text = |key: &str| ready[key].as_str().unwrap_or_default().to_owned();
    Ok((text("status"), text("reason"), text("message")))
}

async fn wait_reason(client: &Client, ns: &str, name: &str, reason: &str) -> Result<String> {
    eventually(
        &format!("{name} Ready=False {reason}"),
        CONVERGE,
        || async {
            let (status, actual, message) = ready_condition(client, ns, name).await?;
            ensure!(
                status == "False" && actual == reason,
                "Ready={status} {actual}: {message}"
            );
            Ok(message)
        },
    )
    .await
}

/// Whether a Warning Event with `reason` regarding `name` exists in `ns`.
async fn warning_event(client: &Client, ns: &str, name: &str, reason: &str) -> Result<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    eventually(&format!("Warning Event {reason}"), RESTORE, || async {
        let found = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .context("no such Event yet")?;
        Ok(found.note.unwrap_or_default())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn null_and_non_quantity_sizes_are_refused_or_defaulted_at_admission() -> Result<()> {
    let _crd = CRD_LOCK.lock().await;
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    install_crd(&client, CONVERGE).await?;
    let ns = cluster.create_namespace("bmp-admission").await;
    let api = dynamic_platforms(&client, &ns);
    let apply = |name: &str, size: serde_json::Value| {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "beermeetup.io/v1alpha1",
            "kind": "BeerMeetupPlatform",
            "metadata": {"name": name},
            "spec": {"mongodb": {"storage": {"size": size}}},
        }))
        .expect("object");
        let api = api.clone();
        let name = name.to_owned();
        async move {
            api.patch(
                &name,
                &PatchParams::apply("gitops-tool").force(),
                &Patch::Apply(&object),
            )
            .await
        }
    };

    // The GitOps path (server-side apply) with a null: pruned, then the schema default applies —
    // what is stored is always something the operator can read.
    match apply("nullsize", serde_json::Value::Null).await {
        Ok(_) => {
            let typed: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
            let stored = typed
                .get("nullsize")
                .await
                .context("a stored platform must decode")?;
            assert_eq!(stored.spec.mongodb.storage.size.0, "10Gi");
        }
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 422, "{status:?}"),
        Err(other) => return Err(other.into()),
    }

    for bad in [json!("banana"), json!("-1Gi"), json!("10 Gi")] {
        let error = apply("badsize", bad.clone())
            .await
            .expect_err("a size that is no quantity is refused");
        let kube::Error::Api(status) = error else {
            panic!("unexpected error {error}");
        };
        assert_eq!(status.code, 422, "{bad}: {status:?}");
        assert!(
            status.message.contains("spec.mongodb.storage.size"),
            "{bad}: {}",
            status.message
        );
    }
    apply("goodsize", json!("20Gi")).await?;
    Ok(())
}

/// The real CRD with its spec schema opened up, as an older operator version might have left it.
fn permissive_crd() -> Result<CustomResourceDefinition> {
    let mut crd = BeerMeetupPlatform::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_mut()
        .and_then(|s| s.open_api_v3_schema.as_mut())
        .context("schema")?;
    let mut value = serde_json::to_value(&*schema)?;
    value["properties"]["spec"] = json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    });
    value
        .as_object_mut()
        .context("schema object")?
        .remove("x-kubernetes-validations");
    *schema = serde_json::from_value(value)?;
    Ok(crd)
}

async fn replace_crd(client: &Client, crd: &CustomResourceDefinition) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        &crd.name_any(),
        &PatchParams::apply("beer-meetup-operator-tests").force(),
        &Patch::Apply(crd),
    )
    .await?;
    common::wait_established(&crds, &crd.name_any(), CONVERGE).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_platform_degrades_only_itself_across_an_operator_restart() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    let ns = {
        let _crd = CRD_LOCK.lock().await;
        install_crd(&client, CONVERGE).await?;
        cluster.create_namespace("bmp-undecodable").await
    };
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    let operator = start_operator(client.clone(), &ns, Duration::from_secs(300));
    create_platform(&platforms, "good", small()).await?;
    wait_ready(&platforms, "good", CONVERGE).await?;

    // Plant an object the current schema refuses, bypassing it with an opened-up CRD, then put
    // the real CRD back. The stored object stays as it is.
    {
        let _crd = CRD_LOCK.lock().await;
        replace_crd(&client, &permissive_crd()?).await?;
        let planted: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "beermeetup.io/v1alpha1",
            "kind": "BeerMeetupPlatform",
            "metadata": {"name": "bad"},
            "spec": {"mongodb": {"members": "three", "storage": {"size": null}}},
        }))?;
        let created = dynamic_platforms(&client, &ns)
            .create(&PostParams::default(), &planted)
            .await;
        replace_crd(&client, &BeerMeetupPlatform::crd()).await?;
        created.context("planting the undecodable platform")?;
    }

    // The operator restarts: its first list now holds the bad object.
    drop(operator);
    let _operator = start_operator(client.clone(), &ns, Duration::from_secs(300));

    // The bad one is reported, on itself only.
    let message = wait_reason(&client, &ns, "bad", "Undecodable").await?;
    assert!(message.contains("cannot read"), "{message}");
    let phase = dynamic_platforms(&client, &ns).get("bad").await?.data["status"]["phase"].clone();
    assert_eq!(phase, json!("Degraded"));
    warning_event(&client, &ns, "bad", "Undecodable").await?;

    // The good one is still served: drift is repaired by the restarted operator.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let before = services.get("good-api").await?.metadata.uid;
    services
        .delete("good-api", &DeleteParams::default())
        .await?;
    eventually("good-api restored", RESTORE, || async {
        let service = services.get("good-api").await?;
        ensure!(service.metadata.uid != before, "not re-created yet");
        Ok(())
    })
    .await?;
    let good = platforms.get("good").await?;
    assert_eq!(good.status.and_then(|s| s.phase), Some(Phase::Ready));

    dynamic_platforms(&client, &ns)
        .delete("bad", &DeleteParams::default())
        .await?;
    Ok(())
}

fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret.data.as_ref()?.get(key).map(|v| v.0.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_credentials_come_back_with_the_same_values_or_stop_the_platform() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    let ns = {
        let _crd = CRD_LOCK.lock().await;
        install_crd(&client, CONVERGE).await?;
        cluster.create_namespace("bmp-credentials").await
    };
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    let _operator = start_operator(client.clone(), &ns, Duration::from_secs(300));
    create_platform(&platforms, "creds", small()).await?;
    wait_ready(&platforms, "creds", CONVERGE).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mongo = secrets.get("creds-mongodb-credentials").await?;
    let redis = secrets.get("creds-redis-credentials").await?;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let sts_version = statefulsets.get("creds-mongodb").await?.resource_version();

    // The originals go: restored from their backups with the values the databases use.
    for name in ["creds-mongodb-credentials", "creds-redis-credentials"] {
        secrets.delete(name, &DeleteParams::default()).await?;
    }
    eventually("credentials restored", RESTORE, || async {
        let restored_mongo = secrets.get("creds-mongodb-credentials").await?;
        let restored_redis = secrets.get("creds-redis-credentials").await?;
        ensure!(
            restored_mongo.metadata.uid != mongo.metadata.uid,
            "not re-created yet"
        );
        for key in ["root-password", "app-password", "keyfile", "uri"] {
            assert_eq!(
                secret_value(&restored_mongo, key),
                secret_value(&mongo, key),
                "MongoDB {key} kept"
            );
        }
        assert_eq!(
            secret_value(&restored_redis, "password"),
            secret_value(&redis, "password"),
            "Redis password kept"
        );
        Ok(())
    })
    .await?;
    warning_event(&client, &ns, "creds", "CredentialsRestored").await?;

    // Original and backup gone while the replica set runs: no new values, Degraded with what to
    // do, and nothing rolls.
    for name in [
        "creds-mongodb-credentials",
        "creds-mongodb-credentials-backup",
    ] {
        secrets.delete(name, &DeleteParams::default()).await?;
    }
    let message = wait_reason(&client, &ns, "creds", "CredentialsMissing").await?;
    assert!(message.contains("creds-mongodb-credentials"), "{message}");
    assert!(message.contains("Rotating credentials"), "{message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        secrets
            .get_opt("creds-mongodb-credentials")
            .await?
            .is_none(),
        "no new MongoDB credentials may be generated"
    );
    assert_eq!(
        statefulsets.get("creds-mongodb").await?.resource_version(),
        sts_version,
        "the replica set is left alone"
    );

    // The user puts the values back: the platform recovers and the backup returns.
    let mut put_back = mongo.clone();
    put_back.metadata = kube::api::ObjectMeta {
        name: Some("creds-mongodb-credentials".into()),
        labels: mongo.metadata.labels.clone(),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &put_back).await?;
    wait_ready(&platforms, "creds", CONVERGE).await?;
    let backup = secrets.get("creds-mongodb-credentials-backup").await?;
    assert_eq!(
        secret_value(&backup, "root-password"),
        secret_value(&mongo, "root-password")
    );
    Ok(())
}

async fn can_i(client: &Client, user: &str, ns: &str, verb: &str, name: &str) -> Result<bool> {
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_owned()),
                verb: Some(verb.to_owned()),
                resource: Some("secrets".to_owned()),
                name: (!name.is_empty()).then(|| name.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = reviews.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_has_no_kubernetes_identity_and_nothing_cluster_wide_is_made() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    let ns = {
        let _crd = CRD_LOCK.lock().await;
        install_crd(&client, CONVERGE).await?;
        cluster.create_namespace("bmp-privilege").await
    };
    let platforms: Api<BeerMeetupPlatform> = Api::namespaced(client.clone(), &ns);
    let operator = start_operator(client.clone(), &ns, Duration::from_secs(300));
    let class_a = format!("{ns}-a");
    let class_b = format!("{ns}-b");
    let with_ingress = |class: &str, extra: serde_json::Value| {
        let mut spec = small();
        spec["ingress"] = json!({
            "enabled": true,
            "host": "meetups.example.org",
            "className": class,
            "tls": {"secretName": "meetups-tls"},
            "controller": {"replicas": 1, "createIngressClass": true},
        });
        if let Some(controller) = extra.as_object() {
            for (key, value) in controller {
                spec["ingress"]["controller"][key] = value.clone();
            }
        }
        spec
    };
    create_platform(&platforms, "alpha", with_ingress(&class_a, json!({}))).await?;
    create_platform(&platforms, "beta", with_ingress(&class_b, json!({}))).await?;
    wait_ready(&platforms, "alpha", CONVERGE).await?;
    wait_ready(&platforms, "beta", CONVERGE).await?;

    // The internet-facing proxy mounts no token and names no ServiceAccount of its own.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &ns);
    let pod = deployments
        .get("alpha-haproxy")
        .await?
        .spec
        .and_then(|s| s.template.spec)
        .context("proxy pod")?;
    ensure!(
        pod.automount_service_account_token == Some(false),
        "token mounted"
    );
    ensure!(
        pod.service_account_name.is_none(),
        "{:?}",
        pod.service_account_name
    );
    // Its only Secret is the TLS one of the spec.
    let secrets: Vec<String> = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.secret.and_then(|s| s.secret_name))
        .collect();
    ensure!(secrets == ["meetups-tls"], "{secrets:?}");

    // No ServiceAccount of the platform's namespace may read the data credentials: neither one
    // that exists nor any other (the namespace's whole ServiceAccount group).
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), &ns);
    let mut users: Vec<String> = accounts
        .list(&Default::default())
        .await?
        .items
        .iter()
        .map(|a| format!("system:serviceaccount:{ns}:{}", a.name_any()))
        .collect();
    users.push(format!("system:serviceaccount:{ns}:alpha-haproxy"));
    for user in &users {
        for (verb, name) in [
            ("get", "alpha-mongodb-credentials"),
            ("get", "alpha-redis-credentials"),
            ("list", ""),
            ("watch", ""),
        ] {
            ensure!(
                !can_i(&client, user, &ns, verb, name).await?,
                "{user} may {verb} Secret {name:?}"
            );
        }
    }

    // Nothing cluster-scoped, whatever (deprecated) createIngressClass says.
    let classes: Api<IngressClass> = Api::all(client.clone());
    for class in [&class_a, &class_b] {
        ensure!(
            classes.get_opt(class).await?.is_none(),
            "IngressClass {class} made"
        );
    }
    for platform in ["alpha", "beta"] {
        let selector =
            format!("app.kubernetes.io/instance={platform},beermeetup.io/platform-namespace={ns}");
        let params = ListParams::default().labels(&selector);
        let roles = Api::<ClusterRole>::all(client.clone())
            .list(&params)
            .await?;
        let bindings = Api::<ClusterRoleBinding>::all(client.clone())
            .list(&params)
            .await?;
        ensure!(
            roles.items.is_empty() && bindings.items.is_empty(),
            "cluster RBAC made for {platform}"
        );
    }
    warning_event(&client, &ns, "alpha", "DeprecatedField").await?;

    // An existing class of the same name (someone else's) is never touched.
    let foreign_name = format!("{ns}-shared");
    let foreign: IngressClass = serde_json::from_value(json!({
        "metadata": {"name": foreign_name, "labels": {"owner": "someone-else"}},
        "spec": {"controller": "example.org/other-controller"},
    }))?;
    let foreign = classes.create(&PostParams::default(), &foreign).await?;
    create_platform(&platforms, "gamma", with_ingress(&foreign_name, json!({}))).await?;
    wait_ready(&platforms, "gamma", CONVERGE).await?;
    platforms.delete("gamma", &DeleteParams::default()).await?;
    eventually("gamma gone", CONVERGE, || async {
        ensure!(platforms.get_opt("gamma").await?.is_none(), "still there");
        Ok(())
    })
    .await?;
    let after = classes.get(&foreign_name).await?;
    assert_eq!(
        after.resource_version(),
        foreign.resource_version(),
        "untouched"
    );
    classes
        .delete(&foreign_name, &DeleteParams::default())
        .await?;

    // An image the installer did not allow never runs.
    create_platform(
        &platforms,
        "delta",
        with_ingress(&format!("{ns}-d"), json!({"image": "evil.example/miner:1"})),
    )
    .await?;
    let message = wait_reason(&client, &ns, "delta", "ImageNotAllowed").await?;
    assert!(message.contains("evil.example/miner:1"), "{message}");
    ensure!(
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &ns)
            .get_opt("delta-haproxy")
            .await?
            .is_none(),
        "no controller Deployment with that image"
    );

    // Drift repaired is counted.
    let changes = |metrics: &beer_meetup_operator::metrics::Metrics| {
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("beer_meetup_operator_child_changes_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = changes(&operator.metrics);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .delete("alpha-web", &DeleteParams::default())
        .await?;
    eventually("the restore counted as a change", RESTORE, || async {
        services.get("alpha-web").await?;
        ensure!(changes(&operator.metrics) > before, "not counted");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_releases_the_lease() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    let ns = {
        let _crd = CRD_LOCK.lock().await;
        install_crd(&client, CONVERGE).await?;
        cluster.create_namespace("bmp-lease").await
    };
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_beer-meetup-operator"))
        .args([
            "run",
            "--namespace",
            &ns,
            "--lease-namespace",
            &ns,
            "--identity",
            "lease-test",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .kill_on_drop(true)
        .spawn()?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let holder = || async {
        Ok::<_, anyhow::Error>(
            leases
                .get_opt("beer-meetup-operator")
                .await?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity),
        )
    };
    eventually("the operator holds the Lease", CONVERGE, || async {
        ensure!(holder().await?.as_deref() == Some("lease-test"), "not yet");
        Ok(())
    })
    .await?;
    let pid = operator.id().context("pid")?;
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    ensure!(signalled.success(), "kill -TERM {pid}");
    let exited = tokio::time::timeout(Duration::from_secs(20), operator.wait()).await;
    ensure!(
        exited.is_ok(),
        "the operator did not exit within 20 s of SIGTERM"
    );
    let holder_after = holder().await?;
    ensure!(
        holder_after.as_deref().is_none_or(str::is_empty),
        "the Lease is still held by {holder_after:?} after a clean exit"
    );
    Ok(())
}

/// A signal that arrives before the first list of platforms must still end the operator:
/// kube-runtime parks its runner until that list is in, and stops watching once shutdown starts.
/// An already-finished shutdown future is the earliest possible signal, every time.
#[tokio::test]
async fn a_shutdown_before_the_first_list_ends_the_controller() -> Result<()> {
    let cluster = TestCluster::shared().await;
    let client = cluster.client();
    let ns = {
        let _crd = CRD_LOCK.lock().await;
        install_crd(&client, CONVERGE).await?;
        cluster.create_namespace("bmp-early-stop").await
    };
    let config = beer_meetup_operator::ControllerConfig {
        namespaces: vec![ns],
        ..beer_meetup_operator::ControllerConfig::default()
    };
    let metrics = std::sync::Arc::new(beer_meetup_operator::metrics::Metrics::new());
    let stopped = tokio::time::timeout(
        Duration::from_secs(20),
        beer_meetup_operator::run_controller_until(client, config, metrics, async {}),
    )
    .await;
    ensure!(
        stopped.is_ok(),
        "the controller did not stop within 20 s of a shutdown that came before its first list"
    );
    Ok(())
}
