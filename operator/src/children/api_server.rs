//! The API server: ConfigMap, Service, Deployment and (with two or more replicas) a
//! PodDisruptionBudget.
//!
//! Environment contract with the api-server binary: non-secret settings come from the ConfigMap
//! (`envFrom`), `MONGODB_URI` and `REDIS_URL` from the generated Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource,
    HTTPGetAction, PodTemplateSpec, Probe, SecretKeySelector, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::Child;
use super::common::{self, BuildContext};
use super::credentials;
use super::{elasticsearch, mongodb, redis_sentinel};
use crate::crd::RedisMode;
use crate::names::Component;

pub const PORT: i32 = 8080;
/// uid the platform's own images run as (distroless nonroot).
pub const PLATFORM_UID: i64 = 65532;
/// Reverse proxies in front of the API when the platform runs its own HAProxy.
pub const TRUSTED_PROXY_HOPS_BEHIND_OWN_INGRESS: u32 = 1;
/// `preStop` pause: HAProxy sees the pod's DNS record go and stops routing to the pod
/// before the API server gets SIGTERM (no shell needed: the kubelet sleeps).
pub const PRE_STOP_SLEEP_SECONDS: i64 = 5;
/// Grace period: the preStop pause plus the API server's own drain (WebSocket close, flushes).
pub const TERMINATION_GRACE_PERIOD_SECONDS: i64 = PRE_STOP_SLEEP_SECONDS + 30;
/// Pod annotation whose change rolls the pods when their configuration changes.
pub const CONFIG_HASH_ANNOTATION: &str = "beermeetup.io/config-hash";
/// Readiness endpoint of the API server (probes and the platform's HAProxy health checks).
pub const READINESS_PATH: &str = "/readyz";

pub fn build(ctx: &BuildContext<'_>) -> Vec<Child> {
    let name = ctx.names.component(Component::ApiServer);
    let config = config_map(ctx);
    let mut children = vec![
        Child::ConfigMap(config.clone()),
        Child::Service(common_service(ctx, &name, Component::ApiServer)),
    ];
    if let Some(pdb) =
        common::disruption_budget(ctx, Component::ApiServer, ctx.spec.api_server.replicas, 2)
    {
        children.push(Child::PodDisruptionBudget(pdb));
    }
    children.push(Child::Deployment(deployment(ctx, &name, &config)));
    children
}

/// The settings the API server reads from its environment.
pub fn config_map(ctx: &BuildContext<'_>) -> ConfigMap {
    let mut data = BTreeMap::from([
        ("BIND".to_owned(), format!("0.0.0.0:{PORT}")),
        (
            "MONGODB_DATABASE".to_owned(),
            mongodb::APP_DATABASE.to_owned(),
        ),
        ("RUST_LOG".to_owned(), ctx.spec.api_server.log_level.clone()),
        // The API server's `--log-json` flag (a bool); JSON lines for log collectors.
        ("LOG_JSON".to_owned(), "true".to_owned()),
        (
            "MEETUP_RETENTION_DAYS".to_owned(),
            ctx.spec.api_server.retention_days.to_string(),
        ),
    ]);
    let ingress = &ctx.spec.ingress;
    if ingress.enabled && ingress.controller.deploy {
        // Exactly one reverse proxy (the platform's own HAProxy) sits in front of the API: the
        // right-most X-Forwarded-For entry it appends is the client, anything left of it is not
        // to be trusted. With a controller the platform does not run, the hop count is unknown.
        data.insert(
            "TRUSTED_PROXY_HOPS".to_owned(),
            TRUSTED_PROXY_HOPS_BEHIND_OWN_INGRESS.to_string(),
        );
    }
    if ctx.spec.elasticsearch.enabled {
        data.insert("ELASTICSEARCH_URL".to_owned(), elasticsearch::url(ctx));
        data.insert(
            "ELASTICSEARCH_USERNAME".to_owned(),
            elasticsearch::USERNAME.to_owned(),
        );
    }
    if ctx.spec.redis.external.is_none() && ctx.spec.redis.mode == RedisMode::Replicated {
        data.insert(
            "REDIS_SENTINEL_MASTER".to_owned(),
            redis_sentinel::MASTER_NAME.to_owned(),
        );
    }
    ConfigMap {
        metadata: ctx.meta(ctx.names.api_config(), Component::ApiServer),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// A ClusterIP Service on port 8080 for API or web.
pub fn common_service(ctx: &BuildContext<'_>, name: &str, component: Component) -> Service {
    Service {
        metadata: ctx.meta(name, component),
        spec: Some(ServiceSpec {
            selector: Some(ctx.names.selector(component)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: PORT,
                target_port: Some(IntOrString::String("http".to_owned())),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// An HTTP GET probe on the named `http` port.
pub fn http_probe(path: &str, initial_delay: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(3),
        ..Probe::default()
    }
}

fn secret_env(name: &str, secret: String, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret,
                key: key.to_owned(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The environment taken from Secrets: connection strings and passwords.
///
/// - `MONGODB_URI`: the replica set's (generated Secret) or `mongodb.external`'s.
/// - `REDIS_URL` (standalone or `redis.external`), or in replicated mode `REDIS_SENTINEL_URLS`
///   plus `REDIS_PASSWORD` (with `REDIS_SENTINEL_MASTER` in the ConfigMap).
/// - `ELASTICSEARCH_PASSWORD` when Elasticsearch is on (URL and user in the ConfigMap).
pub fn secret_environment(ctx: &BuildContext<'_>) -> Vec<EnvVar> {
    let spec = ctx.spec;
    let mut env = vec![match &spec.mongodb.external {
        Some(external) => secret_env("MONGODB_URI", external.secret_name.clone(), &external.key),
        None => secret_env(
            "MONGODB_URI",
            ctx.names.mongodb_credentials(),
            credentials::MONGO_URI_KEY,
        ),
    }];
    match (&spec.redis.external, spec.redis.mode) {
        (Some(external), _) => {
            env.push(secret_env(
                "REDIS_URL",
                external.secret_name.clone(),
                &external.key,
            ));
        }
        (None, RedisMode::Standalone) => env.push(secret_env(
            "REDIS_URL",
            ctx.names.redis_credentials(),
            credentials::REDIS_URL_KEY,
        )),
        (None, RedisMode::Replicated) => {
            env.push(secret_env(
                "REDIS_SENTINEL_URLS",
                ctx.names.redis_credentials(),
                credentials::REDIS_SENTINEL_URLS_KEY,
            ));
            env.push(secret_env(
                "REDIS_PASSWORD",
                ctx.names.redis_credentials(),
                credentials::REDIS_PASSWORD_KEY,
            ));
        }
    }
    if spec.elasticsearch.enabled {
        env.push(secret_env(
            "ELASTICSEARCH_PASSWORD",
            ctx.names.elasticsearch_credentials(),
            credentials::PASSWORD_KEY,
        ));
    }
    env
}

fn deployment(ctx: &BuildContext<'_>, name: &str, config: &ConfigMap) -> Deployment {
    let spec = &ctx.spec.api_server;
    // Env from Secrets and ConfigMaps is read at pod start only, so pods roll when the settings or
    // the replica-set members (part of MONGODB_URI) change. Secret values are not hashed.
    let config_json = serde_json::to_string(&config.data).unwrap_or_default();
    let members = ctx.spec.mongodb.members.to_string();
    let config_hash = common::short_hash(&[&config_json, &members]);
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), PORT.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
        (CONFIG_HASH_ANNOTATION.to_owned(), config_hash),
    ]);
    let container = Container {
        name: "api-server".to_owned(),
        image: Some(spec.effective_image()),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: ctx.names.api_config(),
                ..ConfigMapEnvSource::default()
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(secret_environment(ctx)),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: PORT,
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(http_probe(READINESS_PATH, 2)),
        liveness_probe: Some(http_probe("/healthz", 10)),
        resources: Some(
            spec.pod
                .resources
                .clone()
                .unwrap_or_else(|| common::resources("100m", "128Mi", "512Mi")),
        ),
        security_context: Some(common::container_security(true)),
        volume_mounts: Some(vec![common::mount("tmp", "/tmp")]),
        lifecycle: Some(common::pre_stop_sleep(PRE_STOP_SLEEP_SECONDS)),
        ..Container::default()
    };
    let mut pod = common::stateless_pod_spec(
        ctx,
        &spec.pod,
        Component::ApiServer,
        Component::Web,
        PLATFORM_UID,
        container,
    );
    pod.termination_grace_period_seconds = Some(TERMINATION_GRACE_PERIOD_SECONDS);
    Deployment {
        metadata: ctx.meta(name, Component::ApiServer),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: ctx.selector(Component::ApiServer),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.names.labels(Component::ApiServer)),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
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
    use crate::crd::BeerMeetupPlatformSpec;

    fn api_children(spec: BeerMeetupPlatformSpec) -> Vec<Child> {
        build_valid(&platform(spec), &inputs())
            .expect("builds")
            .children
            .into_iter()
            .filter(|c| c.component().as_deref() == Some("api"))
            .collect()
    }

    fn deployment_of(children: &[Child]) -> Deployment {
        children
            .iter()
            .find_map(|c| match c {
                Child::Deployment(d) => Some(d.clone()),
                _ => None,
            })
            .expect("deployment")
    }

    #[test]
    fn api_deployment_wires_database_cache_probes_and_metrics() {
        let d = deployment_of(&api_children(BeerMeetupPlatformSpec::default()));
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(2));
        let template = spec.template;
        let annotations = template
            .metadata
            .and_then(|m| m.annotations)
            .expect("annotations");
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        assert_eq!(annotations["prometheus.io/port"], "8080");
        let pod = template.spec.expect("pod");
        let c = &pod.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some(crate::images::default_api_server_image().as_str())
        );
        let env = c.env.clone().expect("env");
        let uri = env.iter().find(|e| e.name == "MONGODB_URI").expect("uri");
        let selector = uri
            .value_from
            .clone()
            .and_then(|v| v.secret_key_ref)
            .expect("from secret");
        assert_eq!(selector.name, "demo-mongodb-credentials");
        assert!(env.iter().any(|e| e.name == "REDIS_URL"));
        let readiness = c
            .readiness_probe
            .clone()
            .and_then(|p| p.http_get)
            .expect("readiness");
        assert_eq!(readiness.path.as_deref(), Some("/readyz"));
        let liveness = c
            .liveness_probe
            .clone()
            .and_then(|p| p.http_get)
            .expect("liveness");
        assert_eq!(liveness.path.as_deref(), Some("/healthz"));
        assert_eq!(c.ports.clone().expect("ports")[0].container_port, 8080);
    }

    #[test]
    fn replicas_image_and_scheduling_follow_the_spec() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.api_server.replicas = 5;
        spec.api_server.image = Some("registry.example/api:9".into());
        spec.api_server.pod.node_selector = BTreeMap::from([("pool".into(), "api".into())]);
        let d = deployment_of(&api_children(spec));
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(5));
        let pod = spec.template.spec.expect("pod");
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some("registry.example/api:9")
        );
        assert_eq!(pod.node_selector.expect("selector")["pool"], "api");
    }

    #[test]
    fn config_map_carries_log_level() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.api_server.log_level = "debug".into();
        let children = api_children(spec);
        let cm = children
            .iter()
            .find_map(|c| match c {
                Child::ConfigMap(c) => Some(c),
                _ => None,
            })
            .expect("config map");
        let data = cm.data.clone().expect("data");
        assert_eq!(data["RUST_LOG"], "debug");
        assert_eq!(data["BIND"], "0.0.0.0:8080");
        // The API server's flag is `--log-json` (env LOG_JSON), a bool.
        assert_eq!(data["LOG_JSON"], "true");
        assert!(!data.contains_key("LOG_FORMAT"));
        assert_eq!(data["MEETUP_RETENTION_DAYS"], "90");
        // No HAProxy of ours in front: no proxy hop is trusted.
        assert!(!data.contains_key("TRUSTED_PROXY_HOPS"));
    }

    fn config_data(spec: BeerMeetupPlatformSpec) -> BTreeMap<String, String> {
        api_children(spec)
            .iter()
            .find_map(|c| match c {
                Child::ConfigMap(c) => c.data.clone(),
                _ => None,
            })
            .expect("config map data")
    }

    #[test]
    fn own_haproxy_in_front_means_one_trusted_proxy_hop() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.enabled = true;
        spec.ingress.host = Some("m.example.org".into());
        assert_eq!(config_data(spec.clone())["TRUSTED_PROXY_HOPS"], "1");
        // The cluster's own controller: the number of proxies is not the operator's to know.
        spec.ingress.controller.deploy = false;
        assert!(!config_data(spec).contains_key("TRUSTED_PROXY_HOPS"));
    }

    #[test]
    fn retention_days_follow_the_spec() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.api_server.retention_days = 30;
        assert_eq!(config_data(spec)["MEETUP_RETENTION_DAYS"], "30");
    }

    #[test]
    fn pods_pause_before_stop_and_mount_no_token() {
        let d = deployment_of(&api_children(BeerMeetupPlatformSpec::default()));
        let pod = d.spec.and_then(|s| s.template.spec).expect("pod");
        let sleep = pod.containers[0]
            .lifecycle
            .clone()
            .and_then(|l| l.pre_stop)
            .and_then(|h| h.sleep)
            .expect("preStop sleep");
        assert_eq!(sleep.seconds, PRE_STOP_SLEEP_SECONDS);
        assert!(pod.termination_grace_period_seconds.expect("grace") > sleep.seconds);
        assert_eq!(pod.automount_service_account_token, Some(false));
    }

    #[test]
    fn config_hash_rolls_pods_when_members_change_only() {
        let hash = |spec: BeerMeetupPlatformSpec| {
            deployment_of(&api_children(spec))
                .spec
                .and_then(|s| s.template.metadata)
                .and_then(|m| m.annotations)
                .expect("annotations")[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let base = hash(BeerMeetupPlatformSpec::default());
        let mut scaled = BeerMeetupPlatformSpec::default();
        scaled.api_server.replicas = 4;
        assert_eq!(base, hash(scaled));
        let mut members = BeerMeetupPlatformSpec::default();
        members.mongodb.members = 5;
        assert_ne!(base, hash(members));
    }

    fn env_names(spec: BeerMeetupPlatformSpec) -> Vec<(String, String)> {
        let d = deployment_of(&api_children(spec));
        d.spec
            .and_then(|s| s.template.spec)
            .expect("pod")
            .containers[0]
            .env
            .clone()
            .expect("env")
            .into_iter()
            .map(|e| {
                let secret = e
                    .value_from
                    .and_then(|v| v.secret_key_ref)
                    .map(|r| format!("{}/{}", r.name, r.key))
                    .unwrap_or_default();
                (e.name, secret)
            })
            .collect()
    }

    #[test]
    fn external_databases_are_wired_from_the_users_secrets() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.mongodb.external = Some(crate::crd::ExternalRef {
            secret_name: "atlas".into(),
            key: "uri".into(),
        });
        spec.redis.external = Some(crate::crd::ExternalRef {
            secret_name: "managed-redis".into(),
            key: "url".into(),
        });
        assert_eq!(
            env_names(spec),
            [
                ("MONGODB_URI".to_owned(), "atlas/uri".to_owned()),
                ("REDIS_URL".to_owned(), "managed-redis/url".to_owned()),
            ]
        );
    }

    #[test]
    fn replicated_redis_and_elasticsearch_add_their_environment() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.redis.mode = RedisMode::Replicated;
        spec.elasticsearch.enabled = true;
        let env = env_names(spec.clone());
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "MONGODB_URI",
                "REDIS_SENTINEL_URLS",
                "REDIS_PASSWORD",
                "ELASTICSEARCH_PASSWORD"
            ]
        );
        assert!(env.contains(&(
            "ELASTICSEARCH_PASSWORD".to_owned(),
            "demo-elasticsearch-credentials/password".to_owned()
        )));
        let children = api_children(spec);
        let cm = children
            .iter()
            .find_map(|c| match c {
                Child::ConfigMap(c) => Some(c),
                _ => None,
            })
            .expect("config map");
        let data = cm.data.clone().expect("data");
        assert_eq!(data["REDIS_SENTINEL_MASTER"], "mymaster");
        assert_eq!(
            data["ELASTICSEARCH_URL"],
            "http://demo-elasticsearch.team-a.svc.cluster.local:9200"
        );
        assert_eq!(data["ELASTICSEARCH_USERNAME"], "elastic");
    }

    #[test]
    fn single_replica_has_no_disruption_budget() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.api_server.replicas = 1;
        assert!(
            !api_children(spec)
                .iter()
                .any(|c| matches!(c, Child::PodDisruptionBudget(_)))
        );
        assert!(
            api_children(BeerMeetupPlatformSpec::default())
                .iter()
                .any(|c| matches!(c, Child::PodDisruptionBudget(_)))
        );
    }
}
