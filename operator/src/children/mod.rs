//! Pure builders: a `BeerMeetupPlatform` (plus what was read from the cluster) in, the child
//! objects out. No I/O here, so every builder is unit-tested and `render` shows exactly what the
//! controller would apply.

pub mod api_server;
pub mod common;
pub mod credentials;
pub mod elasticsearch;
pub mod haproxy_config;
pub mod ingress;
pub mod mongodb;
pub mod network_policy;
pub mod redis;
pub mod redis_sentinel;
pub mod thanos;
pub mod web;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::DynamicObject;
use kube::{Resource, ResourceExt};
use serde::Serialize;

use crate::names::Component;
use crate::validate::ValidatedPlatform;
use credentials::{MongoCredentials, PasswordCredentials, RedisCredentials};

/// What the builders need beyond the CR: values read from the cluster in the dereference step.
#[derive(Clone, Debug)]
pub struct BuildInputs {
    /// Root and app passwords plus the replica-set keyfile (existing values win).
    pub mongodb_credentials: MongoCredentials,
    /// The Redis password (existing value wins).
    pub redis_credentials: RedisCredentials,
    /// The password of Elasticsearch's `elastic` user (existing value wins).
    pub elasticsearch_credentials: PasswordCredentials,
    /// `spec.replicas` of the MongoDB StatefulSet as it is now, if it exists.
    pub current_mongodb_replicas: Option<i32>,
    /// Whether the init Job for the desired membership has succeeded.
    pub membership_job_succeeded: bool,
    /// Whether the cluster has the Prometheus Operator's ServiceMonitor CRD.
    pub service_monitors: bool,
    /// Hash of the certificate in the platform's TLS Secret, when it exists: a renewed
    /// certificate rolls the platform's HAProxy pods (HAProxy reads it at start only).
    pub tls_certificate_hash: Option<String>,
}

impl BuildInputs {
    /// Inputs without a cluster (`render`): placeholder secrets, nothing existing yet.
    pub fn placeholders() -> Self {
        Self {
            mongodb_credentials: MongoCredentials::placeholders(),
            redis_credentials: RedisCredentials::placeholders(),
            elasticsearch_credentials: PasswordCredentials::placeholders("elasticsearch"),
            current_mongodb_replicas: None,
            membership_job_succeeded: false,
            service_monitors: false,
            tls_certificate_hash: None,
        }
    }
}

/// One child object, typed so it can be applied with its own API.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Child {
    ServiceAccount(ServiceAccount),
    Role(Role),
    RoleBinding(RoleBinding),
    Secret(Secret),
    ConfigMap(ConfigMap),
    Service(Service),
    PersistentVolumeClaim(PersistentVolumeClaim),
    NetworkPolicy(NetworkPolicy),
    PodDisruptionBudget(PodDisruptionBudget),
    StatefulSet(StatefulSet),
    Job(Job),
    Deployment(Deployment),
    Ingress(Ingress),
    /// `monitoring.coreos.com/v1` ServiceMonitor (no typed struct; only when the CRD exists).
    ServiceMonitor(DynamicObject),
}

/// Run `$body` with `$o` bound to the object inside any variant.
macro_rules! each {
    ($child:expr, $o:ident => $body:expr) => {
        match $child {
            Child::ServiceAccount($o) => $body,
            Child::Role($o) => $body,
            Child::RoleBinding($o) => $body,
            Child::Secret($o) => $body,
            Child::ConfigMap($o) => $body,
            Child::Service($o) => $body,
            Child::PersistentVolumeClaim($o) => $body,
            Child::NetworkPolicy($o) => $body,
            Child::PodDisruptionBudget($o) => $body,
            Child::StatefulSet($o) => $body,
            Child::Job($o) => $body,
            Child::Deployment($o) => $body,
            Child::Ingress($o) => $body,
            Child::ServiceMonitor($o) => $body,
        }
    };
}

impl Child {
    /// Apply order: identities and their RBAC first, then what others refer to (Secrets,
    /// ConfigMaps, Services, volumes), policies and disruption budgets, workloads (data services
    /// before the API that connects to them), and last what routes traffic to them.
    pub fn apply_rank(&self) -> u8 {
        match self {
            Self::ServiceAccount(_) => 0,
            Self::Role(_) => 1,
            Self::RoleBinding(_) => 2,
            Self::Secret(_) => 4,
            Self::ConfigMap(_) => 5,
            Self::Service(_) => 6,
            Self::PersistentVolumeClaim(_) => 7,
            Self::NetworkPolicy(_) => 8,
            Self::PodDisruptionBudget(_) => 9,
            Self::StatefulSet(_) => 10,
            Self::Job(_) => 11,
            Self::Deployment(_) => 12,
            Self::Ingress(_) => 13,
            Self::ServiceMonitor(_) => 14,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::ServiceAccount(_) => "ServiceAccount",
            Self::Role(_) => "Role",
            Self::RoleBinding(_) => "RoleBinding",
            Self::Secret(_) => "Secret",
            Self::ConfigMap(_) => "ConfigMap",
            Self::Service(_) => "Service",
            Self::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Self::NetworkPolicy(_) => "NetworkPolicy",
            Self::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Self::StatefulSet(_) => "StatefulSet",
            Self::Job(_) => "Job",
            Self::Deployment(_) => "Deployment",
            Self::Ingress(_) => "Ingress",
            Self::ServiceMonitor(_) => "ServiceMonitor",
        }
    }

    pub fn name(&self) -> String {
        each!(self, o => o.name_any())
    }

    /// The component label of the child (every child has one).
    pub fn component(&self) -> Option<String> {
        each!(self, o => o.labels().get(crate::names::LABEL_COMPONENT).cloned())
    }

    /// `apiVersion` of the child, for rendering.
    pub fn api_version(&self) -> String {
        match self {
            Self::ServiceMonitor(o) => o
                .types
                .as_ref()
                .map(|t| t.api_version.clone())
                .unwrap_or_default(),
            Self::ServiceAccount(_) => ServiceAccount::api_version(&()).into_owned(),
            Self::Role(_) => Role::api_version(&()).into_owned(),
            Self::RoleBinding(_) => RoleBinding::api_version(&()).into_owned(),
            Self::Secret(_) => Secret::api_version(&()).into_owned(),
            Self::ConfigMap(_) => ConfigMap::api_version(&()).into_owned(),
            Self::Service(_) => Service::api_version(&()).into_owned(),
            Self::PersistentVolumeClaim(_) => PersistentVolumeClaim::api_version(&()).into_owned(),
            Self::NetworkPolicy(_) => NetworkPolicy::api_version(&()).into_owned(),
            Self::PodDisruptionBudget(_) => PodDisruptionBudget::api_version(&()).into_owned(),
            Self::StatefulSet(_) => StatefulSet::api_version(&()).into_owned(),
            Self::Job(_) => Job::api_version(&()).into_owned(),
            Self::Deployment(_) => Deployment::api_version(&()).into_owned(),
            Self::Ingress(_) => Ingress::api_version(&()).into_owned(),
        }
    }
}

/// Every child of a platform, in apply order.
#[derive(Clone, Debug)]
pub struct ChildSet {
    pub children: Vec<Child>,
    /// Name of the replica-set init Job for the desired membership (for status).
    pub mongodb_init_job: String,
}

impl ChildSet {
    /// `(kind, name)` of every child, to tell orphans from wanted objects.
    pub fn keys(&self) -> Vec<(&'static str, String)> {
        self.children.iter().map(|c| (c.kind(), c.name())).collect()
    }
}

/// Name of the replica-set init Job the platform's current membership needs.
pub fn init_job_name(platform: &ValidatedPlatform<'_>) -> String {
    let names = platform.names();
    mongodb::init_job_name(&common::BuildContext {
        spec: platform.spec(),
        names: &names,
        owner: None,
    })
}

/// Build every child object of a platform. Pure: same inputs, same output; a validated platform
/// always builds.
pub fn build_children(platform: &ValidatedPlatform<'_>, inputs: &BuildInputs) -> ChildSet {
    let names = platform.names();
    let owner = platform.platform().controller_owner_ref(&());
    let ctx = common::BuildContext {
        spec: platform.spec(),
        names: &names,
        owner: owner.as_ref(),
    };

    let mut children = Vec::new();
    let mongo = mongodb::build(&ctx, inputs);
    children.extend(mongo.children);
    children.extend(redis::build(&ctx, &inputs.redis_credentials));
    children.extend(elasticsearch::build(
        &ctx,
        &inputs.elasticsearch_credentials,
    ));
    children.extend(thanos::build(&ctx, inputs.service_monitors));
    children.extend(network_policy::build(&ctx));
    children.extend(ingress::build(&ctx, inputs.tls_certificate_hash.as_deref()));
    // Web before API: with `separateNodes` the web pods (usually fewer) claim their nodes first and
    // the API pods fill the rest, instead of API pods spreading over every node and leaving none.
    children.extend(web::build(&ctx));
    children.extend(api_server::build(&ctx));
    // Every generated credentials Secret gets its backup copy (see `credentials`).
    let generated = [
        names.mongodb_credentials(),
        names.redis_credentials(),
        names.elasticsearch_credentials(),
    ];
    let backups: Vec<Child> = children
        .iter()
        .filter_map(|child| match child {
            Child::Secret(secret)
                if secret
                    .metadata
                    .name
                    .as_ref()
                    .is_some_and(|name| generated.contains(name)) =>
            {
                Some(Child::Secret(credentials::backup(secret)))
            }
            _ => None,
        })
        .collect();
    children.extend(backups);
    // A stable sort keeps the builders' order within one kind.
    children.sort_by_key(Child::apply_rank);
    ChildSet {
        children,
        mongodb_init_job: mongo.init_job_name,
    }
}

/// The components with a status condition for this spec, in display order.
pub fn components(spec: &crate::crd::BeerMeetupPlatformSpec) -> Vec<Component> {
    Component::WITH_CONDITION
        .into_iter()
        .filter(|c| match c {
            Component::Ingress => spec.ingress.enabled,
            Component::Elasticsearch => spec.elasticsearch.enabled,
            Component::Prometheus => spec.thanos.enabled,
            _ => true,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::crd::{BeerMeetupPlatform, BeerMeetupPlatformSpec};
    use kube::api::ObjectMeta;

    pub fn platform(spec: BeerMeetupPlatformSpec) -> BeerMeetupPlatform {
        BeerMeetupPlatform {
            metadata: ObjectMeta {
                name: Some("demo".into()),
                namespace: Some("team-a".into()),
                uid: Some("0c6f1d2e-1111-2222-3333-444455556666".into()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    pub fn inputs() -> BuildInputs {
        BuildInputs::placeholders()
    }

    /// Validate, then build: the specs of the tests must be valid ones.
    pub fn build_valid(
        platform: &BeerMeetupPlatform,
        inputs: &BuildInputs,
    ) -> Result<ChildSet, crate::validate::SpecError> {
        Ok(build_children(
            &crate::validate::validate(platform)?,
            inputs,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::crd::BeerMeetupPlatformSpec;

    #[test]
    fn minimal_platform_builds_every_child_in_apply_order() {
        let set =
            build_valid(&platform(BeerMeetupPlatformSpec::default()), &inputs()).expect("builds");
        let ranks: Vec<u8> = set.children.iter().map(Child::apply_rank).collect();
        let mut sorted = ranks.clone();
        sorted.sort();
        assert_eq!(ranks, sorted, "children must come in apply order");
        let keys = set.keys();
        for expected in [
            ("Secret", "demo-mongodb-credentials"),
            ("Secret", "demo-redis-credentials"),
            ("Secret", "demo-mongodb-credentials-backup"),
            ("Secret", "demo-redis-credentials-backup"),
            ("ConfigMap", "demo-api-config"),
            ("Service", "demo-api"),
            ("Service", "demo-web"),
            ("Service", "demo-mongodb"),
            ("Service", "demo-redis"),
            ("StatefulSet", "demo-mongodb"),
            ("Deployment", "demo-api"),
            ("Deployment", "demo-web"),
            ("Deployment", "demo-redis"),
            ("PodDisruptionBudget", "demo-mongodb"),
        ] {
            assert!(
                keys.iter()
                    .any(|(k, n)| *k == expected.0 && n == expected.1),
                "missing {expected:?} in {keys:?}"
            );
        }
        assert!(set.mongodb_init_job.starts_with("demo-mongodb-init-"));
        assert!(
            keys.iter()
                .any(|(k, n)| *k == "Job" && *n == set.mongodb_init_job)
        );
    }

    #[test]
    fn building_twice_gives_the_same_objects() {
        let p = platform(BeerMeetupPlatformSpec::default());
        let a =
            serde_json::to_string(&build_valid(&p, &inputs()).expect("a").children).expect("json");
        let b =
            serde_json::to_string(&build_valid(&p, &inputs()).expect("b").children).expect("json");
        assert_eq!(a, b);
    }

    #[test]
    fn children_carry_owner_references_and_labels() {
        let set =
            build_valid(&platform(BeerMeetupPlatformSpec::default()), &inputs()).expect("builds");
        for child in &set.children {
            let value = serde_json::to_value(child).expect("json");
            let meta = &value["metadata"];
            assert_eq!(
                meta["namespace"],
                "team-a",
                "{} {}",
                child.kind(),
                child.name()
            );
            assert_eq!(
                meta["labels"]["app.kubernetes.io/managed-by"],
                "beer-meetup-operator",
                "{} {}",
                child.kind(),
                child.name()
            );
            assert!(child.component().is_some());
            // The credentials Secret deliberately outlives the CR while its volumes do.
            // So do their backup copies (same owner as the original).
            if ![
                "demo-mongodb-credentials",
                "demo-elasticsearch-credentials",
                "demo-mongodb-credentials-backup",
                "demo-elasticsearch-credentials-backup",
            ]
            .contains(&child.name().as_str())
            {
                assert_eq!(
                    meta["ownerReferences"][0]["uid"],
                    "0c6f1d2e-1111-2222-3333-444455556666",
                    "{} {} must be owned by the platform",
                    child.kind(),
                    child.name()
                );
                assert_eq!(meta["ownerReferences"][0]["controller"], true);
            }
        }
    }

    fn everything_on() -> BeerMeetupPlatformSpec {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.enabled = true;
        spec.ingress.host = Some("m.example.org".into());
        spec.ingress.tls = Some(crate::crd::IngressTlsSpec {
            secret_name: "meetups-tls".into(),
        });
        spec.elasticsearch.enabled = true;
        spec.thanos.enabled = true;
        spec.redis.mode = crate::crd::RedisMode::Replicated;
        spec.redis.storage.persistent = true;
        spec
    }

    #[test]
    fn every_pod_is_hardened_with_every_option_on() {
        let set = build_valid(&platform(everything_on()), &inputs()).expect("builds");
        let mut pods = 0;
        for child in &set.children {
            let pod = match child {
                Child::Deployment(d) => d.spec.clone().and_then(|s| s.template.spec),
                Child::StatefulSet(s) => s.spec.clone().and_then(|s| s.template.spec),
                Child::Job(j) => j.spec.clone().and_then(|s| s.template.spec),
                _ => continue,
            }
            .expect("pod template");
            pods += 1;
            let what = child.name();
            let security = pod.security_context.clone().expect("pod security");
            assert_eq!(security.run_as_non_root, Some(true), "{what}");
            assert_eq!(
                security.seccomp_profile.map(|s| s.type_).as_deref(),
                Some("RuntimeDefault"),
                "{what}"
            );
            for c in pod
                .containers
                .iter()
                .chain(pod.init_containers.iter().flatten())
            {
                let sc = c.security_context.clone().expect("container security");
                assert_eq!(
                    sc.capabilities.and_then(|c| c.drop),
                    Some(vec!["ALL".to_owned()]),
                    "{what}/{}",
                    c.name
                );
                let requests = c
                    .resources
                    .as_ref()
                    .and_then(|r| r.requests.clone())
                    .unwrap_or_default();
                assert!(
                    requests.contains_key("cpu") && requests.contains_key("memory"),
                    "{what}/{} has requests",
                    c.name
                );
                assert!(
                    c.resources
                        .as_ref()
                        .and_then(|r| r.limits.as_ref())
                        .is_some_and(|l| l.contains_key("memory")),
                    "{what}/{} has a memory limit",
                    c.name
                );
                assert_eq!(
                    sc.allow_privilege_escalation,
                    Some(false),
                    "{what}/{}",
                    c.name
                );
            }
        }
        assert_eq!(
            pods, 10,
            "api, web, redis, sentinel, mongodb, init job, haproxy, es, prometheus, query"
        );
    }

    #[test]
    fn every_child_is_namespaced_with_every_option_on() {
        // Nothing cluster-scoped: no finalizer, no adoption, no fight between platforms.
        let set = build_valid(&platform(everything_on()), &inputs()).expect("builds");
        for child in &set.children {
            let value = serde_json::to_value(child).expect("json");
            assert_eq!(value["metadata"]["namespace"], "team-a", "{}", child.name());
        }
    }

    #[test]
    fn mongodb_upgrades_roll_one_member_at_a_time() {
        let set =
            build_valid(&platform(BeerMeetupPlatformSpec::default()), &inputs()).expect("builds");
        let sts = set
            .children
            .iter()
            .find_map(|c| match c {
                Child::StatefulSet(s) if s.metadata.name.as_deref() == Some("demo-mongodb") => {
                    s.spec.clone()
                }
                _ => None,
            })
            .expect("mongodb statefulset");
        let strategy = sts.update_strategy.expect("strategy");
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        assert_eq!(
            strategy.rolling_update.and_then(|r| r.max_unavailable),
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        );
    }
}
