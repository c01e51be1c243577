//! NetworkPolicies: only the API server reaches the data services, and the data services reach
//! nothing but each other and DNS.
//!
//! Ingress (who may connect):
//! - MongoDB (27017): from the API server, the members among themselves and the replica-set init
//!   Job's pods (labelled `mongodb-init`, apart from the members so no PDB selects them).
//! - Redis (6379): from the API server, Redis pods (replication) and Sentinels.
//! - Sentinel (26379): from the API server, Redis pods (they ask who the primary is) and Sentinels.
//! - Elasticsearch (9200): from the API server only.
//!
//! Egress (where they may connect), besides DNS (port 53, any destination: cluster DNS may be a
//! node-local address no pod selector matches):
//! - MongoDB: the other members (27017).
//! - Redis: Redis pods (6379) and, replicated, Sentinels (26379); Sentinels the same.
//! - Elasticsearch (single node): nothing else.
//! - The API server: its data services' ports only — unless MongoDB or Redis is external (their
//!   addresses are the user's, unknown here); then the API's egress stays open.
//!
//! - The platform's own HAProxy: the API server and web pods (8080) only — it talks to nothing
//!   else, not even the Kubernetes API.
//!
//! Who reaches the web, API and HAProxy pods is not limited (HAProxy and Prometheus reach them,
//! people reach HAProxy); Prometheus scrapes only annotated pods, none of them data pods.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Child;
use super::common::BuildContext;
use crate::crd::RedisMode;
use crate::names::Component;

/// DNS, for every isolated pod.
const DNS_PORT: i32 = 53;

pub fn build(ctx: &BuildContext<'_>) -> Vec<Child> {
    let spec = ctx.spec;
    if !spec.network_policies.enabled {
        return Vec::new();
    }
    let mongodb = (Component::MongoDb, super::mongodb::PORT);
    let redis = (Component::Redis, super::redis::PORT);
    let sentinel = (
        Component::RedisSentinel,
        super::redis_sentinel::SENTINEL_PORT,
    );
    let elasticsearch = (Component::Elasticsearch, super::elasticsearch::PORT);
    let replicated = spec.redis.mode == RedisMode::Replicated;
    let mut policies = Vec::new();
    if spec.mongodb.external.is_none() {
        policies.push(policy(
            ctx,
            mongodb,
            &[
                Component::ApiServer,
                Component::MongoDb,
                Component::MongoDbInit,
            ],
            &[mongodb],
        ));
    }
    if spec.redis.external.is_none() {
        let mut peers = vec![Component::ApiServer, Component::Redis];
        let mut redis_egress = vec![redis];
        if replicated {
            peers.push(Component::RedisSentinel);
            redis_egress.push(sentinel);
            policies.push(policy(ctx, sentinel, &peers, &redis_egress));
        }
        policies.push(policy(ctx, redis, &peers, &redis_egress));
    }
    if spec.elasticsearch.enabled {
        policies.push(policy(ctx, elasticsearch, &[Component::ApiServer], &[]));
    }
    if spec.mongodb.external.is_none() && spec.redis.external.is_none() {
        let mut targets = vec![mongodb, redis];
        if replicated {
            targets.push(sentinel);
        }
        if spec.elasticsearch.enabled {
            targets.push(elasticsearch);
        }
        policies.push(egress_only(ctx, Component::ApiServer, &targets));
    }
    if spec.ingress.enabled && spec.ingress.controller.deploy {
        let port = super::api_server::PORT;
        policies.push(egress_only(
            ctx,
            Component::Ingress,
            &[(Component::ApiServer, port), (Component::Web, port)],
        ));
    }
    policies.into_iter().map(Child::NetworkPolicy).collect()
}

/// Pods of `target` accept connections on its port from pods of `from` (same namespace) only,
/// and connect only to `to` and DNS.
fn policy(
    ctx: &BuildContext<'_>,
    (target, port): (Component, i32),
    from: &[Component],
    to: &[(Component, i32)],
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ctx.meta(ctx.names.component(target), target),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(ctx.selector(target)),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from.iter().map(|c| peer(ctx, *c)).collect()),
                ports: Some(vec![tcp(port)]),
            }]),
            egress: Some(egress_rules(ctx, to)),
        }),
    }
}

/// Pods of `source` connect only to `to` and DNS; who connects to them is not restricted.
fn egress_only(
    ctx: &BuildContext<'_>,
    source: Component,
    to: &[(Component, i32)],
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ctx.meta(ctx.names.component(source), source),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(ctx.selector(source)),
            policy_types: Some(vec!["Egress".to_owned()]),
            egress: Some(egress_rules(ctx, to)),
            ..NetworkPolicySpec::default()
        }),
    }
}

/// DNS anywhere, then one rule per target component on its port.
fn egress_rules(ctx: &BuildContext<'_>, to: &[(Component, i32)]) -> Vec<NetworkPolicyEgressRule> {
    let dns = NetworkPolicyEgressRule {
        to: None,
        ports: Some(vec![
            NetworkPolicyPort {
                port: Some(IntOrString::Int(DNS_PORT)),
                protocol: Some("UDP".to_owned()),
                ..NetworkPolicyPort::default()
            },
            tcp(DNS_PORT),
        ]),
    };
    std::iter::once(dns)
        .chain(to.iter().map(|(component, port)| NetworkPolicyEgressRule {
            to: Some(vec![peer(ctx, *component)]),
            ports: Some(vec![tcp(*port)]),
        }))
        .collect()
}

fn peer(ctx: &BuildContext<'_>, component: Component) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(ctx.selector(component)),
        ..NetworkPolicyPeer::default()
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_owned()),
        ..NetworkPolicyPort::default()
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
            .filter(|p| p.spec.as_ref().is_some_and(|s| s.ingress.is_some()))
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

    /// (source component, [(target component, port)]) of every egress rule but DNS.
    fn egress(policies: &[NetworkPolicy]) -> Vec<(String, Vec<(String, i32)>)> {
        let component = |p: &NetworkPolicyPeer| {
            p.pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .map(|l| l["app.kubernetes.io/component"].clone())
                .unwrap_or_default()
        };
        policies
            .iter()
            .map(|p| {
                let spec = p.spec.clone().expect("spec");
                let source = spec
                    .pod_selector
                    .and_then(|s| s.match_labels)
                    .map(|l| l["app.kubernetes.io/component"].clone())
                    .unwrap_or_default();
                let rules = spec.egress.expect("every policy isolates egress");
                // DNS first, to any destination on port 53 (UDP and TCP).
                assert!(rules[0].to.is_none(), "{source}: DNS to anywhere");
                let dns: Vec<(Option<String>, Option<IntOrString>)> = rules[0]
                    .ports
                    .iter()
                    .flatten()
                    .map(|p| (p.protocol.clone(), p.port.clone()))
                    .collect();
                assert_eq!(
                    dns,
                    [
                        (Some("UDP".into()), Some(IntOrString::Int(53))),
                        (Some("TCP".into()), Some(IntOrString::Int(53)))
                    ],
                    "{source}"
                );
                let targets = rules[1..]
                    .iter()
                    .map(|rule| {
                        let to = rule.to.as_ref().expect("a peer");
                        assert_eq!(to.len(), 1);
                        let port = match rule.ports.as_ref().expect("ports")[0].port {
                            Some(IntOrString::Int(p)) => p,
                            _ => 0,
                        };
                        (component(&to[0]), port)
                    })
                    .collect();
                (source, targets)
            })
            .collect()
    }

    #[test]
    fn data_services_reach_only_their_peers_and_the_api_only_its_data_services() {
        let e = egress(&policies(BeerMeetupPlatformSpec::default()));
        assert_eq!(
            e,
            [
                ("mongodb".into(), vec![("mongodb".into(), 27017)]),
                ("redis".into(), vec![("redis".into(), 6379)]),
                (
                    "api".into(),
                    vec![("mongodb".into(), 27017), ("redis".into(), 6379)]
                ),
            ]
        );
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.redis.mode = RedisMode::Replicated;
        spec.elasticsearch.enabled = true;
        let e = egress(&policies(spec));
        let redis_peers = vec![("redis".into(), 6379), ("redis-sentinel".into(), 26379)];
        assert_eq!(
            e,
            [
                ("mongodb".into(), vec![("mongodb".into(), 27017)]),
                ("redis-sentinel".into(), redis_peers.clone()),
                ("redis".into(), redis_peers),
                ("elasticsearch".into(), vec![]),
                (
                    "api".into(),
                    vec![
                        ("mongodb".into(), 27017),
                        ("redis".into(), 6379),
                        ("redis-sentinel".into(), 26379),
                        ("elasticsearch".into(), 9200)
                    ]
                ),
            ]
        );
    }

    #[test]
    fn the_platforms_haproxy_reaches_only_api_and_web() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.enabled = true;
        spec.ingress.host = Some("m.example.org".into());
        let e = egress(&policies(spec.clone()));
        assert_eq!(
            e.last(),
            Some(&(
                "ingress".into(),
                vec![("api".into(), 8080), ("web".into(), 8080)]
            ))
        );
        // The cluster's own ingress controller is not the platform's to confine.
        spec.ingress.controller.deploy = false;
        let e = egress(&policies(spec));
        assert!(e.iter().all(|(source, _)| source != "ingress"), "{e:?}");
    }

    #[test]
    fn data_policies_isolate_both_directions_and_the_api_only_egress() {
        for p in policies(BeerMeetupPlatformSpec::default()) {
            let name = p.metadata.name.clone().unwrap_or_default();
            let types = p.spec.and_then(|s| s.policy_types).unwrap_or_default();
            if name == "demo-api" {
                assert_eq!(
                    types,
                    ["Egress"],
                    "{name}: who reaches the API is not limited"
                );
            } else {
                assert_eq!(types, ["Ingress", "Egress"], "{name}");
            }
        }
    }

    #[test]
    fn an_external_database_leaves_the_api_egress_open() {
        let external = ExternalRef {
            secret_name: "s".into(),
            key: "k".into(),
        };
        for external_mongodb in [true, false] {
            let mut spec = BeerMeetupPlatformSpec::default();
            if external_mongodb {
                spec.mongodb.external = Some(external.clone());
            } else {
                spec.redis.external = Some(external.clone());
            }
            let names: Vec<String> = policies(spec)
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
            assert!(!names.contains(&"demo-api".to_owned()), "{names:?}");
            assert_eq!(names.len(), 1, "the deployed data service keeps its policy");
        }
    }
}
