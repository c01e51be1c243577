//! `spec.ingress`: the Ingress (`/api` → API server, `/` → web) and, with `controller.deploy`,
//! the platform's own HAProxy Kubernetes Ingress controller: ServiceAccount, a namespaced Role and
//! RoleBinding, its ConfigMap (WebSocket-friendly timeouts), Service, Deployment and a
//! PodDisruptionBudget, and a read-only ClusterRole (+ binding) for what the upstream controller
//! lists cluster-wide before it serves at all (IngressClasses, Namespaces,
//! CustomResourceDefinitions: its caches never sync without them, so it never turns Ready); with
//! `controller.createIngressClass` also the cluster-wide IngressClass.
//!
//! The controller is scoped to the platform's namespace with `--namespace-whitelist`; the rules of
//! its Role mirror the upstream ClusterRole minus everything it does not need there.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, PodSecurityContext, PodSpec, PodTemplateSpec,
    SeccompProfile, SecurityContext, Service, ServiceAccount, ServiceSpec,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec,
    IngressRule, IngressServiceBackend, IngressSpec as K8sIngressSpec, IngressTLS,
    ServiceBackendPort,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::Child;
use super::common::{self, BuildContext};
use crate::crd::ServiceType;
use crate::names::{Component, LABEL_PLATFORM_NAMESPACE};

pub const HTTP_PORT: i32 = 8080;
pub const HTTPS_PORT: i32 = 8443;
/// Stats page and `/metrics` (with `--prometheus`).
pub const STATS_PORT: i32 = 1024;
/// `/healthz`.
pub const HEALTHZ_PORT: i32 = 1042;
/// uid of the `haproxy` user in the controller image.
pub const HAPROXY_UID: i64 = 1000;
/// `spec.controller` of an IngressClass served by a controller started with `--ingress.class`.
pub const CONTROLLER_PREFIX: &str = "haproxy.org/ingress-controller";
/// Annotation prefix of the controller's per-Ingress settings.
pub const ANNOTATION_PREFIX: &str = "haproxy.org/";

/// Name of the controller's objects (Deployment, Service, ConfigMap, ServiceAccount, RBAC).
pub fn controller_name(ctx: &BuildContext<'_>) -> String {
    controller_name_of(ctx.names)
}

/// [`controller_name`] from the names alone.
pub fn controller_name_of(names: &crate::names::Names) -> String {
    format!("{}-haproxy", names.platform)
}

/// The URL people use, when the Ingress is on.
pub fn url(spec: &crate::crd::IngressSpec) -> Option<String> {
    let host = spec.host.as_deref().filter(|_| spec.enabled)?;
    let scheme = if spec.tls.is_some() { "https" } else { "http" };
    Some(format!("{scheme}://{host}/"))
}

pub fn build(ctx: &BuildContext<'_>) -> Vec<Child> {
    let spec = &ctx.spec.ingress;
    if !spec.enabled {
        return Vec::new();
    }
    let mut children = vec![Child::Ingress(ingress(ctx))];
    let controller = &spec.controller;
    if !controller.deploy {
        return children;
    }
    let name = controller_name(ctx);
    children.extend([
        Child::ServiceAccount(ServiceAccount {
            metadata: ctx.meta(&name, Component::Ingress),
            automount_service_account_token: Some(true),
            ..ServiceAccount::default()
        }),
        Child::Role(role(ctx, &name)),
        Child::RoleBinding(role_binding(ctx, &name)),
        Child::ConfigMap(config_map(ctx, &name)),
        Child::Service(service(ctx, &name)),
    ]);
    if let Some(pdb) = common::disruption_budget(ctx, Component::Ingress, controller.replicas, 2) {
        children.push(Child::PodDisruptionBudget(pdb));
    }
    children.push(Child::Deployment(deployment(ctx, &name)));
    let cluster_name = ctx.names.cluster_scoped("haproxy");
    children.push(Child::ClusterRole(cluster_role(ctx, &cluster_name)));
    children.push(Child::ClusterRoleBinding(cluster_role_binding(
        ctx,
        &cluster_name,
        &name,
    )));
    if controller.create_ingress_class {
        children.push(Child::IngressClass(ingress_class(ctx)));
    }
    children
}

/// The annotations that carry `spec.ingress.rateLimit`.
pub fn rate_limit_annotations(spec: &crate::crd::IngressSpec) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    if let Some(limit) = &spec.rate_limit {
        let mut put = |key: &str, value: String| {
            annotations.insert(format!("{ANNOTATION_PREFIX}{key}"), value);
        };
        put("rate-limit-requests", limit.requests.to_string());
        put("rate-limit-period", limit.period.clone());
        put("rate-limit-status-code", limit.status_code.to_string());
        if let Some(size) = &limit.size {
            put("rate-limit-size", size.clone());
        }
        if !limit.whitelist.is_empty() {
            put("rate-limit-whitelist", limit.whitelist.join(","));
        }
    }
    annotations
}

fn backend(ctx: &BuildContext<'_>, component: Component) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: ctx.names.component(component),
            port: Some(ServiceBackendPort {
                name: Some("http".to_owned()),
                ..ServiceBackendPort::default()
            }),
        }),
        ..IngressBackend::default()
    }
}

fn ingress(ctx: &BuildContext<'_>) -> Ingress {
    let spec = &ctx.spec.ingress;
    let host = spec.host.clone();
    let path = |path: &str, component: Component| HTTPIngressPath {
        path: Some(path.to_owned()),
        path_type: "Prefix".to_owned(),
        backend: backend(ctx, component),
    };
    let mut metadata = ctx.meta(ctx.names.platform.clone(), Component::Ingress);
    let annotations = rate_limit_annotations(spec);
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Ingress {
        metadata,
        spec: Some(K8sIngressSpec {
            ingress_class_name: Some(spec.class_name.clone()),
            rules: Some(vec![IngressRule {
                host: host.clone(),
                http: Some(HTTPIngressRuleValue {
                    // `/api` covers the REST API and the live WebSocket
                    // (`/api/v1/meetups/{id}/live`); the longest prefix wins.
                    paths: vec![
                        path("/api", Component::ApiServer),
                        path("/", Component::Web),
                    ],
                }),
            }]),
            tls: spec.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: host.map(|h| vec![h]),
                    secret_name: Some(tls.secret_name.clone()),
                }]
            }),
            ..K8sIngressSpec::default()
        }),
        status: None,
    }
}

/// The controller's global settings. `timeout-tunnel` applies once a connection is upgraded to a
/// WebSocket: live pages stay open for hours, so it is long; `timeout-client` covers idle
/// keep-alive connections before that.
fn config_map(ctx: &BuildContext<'_>, name: &str) -> ConfigMap {
    let controller = &ctx.spec.ingress.controller;
    ConfigMap {
        metadata: ctx.meta(name, Component::Ingress),
        data: Some(BTreeMap::from([
            (
                "timeout-tunnel".to_owned(),
                controller.tunnel_timeout.clone(),
            ),
            (
                "timeout-client".to_owned(),
                controller.client_timeout.clone(),
            ),
        ])),
        ..ConfigMap::default()
    }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        verbs: owned(verbs),
        ..PolicyRule::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];

/// What the controller needs inside the namespace (the upstream rules, minus nodes, write access
/// to ConfigMaps and Secrets, and workloads it does not manage). The operator must hold each of
/// these itself (RBAC escalation prevention); the Helm chart grants them.
///
/// Secrets stay readable namespace-wide, although the controller only needs the TLS Secret: the
/// upstream controller runs a Secret informer over each watched namespace and waits for its cache
/// before serving anything (pkg/k8s `MonitorChanges` → `WaitForCacheSync`), so `resourceNames`
/// (which cannot authorize a list) or no Secret rule at all leaves it hanging at start. Keeping
/// it away from the data credentials needs them in a namespace it does not watch (not built yet;
/// see the operator README).
pub fn namespaced_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &[""],
            &["configmaps", "endpoints", "pods", "services", "secrets"],
            READ,
        ),
        rule(&[""], &["events"], &["create", "patch"]),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(&["networking.k8s.io"], &["ingresses"], READ),
        rule(&["networking.k8s.io"], &["ingresses/status"], &["update"]),
        rule(
            &["ingress.v1.haproxy.org", "ingress.v3.haproxy.org"],
            &["*"],
            READ,
        ),
    ]
}

/// What the controller can only read cluster-wide: it lists Namespaces and IngressClasses (and
/// watches CustomResourceDefinitions for its own CRDs) even with a namespace whitelist.
pub fn cluster_rules() -> Vec<PolicyRule> {
    vec![
        rule(&[""], &["namespaces"], READ),
        rule(&["networking.k8s.io"], &["ingressclasses"], READ),
        rule(
            &["apiextensions.k8s.io"],
            &["customresourcedefinitions"],
            READ,
        ),
    ]
}

fn role(ctx: &BuildContext<'_>, name: &str) -> Role {
    Role {
        metadata: ctx.meta(name, Component::Ingress),
        rules: Some(namespaced_rules()),
    }
}

fn subject(ctx: &BuildContext<'_>, service_account: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".to_owned(),
        name: service_account.to_owned(),
        namespace: Some(ctx.names.namespace.clone()),
        ..Subject::default()
    }
}

fn role_binding(ctx: &BuildContext<'_>, name: &str) -> RoleBinding {
    RoleBinding {
        metadata: ctx.meta(name, Component::Ingress),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(vec![subject(ctx, name)]),
    }
}

/// Metadata of a cluster-scoped child: no namespace and no owner reference (a namespaced owner
/// cannot own a cluster-scoped object), labelled with the platform's namespace for cleanup.
fn cluster_meta(ctx: &BuildContext<'_>, name: &str) -> ObjectMeta {
    let mut labels = ctx.names.labels(Component::Ingress);
    labels.insert(
        LABEL_PLATFORM_NAMESPACE.to_owned(),
        ctx.names.namespace.clone(),
    );
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn cluster_role(ctx: &BuildContext<'_>, name: &str) -> ClusterRole {
    ClusterRole {
        metadata: cluster_meta(ctx, name),
        rules: Some(cluster_rules()),
        ..ClusterRole::default()
    }
}

fn cluster_role_binding(
    ctx: &BuildContext<'_>,
    name: &str,
    service_account: &str,
) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: cluster_meta(ctx, name),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(vec![subject(ctx, service_account)]),
    }
}

fn ingress_class(ctx: &BuildContext<'_>) -> IngressClass {
    let class = &ctx.spec.ingress.class_name;
    IngressClass {
        metadata: cluster_meta(ctx, class),
        spec: Some(IngressClassSpec {
            controller: Some(format!("{CONTROLLER_PREFIX}/{class}")),
            ..IngressClassSpec::default()
        }),
    }
}

fn service(ctx: &BuildContext<'_>, name: &str) -> Service {
    let controller = &ctx.spec.ingress.controller;
    Service {
        metadata: ctx.meta(name, Component::Ingress),
        spec: Some(ServiceSpec {
            type_: Some(controller.service_type.as_str().to_owned()),
            // Keep the client's address (no SNAT to another node): HAProxy puts it in
            // X-Forwarded-For, which the API server's rate limit keys on.
            external_traffic_policy: (controller.service_type != ServiceType::ClusterIP)
                .then(|| "Local".to_owned()),
            selector: Some(ctx.names.selector(Component::Ingress)),
            // The stats/metrics port stays off the Service: a LoadBalancer would publish it.
            ports: Some(vec![
                common::service_port("http", 80, "http"),
                common::service_port("https", 443, "https"),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn deployment(ctx: &BuildContext<'_>, name: &str) -> Deployment {
    let spec = &ctx.spec.ingress;
    let controller = &spec.controller;
    let ns = &ctx.names.namespace;
    let args = vec![
        format!("--configmap={ns}/{name}"),
        format!("--ingress.class={}", spec.class_name),
        format!("--namespace-whitelist={ns}"),
        format!("--publish-service={ns}/{name}"),
        format!("--http-bind-port={HTTP_PORT}"),
        format!("--https-bind-port={HTTPS_PORT}"),
        format!("--stats-bind-port={STATS_PORT}"),
        format!("--healthz-bind-port={HEALTHZ_PORT}"),
        "--prometheus".to_owned(),
    ];
    let healthz =
        |delay: i32| common::http_get_probe("/healthz", IntOrString::Int(HEALTHZ_PORT), delay, 10);
    let container = Container {
        name: "haproxy-ingress".to_owned(),
        image: Some(controller.effective_image()),
        args: Some(args),
        env: Some(vec![
            common::env_from_field("POD_NAME", "metadata.name"),
            common::env_from_field("POD_NAMESPACE", "metadata.namespace"),
            common::env_from_field("POD_IP", "status.podIP"),
        ]),
        ports: Some(vec![
            common::container_port("http", HTTP_PORT),
            common::container_port("https", HTTPS_PORT),
            common::container_port("stats", STATS_PORT),
            common::container_port("healthz", HEALTHZ_PORT),
        ]),
        readiness_probe: Some(healthz(2)),
        liveness_probe: Some(healthz(15)),
        resources: Some(
            controller
                .resources
                .clone()
                .unwrap_or_else(|| common::resources("100m", "128Mi", "512Mi")),
        ),
        security_context: Some(container_security()),
        ..Container::default()
    };
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), STATS_PORT.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ]);
    Deployment {
        metadata: ctx.meta(name, Component::Ingress),
        spec: Some(DeploymentSpec {
            replicas: Some(controller.replicas),
            selector: ctx.selector(Component::Ingress),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.names.labels(Component::Ingress)),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name.to_owned()),
                    containers: vec![container],
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(HAPROXY_UID),
                        run_as_group: Some(HAPROXY_UID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    affinity: Some(common::affinity(
                        ctx,
                        &Default::default(),
                        Component::Ingress,
                        None,
                    )),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// Every port is unprivileged (8080, 8443, 1024, 1042), so no process needs a capability and
/// privilege escalation is off (`no_new_privs`): the internet-facing pod cannot gain privileges
/// through a setuid or file-capability binary. NET_BIND_SERVICE stays in the bounding set only
/// because the upstream image's haproxy binary carries it as a file capability, and exec of such
/// a binary fails unless the capability is in the bounding set (with `no_new_privs` the binary
/// then runs without it). The root filesystem stays writable: s6-overlay and HAProxy write their
/// runtime state under `/run`, `/etc/haproxy` and `/var`.
fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(false),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: Some(vec!["NET_BIND_SERVICE".to_owned()]),
        }),
        ..SecurityContext::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{inputs, platform};
    use super::*;
    use crate::children::test_support::build_valid;
    use crate::crd::{BeerMeetupPlatformSpec, IngressTlsSpec, RateLimitSpec, ServiceType};

    fn ingress_spec() -> BeerMeetupPlatformSpec {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.enabled = true;
        spec.ingress.host = Some("meetups.example.org".into());
        spec
    }

    fn children(spec: BeerMeetupPlatformSpec) -> Vec<Child> {
        build_valid(&platform(spec), &inputs())
            .expect("builds")
            .children
            .into_iter()
            .filter(|c| c.component().as_deref() == Some("ingress"))
            .collect()
    }

    fn pick<T: Clone>(children: &[Child], f: impl Fn(&Child) -> Option<&T>) -> T {
        children.iter().find_map(f).cloned().expect("child present")
    }

    #[test]
    fn disabled_ingress_builds_nothing() {
        assert!(children(BeerMeetupPlatformSpec::default()).is_empty());
    }

    #[test]
    fn ingress_routes_api_and_websocket_to_the_api_and_the_rest_to_web() {
        let c = children(ingress_spec());
        let ing = pick(&c, |c| match c {
            Child::Ingress(i) => Some(i),
            _ => None,
        });
        assert_eq!(ing.metadata.name.as_deref(), Some("demo"));
        let spec = ing.spec.expect("spec");
        assert_eq!(spec.ingress_class_name.as_deref(), Some("haproxy"));
        let rule = &spec.rules.expect("rules")[0];
        assert_eq!(rule.host.as_deref(), Some("meetups.example.org"));
        let paths = &rule.http.as_ref().expect("http").paths;
        let route = |p: &str| {
            paths
                .iter()
                .find(|x| x.path.as_deref() == Some(p))
                .and_then(|x| x.backend.service.clone())
                .map(|s| s.name)
        };
        assert_eq!(route("/api").as_deref(), Some("demo-api"));
        assert_eq!(route("/").as_deref(), Some("demo-web"));
        assert!(paths.iter().all(|p| p.path_type == "Prefix"));
        assert!(spec.tls.is_none());
        assert!(ing.metadata.annotations.is_none(), "no rate limit asked");
    }

    #[test]
    fn tls_and_rate_limit_become_ingress_fields_and_annotations() {
        let mut spec = ingress_spec();
        spec.ingress.tls = Some(IngressTlsSpec {
            secret_name: "meetups-tls".into(),
        });
        spec.ingress.rate_limit = Some(RateLimitSpec {
            requests: 100,
            period: "10s".into(),
            status_code: 429,
            size: Some("100k".into()),
            whitelist: vec!["10.0.0.0/8".into(), "192.168.1.1".into()],
        });
        assert_eq!(
            url(&spec.ingress).as_deref(),
            Some("https://meetups.example.org/")
        );
        let c = children(spec);
        let ing = pick(&c, |c| match c {
            Child::Ingress(i) => Some(i),
            _ => None,
        });
        let tls = ing.spec.and_then(|s| s.tls).expect("tls");
        assert_eq!(tls[0].secret_name.as_deref(), Some("meetups-tls"));
        assert_eq!(tls[0].hosts, Some(vec!["meetups.example.org".to_owned()]));
        let a = ing.metadata.annotations.expect("annotations");
        assert_eq!(a["haproxy.org/rate-limit-requests"], "100");
        assert_eq!(a["haproxy.org/rate-limit-period"], "10s");
        assert_eq!(a["haproxy.org/rate-limit-status-code"], "429");
        assert_eq!(a["haproxy.org/rate-limit-size"], "100k");
        assert_eq!(
            a["haproxy.org/rate-limit-whitelist"],
            "10.0.0.0/8,192.168.1.1"
        );
    }

    #[test]
    fn url_is_http_without_tls_and_absent_when_disabled() {
        let spec = ingress_spec();
        assert_eq!(
            url(&spec.ingress).as_deref(),
            Some("http://meetups.example.org/")
        );
        assert_eq!(url(&BeerMeetupPlatformSpec::default().ingress), None);
    }

    #[test]
    fn controller_is_namespace_scoped_with_websocket_timeouts() {
        let c = children(ingress_spec());
        let d = pick(&c, |c| match c {
            Child::Deployment(d) => Some(d),
            _ => None,
        });
        assert_eq!(d.metadata.name.as_deref(), Some("demo-haproxy"));
        let pod = d.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.service_account_name.as_deref(), Some("demo-haproxy"));
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some(crate::images::HAPROXY_INGRESS_IMAGE)
        );
        let args = container.args.clone().expect("args");
        for expected in [
            "--namespace-whitelist=team-a",
            "--ingress.class=haproxy",
            "--configmap=team-a/demo-haproxy",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
        let security = container.security_context.clone().expect("security");
        let caps = security.capabilities.expect("caps");
        assert_eq!(caps.drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(caps.add, Some(vec!["NET_BIND_SERVICE".to_owned()]));
        let pod_security = pod.security_context.expect("pod security");
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(
            pod_security.seccomp_profile.map(|s| s.type_).as_deref(),
            Some("RuntimeDefault")
        );
        assert!(
            container
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some()
        );
        let cm = pick(&c, |c| match c {
            Child::ConfigMap(m) => Some(m),
            _ => None,
        });
        let data = cm.data.expect("data");
        assert_eq!(data["timeout-tunnel"], "1h");
        assert_eq!(data["timeout-client"], "1m");
    }

    #[test]
    fn rbac_is_a_role_plus_cluster_reads_and_no_ingress_class_by_default() {
        let c = children(ingress_spec());
        let kinds: Vec<&str> = c.iter().map(Child::kind).collect();
        for kind in [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Service",
            "PodDisruptionBudget",
            // The upstream controller's caches never sync without these (found on a real node).
            "ClusterRole",
            "ClusterRoleBinding",
        ] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        assert!(
            !kinds.contains(&"IngressClass"),
            "an IngressClass must not be created unless asked"
        );
        let cluster_role = pick(&c, |c| match c {
            Child::ClusterRole(r) => Some(r),
            _ => None,
        });
        let cluster_rules = cluster_role.rules.expect("rules");
        assert!(cluster_rules.iter().all(|r| {
            r.verbs.iter().all(|v| READ.contains(&v.as_str()))
                && r.resources.as_ref().is_some_and(|res| {
                    res.iter().all(|r| {
                        ["ingressclasses", "namespaces", "customresourcedefinitions"]
                            .contains(&r.as_str())
                    })
                })
        }));
        let role = pick(&c, |c| match c {
            Child::Role(r) => Some(r),
            _ => None,
        });
        let rules = role.rules.expect("rules");
        assert!(rules.iter().all(|r| !r.verbs.iter().any(|v| v == "*")));
        assert!(rules.iter().any(|r| {
            r.resources
                .as_ref()
                .is_some_and(|res| res.contains(&"ingresses/status".to_owned()))
        }));
        let binding = pick(&c, |c| match c {
            Child::RoleBinding(b) => Some(b),
            _ => None,
        });
        assert_eq!(binding.role_ref.kind, "Role");
        assert_eq!(binding.subjects.expect("subjects")[0].name, "demo-haproxy");
    }

    fn secret_rules(spec: BeerMeetupPlatformSpec) -> Vec<PolicyRule> {
        let role = pick(&children(spec), |c| match c {
            Child::Role(r) => Some(r),
            _ => None,
        });
        role.rules
            .expect("rules")
            .into_iter()
            .filter(|r| {
                let core = r
                    .api_groups
                    .as_ref()
                    .is_some_and(|groups| groups.iter().any(|g| g.is_empty() || g == "*"));
                core && r
                    .resources
                    .as_ref()
                    .is_some_and(|res| res.iter().any(|r| r == "secrets" || r == "*"))
            })
            .collect()
    }

    #[test]
    fn controller_only_reads_secrets() {
        // Read access only (the upstream controller's Secret informer needs list/watch of the
        // namespace); never a write.
        let rules = secret_rules(ingress_spec());
        assert_eq!(rules.len(), 1);
        assert!(
            rules[0]
                .verbs
                .iter()
                .all(|v| ["get", "list", "watch"].contains(&v.as_str()))
        );
    }

    #[test]
    fn controller_cannot_escalate_privileges() {
        let c = children(ingress_spec());
        let deployment = pick(&c, |c| match c {
            Child::Deployment(d) => Some(d),
            _ => None,
        });
        let pod = deployment.spec.and_then(|s| s.template.spec).expect("pod");
        let security = pod.containers[0]
            .security_context
            .clone()
            .expect("security");
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.run_as_non_root, Some(true));
    }

    #[test]
    fn ingress_class_only_when_asked() {
        let mut spec = ingress_spec();
        spec.ingress.class_name = "meetups".into();
        spec.ingress.controller.create_ingress_class = true;
        let c = children(spec);
        let class = pick(&c, |c| match c {
            Child::IngressClass(i) => Some(i),
            _ => None,
        });
        assert_eq!(class.metadata.name.as_deref(), Some("meetups"));
        assert_eq!(
            class.spec.and_then(|s| s.controller).as_deref(),
            Some("haproxy.org/ingress-controller/meetups")
        );
        assert!(class.metadata.owner_references.is_none());
        assert_eq!(
            class.metadata.labels.expect("labels")[LABEL_PLATFORM_NAMESPACE],
            "team-a"
        );
        let cluster_role = pick(&c, |c| match c {
            Child::ClusterRole(r) => Some(r),
            _ => None,
        });
        assert_eq!(
            cluster_role.metadata.name.as_deref(),
            Some("beermeetup-team-a-demo-haproxy")
        );
        let rules = cluster_role.rules.expect("rules");
        assert!(
            rules
                .iter()
                .all(|r| r.verbs.iter().all(|v| READ.contains(&v.as_str())))
        );
        assert!(c.iter().any(|c| matches!(c, Child::ClusterRoleBinding(_))));
    }

    #[test]
    fn existing_controller_means_just_the_ingress() {
        let mut spec = ingress_spec();
        spec.ingress.controller.deploy = false;
        spec.ingress.class_name = "nginx".into();
        let c = children(spec);
        assert_eq!(c.len(), 1);
        assert!(matches!(c[0], Child::Ingress(_)));
    }

    #[test]
    fn service_type_follows_the_spec_and_hides_stats() {
        let mut spec = ingress_spec();
        spec.ingress.controller.service_type = ServiceType::NodePort;
        spec.ingress.controller.replicas = 1;
        let c = children(spec);
        let svc = pick(&c, |c| match c {
            Child::Service(s) => Some(s),
            _ => None,
        });
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        // The client address survives to HAProxy (X-Forwarded-For feeds the API's rate limit).
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
        let ports: Vec<i32> = spec.ports.expect("ports").iter().map(|p| p.port).collect();
        assert_eq!(ports, [80, 443]);
        assert!(
            !c.iter().any(|c| matches!(c, Child::PodDisruptionBudget(_))),
            "no budget for a single controller pod"
        );
    }
}
