//! `spec.elasticsearch`: a single-node Elasticsearch for place search — credentials Secret
//! (password of the built-in `elastic` user, generated once), Service on 9200 and a StatefulSet
//! whose data volume is kept when Elasticsearch is turned off or the platform deleted; the Secret
//! is kept with it (no owner reference), since the password only takes effect on an empty volume.
//!
//! Security stays on (`xpack.security.enabled`), with plain HTTP inside the cluster: setting the
//! security options explicitly stops the image's first-start auto-configuration (which would
//! switch on HTTPS with a self-signed CA the API server does not know). As ECK does,
//! `node.store.allow_mmap=false` avoids the `vm.max_map_count` host requirement.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Container, ExecAction, PodSpec, PodTemplateSpec, Probe, Secret, Service, ServiceSpec,
};
use kube::api::ObjectMeta;

use super::Child;
use super::common::{self, BuildContext};
use super::credentials::{self, PasswordCredentials};
use crate::images;
use crate::names::{Component, LABEL_VERSION};

pub const PORT: i32 = 9200;
/// uid/gid of the `elasticsearch` user in the official image.
const ELASTICSEARCH_UID: i64 = 1000;
const DATA_DIR: &str = "/usr/share/elasticsearch/data";
pub const USERNAME: &str = "elastic";

/// The URL the API server uses.
pub fn url(ctx: &BuildContext<'_>) -> String {
    format!(
        "http://{}.{}.svc.cluster.local:{PORT}",
        ctx.names.component(Component::Elasticsearch),
        ctx.names.namespace
    )
}

pub fn build(ctx: &BuildContext<'_>, creds: &PasswordCredentials) -> Vec<Child> {
    if !ctx.spec.elasticsearch.enabled {
        return Vec::new();
    }
    let name = ctx.names.component(Component::Elasticsearch);
    vec![
        Child::Secret(secret(ctx, creds)),
        Child::Service(service(ctx, &name)),
        Child::StatefulSet(statefulset(ctx, &name)),
    ]
}

fn secret(ctx: &BuildContext<'_>, creds: &PasswordCredentials) -> Secret {
    Secret {
        // Kept with the kept data volume: the password is set only when the volume is empty, so a
        // re-enabled Elasticsearch needs the old one.
        metadata: ctx.unowned_meta(
            ctx.names.elasticsearch_credentials(),
            Component::Elasticsearch,
        ),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([
            (
                credentials::USERNAME_KEY.to_owned(),
                ByteString(USERNAME.as_bytes().to_vec()),
            ),
            (
                credentials::PASSWORD_KEY.to_owned(),
                ByteString(creds.password.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    }
}

fn service(ctx: &BuildContext<'_>, name: &str) -> Service {
    Service {
        metadata: ctx.meta(name, Component::Elasticsearch),
        spec: Some(ServiceSpec {
            selector: Some(ctx.names.selector(Component::Elasticsearch)),
            ports: Some(vec![common::service_port("http", PORT, "http")]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn statefulset(ctx: &BuildContext<'_>, name: &str) -> StatefulSet {
    let spec = &ctx.spec.elasticsearch;
    let secret = ctx.names.elasticsearch_credentials();
    let mut pod_labels = ctx.names.labels(Component::Elasticsearch);
    pod_labels.insert(LABEL_VERSION.to_owned(), spec.version.clone());
    // The cluster health call needs the password; curl reads it from the environment.
    let health = |delay: i32| Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                "sh".to_owned(),
                "-c".to_owned(),
                format!(
                    "curl -fsS -u \"elastic:$ELASTIC_PASSWORD\" 'http://127.0.0.1:{PORT}/_cluster/health?wait_for_status=yellow&timeout=2s' >/dev/null"
                ),
            ]),
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        ..Probe::default()
    };
    let container = Container {
        name: "elasticsearch".to_owned(),
        image: Some(images::elasticsearch_image(&spec.version)),
        env: Some(vec![
            common::env("discovery.type", "single-node"),
            common::env("node.store.allow_mmap", "false"),
            common::env("xpack.security.enabled", "true"),
            common::env("xpack.security.http.ssl.enabled", "false"),
            common::env("xpack.security.transport.ssl.enabled", "false"),
            common::env("ES_JAVA_OPTS", spec.java_opts.clone()),
            common::env_from_secret("ELASTIC_PASSWORD", &secret, credentials::PASSWORD_KEY),
        ]),
        ports: Some(vec![common::container_port("http", PORT)]),
        readiness_probe: Some(health(10)),
        liveness_probe: Some(Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                port: k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(PORT),
                ..Default::default()
            }),
            initial_delay_seconds: Some(60),
            period_seconds: Some(20),
            ..Probe::default()
        }),
        resources: Some(
            spec.resources
                .clone()
                .unwrap_or_else(|| common::resources("250m", "1Gi", "2Gi")),
        ),
        volume_mounts: Some(vec![common::mount("data", DATA_DIR)]),
        // The entrypoint writes the keystore and the auto-configured files under
        // /usr/share/elasticsearch/config, so the root filesystem stays writable.
        security_context: Some(common::container_security(false)),
        ..Container::default()
    };
    StatefulSet {
        metadata: ctx.meta(name, Component::Elasticsearch),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name.to_owned()),
            selector: ctx.selector(Component::Elasticsearch),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(common::pod_security(ELASTICSEARCH_UID)),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![common::data_claim_template(
                ctx,
                Component::Elasticsearch,
                "data",
                &spec.storage,
            )]),
            ..StatefulSetSpec::default()
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

    fn enabled() -> BeerMeetupPlatformSpec {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.elasticsearch.enabled = true;
        spec.elasticsearch.java_opts = "-Xms1g -Xmx1g".into();
        spec
    }

    fn children(spec: BeerMeetupPlatformSpec) -> Vec<Child> {
        build_valid(&platform(spec), &inputs())
            .expect("builds")
            .children
            .into_iter()
            .filter(|c| c.component().as_deref() == Some("elasticsearch"))
            .collect()
    }

    #[test]
    fn disabled_builds_nothing() {
        assert!(children(BeerMeetupPlatformSpec::default()).is_empty());
    }

    #[test]
    fn single_node_with_password_java_opts_and_kept_volume() {
        let c = children(enabled());
        let sts = c
            .iter()
            .find_map(|c| match c {
                Child::StatefulSet(s) => Some(s.clone()),
                _ => None,
            })
            .expect("statefulset");
        let spec = sts.spec.expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(
            spec.persistent_volume_claim_retention_policy
                .and_then(|p| p.when_deleted)
                .as_deref(),
            Some("Retain")
        );
        let claim = &spec.volume_claim_templates.expect("claims")[0];
        assert!(
            !claim
                .metadata
                .labels
                .clone()
                .unwrap_or_default()
                .contains_key(crate::names::LABEL_MANAGED_BY),
            "data claims are invisible to orphan cleanup"
        );
        let pod = spec.template.spec.expect("pod");
        let container = &pod.containers[0];
        assert!(
            container.image.as_deref().is_some_and(
                |i| i.ends_with(&format!(":{}", images::ELASTICSEARCH_DEFAULT_VERSION))
            )
        );
        let env = container.env.clone().expect("env");
        let value = |name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(value("discovery.type").as_deref(), Some("single-node"));
        assert_eq!(value("node.store.allow_mmap").as_deref(), Some("false"));
        assert_eq!(value("ES_JAVA_OPTS").as_deref(), Some("-Xms1g -Xmx1g"));
        let password = env
            .iter()
            .find(|e| e.name == "ELASTIC_PASSWORD")
            .and_then(|e| e.value_from.clone())
            .and_then(|v| v.secret_key_ref)
            .expect("password from secret");
        assert_eq!(password.name, "demo-elasticsearch-credentials");
        assert_eq!(
            pod.security_context.and_then(|s| s.run_as_non_root),
            Some(true)
        );
        assert!(c.iter().any(|c| matches!(c, Child::Service(s)
            if s.spec.as_ref().and_then(|s| s.ports.as_ref()).is_some_and(|p| p[0].port == 9200))));
    }
}
