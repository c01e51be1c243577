//! Pure builders: a `BeerMeetupPlatform` (plus what was read from the cluster) in, the child
//! objects out. No I/O here, so every builder is unit-tested and `render` shows exactly what the
//! controller would apply.

pub mod api_server;
pub mod common;
pub mod credentials;
pub mod mongodb;
pub mod redis;
pub mod web;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::{Resource, ResourceExt};
use serde::Serialize;

use crate::crd::BeerMeetupPlatform;
use crate::names::{Component, Names};
use credentials::{MongoCredentials, RedisCredentials};

/// Why a platform cannot be built; always a problem of the spec or metadata, never of the world.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("the platform has no namespace")]
    MissingNamespace,
}

/// What the builders need beyond the CR: values read from the cluster in the dereference step.
#[derive(Clone, Debug)]
pub struct BuildInputs {
    /// Root and app passwords plus the replica-set keyfile (existing values win).
    pub mongodb_credentials: MongoCredentials,
    /// The Redis password (existing value wins).
    pub redis_credentials: RedisCredentials,
    /// `spec.replicas` of the MongoDB StatefulSet as it is now, if it exists.
    pub current_mongodb_replicas: Option<i32>,
    /// Whether the init Job for the desired membership has succeeded.
    pub membership_job_succeeded: bool,
}

/// One child object, typed so it can be applied with its own API.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Child {
    Secret(Secret),
    ConfigMap(ConfigMap),
    Service(Service),
    PersistentVolumeClaim(PersistentVolumeClaim),
    PodDisruptionBudget(PodDisruptionBudget),
    StatefulSet(StatefulSet),
    Job(Job),
    Deployment(Deployment),
}

impl Child {
    /// Apply order: what others refer to first (Secrets, ConfigMaps, Services, volumes), then
    /// disruption budgets, then workloads (data services before the API that connects to them).
    pub fn apply_rank(&self) -> u8 {
        match self {
            Self::Secret(_) => 0,
            Self::ConfigMap(_) => 1,
            Self::Service(_) => 2,
            Self::PersistentVolumeClaim(_) => 3,
            Self::PodDisruptionBudget(_) => 4,
            Self::StatefulSet(_) => 5,
            Self::Job(_) => 6,
            Self::Deployment(_) => 7,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Secret(_) => "Secret",
            Self::ConfigMap(_) => "ConfigMap",
            Self::Service(_) => "Service",
            Self::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Self::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Self::StatefulSet(_) => "StatefulSet",
            Self::Job(_) => "Job",
            Self::Deployment(_) => "Deployment",
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Secret(o) => o.name_any(),
            Self::ConfigMap(o) => o.name_any(),
            Self::Service(o) => o.name_any(),
            Self::PersistentVolumeClaim(o) => o.name_any(),
            Self::PodDisruptionBudget(o) => o.name_any(),
            Self::StatefulSet(o) => o.name_any(),
            Self::Job(o) => o.name_any(),
            Self::Deployment(o) => o.name_any(),
        }
    }

    /// The component label of the child (every child has one).
    pub fn component(&self) -> Option<String> {
        let labels = match self {
            Self::Secret(o) => o.labels(),
            Self::ConfigMap(o) => o.labels(),
            Self::Service(o) => o.labels(),
            Self::PersistentVolumeClaim(o) => o.labels(),
            Self::PodDisruptionBudget(o) => o.labels(),
            Self::StatefulSet(o) => o.labels(),
            Self::Job(o) => o.labels(),
            Self::Deployment(o) => o.labels(),
        };
        labels.get(crate::names::LABEL_COMPONENT).cloned()
    }

    /// `apiVersion` of the child, for rendering.
    pub fn api_version(&self) -> String {
        match self {
            Self::Secret(_) => Secret::api_version(&()).into_owned(),
            Self::ConfigMap(_) => ConfigMap::api_version(&()).into_owned(),
            Self::Service(_) => Service::api_version(&()).into_owned(),
            Self::PersistentVolumeClaim(_) => PersistentVolumeClaim::api_version(&()).into_owned(),
            Self::PodDisruptionBudget(_) => PodDisruptionBudget::api_version(&()).into_owned(),
            Self::StatefulSet(_) => StatefulSet::api_version(&()).into_owned(),
            Self::Job(_) => Job::api_version(&()).into_owned(),
            Self::Deployment(_) => Deployment::api_version(&()).into_owned(),
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
pub fn init_job_name(platform: &BeerMeetupPlatform) -> Result<String, BuildError> {
    let namespace = platform.namespace().ok_or(BuildError::MissingNamespace)?;
    let names = Names::new(platform.name_any(), namespace);
    Ok(mongodb::init_job_name(&common::BuildContext {
        spec: &platform.spec,
        names: &names,
        owner: None,
    }))
}

/// Build every child object of a platform. Pure: same inputs, same output.
pub fn build_children(
    platform: &BeerMeetupPlatform,
    inputs: &BuildInputs,
) -> Result<ChildSet, BuildError> {
    let namespace = platform.namespace().ok_or(BuildError::MissingNamespace)?;
    let names = Names::new(platform.name_any(), namespace);
    let owner = platform.controller_owner_ref(&());
    let ctx = common::BuildContext {
        spec: &platform.spec,
        names: &names,
        owner: owner.as_ref(),
    };

    let mut children = Vec::new();
    let mongo = mongodb::build(&ctx, inputs);
    children.extend(mongo.children);
    children.extend(redis::build(&ctx, &inputs.redis_credentials));
    // Web before API: with `separateNodes` the web pods (usually fewer) claim their nodes first and
    // the API pods fill the rest, instead of API pods spreading over every node and leaving none.
    children.extend(web::build(&ctx));
    children.extend(api_server::build(&ctx));
    // A stable sort keeps the builders' order within one kind.
    children.sort_by_key(Child::apply_rank);
    Ok(ChildSet {
        children,
        mongodb_init_job: mongo.init_job_name,
    })
}

/// The component each condition and status count refers to, in display order.
pub fn components() -> [Component; 4] {
    Component::ALL
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::crd::BeerMeetupPlatformSpec;
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
        BuildInputs {
            mongodb_credentials: MongoCredentials::placeholders(),
            redis_credentials: RedisCredentials::placeholders(),
            current_mongodb_replicas: None,
            membership_job_succeeded: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::crd::BeerMeetupPlatformSpec;

    #[test]
    fn minimal_platform_builds_every_child_in_apply_order() {
        let set = build_children(&platform(BeerMeetupPlatformSpec::default()), &inputs())
            .expect("builds");
        let ranks: Vec<u8> = set.children.iter().map(Child::apply_rank).collect();
        let mut sorted = ranks.clone();
        sorted.sort();
        assert_eq!(ranks, sorted, "children must come in apply order");
        let keys = set.keys();
        for expected in [
            ("Secret", "demo-mongodb-credentials"),
            ("Secret", "demo-redis-credentials"),
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
        let a = serde_json::to_string(&build_children(&p, &inputs()).expect("a").children)
            .expect("json");
        let b = serde_json::to_string(&build_children(&p, &inputs()).expect("b").children)
            .expect("json");
        assert_eq!(a, b);
    }

    #[test]
    fn children_carry_owner_references_and_labels() {
        let set = build_children(&platform(BeerMeetupPlatformSpec::default()), &inputs())
            .expect("builds");
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
            if child.name() != "demo-mongodb-credentials" {
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

    #[test]
    fn a_platform_without_namespace_is_a_build_error() {
        let mut p = platform(BeerMeetupPlatformSpec::default());
        p.metadata.namespace = None;
        assert_eq!(
            build_children(&p, &inputs()).err(),
            Some(BuildError::MissingNamespace)
        );
    }
}
