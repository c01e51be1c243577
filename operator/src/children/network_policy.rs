//! NetworkPolicies: only the API server reaches the data services.
//!
//! - MongoDB (27017): from the API server, the members among themselves and the replica-set init
//!   Job's pods (labelled `mongodb-init`, apart from the members so no PDB selects them).
//! - Redis (6379): from the API server, Redis pods (replication) and Sentinels.
//! - Sentinel (26379): from the API server, Redis pods (they ask who the primary is) and Sentinels.
//! - Elasticsearch (9200): from the API server only.
//!
//! Egress stays open and the API, web and ingress pods are not isolated (the ingress controller
//! and Prometheus reach them); Prometheus scrapes only annotated pods, none of them data pods.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Child;
use super::common::BuildContext;
use crate::crd::RedisMode;
use crate::names::Component;

pub fn build(ctx: &BuildContext<'_>) -> Vec<Child> {
    let spec = ctx.spec;
    if !spec.network_policies.enabled {
        return Vec::new();
    }
    let mut policies = Vec::new();
    if spec.mongodb.external.is_none() {
        policies.push(policy(
            ctx,
            Component::MongoDb,
            super::mongodb::PORT,
            &[
                Component::ApiServer,
                Component::MongoDb,
                Component::MongoDbInit,
            ],
        ));
    }
    if spec.redis.external.is_none() {
        let mut peers = vec![Component::ApiServer, Component::Redis];
        if spec.redis.mode == RedisMode::Replicated {
            peers.push(Component::RedisSentinel);
            policies.push(policy(
                ctx,
                Component::RedisSentinel,
                super::redis_sentinel::SENTINEL_PORT,
                &peers,
            ));
        }
        policies.push(policy(ctx, Component::Redis, super::redis::PORT, &peers));
    }
    if spec.elasticsearch.enabled {
        policies.push(policy(
            ctx,
            Component::Elasticsearch,
            super::elasticsearch::PORT,
            &[Component::ApiServer],
        ));
    }
    policies.into_iter().map(Child::NetworkPolicy).collect()
}

/// Pods of `target` accept connections on `port` from pods of `from` (same namespace) only.
fn policy(
    ctx: &BuildContext<'_>,
    target: Component,
    port: i32,
    from: &[Component],
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ctx.meta(ctx.names.component(target), target),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(ctx.selector(target)),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(
                    from.iter()
                        .map(|c| NetworkPolicyPeer {
                            pod_selector: Some(ctx.selector(*c)),
                            ..NetworkPolicyPeer::default()
                        })
                        .collect(),
                ),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(port)),
                    protocol: Some("TCP".to_owned()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{inputs, platform};
    use super::*;
    use crate::children::test_support::build_valid;
    use crate::crd::{BeerMeetupPlatformSpec, ExternalRef};

    fn policies(spec: BeerMeetupPlatformSpec) -> Vec<NetworkPolicy> {
        build_valid(&platform(spec), &inputs())
            .expect("builds")
            .children
            .into_iter()
            .filter_map(|c| match c {
                Child::NetworkPolicy(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// (target component, allowed source components, port) of every policy.
    fn summary(policies: &[NetworkPolicy]) -> Vec<(String, Vec<String>, i32)> {
        let component =
            |s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
                s.as_ref()
                    .and_then(|s| s.match_labels.as_ref())
                    .map(|l| l["app.kubernetes.io/component"].clone())
                    .unwrap_or_default()
            };
        policies
            .iter()
            .map(|p| {
                let spec = p.spec.clone().expect("spec");
                let rule = &spec.ingress.expect("ingress")[0];
                let from = rule
                    .from
                    .iter()
                    .flatten()
                    .map(|peer| component(&peer.pod_selector))
                    .collect();
                let port = match rule.ports.as_ref().expect("ports")[0].port {
                    Some(IntOrString::Int(p)) => p,
                    _ => 0,
                };
                (component(&spec.pod_selector), from, port)
            })
            .collect()
    }

    #[test]
    fn only_the_api_and_peers_reach_mongodb_and_redis() {
        let s = summary(&policies(BeerMeetupPlatformSpec::default()));
        assert_eq!(
            s,
            [
                (
                    "mongodb".into(),
                    vec!["api".into(), "mongodb".into(), "mongodb-init".into()],
                    27017
                ),
                ("redis".into(), vec!["api".into(), "redis".into()], 6379),
            ]
        );
    }

    #[test]
    fn sentinels_and_elasticsearch_get_their_policies() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.redis.mode = RedisMode::Replicated;
        spec.elasticsearch.enabled = true;
        let s = summary(&policies(spec));
        assert!(s.contains(&(
            "redis-sentinel".into(),
            vec!["api".into(), "redis".into(), "redis-sentinel".into()],
            26379
        )));
        assert!(s.contains(&(
            "redis".into(),
            vec!["api".into(), "redis".into(), "redis-sentinel".into()],
            6379
        )));
        assert!(s.contains(&("elasticsearch".into(), vec!["api".into()], 9200)));
    }

    #[test]
    fn external_services_and_disabled_policies_build_none() {
        let mut spec = BeerMeetupPlatformSpec::default();
        let external = ExternalRef {
            secret_name: "s".into(),
            key: "k".into(),
        };
        spec.mongodb.external = Some(external.clone());
        spec.redis.external = Some(external);
        assert!(policies(spec).is_empty());
        let mut off = BeerMeetupPlatformSpec::default();
        off.network_policies.enabled = false;
        assert!(policies(off).is_empty());
    }

    #[test]
    fn policies_isolate_ingress_only() {
        for p in policies(BeerMeetupPlatformSpec::default()) {
            assert_eq!(
                p.spec.and_then(|s| s.policy_types),
                Some(vec!["Ingress".to_owned()])
            );
        }
    }
}
