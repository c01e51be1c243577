//! Pieces every builder shares: metadata, default resources, placement and security contexts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, PodAffinityTerm, PodAntiAffinity, PodSecurityContext,
    PodSpec, ResourceRequirements, SeccompProfile, SecurityContext, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use crate::crd::{BeerMeetupPlatformSpec, PodOverrides};
use crate::names::{Component, Names};

/// Everything a builder reads.
pub struct BuildContext<'a> {
    pub spec: &'a BeerMeetupPlatformSpec,
    pub names: &'a Names,
    /// Controller reference to the platform; absent only when rendering a CR without a uid.
    pub owner: Option<&'a OwnerReference>,
}

impl BuildContext<'_> {
    /// Metadata of a child owned by the platform.
    pub fn meta(&self, name: impl Into<String>, component: Component) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.names.namespace.clone()),
            labels: Some(self.names.labels(component)),
            owner_references: self.owner.map(|o| vec![o.clone()]),
            ..ObjectMeta::default()
        }
    }

    /// Metadata of a child that must outlive the platform (no owner reference).
    pub fn unowned_meta(&self, name: impl Into<String>, component: Component) -> ObjectMeta {
        ObjectMeta {
            owner_references: None,
            ..self.meta(name, component)
        }
    }

    /// Selector matching the pods of a component.
    pub fn selector(&self, component: Component) -> LabelSelector {
        LabelSelector {
            match_labels: Some(self.names.selector(component)),
            ..LabelSelector::default()
        }
    }
}

/// Requests and a memory limit; the CPU limit is left out on purpose so pods are not throttled.
pub fn resources(
    cpu_request: &str,
    memory_request: &str,
    memory_limit: &str,
) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu_request.to_owned())),
            ("memory".to_owned(), Quantity(memory_request.to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity(memory_limit.to_owned()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// The pod's affinity: the user's, plus anti-affinity that keeps API and web apart when asked, or
/// else a soft preference to spread a component's own replicas over nodes. (With separate tiers a
/// spread preference would let one tier occupy every node and leave the other unschedulable.)
pub fn affinity(
    ctx: &BuildContext<'_>,
    overrides: &PodOverrides,
    component: Component,
    keep_away_from: Option<Component>,
) -> Affinity {
    let mut affinity = overrides.affinity.clone().unwrap_or_default();
    let anti = affinity
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default);
    if let Some(other) = keep_away_from.filter(|_| ctx.spec.placement.separate_nodes) {
        anti.required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(PodAffinityTerm {
                label_selector: Some(ctx.selector(other)),
                topology_key: HOSTNAME_TOPOLOGY.to_owned(),
                ..PodAffinityTerm::default()
            });
        return affinity;
    }
    anti.preferred_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(WeightedPodAffinityTerm {
            weight: 50,
            pod_affinity_term: PodAffinityTerm {
                label_selector: Some(ctx.selector(component)),
                topology_key: HOSTNAME_TOPOLOGY.to_owned(),
                ..PodAffinityTerm::default()
            },
        });
    affinity
}

/// One node per value of this label.
pub const HOSTNAME_TOPOLOGY: &str = "kubernetes.io/hostname";

/// Node selector of the pod, `None` when empty so the applied object stays minimal.
pub fn node_selector(overrides: &PodOverrides) -> Option<BTreeMap<String, String>> {
    (!overrides.node_selector.is_empty()).then(|| overrides.node_selector.clone())
}

/// Tolerations of the pod, `None` when empty.
pub fn tolerations(
    overrides: &PodOverrides,
) -> Option<Vec<k8s_openapi::api::core::v1::Toleration>> {
    (!overrides.tolerations.is_empty()).then(|| overrides.tolerations.clone())
}

/// Pod security for images that run as a fixed non-root user.
pub fn pod_security(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// Container security: no privilege escalation, no capabilities, optionally read-only root.
/// A `preStop` pause of `seconds` (the kubelet sleeps, no shell needed): the pod's endpoint goes
/// away and traffic moves elsewhere before the container gets SIGTERM.
pub fn pre_stop_sleep(seconds: i64) -> k8s_openapi::api::core::v1::Lifecycle {
    use k8s_openapi::api::core::v1::{Lifecycle, LifecycleHandler, SleepAction};
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction { seconds }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    }
}

pub fn container_security(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(read_only_root),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// A PodDisruptionBudget allowing one pod of the component down at a time, or `None` when the
/// component runs fewer pods than `min_replicas` (a budget would block node drains entirely).
pub fn disruption_budget(
    ctx: &BuildContext<'_>,
    component: Component,
    replicas: i32,
    min_replicas: i32,
) -> Option<PodDisruptionBudget> {
    (replicas >= min_replicas).then(|| PodDisruptionBudget {
        metadata: ctx.meta(ctx.names.component(component), component),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(ctx.selector(component)),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

/// An environment variable with a literal value.
pub fn env(name: &str, value: impl Into<String>) -> k8s_openapi::api::core::v1::EnvVar {
    k8s_openapi::api::core::v1::EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// An environment variable read from a key of a Secret.
pub fn env_from_secret(name: &str, secret: &str, key: &str) -> k8s_openapi::api::core::v1::EnvVar {
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An environment variable from a field of the pod (downward API), e.g. `metadata.name`.
pub fn env_from_field(name: &str, field_path: &str) -> k8s_openapi::api::core::v1::EnvVar {
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A named container port.
pub fn container_port(name: &str, port: i32) -> k8s_openapi::api::core::v1::ContainerPort {
    k8s_openapi::api::core::v1::ContainerPort {
        name: Some(name.to_owned()),
        container_port: port,
        ..Default::default()
    }
}

/// A Service port forwarding to a named container port.
pub fn service_port(
    name: &str,
    port: i32,
    target: &str,
) -> k8s_openapi::api::core::v1::ServicePort {
    k8s_openapi::api::core::v1::ServicePort {
        name: Some(name.to_owned()),
        port,
        target_port: Some(IntOrString::String(target.to_owned())),
        ..Default::default()
    }
}

/// A volume mount.
pub fn mount(name: &str, path: &str) -> k8s_openapi::api::core::v1::VolumeMount {
    k8s_openapi::api::core::v1::VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..Default::default()
    }
}

/// An emptyDir volume.
pub fn empty_dir(name: &str) -> k8s_openapi::api::core::v1::Volume {
    k8s_openapi::api::core::v1::Volume {
        name: name.to_owned(),
        empty_dir: Some(Default::default()),
        ..Default::default()
    }
}

/// The pod of a stateless platform image (API server, web): one container running as `uid`,
/// placed by `overrides`, kept away from `peer`'s pods, with an emptyDir `tmp` volume for the
/// container's `/tmp` (its root filesystem is read-only).
pub fn stateless_pod_spec(
    ctx: &BuildContext<'_>,
    overrides: &PodOverrides,
    component: Component,
    peer: Component,
    uid: i64,
    container: Container,
) -> PodSpec {
    PodSpec {
        containers: vec![container],
        security_context: Some(pod_security(uid)),
        affinity: Some(affinity(ctx, overrides, component, Some(peer))),
        node_selector: node_selector(overrides),
        tolerations: tolerations(overrides),
        volumes: Some(vec![empty_dir("tmp")]),
        // API and web never talk to the Kubernetes API: no token to steal from them.
        automount_service_account_token: Some(false),
        ..PodSpec::default()
    }
}

/// An HTTP GET probe on a named or numbered port.
pub fn http_get_probe(
    path: &str,
    port: IntOrString,
    initial_delay: i32,
    period: i32,
) -> k8s_openapi::api::core::v1::Probe {
    k8s_openapi::api::core::v1::Probe {
        http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
            path: Some(path.to_owned()),
            port,
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        ..Default::default()
    }
}

/// A volume claim template for a StatefulSet's data, without the managed-by label so orphan
/// cleanup never sees the claims (they are kept when a component is turned off).
pub fn data_claim_template(
    ctx: &BuildContext<'_>,
    component: Component,
    name: &str,
    storage: &crate::crd::DataStorageSpec,
) -> k8s_openapi::api::core::v1::PersistentVolumeClaim {
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
    };
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(ctx.names.selector(component)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    storage.size.clone(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// A short, stable hex digest (first 10 hex digits of SHA-256) for names and annotations.
pub fn short_hash(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        // A separator keeps ["ab", "c"] and ["a", "bc"] apart.
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    digest
        .iter()
        .take(5)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::BeerMeetupPlatformSpec;

    fn ctx<'a>(spec: &'a BeerMeetupPlatformSpec, names: &'a Names) -> BuildContext<'a> {
        BuildContext {
            spec,
            names,
            owner: None,
        }
    }

    #[test]
    fn separate_nodes_adds_required_anti_affinity_to_the_other_tier() {
        let spec = BeerMeetupPlatformSpec::default();
        let names = Names::new("demo", "ns");
        let a = affinity(
            &ctx(&spec, &names),
            &spec.api_server.pod,
            Component::ApiServer,
            Some(Component::Web),
        );
        let required = a
            .pod_anti_affinity
            .and_then(|p| p.required_during_scheduling_ignored_during_execution)
            .expect("required terms");
        assert_eq!(required.len(), 1);
        let selector = required[0]
            .label_selector
            .clone()
            .and_then(|s| s.match_labels)
            .expect("labels");
        assert_eq!(selector["app.kubernetes.io/component"], "web");
        assert_eq!(required[0].topology_key, HOSTNAME_TOPOLOGY);
    }

    #[test]
    fn separate_tiers_do_not_also_spread_themselves() {
        let spec = BeerMeetupPlatformSpec::default();
        let names = Names::new("demo", "ns");
        let a = affinity(
            &ctx(&spec, &names),
            &spec.web.pod,
            Component::Web,
            Some(Component::ApiServer),
        );
        assert!(
            a.pod_anti_affinity
                .and_then(|p| p.preferred_during_scheduling_ignored_during_execution)
                .is_none()
        );
    }

    #[test]
    fn without_separate_nodes_only_the_soft_spread_remains() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.placement.separate_nodes = false;
        let names = Names::new("demo", "ns");
        let a = affinity(
            &ctx(&spec, &names),
            &spec.web.pod,
            Component::Web,
            Some(Component::ApiServer),
        );
        let anti = a.pod_anti_affinity.expect("anti-affinity");
        assert!(
            anti.required_during_scheduling_ignored_during_execution
                .is_none()
        );
        assert_eq!(
            anti.preferred_during_scheduling_ignored_during_execution
                .map(|p| p.len()),
            Some(1)
        );
    }

    #[test]
    fn user_affinity_is_kept_and_extended() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.api_server.pod.affinity = Some(Affinity {
            node_affinity: Some(Default::default()),
            ..Affinity::default()
        });
        let names = Names::new("demo", "ns");
        let a = affinity(
            &ctx(&spec, &names),
            &spec.api_server.pod,
            Component::ApiServer,
            Some(Component::Web),
        );
        assert!(a.node_affinity.is_some());
        assert!(a.pod_anti_affinity.is_some());
    }

    #[test]
    fn disruption_budget_only_for_enough_replicas() {
        let spec = BeerMeetupPlatformSpec::default();
        let names = Names::new("demo", "ns");
        let c = ctx(&spec, &names);
        assert!(disruption_budget(&c, Component::Web, 1, 2).is_none());
        let pdb = disruption_budget(&c, Component::Web, 2, 2).expect("pdb");
        assert_eq!(
            pdb.spec.and_then(|s| s.max_unavailable),
            Some(IntOrString::Int(1))
        );
    }

    #[test]
    fn short_hash_is_stable_and_separates_parts() {
        assert_eq!(short_hash(&["a", "b"]), short_hash(&["a", "b"]));
        assert_ne!(short_hash(&["ab", "c"]), short_hash(&["a", "bc"]));
        assert_eq!(short_hash(&["x"]).len(), 10);
    }
}
