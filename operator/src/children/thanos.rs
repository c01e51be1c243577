//! `spec.thanos`: Prometheus (scraping the annotated pods of the namespace through
//! `kubernetes_sd`) with a Thanos sidecar, Thanos Query in front of it, and — when the Prometheus
//! Operator's ServiceMonitor CRD is installed — a ServiceMonitor for the API server.
//!
//! Prometheus reads pods, endpoints and services of its own namespace only: a ServiceAccount with a
//! Role, never a ClusterRole. With an object-storage Secret the sidecar uploads blocks, for which
//! Prometheus must cut fixed 2-hour blocks (`min/max-block-duration=2h`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, KeyToPath, PodSpec, PodTemplateSpec,
    SecretVolumeSource, Service, ServiceAccount, ServiceSpec, Volume,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta};

use super::Child;
use super::common::{self, BuildContext};
use crate::images;
use crate::names::Component;

pub const PROMETHEUS_PORT: i32 = 9090;
pub const GRPC_PORT: i32 = 10901;
pub const SIDECAR_HTTP_PORT: i32 = 10902;
/// `nobody`, the user of the Prometheus image; Thanos runs as any uid.
const METRICS_UID: i64 = 65534;
const DATA_DIR: &str = "/prometheus";
const CONFIG_DIR: &str = "/etc/prometheus";
/// External label that tells Prometheus replicas apart (Thanos Query deduplicates on it).
pub const REPLICA_LABEL: &str = "prometheus_replica";

/// The ServiceMonitor kind of the Prometheus Operator.
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// Name of the ServiceMonitor CRD, looked up to decide whether to create ServiceMonitors.
pub const SERVICE_MONITOR_CRD: &str = "servicemonitors.monitoring.coreos.com";

/// Name of the Prometheus config map.
pub fn config_name(ctx: &BuildContext<'_>) -> String {
    format!("{}-prometheus-config", ctx.names.platform)
}

/// In-cluster URL of Thanos Query (the PromQL endpoint to point Grafana at).
pub fn query_url(ctx: &BuildContext<'_>) -> String {
    format!(
        "http://{}.{}.svc.cluster.local:{PROMETHEUS_PORT}",
        ctx.names.component(Component::ThanosQuery),
        ctx.names.namespace
    )
}

pub fn build(ctx: &BuildContext<'_>, service_monitors: bool) -> Vec<Child> {
    if !ctx.spec.thanos.enabled {
        return Vec::new();
    }
    let name = ctx.names.component(Component::Prometheus);
    let query = ctx.names.component(Component::ThanosQuery);
    let mut children = vec![
        Child::ServiceAccount(ServiceAccount {
            metadata: ctx.meta(&name, Component::Prometheus),
            ..ServiceAccount::default()
        }),
        Child::Role(role(ctx, &name)),
        Child::RoleBinding(role_binding(ctx, &name)),
        Child::ConfigMap(config_map(ctx)),
        Child::Service(prometheus_service(ctx, &name)),
        Child::Service(query_service(ctx, &query)),
        Child::StatefulSet(prometheus(ctx, &name)),
        Child::Deployment(query_deployment(ctx, &query, &name)),
    ];
    if let Some(pdb) = common::disruption_budget(
        ctx,
        Component::ThanosQuery,
        ctx.spec.thanos.query_replicas,
        2,
    ) {
        children.push(Child::PodDisruptionBudget(pdb));
    }
    if service_monitors {
        children.push(Child::ServiceMonitor(api_service_monitor(ctx)));
    }
    children
}

/// The pods, endpoints and services of the namespace, read-only: all `kubernetes_sd` needs.
pub fn rules() -> Vec<PolicyRule> {
    vec![PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![
            "pods".to_owned(),
            "endpoints".to_owned(),
            "services".to_owned(),
        ]),
        verbs: vec!["get".to_owned(), "list".to_owned(), "watch".to_owned()],
        ..PolicyRule::default()
    }]
}

fn role(ctx: &BuildContext<'_>, name: &str) -> Role {
    Role {
        metadata: ctx.meta(name, Component::Prometheus),
        rules: Some(rules()),
    }
}

fn role_binding(ctx: &BuildContext<'_>, name: &str) -> RoleBinding {
    RoleBinding {
        metadata: ctx.meta(name, Component::Prometheus),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: name.to_owned(),
            namespace: Some(ctx.names.namespace.clone()),
            ..Subject::default()
        }]),
    }
}

/// `prometheus.yml`: every pod of the namespace annotated `prometheus.io/scrape: "true"` (the API
/// server, the platform's HAProxy, the operator when it runs here), on the annotated port and path.
pub fn prometheus_config(ctx: &BuildContext<'_>) -> String {
    let ns = &ctx.names.namespace;
    let platform = &ctx.names.platform;
    let interval = &ctx.spec.thanos.scrape_interval;
    let replica = format!("{}-0", ctx.names.component(Component::Prometheus));
    format!(
        r#"global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
  external_labels:
    platform: {platform}
    namespace: {ns}
    {REPLICA_LABEL}: {replica}
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        namespaces:
          names: [{ns}]
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        action: keep
        regex: "true"
      - source_labels: [__meta_kubernetes_pod_phase]
        action: drop
        regex: Pending|Succeeded|Failed
      - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
        action: replace
        regex: '([^:]+)(?::\d+)?;(\d+)'
        replacement: '$1:$2'
        target_label: __address__
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
        action: replace
        regex: (.+)
        target_label: __metrics_path__
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
        target_label: component
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
"#
    )
}

fn config_map(ctx: &BuildContext<'_>) -> ConfigMap {
    ConfigMap {
        metadata: ctx.meta(config_name(ctx), Component::Prometheus),
        data: Some(BTreeMap::from([(
            "prometheus.yml".to_owned(),
            prometheus_config(ctx),
        )])),
        ..ConfigMap::default()
    }
}

/// Headless: Thanos Query finds the sidecars through its SRV records.
fn prometheus_service(ctx: &BuildContext<'_>, name: &str) -> Service {
    Service {
        metadata: ctx.meta(name, Component::Prometheus),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(ctx.names.selector(Component::Prometheus)),
            ports: Some(vec![
                common::service_port("web", PROMETHEUS_PORT, "web"),
                common::service_port("grpc", GRPC_PORT, "grpc"),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn query_service(ctx: &BuildContext<'_>, name: &str) -> Service {
    Service {
        metadata: ctx.meta(name, Component::ThanosQuery),
        spec: Some(ServiceSpec {
            selector: Some(ctx.names.selector(Component::ThanosQuery)),
            ports: Some(vec![
                common::service_port("http", PROMETHEUS_PORT, "http"),
                common::service_port("grpc", GRPC_PORT, "grpc"),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Where the sidecar reads the Thanos object-storage configuration (a Secret volume).
const OBJSTORE_DIR: &str = "/etc/thanos/objstore";
const OBJSTORE_FILE: &str = "objstore.yml";

fn prometheus(ctx: &BuildContext<'_>, name: &str) -> StatefulSet {
    let spec = &ctx.spec.thanos;
    let mut args = vec![
        format!("--config.file={CONFIG_DIR}/prometheus.yml"),
        format!("--storage.tsdb.path={DATA_DIR}"),
        format!("--storage.tsdb.retention.time={}", spec.retention),
        // No `--web.enable-lifecycle`: it lets any pod that reaches the port POST /-/quit. A new
        // configuration rolls the pod instead (config-hash annotation below).
    ];
    let mut sidecar_args = vec![
        "sidecar".to_owned(),
        format!("--prometheus.url=http://localhost:{PROMETHEUS_PORT}"),
        format!("--grpc-address=:{GRPC_PORT}"),
        format!("--http-address=:{SIDECAR_HTTP_PORT}"),
        format!("--tsdb.path={DATA_DIR}"),
    ];
    let mut sidecar_mounts = vec![common::mount("data", DATA_DIR)];
    let mut volumes = vec![Volume {
        name: "config".to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_name(ctx),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    if let Some(objstore) = &spec.object_storage_secret {
        // Uploaded blocks must not be compacted locally first.
        args.push("--storage.tsdb.min-block-duration=2h".to_owned());
        args.push("--storage.tsdb.max-block-duration=2h".to_owned());
        // From a file, not argv or env: the object-storage credentials would otherwise be
        // readable in /proc/<pid>/cmdline (or environ) of the sidecar.
        sidecar_args.push(format!(
            "--objstore.config-file={OBJSTORE_DIR}/{OBJSTORE_FILE}"
        ));
        sidecar_mounts.push(common::mount("objstore", OBJSTORE_DIR));
        volumes.push(Volume {
            name: "objstore".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(objstore.name.clone()),
                items: Some(vec![KeyToPath {
                    key: objstore.key.clone(),
                    path: OBJSTORE_FILE.to_owned(),
                    ..KeyToPath::default()
                }]),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    let prometheus = Container {
        name: "prometheus".to_owned(),
        image: Some(images::PROMETHEUS_IMAGE.to_owned()),
        args: Some(args),
        ports: Some(vec![common::container_port("web", PROMETHEUS_PORT)]),
        readiness_probe: Some(common::http_get_probe(
            "/-/ready",
            IntOrString::String("web".to_owned()),
            5,
            10,
        )),
        liveness_probe: Some(common::http_get_probe(
            "/-/healthy",
            IntOrString::String("web".to_owned()),
            30,
            15,
        )),
        resources: Some(
            spec.resources
                .clone()
                .unwrap_or_else(|| common::resources("100m", "256Mi", "1Gi")),
        ),
        volume_mounts: Some(vec![
            common::mount("config", CONFIG_DIR),
            common::mount("data", DATA_DIR),
        ]),
        security_context: Some(common::container_security(true)),
        ..Container::default()
    };
    let sidecar = Container {
        name: "thanos-sidecar".to_owned(),
        image: Some(images::THANOS_IMAGE.to_owned()),
        args: Some(sidecar_args),

        ports: Some(vec![
            common::container_port("grpc", GRPC_PORT),
            common::container_port("sidecar-http", SIDECAR_HTTP_PORT),
        ]),
        readiness_probe: Some(common::http_get_probe(
            "/-/ready",
            IntOrString::Int(SIDECAR_HTTP_PORT),
            5,
            10,
        )),
        liveness_probe: Some(common::http_get_probe(
            "/-/healthy",
            IntOrString::Int(SIDECAR_HTTP_PORT),
            30,
            15,
        )),
        resources: Some(common::resources("50m", "64Mi", "256Mi")),
        volume_mounts: Some(sidecar_mounts),
        security_context: Some(common::container_security(true)),
        ..Container::default()
    };
    // Roll Prometheus when its configuration changes (it is read at start).
    let config_hash = common::short_hash(&[&prometheus_config(ctx)]);
    StatefulSet {
        metadata: ctx.meta(name, Component::Prometheus),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name.to_owned()),
            selector: ctx.selector(Component::Prometheus),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.names.labels(Component::Prometheus)),
                    annotations: Some(BTreeMap::from([(
                        super::api_server::CONFIG_HASH_ANNOTATION.to_owned(),
                        config_hash,
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name.to_owned()),
                    containers: vec![prometheus, sidecar],
                    security_context: Some(common::pod_security(METRICS_UID)),
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![common::data_claim_template(
                ctx,
                Component::Prometheus,
                "data",
                &spec.storage,
            )]),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

fn query_deployment(ctx: &BuildContext<'_>, name: &str, prometheus: &str) -> Deployment {
    let args = vec![
        "query".to_owned(),
        format!("--grpc-address=0.0.0.0:{GRPC_PORT}"),
        format!("--http-address=0.0.0.0:{PROMETHEUS_PORT}"),
        format!("--query.replica-label={REPLICA_LABEL}"),
        format!(
            "--endpoint=dnssrv+_grpc._tcp.{prometheus}.{}.svc.cluster.local",
            ctx.names.namespace
        ),
    ];
    let container = Container {
        name: "thanos-query".to_owned(),
        image: Some(images::THANOS_IMAGE.to_owned()),
        args: Some(args),
        ports: Some(vec![
            common::container_port("http", PROMETHEUS_PORT),
            common::container_port("grpc", GRPC_PORT),
        ]),
        readiness_probe: Some(common::http_get_probe(
            "/-/ready",
            IntOrString::String("http".to_owned()),
            5,
            10,
        )),
        liveness_probe: Some(common::http_get_probe(
            "/-/healthy",
            IntOrString::String("http".to_owned()),
            30,
            15,
        )),
        resources: Some(common::resources("50m", "64Mi", "512Mi")),
        security_context: Some(common::container_security(true)),
        ..Container::default()
    };
    Deployment {
        metadata: ctx.meta(name, Component::ThanosQuery),
        spec: Some(DeploymentSpec {
            replicas: Some(ctx.spec.thanos.query_replicas),
            selector: ctx.selector(Component::ThanosQuery),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.names.labels(Component::ThanosQuery)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(common::pod_security(METRICS_UID)),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// A ServiceMonitor selecting the API server's Service (port `http`, `/metrics`).
pub fn api_service_monitor(ctx: &BuildContext<'_>) -> DynamicObject {
    let resource = service_monitor_resource();
    let mut object = DynamicObject::new(&format!("{}-api", ctx.names.platform), &resource)
        .within(&ctx.names.namespace)
        .data(serde_json::json!({
            "spec": {
                "selector": { "matchLabels": ctx.names.selector(Component::ApiServer) },
                "namespaceSelector": { "matchNames": [ctx.names.namespace] },
                "endpoints": [{
                    "port": "http",
                    "path": "/metrics",
                    "interval": ctx.spec.thanos.scrape_interval,
                }],
            }
        }));
    let meta = ctx.meta(format!("{}-api", ctx.names.platform), Component::Prometheus);
    object.metadata = meta;
    object
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{inputs, platform};
    use super::*;
    use crate::children::BuildInputs;
    use crate::children::test_support::build_valid;
    use crate::crd::{BeerMeetupPlatformSpec, SecretKeyRef};

    fn enabled() -> BeerMeetupPlatformSpec {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.thanos.enabled = true;
        spec
    }

    fn children_with(spec: BeerMeetupPlatformSpec, inputs: &BuildInputs) -> Vec<Child> {
        build_valid(&platform(spec), inputs)
            .expect("builds")
            .children
            .into_iter()
            .filter(|c| {
                matches!(
                    c.component().as_deref(),
                    Some("prometheus" | "thanos-query")
                )
            })
            .collect()
    }

    fn statefulset(children: &[Child]) -> StatefulSet {
        children
            .iter()
            .find_map(|c| match c {
                Child::StatefulSet(s) => Some(s.clone()),
                _ => None,
            })
            .expect("prometheus")
    }

    fn containers(s: &StatefulSet) -> Vec<Container> {
        s.spec
            .clone()
            .and_then(|s| s.template.spec)
            .map(|p| p.containers)
            .unwrap_or_default()
    }

    #[test]
    fn disabled_builds_nothing() {
        assert!(children_with(BeerMeetupPlatformSpec::default(), &inputs()).is_empty());
    }

    #[test]
    fn prometheus_has_a_sidecar_and_local_storage_only_by_default() {
        let c = children_with(enabled(), &inputs());
        let s = statefulset(&c);
        let cs = containers(&s);
        assert_eq!(cs.len(), 2);
        let args = cs[0].args.clone().expect("args");
        assert!(args.contains(&"--storage.tsdb.retention.time=7d".to_owned()));
        assert!(!args.iter().any(|a| a.contains("block-duration")));
        let sidecar = cs[1].args.clone().expect("sidecar args");
        assert_eq!(sidecar[0], "sidecar");
        assert!(sidecar.contains(&"--prometheus.url=http://localhost:9090".to_owned()));
        assert!(!sidecar.iter().any(|a| a.starts_with("--objstore")));
        for c in &cs {
            let sc = c.security_context.clone().expect("security");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
            assert!(c.resources.is_some());
        }
        assert!(
            !c.iter().any(|c| matches!(c, Child::ServiceMonitor(_))),
            "no ServiceMonitor without the CRD"
        );
    }

    #[test]
    fn object_storage_secret_switches_on_uploads_and_2h_blocks() {
        let mut spec = enabled();
        spec.thanos.object_storage_secret = Some(SecretKeyRef {
            name: "thanos-objstore".into(),
            key: "objstore.yml".into(),
        });
        let s = statefulset(&children_with(spec, &inputs()));
        let cs = containers(&s);
        let args = cs[0].args.clone().expect("args");
        assert!(args.contains(&"--storage.tsdb.min-block-duration=2h".to_owned()));
        assert!(args.contains(&"--storage.tsdb.max-block-duration=2h".to_owned()));
        let sidecar = &cs[1];
        let sidecar_args = sidecar.args.clone().expect("args");
        assert!(
            sidecar_args
                .contains(&"--objstore.config-file=/etc/thanos/objstore/objstore.yml".to_owned())
        );
        // Credentials never in argv or env (readable in /proc).
        assert!(
            !sidecar_args
                .iter()
                .any(|a| a.starts_with("--objstore.config="))
        );
        assert!(sidecar.env.is_none());
        let pod = s.spec.and_then(|s| s.template.spec).expect("pod");
        let secret = pod
            .volumes
            .expect("volumes")
            .into_iter()
            .find_map(|v| v.secret)
            .expect("objstore secret volume");
        assert_eq!(secret.secret_name.as_deref(), Some("thanos-objstore"));
        assert_eq!(secret.items.expect("items")[0].key, "objstore.yml");
        // And Prometheus' lifecycle endpoint (POST /-/quit) is off.
        assert!(!args.iter().any(|a| a == "--web.enable-lifecycle"));
    }

    #[test]
    fn scrape_config_discovers_annotated_pods_of_the_namespace_only() {
        let c = children_with(enabled(), &inputs());
        let cm = c
            .iter()
            .find_map(|c| match c {
                Child::ConfigMap(m) => Some(m.clone()),
                _ => None,
            })
            .expect("config");
        let yaml = &cm.data.expect("data")["prometheus.yml"];
        let parsed: serde_yaml::Value = serde_yaml::from_str(yaml).expect("valid YAML");
        let sd = &parsed["scrape_configs"][0]["kubernetes_sd_configs"][0];
        assert_eq!(sd["role"], "pod");
        assert_eq!(sd["namespaces"]["names"][0], "team-a");
        assert_eq!(
            parsed["global"]["external_labels"][REPLICA_LABEL],
            "demo-prometheus-0"
        );
        assert!(yaml.contains("prometheus_io_scrape"));
    }

    #[test]
    fn prometheus_reads_its_namespace_through_a_role() {
        let c = children_with(enabled(), &inputs());
        let role = c
            .iter()
            .find_map(|c| match c {
                Child::Role(r) => Some(r.clone()),
                _ => None,
            })
            .expect("role");
        let rule = &role.rules.expect("rules")[0];
        assert_eq!(rule.verbs, ["get", "list", "watch"]);
        assert!(
            rule.resources
                .as_ref()
                .is_some_and(|r| r.contains(&"endpoints".to_owned()))
        );
        // No ClusterRole: `Child` has no cluster-scoped variant at all.
    }

    #[test]
    fn query_finds_the_sidecar_by_srv_record() {
        let c = children_with(enabled(), &inputs());
        let d = c
            .iter()
            .find_map(|c| match c {
                Child::Deployment(d) => Some(d.clone()),
                _ => None,
            })
            .expect("query");
        let args = d
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod")
            .containers[0]
            .args
            .clone()
            .expect("args");
        assert!(args.contains(
            &"--endpoint=dnssrv+_grpc._tcp.demo-prometheus.team-a.svc.cluster.local".to_owned()
        ));
        assert!(args.contains(&"--query.replica-label=prometheus_replica".to_owned()));
    }

    #[test]
    fn service_monitor_for_the_api_when_the_crd_exists() {
        let mut with_crd = inputs();
        with_crd.service_monitors = true;
        let c = children_with(enabled(), &with_crd);
        let sm = c
            .iter()
            .find_map(|c| match c {
                Child::ServiceMonitor(m) => Some(m.clone()),
                _ => None,
            })
            .expect("service monitor");
        let value = serde_json::to_value(&sm).expect("json");
        assert_eq!(value["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(value["kind"], "ServiceMonitor");
        assert_eq!(value["metadata"]["name"], "demo-api");
        assert_eq!(value["metadata"]["namespace"], "team-a");
        assert_eq!(
            value["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
            "api"
        );
        assert_eq!(value["spec"]["endpoints"][0]["port"], "http");
        // Metrics off: no ServiceMonitor even with the CRD.
        assert!(children_with(BeerMeetupPlatformSpec::default(), &with_crd).is_empty());
    }
}
