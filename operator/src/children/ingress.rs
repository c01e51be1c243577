//! `spec.ingress`. With `controller.deploy` (the default) the platform runs its own plain HAProxy,
//! configured by the operator: a ConfigMap with `haproxy.cfg` (rendered from the spec alone, see
//! [`haproxy_config`](super::haproxy_config)), a Deployment, the public Service and two headless
//! Services whose DNS records name the API and web pods (HAProxy balances per request over them),
//! plus a PodDisruptionBudget. HAProxy never talks to the Kubernetes API: no ServiceAccount, no
//! Role, no token in the pod, so the internet-facing pod can read no Secret; it mounts only the TLS
//! Secret named in the spec. No Ingress object either: nothing reads it, and an Ingress naming a
//! shared class could be served by some other controller in the cluster.
//!
//! With `controller.deploy: false` the platform uses the cluster's ingress controller: just an
//! Ingress (`/api` → API server, `/` → web) with `ingressClassName: className`. The operator never
//! creates or adopts an IngressClass (`createIngressClass` is deprecated and ignored).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, KeyToPath, PodTemplateSpec, SecretVolumeSource,
    Service, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec as K8sIngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::Child;
use super::api_server::{self, CONFIG_HASH_ANNOTATION};
use super::common::{self, BuildContext};
use super::haproxy_config::{self, Listen, ProxyConfig, Upstreams};
use crate::crd::ServiceType;
use crate::names::{Component, Names};

pub const HTTP_PORT: i32 = 8080;
pub const HTTPS_PORT: i32 = 8443;
/// `/metrics` (HAProxy's Prometheus exporter) and `/stats`.
pub const STATS_PORT: i32 = 1024;
/// `/healthz` (HAProxy's monitor URI).
pub const HEALTHZ_PORT: i32 = 1042;
/// uid/gid of the `haproxy` user of the official image (any non-root uid works: HAProxy writes
/// nothing and binds unprivileged ports only).
pub const HAPROXY_UID: i64 = 99;
/// Where the ConfigMap is mounted (the official image's configuration folder).
pub const CONFIG_DIR: &str = "/usr/local/etc/haproxy";
/// Key of `haproxy.cfg` in the ConfigMap.
pub const CONFIG_KEY: &str = "haproxy.cfg";
/// Where the TLS Secret is mounted: `tls.pem` (certificate) and `tls.pem.key` (key).
pub const TLS_DIR: &str = "/etc/haproxy/tls";
/// `server-template` slots per backend: the most pods the CRD allows for API and web.
pub const BACKEND_SLOTS: u32 = 50;
/// Annotation prefix of the HAProxy ingress controller's per-Ingress settings (only on the
/// Ingress made for the cluster's own controller).
pub const ANNOTATION_PREFIX: &str = "haproxy.org/";
/// `preStop` pause: the Service stops sending new connections before HAProxy gets SIGTERM.
pub const PRE_STOP_SLEEP_SECONDS: i64 = 5;

/// Name of the proxy's objects (Deployment, public Service, ConfigMap).
pub fn controller_name(ctx: &BuildContext<'_>) -> String {
    controller_name_of(ctx.names)
}

/// [`controller_name`] from the names alone.
pub fn controller_name_of(names: &Names) -> String {
    format!("{}-haproxy", names.platform)
}

/// Headless Service of a backend's pods (its DNS records list the ready pods).
pub fn pods_service_name(names: &Names, component: Component) -> String {
    format!("{}-pods", names.component(component))
}

/// The URL people use, when the Ingress is on.
pub fn url(spec: &crate::crd::IngressSpec) -> Option<String> {
    let host = spec.host.as_deref().filter(|_| spec.enabled)?;
    let scheme = if spec.tls.is_some() { "https" } else { "http" };
    Some(format!("{scheme}://{host}/"))
}

/// Pod annotation carrying the hash of the TLS certificate, so a renewal rolls the pods.
pub const TLS_HASH_ANNOTATION: &str = "beermeetup.io/tls-certificate-hash";

/// The children of `spec.ingress`; `tls_certificate_hash` is the hash of the certificate in the
/// TLS Secret as read from the cluster (absent when rendering or when the Secret is missing).
pub fn build(ctx: &BuildContext<'_>, tls_certificate_hash: Option<&str>) -> Vec<Child> {
    let spec = &ctx.spec.ingress;
    if !spec.enabled {
        return Vec::new();
    }
    let controller = &spec.controller;
    if !controller.deploy {
        return vec![Child::Ingress(ingress(ctx))];
    }
    let name = controller_name(ctx);
    let config = haproxy_cfg(ctx);
    let mut children = vec![
        Child::ConfigMap(config_map(ctx, &name, &config)),
        Child::Service(service(ctx, &name)),
        Child::Service(pods_service(ctx, Component::ApiServer)),
        Child::Service(pods_service(ctx, Component::Web)),
    ];
    if let Some(pdb) = common::disruption_budget(ctx, Component::Ingress, controller.replicas, 2) {
        children.push(Child::PodDisruptionBudget(pdb));
    }
    children.push(Child::Deployment(deployment(
        ctx,
        &name,
        &config,
        tls_certificate_hash,
    )));
    children
}

/// `haproxy.cfg` for this platform in the cluster.
pub fn haproxy_cfg(ctx: &BuildContext<'_>) -> String {
    let port = |p: i32| u16::try_from(p).unwrap_or_default();
    let host = |component| {
        format!(
            "{}.{}.svc.cluster.local",
            pods_service_name(ctx.names, component),
            ctx.names.namespace
        )
    };
    haproxy_config::render(&ProxyConfig {
        ingress: &ctx.spec.ingress,
        listen: Listen {
            address: String::new(),
            http: port(HTTP_PORT),
            https: port(HTTPS_PORT),
            stats: port(STATS_PORT),
            healthz: port(HEALTHZ_PORT),
        },
        upstreams: Upstreams::Dns {
            api_host: host(Component::ApiServer),
            web_host: host(Component::Web),
            port: port(api_server::PORT),
            slots: BACKEND_SLOTS,
        },
        certificate: format!("{TLS_DIR}/tls.pem"),
        api_health_path: api_server::READINESS_PATH,
    })
}

/// Hash of the certificate (`tls.crt`) of a TLS Secret; `None` without one.
pub fn certificate_hash(secret: &k8s_openapi::api::core::v1::Secret) -> Option<String> {
    let certificate = secret.data.as_ref()?.get("tls.crt")?;
    Some(common::short_hash(&[&String::from_utf8_lossy(
        &certificate.0,
    )]))
}

/// The annotations that carry `spec.ingress.rateLimit` to the cluster's HAProxy ingress
/// controller (`controller.deploy: false`).
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

/// The Ingress for the cluster's own controller.
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

fn config_map(ctx: &BuildContext<'_>, name: &str, config: &str) -> ConfigMap {
    ConfigMap {
        metadata: ctx.meta(name, Component::Ingress),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_owned(), config.to_owned())])),
        ..ConfigMap::default()
    }
}

/// The public Service. The HTTPS port only with TLS (HAProxy listens there only then).
fn service(ctx: &BuildContext<'_>, name: &str) -> Service {
    let controller = &ctx.spec.ingress.controller;
    let mut ports = vec![common::service_port("http", 80, "http")];
    if ctx.spec.ingress.tls.is_some() {
        ports.push(common::service_port("https", 443, "https"));
    }
    Service {
        metadata: ctx.meta(name, Component::Ingress),
        spec: Some(ServiceSpec {
            type_: Some(controller.service_type.as_str().to_owned()),
            // Keep the client's address (no SNAT to another node): HAProxy puts it in
            // X-Forwarded-For, which the API server's rate limit keys on.
            external_traffic_policy: (controller.service_type != ServiceType::ClusterIP)
                .then(|| "Local".to_owned()),
            selector: Some(ctx.names.selector(Component::Ingress)),
            // The stats/metrics and health ports stay off the Service: a LoadBalancer would
            // publish them.
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// A headless Service over a backend's pods: its DNS name resolves to each ready pod, which is
/// what HAProxy's `server-template` slots are filled from (per-request balancing, not
/// per-connection through a virtual IP).
fn pods_service(ctx: &BuildContext<'_>, component: Component) -> Service {
    Service {
        metadata: ctx.meta(pods_service_name(ctx.names, component), Component::Ingress),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(ctx.names.selector(component)),
            ports: Some(vec![common::service_port("http", api_server::PORT, "http")]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn deployment(
    ctx: &BuildContext<'_>,
    name: &str,
    config: &str,
    tls_certificate_hash: Option<&str>,
) -> Deployment {
    let spec = &ctx.spec.ingress;
    let controller = &spec.controller;
    let tls = spec.tls.as_ref();
    let healthz =
        |delay: i32| common::http_get_probe("/healthz", IntOrString::Int(HEALTHZ_PORT), delay, 10);
    let mut ports = vec![common::container_port("http", HTTP_PORT)];
    if tls.is_some() {
        ports.push(common::container_port("https", HTTPS_PORT));
    }
    ports.push(common::container_port("stats", STATS_PORT));
    ports.push(common::container_port("healthz", HEALTHZ_PORT));
    let mut mounts = vec![VolumeMount {
        read_only: Some(true),
        ..common::mount("config", CONFIG_DIR)
    }];
    let mut volumes = vec![Volume {
        name: "config".to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: name.to_owned(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    if let Some(tls) = tls {
        mounts.push(VolumeMount {
            read_only: Some(true),
            ..common::mount("tls", TLS_DIR)
        });
        let item = |key: &str, path: &str| KeyToPath {
            key: key.to_owned(),
            path: path.to_owned(),
            ..KeyToPath::default()
        };
        volumes.push(Volume {
            name: "tls".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                // `crt tls.pem` loads the key from `tls.pem.key` (ssl-load-extra-files).
                items: Some(vec![
                    item("tls.crt", "tls.pem"),
                    item("tls.key", "tls.pem.key"),
                ]),
                // Readable by the pod's group (fsGroup) only.
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    // The same command line in the official image and in a Debian-package image: master-worker
    // in the foreground, configuration from the ConfigMap.
    let command = ["haproxy", "-W", "-db", "-f"]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("{CONFIG_DIR}/{CONFIG_KEY}")])
        .collect();
    let mut security = common::container_security(true);
    security.run_as_non_root = Some(true);
    let container = Container {
        name: "haproxy".to_owned(),
        image: Some(controller.effective_image()),
        command: Some(command),
        ports: Some(ports),
        readiness_probe: Some(healthz(1)),
        liveness_probe: Some(healthz(10)),
        resources: Some(
            controller
                .resources
                .clone()
                .unwrap_or_else(|| common::resources("100m", "64Mi", "512Mi")),
        ),
        security_context: Some(security),
        volume_mounts: Some(mounts),
        lifecycle: Some(common::pre_stop_sleep(PRE_STOP_SLEEP_SECONDS)),
        ..Container::default()
    };
    let mut annotations = BTreeMap::from([
        // A new configuration rolls the pods (HAProxy reads it at start only).
        (
            CONFIG_HASH_ANNOTATION.to_owned(),
            common::short_hash(&[config]),
        ),
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), STATS_PORT.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ]);
    if let Some(hash) = tls_certificate_hash.filter(|_| tls.is_some()) {
        annotations.insert(TLS_HASH_ANNOTATION.to_owned(), hash.to_owned());
    }
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
                spec: Some(k8s_openapi::api::core::v1::PodSpec {
                    containers: vec![container],
                    security_context: Some(common::pod_security(HAPROXY_UID)),
                    affinity: Some(common::affinity(
                        ctx,
                        &Default::default(),
                        Component::Ingress,
                        None,
                    )),
                    volumes: Some(volumes),
                    // HAProxy never calls the Kubernetes API: no token to steal from the
                    // internet-facing pod, and no Service environment variables either.
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    ..Default::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
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

    fn deployment_of(children: &[Child]) -> Deployment {
        pick(children, |c| match c {
            Child::Deployment(d) => Some(d),
            _ => None,
        })
    }

    fn config_of(children: &[Child]) -> String {
        let cm = pick(children, |c| match c {
            Child::ConfigMap(m) => Some(m),
            _ => None,
        });
        cm.data.expect("data")[CONFIG_KEY].clone()
    }

    #[test]
    fn disabled_ingress_builds_nothing() {
        assert!(children(BeerMeetupPlatformSpec::default()).is_empty());
    }

    #[test]
    fn own_proxy_is_plain_haproxy_without_any_kubernetes_identity_or_ingress() {
        let mut spec = ingress_spec();
        // Deprecated and ignored: no IngressClass, whatever it says.
        spec.ingress.controller.create_ingress_class = true;
        let c = children(spec);
        let kinds: Vec<(&str, String)> = c.iter().map(|c| (c.kind(), c.name())).collect();
        assert_eq!(
            kinds,
            [
                ("ConfigMap", "demo-haproxy".to_owned()),
                ("Service", "demo-haproxy".to_owned()),
                ("Service", "demo-api-pods".to_owned()),
                ("Service", "demo-web-pods".to_owned()),
                // Egress to API and web only (networkPolicies.enabled, the default).
                ("NetworkPolicy", "demo-ingress".to_owned()),
                ("PodDisruptionBudget", "demo-ingress".to_owned()),
                ("Deployment", "demo-haproxy".to_owned()),
            ],
            "no ServiceAccount, Role(Binding), ClusterRole(Binding), IngressClass or Ingress"
        );
    }

    #[test]
    fn proxy_pod_has_no_token_no_privileges_and_a_read_only_root() {
        let d = deployment_of(&children(ingress_spec()));
        assert_eq!(d.metadata.name.as_deref(), Some("demo-haproxy"));
        let pod = d.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.service_account_name, None);
        assert_eq!(pod.enable_service_links, Some(false));
        let pod_security = pod.security_context.expect("pod security");
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(pod_security.run_as_user, Some(HAPROXY_UID));
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some(crate::images::HAPROXY_IMAGE)
        );
        assert_eq!(
            container.command.clone().expect("command"),
            [
                "haproxy",
                "-W",
                "-db",
                "-f",
                "/usr/local/etc/haproxy/haproxy.cfg"
            ]
        );
        let security = container.security_context.clone().expect("security");
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.run_as_non_root, Some(true));
        let caps = security.capabilities.expect("caps");
        assert_eq!(caps.drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(caps.add, None, "unprivileged ports need no capability");
        for port in container.ports.as_ref().expect("ports") {
            assert!(port.container_port >= 1024, "{port:?} is unprivileged");
        }
        let volumes = pod.volumes.expect("volumes");
        assert_eq!(volumes.len(), 1, "the configuration only, no TLS asked");
        assert!(volumes[0].secret.is_none());
    }

    #[test]
    fn a_new_configuration_rolls_the_pods() {
        let hash = |spec| {
            let d = deployment_of(&children(spec));
            d.spec
                .and_then(|s| s.template.metadata)
                .and_then(|m| m.annotations)
                .expect("annotations")[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let before = hash(ingress_spec());
        assert_eq!(before, hash(ingress_spec()));
        let mut spec = ingress_spec();
        spec.ingress.controller.tunnel_timeout = "2h".into();
        assert_ne!(before, hash(spec));
    }

    #[test]
    fn configuration_routes_and_keeps_websocket_timeouts() {
        let cfg = config_of(&children(ingress_spec()));
        assert!(cfg.contains("use_backend api if { path /api } || { path_beg /api/ }"));
        assert!(cfg.contains("server-template api 50 demo-api-pods.team-a.svc.cluster.local:8080"));
        assert!(cfg.contains("server-template web 50 demo-web-pods.team-a.svc.cluster.local:8080"));
        assert!(cfg.contains("timeout tunnel 1h\n"));
        assert!(cfg.contains("timeout client 1m\n"));
        assert!(cfg.contains("bind :8080\n") && cfg.contains("bind :1042\n"));
    }

    #[test]
    fn pods_services_are_headless_over_the_backend_pods() {
        let c = children(ingress_spec());
        for (name, component) in [
            ("demo-api-pods", Component::ApiServer),
            ("demo-web-pods", Component::Web),
        ] {
            let svc = pick(&c, |c| match c {
                Child::Service(s) if s.metadata.name.as_deref() == Some(name) => Some(s),
                _ => None,
            });
            let spec = svc.spec.expect("spec");
            assert_eq!(spec.cluster_ip.as_deref(), Some("None"), "{name}");
            assert_eq!(
                spec.selector,
                Some(crate::names::Names::new("demo", "team-a").selector(component))
            );
            assert_ne!(spec.publish_not_ready_addresses, Some(true));
        }
    }

    #[test]
    fn tls_mounts_only_the_named_secret_as_pem_and_key() {
        let mut spec = ingress_spec();
        spec.ingress.tls = Some(IngressTlsSpec {
            secret_name: "meetups-tls".into(),
        });
        assert_eq!(
            url(&spec.ingress).as_deref(),
            Some("https://meetups.example.org/")
        );
        let c = children(spec);
        let pod = deployment_of(&c)
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod");
        let secrets: Vec<_> = pod
            .volumes
            .expect("volumes")
            .into_iter()
            .filter_map(|v| v.secret)
            .collect();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0].secret_name.as_deref(), Some("meetups-tls"));
        let items: Vec<(String, String)> = secrets[0]
            .items
            .clone()
            .expect("items")
            .into_iter()
            .map(|i| (i.key, i.path))
            .collect();
        assert_eq!(
            items,
            [
                ("tls.crt".to_owned(), "tls.pem".to_owned()),
                ("tls.key".to_owned(), "tls.pem.key".to_owned())
            ]
        );
        let cfg = config_of(&c);
        assert!(cfg.contains("bind :8443 ssl crt /etc/haproxy/tls/tls.pem"));
        let svc = pick(&c, |c| match c {
            Child::Service(s) if s.metadata.name.as_deref() == Some("demo-haproxy") => Some(s),
            _ => None,
        });
        let ports: Vec<i32> = svc
            .spec
            .and_then(|s| s.ports)
            .expect("ports")
            .iter()
            .map(|p| p.port)
            .collect();
        assert_eq!(ports, [80, 443]);
    }

    #[test]
    fn a_renewed_certificate_rolls_the_pods() {
        let mut spec = ingress_spec();
        spec.ingress.tls = Some(IngressTlsSpec {
            secret_name: "meetups-tls".into(),
        });
        let names = crate::names::Names::new("demo", "team-a");
        let annotation = |hash: Option<&str>| {
            let ctx = BuildContext {
                spec: &spec,
                names: &names,
                owner: None,
            };
            build(&ctx, hash)
                .into_iter()
                .find_map(|c| match c {
                    Child::Deployment(d) => d.spec.and_then(|s| s.template.metadata),
                    _ => None,
                })
                .and_then(|m| m.annotations)
                .and_then(|a| a.get(TLS_HASH_ANNOTATION).cloned())
        };
        assert_eq!(annotation(None), None);
        assert_eq!(annotation(Some("abc")).as_deref(), Some("abc"));
        let secret = |crt: &str| k8s_openapi::api::core::v1::Secret {
            data: Some(BTreeMap::from([(
                "tls.crt".to_owned(),
                k8s_openapi::ByteString(crt.as_bytes().to_vec()),
            )])),
            ..Default::default()
        };
        assert_ne!(
            certificate_hash(&secret("old")),
            certificate_hash(&secret("new"))
        );
        assert_eq!(
            certificate_hash(&k8s_openapi::api::core::v1::Secret::default()),
            None
        );
    }

    #[test]
    fn rate_limit_lands_in_the_configuration() {
        let mut spec = ingress_spec();
        spec.ingress.rate_limit = Some(RateLimitSpec {
            requests: 100,
            period: "10s".into(),
            status_code: 429,
            size: Some("100k".into()),
            whitelist: vec!["10.0.0.0/8".into()],
        });
        let cfg = config_of(&children(spec));
        assert!(cfg.contains("store http_req_rate(10s)"));
        assert!(cfg.contains("acl rate_limit_exempt src 10.0.0.0/8"));
        assert!(cfg.contains("deny_status 429"));
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
    fn existing_controller_means_just_the_ingress_with_its_class() {
        let mut spec = ingress_spec();
        spec.ingress.controller.deploy = false;
        spec.ingress.controller.create_ingress_class = true;
        spec.ingress.class_name = "nginx".into();
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
        let c = children(spec);
        assert_eq!(
            c.len(),
            1,
            "no IngressClass, whatever createIngressClass says"
        );
        let Child::Ingress(ing) = &c[0] else {
            panic!("an Ingress, not {}", c[0].kind())
        };
        assert_eq!(ing.metadata.name.as_deref(), Some("demo"));
        let a = ing.metadata.annotations.clone().expect("annotations");
        assert_eq!(a["haproxy.org/rate-limit-requests"], "100");
        assert_eq!(a["haproxy.org/rate-limit-period"], "10s");
        assert_eq!(a["haproxy.org/rate-limit-status-code"], "429");
        assert_eq!(a["haproxy.org/rate-limit-size"], "100k");
        assert_eq!(
            a["haproxy.org/rate-limit-whitelist"],
            "10.0.0.0/8,192.168.1.1"
        );
        let spec = ing.spec.clone().expect("spec");
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
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
        let tls = spec.tls.expect("tls");
        assert_eq!(tls[0].secret_name.as_deref(), Some("meetups-tls"));
        assert_eq!(tls[0].hosts, Some(vec!["meetups.example.org".to_owned()]));
    }

    #[test]
    fn service_type_follows_the_spec_and_hides_stats() {
        let mut spec = ingress_spec();
        spec.ingress.controller.service_type = ServiceType::NodePort;
        spec.ingress.controller.replicas = 1;
        let c = children(spec);
        let svc = pick(&c, |c| match c {
            Child::Service(s) if s.metadata.name.as_deref() == Some("demo-haproxy") => Some(s),
            _ => None,
        });
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        // The client address survives to HAProxy (X-Forwarded-For feeds the API's rate limit).
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
        let ports: Vec<i32> = spec.ports.expect("ports").iter().map(|p| p.port).collect();
        assert_eq!(ports, [80], "HTTPS only with TLS; stats and health never");
        assert!(
            !c.iter().any(|c| matches!(c, Child::PodDisruptionBudget(_))),
            "no budget for a single proxy pod"
        );
    }
}
