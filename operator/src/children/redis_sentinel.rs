//! `redis.mode: replicated`: a StatefulSet of Redis pods (one primary, `redis.replicas` replicas)
//! and a StatefulSet of three Sentinels that promote a replica when the primary fails.
//!
//! Every pod has a stable DNS name through a headless Service; Redis and Sentinel announce those
//! names (`replica-announce-ip`, `announce-hostnames`), so a restarted pod with a new IP is still
//! the same member. A starting Redis pod first asks the Sentinels who the primary is and follows
//! it; only when no Sentinel knows (first start of the whole set) does pod 0 start as primary —
//! so a restarted former primary rejoins as a replica instead of splitting the set.
//!
//! The API server gets `REDIS_SENTINEL_URLS` (from the Secret), `REDIS_SENTINEL_MASTER` and
//! `REDIS_PASSWORD` instead of `REDIS_URL`.

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
use super::credentials::{self, RedisCredentials};
use super::redis::{PORT, REDIS_UID, default_resources};
use crate::crd::DataStorageSpec;
use crate::images;
use crate::names::{Component, LABEL_VERSION};

pub const SENTINEL_PORT: i32 = 26379;
/// Sentinels in the set: a majority (quorum 2) survives the loss of one.
pub const SENTINELS: i32 = 3;
pub const QUORUM: i32 = 2;
/// The name Sentinels monitor the primary under (`REDIS_SENTINEL_MASTER`).
pub const MASTER_NAME: &str = "mymaster";

/// Comma-separated Sentinel URLs carrying the password, for the API server.
pub fn sentinel_urls(ctx: &BuildContext<'_>, password: &str) -> String {
    (0..SENTINELS)
        .map(|i| {
            format!(
                "redis://:{password}@{}:{SENTINEL_PORT}",
                ctx.names.sentinel_host(i)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn build(ctx: &BuildContext<'_>, creds: &RedisCredentials) -> Vec<Child> {
    let redis = ctx.names.component(Component::Redis);
    let sentinel = ctx.names.component(Component::RedisSentinel);
    let data_pods = ctx.spec.redis.replicas + 1;
    let mut children = vec![
        Child::Secret(secret(ctx, creds)),
        Child::Service(headless(
            ctx,
            &ctx.names.redis_headless(),
            Component::Redis,
            "redis",
            PORT,
        )),
        Child::Service(headless(
            ctx,
            &sentinel,
            Component::RedisSentinel,
            "sentinel",
            SENTINEL_PORT,
        )),
    ];
    for (component, pods) in [
        (Component::Redis, data_pods),
        (Component::RedisSentinel, SENTINELS),
    ] {
        if let Some(pdb) = common::disruption_budget(ctx, component, pods, 2) {
            children.push(Child::PodDisruptionBudget(pdb));
        }
    }
    children.push(Child::StatefulSet(redis_statefulset(
        ctx, &redis, data_pods,
    )));
    children.push(Child::StatefulSet(sentinel_statefulset(ctx, &sentinel)));
    children
}

fn secret(ctx: &BuildContext<'_>, creds: &RedisCredentials) -> Secret {
    Secret {
        metadata: ctx.meta(ctx.names.redis_credentials(), Component::Redis),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([
            (
                credentials::REDIS_PASSWORD_KEY.to_owned(),
                ByteString(creds.password.clone().into_bytes()),
            ),
            (
                credentials::REDIS_SENTINEL_URLS_KEY.to_owned(),
                ByteString(sentinel_urls(ctx, &creds.password).into_bytes()),
            ),
        ])),
        ..Secret::default()
    }
}

fn headless(
    ctx: &BuildContext<'_>,
    name: &str,
    component: Component,
    port_name: &str,
    port: i32,
) -> Service {
    Service {
        metadata: ctx.meta(name, component),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            // Members must find each other before they are ready.
            publish_not_ready_addresses: Some(true),
            selector: Some(ctx.names.selector(component)),
            ports: Some(vec![common::service_port(port_name, port, port_name)]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Shell that asks the Sentinels for the current primary (empty when none knows).
fn ask_sentinels(ctx: &BuildContext<'_>) -> String {
    let hosts: Vec<String> = (0..SENTINELS).map(|i| ctx.names.sentinel_host(i)).collect();
    format!(
        r#"PRIMARY=""
for s in {hosts}; do
  PRIMARY="$(timeout 3 redis-cli -h "$s" -p {SENTINEL_PORT} sentinel get-master-addr-by-name {MASTER_NAME} 2>/dev/null | head -n 1)"
  [ -n "$PRIMARY" ] && break
done"#,
        hosts = hosts.join(" ")
    )
}

/// The start script of a Redis data pod.
pub fn redis_script(ctx: &BuildContext<'_>) -> String {
    let spec = &ctx.spec.redis;
    let me = format!(
        "$(hostname).{}.{}.svc.cluster.local",
        ctx.names.redis_headless(),
        ctx.names.namespace
    );
    let first = ctx.names.redis_pod_host(0);
    let persistence = if spec.storage.persistent {
        "--appendonly yes"
    } else {
        "--save ''"
    };
    format!(
        r#"set -eu
ME="{me}"
{ask}
if [ -z "$PRIMARY" ]; then PRIMARY="{first}"; fi
set -- --port {PORT} --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$ME" --maxmemory {max_memory} --maxmemory-policy {policy} {persistence}
if [ "$PRIMARY" != "$ME" ]; then
  echo "following primary $PRIMARY"
  set -- "$@" --replicaof "$PRIMARY" {PORT}
else
  echo "starting as primary"
fi
exec redis-server "$@""#,
        ask = ask_sentinels(ctx),
        max_memory = spec.max_memory,
        policy = spec.max_memory_policy.as_redis_arg(),
    )
}

/// The start script of a Sentinel: config written to its volume (Sentinel rewrites it).
pub fn sentinel_script(ctx: &BuildContext<'_>) -> String {
    let sentinel = ctx.names.component(Component::RedisSentinel);
    let me = format!(
        "$(hostname).{sentinel}.{}.svc.cluster.local",
        ctx.names.namespace
    );
    let first = ctx.names.redis_pod_host(0);
    format!(
        r#"set -eu
ME="{me}"
{ask}
if [ -z "$PRIMARY" ]; then PRIMARY="{first}"; fi
until getent hosts "$PRIMARY" >/dev/null; do echo "waiting for $PRIMARY"; sleep 2; done
cat > /data/sentinel.conf <<EOF
port {SENTINEL_PORT}
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $ME
requirepass $REDIS_PASSWORD
sentinel sentinel-pass $REDIS_PASSWORD
sentinel monitor {MASTER_NAME} $PRIMARY {PORT} {QUORUM}
sentinel auth-pass {MASTER_NAME} $REDIS_PASSWORD
sentinel down-after-milliseconds {MASTER_NAME} 5000
sentinel failover-timeout {MASTER_NAME} 60000
sentinel parallel-syncs {MASTER_NAME} 1
EOF
exec redis-sentinel /data/sentinel.conf"#,
        ask = ask_sentinels(ctx),
    )
}

fn ping(port: i32, delay: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            // REDISCLI_AUTH keeps the password out of argv.
            command: Some(vec![
                "redis-cli".to_owned(),
                "-p".to_owned(),
                port.to_string(),
                "ping".to_owned(),
            ]),
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(10),
        timeout_seconds: Some(3),
        ..Probe::default()
    }
}

fn password_env(ctx: &BuildContext<'_>) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    let secret = ctx.names.redis_credentials();
    vec![
        common::env_from_secret("REDIS_PASSWORD", &secret, credentials::REDIS_PASSWORD_KEY),
        common::env_from_secret("REDISCLI_AUTH", &secret, credentials::REDIS_PASSWORD_KEY),
    ]
}

#[allow(clippy::too_many_arguments)]
fn statefulset(
    ctx: &BuildContext<'_>,
    name: &str,
    service: &str,
    component: Component,
    replicas: i32,
    container: Container,
    claim: Option<&DataStorageSpec>,
) -> StatefulSet {
    let mut pod_labels = ctx.names.labels(component);
    pod_labels.insert(LABEL_VERSION.to_owned(), ctx.spec.redis.version.clone());
    let volumes = claim.is_none().then(|| vec![common::empty_dir("data")]);
    StatefulSet {
        metadata: ctx.meta(name, component),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(service.to_owned()),
            pod_management_policy: Some("Parallel".to_owned()),
            selector: ctx.selector(component),
            // A cache's volumes belong to the platform: they go with it.
            persistent_volume_claim_retention_policy: claim.map(|_| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Delete".to_owned()),
                    when_scaled: Some("Delete".to_owned()),
                }
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(common::pod_security(REDIS_UID)),
                    affinity: Some(common::affinity(ctx, &Default::default(), component, None)),
                    volumes,
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: claim
                .map(|storage| vec![common::data_claim_template(ctx, component, "data", storage)]),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

fn redis_statefulset(ctx: &BuildContext<'_>, name: &str, replicas: i32) -> StatefulSet {
    let spec = &ctx.spec.redis;
    let container = Container {
        name: "redis".to_owned(),
        image: Some(images::redis_image(&spec.version)),
        command: Some(vec!["sh".to_owned(), "-c".to_owned(), redis_script(ctx)]),
        env: Some(password_env(ctx)),
        ports: Some(vec![common::container_port("redis", PORT)]),
        resources: Some(default_resources(spec)),
        readiness_probe: Some(ping(PORT, 2)),
        liveness_probe: Some(ping(PORT, 15)),
        volume_mounts: Some(vec![common::mount("data", "/data")]),
        security_context: Some(common::container_security(true)),
        ..Container::default()
    };
    let storage = spec.storage.persistent.then(|| DataStorageSpec {
        size: spec.storage.size.clone(),
        storage_class_name: spec.storage.storage_class_name.clone(),
    });
    statefulset(
        ctx,
        name,
        &ctx.names.redis_headless(),
        Component::Redis,
        replicas,
        container,
        storage.as_ref(),
    )
}

fn sentinel_statefulset(ctx: &BuildContext<'_>, name: &str) -> StatefulSet {
    let container = Container {
        name: "sentinel".to_owned(),
        image: Some(images::redis_image(&ctx.spec.redis.version)),
        command: Some(vec!["sh".to_owned(), "-c".to_owned(), sentinel_script(ctx)]),
        env: Some(password_env(ctx)),
        ports: Some(vec![common::container_port("sentinel", SENTINEL_PORT)]),
        resources: Some(common::resources("20m", "32Mi", "128Mi")),
        readiness_probe: Some(ping(SENTINEL_PORT, 2)),
        liveness_probe: Some(ping(SENTINEL_PORT, 15)),
        volume_mounts: Some(vec![common::mount("data", "/data")]),
        security_context: Some(common::container_security(true)),
        ..Container::default()
    };
    statefulset(
        ctx,
        name,
        name,
        Component::RedisSentinel,
        SENTINELS,
        container,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{inputs, platform};
    use super::*;
    use crate::children::test_support::build_valid;
    use crate::crd::{BeerMeetupPlatformSpec, RedisMode};

    fn replicated() -> BeerMeetupPlatformSpec {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.redis.mode = RedisMode::Replicated;
        spec
    }

    fn children(spec: BeerMeetupPlatformSpec) -> Vec<Child> {
        build_valid(&platform(spec), &inputs())
            .expect("builds")
            .children
            .into_iter()
            .filter(|c| matches!(c.component().as_deref(), Some("redis" | "redis-sentinel")))
            .collect()
    }

    fn sts<'a>(c: &'a [Child], name: &str) -> &'a StatefulSet {
        c.iter()
            .find_map(|c| match c {
                Child::StatefulSet(s) if s.metadata.name.as_deref() == Some(name) => Some(s),
                _ => None,
            })
            .expect("statefulset")
    }

    #[test]
    fn replicated_mode_runs_a_primary_replicas_and_three_sentinels() {
        let c = children(replicated());
        let keys: Vec<(&str, String)> = c.iter().map(|c| (c.kind(), c.name())).collect();
        assert!(!keys.contains(&("Deployment", "demo-redis".to_owned())));
        assert!(
            !keys.contains(&("Service", "demo-redis".to_owned())),
            "no load-balanced Service over primary and replicas"
        );
        let data = sts(&c, "demo-redis").spec.clone().expect("spec");
        assert_eq!(data.replicas, Some(3), "primary + 2 replicas");
        assert_eq!(data.service_name.as_deref(), Some("demo-redis-headless"));
        let sentinels = sts(&c, "demo-redis-sentinel").spec.clone().expect("spec");
        assert_eq!(sentinels.replicas, Some(3));
        let selector = sentinels.selector.match_labels.expect("labels");
        assert_eq!(selector["app.kubernetes.io/component"], "redis-sentinel");
        assert_eq!(
            keys.iter()
                .filter(|(k, _)| *k == "PodDisruptionBudget")
                .count(),
            2
        );
    }

    #[test]
    fn scripts_follow_the_sentinels_and_authenticate() {
        let c = children(replicated());
        let data = sts(&c, "demo-redis").spec.clone().expect("spec");
        let script = data.template.spec.expect("pod").containers[0]
            .command
            .clone()
            .expect("command")[2]
            .clone();
        assert!(script.contains("sentinel get-master-addr-by-name mymaster"));
        assert!(script.contains("--replicaof \"$PRIMARY\" 6379"));
        assert!(script.contains("--masterauth \"$REDIS_PASSWORD\""));
        assert!(script.contains("demo-redis-0.demo-redis-headless.team-a.svc.cluster.local"));
        assert!(script.contains("--maxmemory-policy volatile-lru"));
        assert!(!script.contains("generated"), "no password in the script");
        let sentinel = sentinel_script(&crate::children::common::BuildContext {
            spec: &replicated(),
            names: &crate::names::Names::new("demo", "team-a"),
            owner: None,
        });
        assert!(sentinel.contains("sentinel monitor mymaster $PRIMARY 6379 2"));
        assert!(sentinel.contains("sentinel auth-pass mymaster $REDIS_PASSWORD"));
        assert!(sentinel.contains("sentinel announce-hostnames yes"));
    }

    #[test]
    fn secret_lists_every_sentinel_for_the_api() {
        let c = children(replicated());
        let secret = c
            .iter()
            .find_map(|c| match c {
                Child::Secret(s) => Some(s.clone()),
                _ => None,
            })
            .expect("secret");
        let data = secret.data.expect("data");
        assert!(!data.contains_key(credentials::REDIS_URL_KEY));
        let urls =
            String::from_utf8(data[credentials::REDIS_SENTINEL_URLS_KEY].0.clone()).expect("utf8");
        let urls: Vec<&str> = urls.split(',').collect();
        assert_eq!(urls.len(), 3);
        assert_eq!(
            urls[1],
            "redis://:<generated: redis password>@demo-redis-sentinel-1.demo-redis-sentinel.team-a.svc.cluster.local:26379"
        );
    }

    #[test]
    fn persistence_uses_claim_templates_deleted_with_the_platform() {
        let mut spec = replicated();
        spec.redis.storage.persistent = true;
        let c = children(spec);
        let data = sts(&c, "demo-redis").spec.clone().expect("spec");
        assert_eq!(data.volume_claim_templates.map(|v| v.len()), Some(1));
        assert_eq!(
            data.persistent_volume_claim_retention_policy
                .and_then(|p| p.when_deleted)
                .as_deref(),
            Some("Delete")
        );
        assert!(
            !c.iter()
                .any(|c| matches!(c, Child::PersistentVolumeClaim(_)))
        );
    }
}
