//! Redis: password Secret, Service, Deployment (one pod; a cache), optional data volume — or, in
//! `replicated` mode, a StatefulSet of a primary and replicas plus three Sentinels (see
//! [`super::redis_sentinel`]). With `redis.external` nothing is deployed.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSpec,
    PodTemplateSpec, Probe, Secret, SecretKeySelector, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::Child;
use super::common::{self, BuildContext};
use super::credentials::{self, RedisCredentials};
use crate::crd::RedisMode;
use crate::images;
use crate::names::{Component, LABEL_VERSION};

pub const PORT: i32 = 6379;
/// uid/gid of the `redis` user in the official image.
pub const REDIS_UID: i64 = 999;

/// The URL the API server connects with.
pub fn url(ctx: &BuildContext<'_>, password: &str) -> String {
    format!(
        "redis://:{password}@{}.{}.svc.cluster.local:{PORT}/0",
        ctx.names.component(Component::Redis),
        ctx.names.namespace
    )
}

pub fn build(ctx: &BuildContext<'_>, creds: &RedisCredentials) -> Vec<Child> {
    if ctx.spec.redis.external.is_some() {
        return Vec::new();
    }
    if ctx.spec.redis.mode == RedisMode::Replicated {
        return super::redis_sentinel::build(ctx, creds);
    }
    let name = ctx.names.component(Component::Redis);
    let mut children = vec![
        Child::Secret(secret(ctx, creds)),
        Child::Service(service(ctx, &name)),
    ];
    if ctx.spec.redis.storage.persistent {
        children.push(Child::PersistentVolumeClaim(volume_claim(ctx)));
    }
    children.push(Child::Deployment(deployment(ctx, &name)));
    children
}

/// The container resources of a Redis data pod.
pub fn default_resources(
    spec: &crate::crd::RedisSpec,
) -> k8s_openapi::api::core::v1::ResourceRequirements {
    spec.resources
        .clone()
        .unwrap_or_else(|| common::resources("50m", "128Mi", "512Mi"))
}

fn secret(ctx: &BuildContext<'_>, creds: &RedisCredentials) -> Secret {
    let data = BTreeMap::from([
        (
            credentials::REDIS_PASSWORD_KEY.to_owned(),
            ByteString(creds.password.clone().into_bytes()),
        ),
        (
            credentials::REDIS_URL_KEY.to_owned(),
            ByteString(url(ctx, &creds.password).into_bytes()),
        ),
    ]);
    Secret {
        metadata: ctx.meta(ctx.names.redis_credentials(), Component::Redis),
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

fn service(ctx: &BuildContext<'_>, name: &str) -> Service {
    Service {
        metadata: ctx.meta(name, Component::Redis),
        spec: Some(ServiceSpec {
            selector: Some(ctx.names.selector(Component::Redis)),
            ports: Some(vec![ServicePort {
                name: Some("redis".to_owned()),
                port: PORT,
                target_port: Some(IntOrString::Int(PORT)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn volume_claim(ctx: &BuildContext<'_>) -> PersistentVolumeClaim {
    let storage = &ctx.spec.redis.storage;
    PersistentVolumeClaim {
        metadata: ctx.meta(ctx.names.redis_data(), Component::Redis),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    storage.size.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

fn deployment(ctx: &BuildContext<'_>, name: &str) -> Deployment {
    let spec = &ctx.spec.redis;
    let secret = ctx.names.redis_credentials();
    let password_env = |env_name: &str| EnvVar {
        name: env_name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.clone(),
                key: credentials::REDIS_PASSWORD_KEY.to_owned(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let mut args = vec![
        // Kubernetes expands $(REDIS_PASSWORD) from the env below.
        "--requirepass".to_owned(),
        "$(REDIS_PASSWORD)".to_owned(),
        "--maxmemory".to_owned(),
        spec.max_memory.clone(),
        // volatile-lru by default (only volatile-* or noeviction are accepted): the API server
        // writes cached views with a TTL and its revision/floor keys without one, so under memory
        // pressure Redis drops views (a cache miss) and never the keys that tell a current view
        // from a stale one.
        "--maxmemory-policy".to_owned(),
        spec.max_memory_policy.as_redis_arg().to_owned(),
    ];
    if spec.storage.persistent {
        args.extend(["--appendonly".to_owned(), "yes".to_owned()]);
    } else {
        // A pure cache: no RDB snapshots either.
        args.extend(["--save".to_owned(), String::new()]);
    }
    let ping = |initial_delay: i32| Probe {
        exec: Some(ExecAction {
            // redis-cli reads the password from REDISCLI_AUTH, keeping it out of argv.
            command: Some(vec!["redis-cli".to_owned(), "ping".to_owned()]),
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(3),
        ..Probe::default()
    };
    let data_volume = if spec.storage.persistent {
        Volume {
            name: "data".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: ctx.names.redis_data(),
                ..PersistentVolumeClaimVolumeSource::default()
            }),
            ..Volume::default()
        }
    } else {
        Volume {
            name: "data".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }
    };
    let mut pod_labels = ctx.names.labels(Component::Redis);
    pod_labels.insert(LABEL_VERSION.to_owned(), spec.version.clone());

    Deployment {
        metadata: ctx.meta(name, Component::Redis),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: ctx.selector(Component::Redis),
            // A ReadWriteOnce volume cannot be attached to two pods during a rolling update.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "redis".to_owned(),
                        image: Some(images::redis_image(&spec.version)),
                        command: Some(vec!["redis-server".to_owned()]),
                        args: Some(args),
                        env: Some(vec![
                            password_env("REDIS_PASSWORD"),
                            password_env("REDISCLI_AUTH"),
                        ]),
                        ports: Some(vec![ContainerPort {
                            name: Some("redis".to_owned()),
                            container_port: PORT,
                            ..ContainerPort::default()
                        }]),
                        resources: Some(default_resources(spec)),
                        readiness_probe: Some(ping(2)),
                        liveness_probe: Some(ping(15)),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "data".to_owned(),
                            mount_path: "/data".to_owned(),
                            ..VolumeMount::default()
                        }]),
                        security_context: Some(common::container_security(true)),
                        ..Container::default()
                    }],
                    security_context: Some(common::pod_security(REDIS_UID)),
                    volumes: Some(vec![data_volume]),
                    ..PodSpec::default()
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
    use crate::crd::{BeerMeetupPlatformSpec, RedisEvictionPolicy};

    fn redis_children(spec: BeerMeetupPlatformSpec) -> Vec<Child> {
        build_valid(&platform(spec), &inputs())
            .expect("builds")
            .children
            .into_iter()
            .filter(|c| c.component().as_deref() == Some("redis"))
            .collect()
    }

    fn container(children: &[Child]) -> Container {
        children
            .iter()
            .find_map(|c| match c {
                Child::Deployment(d) => d
                    .spec
                    .clone()?
                    .template
                    .spec
                    .map(|p| p.containers[0].clone()),
                _ => None,
            })
            .expect("redis deployment")
    }

    #[test]
    fn redis_runs_as_a_password_protected_lru_cache() {
        let c = container(&redis_children(BeerMeetupPlatformSpec::default()));
        let args = c.args.expect("args");
        assert!(
            args.windows(2)
                .any(|w| w == ["--maxmemory-policy", "volatile-lru"])
        );
        assert!(args.windows(2).any(|w| w == ["--maxmemory", "256mb"]));
        assert!(
            args.windows(2)
                .any(|w| w == ["--requirepass", "$(REDIS_PASSWORD)"])
        );
        assert_eq!(c.image.as_deref(), Some("redis:7.4"));
        let env_names: Vec<String> = c.env.expect("env").into_iter().map(|e| e.name).collect();
        assert!(env_names.contains(&"REDISCLI_AUTH".to_owned()));
    }

    #[test]
    fn eviction_policy_and_version_follow_the_spec() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.redis.max_memory_policy = RedisEvictionPolicy::VolatileTtl;
        spec.redis.version = "8.0".into();
        let c = container(&redis_children(spec));
        assert!(c.args.expect("args").contains(&"volatile-ttl".to_owned()));
        assert_eq!(c.image.as_deref(), Some("redis:8.0"));
    }

    #[test]
    fn persistence_adds_an_owned_volume_claim() {
        let without = redis_children(BeerMeetupPlatformSpec::default());
        assert!(
            !without
                .iter()
                .any(|c| matches!(c, Child::PersistentVolumeClaim(_)))
        );
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.redis.storage.persistent = true;
        let with = redis_children(spec);
        let pvc = with
            .iter()
            .find_map(|c| match c {
                Child::PersistentVolumeClaim(p) => Some(p),
                _ => None,
            })
            .expect("pvc");
        assert_eq!(pvc.metadata.name.as_deref(), Some("demo-redis-data"));
        assert!(pvc.metadata.owner_references.is_some());
        assert!(
            container(&with)
                .args
                .expect("args")
                .contains(&"--appendonly".to_owned())
        );
    }

    #[test]
    fn external_redis_deploys_nothing() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.redis.external = Some(crate::crd::ExternalRef {
            secret_name: "managed-redis".into(),
            key: "url".into(),
        });
        assert!(redis_children(spec.clone()).is_empty());
        spec.redis.storage.persistent = true;
        assert!(redis_children(spec).is_empty());
    }

    #[test]
    fn secret_holds_password_and_url() {
        let children = redis_children(BeerMeetupPlatformSpec::default());
        let secret = children
            .iter()
            .find_map(|c| match c {
                Child::Secret(s) => Some(s),
                _ => None,
            })
            .expect("secret");
        let data = secret.data.clone().expect("data");
        let url = String::from_utf8(data[credentials::REDIS_URL_KEY].0.clone()).expect("utf8");
        assert_eq!(
            url,
            "redis://:<generated: redis password>@demo-redis.team-a.svc.cluster.local:6379/0"
        );
    }
}
