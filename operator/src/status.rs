//! Pure status computation: what the children report, in; the platform's status, out.
//!
//! `lastTransitionTime` is carried over from the previous status unless the condition's `status`
//! flips, so re-computing an unchanged world yields an identical status (and the status apply is a
//! no-op on the server).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

use crate::crd::{BeerMeetupPlatformStatus, ComponentStatus, Condition, ConditionStatus, Phase};
use crate::names::Component;

pub const READY: &str = "Ready";

/// Health of one component as seen in its workload's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentHealth {
    pub counts: ComponentStatus,
    pub ready: bool,
    /// Something failed that will not fix itself (a Job out of retries, a stuck rollout).
    pub failed: bool,
    pub reason: String,
    pub message: String,
}

/// What the applied workloads report, per component with a condition (only the enabled ones,
/// in display order).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Observed {
    pub components: Vec<(Component, ComponentHealth)>,
}

impl Observed {
    pub fn get(&self, component: Component) -> Option<&ComponentHealth> {
        self.components
            .iter()
            .find(|(c, _)| *c == component)
            .map(|(_, h)| h)
    }

    pub fn get_mut(&mut self, component: Component) -> Option<&mut ComponentHealth> {
        self.components
            .iter_mut()
            .find(|(c, _)| *c == component)
            .map(|(_, h)| h)
    }
}

/// A component the platform uses but does not run (an external database, an existing ingress
/// controller): ready as far as the operator can tell.
pub fn not_managed(reason: &str, message: &str) -> ComponentHealth {
    ComponentHealth {
        counts: ComponentStatus::default(),
        ready: true,
        failed: false,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

/// Health of a StatefulSet whose pods are all equal (Elasticsearch, Prometheus, Redis, Sentinels).
pub fn statefulset_health(statefulset: &StatefulSet) -> ComponentHealth {
    let desired = statefulset
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = statefulset.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let current_generation = status.observed_generation >= statefulset.metadata.generation;
    let rolled = status.update_revision.is_none()
        || status.update_revision == status.current_revision
        || status.updated_replicas.unwrap_or(0) >= desired;
    let is_ready = current_generation && ready >= desired && rolled;
    ComponentHealth {
        counts: ComponentStatus { ready, desired },
        ready: is_ready,
        failed: false,
        reason: if is_ready {
            "PodsReady"
        } else {
            "PodsNotReady"
        }
        .to_owned(),
        message: format!("{ready}/{desired} pods ready"),
    }
}

/// Health of a component made of several workloads: ready when all are, counts summed, the
/// message naming each part.
pub fn combine(parts: &[(&str, ComponentHealth)]) -> ComponentHealth {
    let ready = parts.iter().all(|(_, h)| h.ready);
    let failed = parts.iter().any(|(_, h)| h.failed);
    let counts = parts
        .iter()
        .fold(ComponentStatus::default(), |acc, (_, h)| ComponentStatus {
            ready: acc.ready + h.counts.ready,
            desired: acc.desired + h.counts.desired,
        });
    let reason = parts
        .iter()
        .find(|(_, h)| !h.ready)
        .map_or("PodsReady", |(_, h)| h.reason.as_str())
        .to_owned();
    let message = parts
        .iter()
        .map(|(what, h)| format!("{what}: {}", h.message))
        .collect::<Vec<_>>()
        .join(", ");
    ComponentHealth {
        counts,
        ready,
        failed,
        reason,
        message,
    }
}

/// Health of a Deployment from its status.
pub fn deployment_health(deployment: &Deployment) -> ComponentHealth {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let current_generation = status.observed_generation >= deployment.metadata.generation;
    let stuck = status.conditions.unwrap_or_default().iter().any(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    let is_ready = current_generation && ready >= desired && updated >= desired;
    let (reason, message) = if is_ready {
        ("PodsReady", format!("{ready}/{desired} pods ready"))
    } else if stuck {
        (
            "ProgressDeadlineExceeded",
            format!("rollout stuck: {ready}/{desired} pods ready"),
        )
    } else {
        ("PodsNotReady", format!("{ready}/{desired} pods ready"))
    };
    ComponentHealth {
        counts: ComponentStatus { ready, desired },
        ready: is_ready,
        failed: stuck && !is_ready,
        reason: reason.to_owned(),
        message,
    }
}

/// A component whose pods the scheduler cannot place says so, with the scheduler's own words, and
/// `anti_affinity_hint` (what to change) when those words name pod anti-affinity: "0/2 pods
/// ready" alone left people waiting on a rollout that could never finish. Ready or failed
/// components are returned as they are.
pub fn with_unschedulable_pods(
    health: ComponentHealth,
    pods: &[Pod],
    anti_affinity_hint: Option<&str>,
) -> ComponentHealth {
    if health.ready || health.failed {
        return health;
    }
    let reasons: Vec<&str> = pods
        .iter()
        .filter_map(|pod| {
            pod.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
                .map(|c| c.message.as_deref().unwrap_or("no reason given").trim())
        })
        .collect();
    let Some(first) = reasons.first() else {
        return health;
    };
    let mut message = format!(
        "{}; {} pod(s) cannot be placed: {first}",
        health.message,
        reasons.len()
    );
    if let Some(hint) = anti_affinity_hint.filter(|_| first.contains("anti-affinity")) {
        message.push_str(" — ");
        message.push_str(hint);
    }
    ComponentHealth {
        reason: "Unschedulable".to_owned(),
        message,
        ..health
    }
}

/// Health of the replica set: every member pod ready and the init Job done for this membership.
pub fn mongodb_health(statefulset: &StatefulSet, members: i32, init_job: &Job) -> ComponentHealth {
    let status = statefulset.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let sts_replicas = statefulset
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(members);
    let current_generation = status.observed_generation >= statefulset.metadata.generation;
    let job = job_state(init_job);
    let pods_ready = current_generation && sts_replicas == members && ready == members;
    let (is_ready, failed, reason, message) = match job {
        JobState::Failed => (
            false,
            true,
            "ReplicaSetConfigFailed",
            format!(
                "replica-set configuration Job {} failed; see its pod logs",
                init_job.metadata.name.clone().unwrap_or_default()
            ),
        ),
        _ if sts_replicas > members => (
            false,
            false,
            "RemovingMembers",
            format!(
                "removing members from the replica set before scaling {sts_replicas} → {members}"
            ),
        ),
        JobState::Succeeded if pods_ready => (
            true,
            false,
            "ReplicaSetReady",
            format!("{ready}/{members} members ready, replica set configured"),
        ),
        JobState::Succeeded => (
            false,
            false,
            "MembersNotReady",
            format!("{ready}/{members} members ready"),
        ),
        JobState::Running => (
            false,
            false,
            "ConfiguringReplicaSet",
            format!("{ready}/{members} members ready, replica set being configured"),
        ),
    };
    ComponentHealth {
        counts: ComponentStatus {
            ready,
            desired: members,
        },
        ready: is_ready,
        failed,
        reason: reason.to_owned(),
        message,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// Whether a Job completed, failed for good, or is still going.
pub fn job_state(job: &Job) -> JobState {
    let status = job.status.clone().unwrap_or_default();
    let has = |kind: &str| {
        status
            .conditions
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
    };
    if has("Complete") || status.succeeded.unwrap_or(0) > 0 {
        JobState::Succeeded
    } else if has("Failed") {
        JobState::Failed
    } else {
        JobState::Running
    }
}

/// Insert or update a condition; the transition time changes only when `status` does.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status == new.status {
                new.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = new;
        }
        None => conditions.push(new),
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &str,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        observed_generation: generation,
        last_transition_time: now.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

/// The status of a reconciled platform.
pub fn compute(
    previous: Option<&BeerMeetupPlatformStatus>,
    generation: Option<i64>,
    observed: &Observed,
    url: &str,
    now: &str,
) -> BeerMeetupPlatformStatus {
    let mut conditions = previous.map(|p| p.conditions.clone()).unwrap_or_default();
    // Conditions of components turned off go with them.
    conditions.retain(|c| {
        !Component::WITH_CONDITION
            .iter()
            .any(|comp| comp.condition_type() == c.type_)
            || observed
                .components
                .iter()
                .any(|(comp, _)| comp.condition_type() == c.type_)
    });
    let mut ready_count = 0;
    let mut not_ready = Vec::new();
    for (component, health) in &observed.components {
        let component = *component;
        if health.ready {
            ready_count += 1;
        } else {
            not_ready.push(component.display());
        }
        set_condition(
            &mut conditions,
            condition(
                component.condition_type(),
                health.ready,
                &health.reason,
                &health.message,
                generation,
                now,
            ),
        );
    }
    let all_ready = not_ready.is_empty();
    let any_failed = observed.components.iter().any(|(_, h)| h.failed);
    let (reason, message) = if all_ready {
        ("AllComponentsReady", "every component is ready".to_owned())
    } else if any_failed {
        (
            "ComponentFailed",
            format!("not ready: {}", not_ready.join(", ")),
        )
    } else {
        (
            "ComponentsNotReady",
            format!("waiting for: {}", not_ready.join(", ")),
        )
    };
    set_condition(
        &mut conditions,
        condition(READY, all_ready, reason, &message, generation, now),
    );
    sort_conditions(&mut conditions);
    let phase = if all_ready {
        Phase::Ready
    } else if any_failed {
        Phase::Degraded
    } else {
        Phase::Progressing
    };
    let counts = |component: Component| observed.get(component).map(|h| h.counts);
    let mongodb_members = match (spec_external_mongo(observed), counts(Component::MongoDb)) {
        (true, _) => Some("external".to_owned()),
        (false, Some(c)) => Some(format!("{}/{}", c.ready, c.desired)),
        (false, None) => None,
    };
    BeerMeetupPlatformStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions,
        ready_components: Some(format!("{ready_count}/{}", observed.components.len())),
        mongodb_members,
        api_server: counts(Component::ApiServer),
        web: counts(Component::Web),
        mongodb: counts(Component::MongoDb),
        redis: counts(Component::Redis),
        ingress: counts(Component::Ingress),
        elasticsearch: counts(Component::Elasticsearch),
        metrics: counts(Component::Prometheus),
        url: Some(url.to_owned()),
    }
}

/// Reason used for components the platform uses but does not run.
pub const EXTERNAL: &str = "External";

fn spec_external_mongo(observed: &Observed) -> bool {
    observed
        .get(Component::MongoDb)
        .is_some_and(|h| h.reason == EXTERNAL)
}

/// The status of a platform whose spec the operator cannot act on.
pub fn invalid(
    previous: Option<&BeerMeetupPlatformStatus>,
    generation: Option<i64>,
    message: &str,
    now: &str,
) -> BeerMeetupPlatformStatus {
    degraded(previous, generation, "InvalidSpec", message, now)
}

/// Degraded with Ready=False for `reason` (an invalid or undecodable spec, a failed step); the
/// component conditions stay as they were last seen.
pub fn degraded(
    previous: Option<&BeerMeetupPlatformStatus>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
    now: &str,
) -> BeerMeetupPlatformStatus {
    let mut status = previous.cloned().unwrap_or_default();
    set_condition(
        &mut status.conditions,
        condition(READY, false, reason, message, generation, now),
    );
    sort_conditions(&mut status.conditions);
    status.observed_generation = generation;
    status.phase = Some(Phase::Degraded);
    status
}

/// The status of a paused platform: counts as last seen, phase Paused.
pub fn paused(
    previous: Option<&BeerMeetupPlatformStatus>,
    generation: Option<i64>,
) -> BeerMeetupPlatformStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.phase = Some(Phase::Paused);
    status
}

/// `Ready` first, then components in a fixed order, so the list is stable.
fn sort_conditions(conditions: &mut [Condition]) {
    let rank = |c: &Condition| {
        if c.type_ == READY {
            0
        } else {
            Component::WITH_CONDITION
                .iter()
                .position(|comp| comp.condition_type() == c.type_)
                .map_or(99, |p| p + 1)
        }
    };
    conditions.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStatus, StatefulSetSpec, StatefulSetStatus,
    };
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn healthy(n: i32) -> ComponentHealth {
        ComponentHealth {
            counts: ComponentStatus {
                ready: n,
                desired: n,
            },
            ready: true,
            failed: false,
            reason: "PodsReady".into(),
            message: format!("{n}/{n} pods ready"),
        }
    }

    fn all_healthy() -> Observed {
        Observed {
            components: vec![
                (Component::ApiServer, healthy(2)),
                (Component::Web, healthy(2)),
                (Component::MongoDb, healthy(3)),
                (Component::Redis, healthy(1)),
            ],
        }
    }

    fn get(observed: &mut Observed, component: Component) -> &mut ComponentHealth {
        observed.get_mut(component).expect("component observed")
    }

    #[test]
    fn everything_ready_means_phase_ready() {
        let s = compute(None, Some(1), &all_healthy(), "http://x", "T1");
        assert_eq!(s.phase, Some(Phase::Ready));
        assert_eq!(s.ready_components.as_deref(), Some("4/4"));
        assert_eq!(s.mongodb_members.as_deref(), Some("3/3"));
        assert_eq!(s.conditions.len(), 5);
        assert_eq!(s.conditions[0].type_, READY);
        assert_eq!(s.conditions[0].status, ConditionStatus::True);
        assert_eq!(s.observed_generation, Some(1));
    }

    #[test]
    fn transition_time_changes_only_when_status_flips() {
        let first = compute(None, Some(1), &all_healthy(), "u", "T1");
        let same = compute(Some(&first), Some(2), &all_healthy(), "u", "T2");
        assert_eq!(same.conditions[0].last_transition_time, "T1");
        assert_eq!(same.conditions[0].observed_generation, Some(2));
        let mut degraded = all_healthy();
        get(&mut degraded, Component::Web).ready = false;
        let flipped = compute(Some(&same), Some(2), &degraded, "u", "T3");
        let ready = &flipped.conditions[0];
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.last_transition_time, "T3");
        let web = flipped
            .conditions
            .iter()
            .find(|c| c.type_ == "WebReady")
            .expect("web condition");
        assert_eq!(web.last_transition_time, "T3");
        let api = flipped
            .conditions
            .iter()
            .find(|c| c.type_ == "ApiServerReady")
            .expect("api condition");
        assert_eq!(api.last_transition_time, "T1");
        assert_eq!(flipped.phase, Some(Phase::Progressing));
    }

    #[test]
    fn unchanged_world_gives_identical_status() {
        let first = compute(None, Some(1), &all_healthy(), "u", "T1");
        assert_eq!(
            compute(Some(&first), Some(1), &all_healthy(), "u", "T9"),
            first
        );
    }

    #[test]
    fn a_failed_component_degrades_the_platform() {
        let mut observed = all_healthy();
        get(&mut observed, Component::MongoDb).ready = false;
        get(&mut observed, Component::MongoDb).failed = true;
        let s = compute(None, Some(1), &observed, "u", "T");
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(s.conditions[0].reason, "ComponentFailed");
    }

    #[test]
    fn invalid_spec_keeps_counts_and_says_why() {
        let first = compute(None, Some(1), &all_healthy(), "u", "T1");
        let s = invalid(Some(&first), Some(2), "mongodb.members must be odd", "T2");
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(s.conditions[0].reason, "InvalidSpec");
        assert_eq!(s.conditions[0].message, "mongodb.members must be odd");
        assert_eq!(s.mongodb_members.as_deref(), Some("3/3"));
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn paused_keeps_conditions() {
        let first = compute(None, Some(1), &all_healthy(), "u", "T1");
        let s = paused(Some(&first), Some(3));
        assert_eq!(s.phase, Some(Phase::Paused));
        assert_eq!(s.conditions, first.conditions);
    }

    #[test]
    fn new_components_get_conditions_and_lose_them_when_turned_off() {
        let mut observed = all_healthy();
        observed.components.push((Component::Ingress, healthy(2)));
        observed
            .components
            .push((Component::Prometheus, healthy(2)));
        let on = compute(None, Some(1), &observed, "https://m.example/", "T1");
        assert_eq!(on.ready_components.as_deref(), Some("6/6"));
        let types: Vec<&str> = on.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                "Ready",
                "ApiServerReady",
                "WebReady",
                "MongoDBReady",
                "RedisReady",
                "IngressReady",
                "MetricsReady"
            ]
        );
        assert_eq!(on.metrics.map(|c| c.desired), Some(2));
        assert_eq!(on.url.as_deref(), Some("https://m.example/"));
        let off = compute(Some(&on), Some(2), &all_healthy(), "u", "T2");
        assert_eq!(off.conditions.len(), 5);
        assert!(off.ingress.is_none() && off.metrics.is_none());
    }

    #[test]
    fn external_mongodb_is_ready_and_shown_as_external() {
        let mut observed = all_healthy();
        *get(&mut observed, Component::MongoDb) =
            not_managed(EXTERNAL, "uses the MongoDB in Secret atlas");
        let s = compute(None, Some(1), &observed, "u", "T");
        assert_eq!(s.phase, Some(Phase::Ready));
        assert_eq!(s.mongodb_members.as_deref(), Some("external"));
    }

    #[test]
    fn combined_components_need_every_part() {
        let mut sentinel = healthy(3);
        sentinel.ready = false;
        sentinel.reason = "PodsNotReady".into();
        let c = combine(&[("redis", healthy(3)), ("sentinels", sentinel)]);
        assert!(!c.ready);
        assert_eq!(c.reason, "PodsNotReady");
        assert_eq!(c.counts.desired, 6);
        assert!(c.message.contains("sentinels: 3/3 pods ready"));
        assert!(combine(&[("a", healthy(1)), ("b", healthy(1))]).ready);
    }

    #[test]
    fn statefulset_health_counts_ready_pods() {
        assert!(statefulset_health(&statefulset(1, 1)).ready);
        assert!(!statefulset_health(&statefulset(3, 2)).ready);
    }

    fn deployment(desired: i32, ready: i32, generation: i64, observed: i64) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(desired),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                ready_replicas: Some(ready),
                updated_replicas: Some(ready),
                observed_generation: Some(observed),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn deployment_ready_needs_current_generation_and_all_pods() {
        assert!(deployment_health(&deployment(2, 2, 3, 3)).ready);
        assert!(!deployment_health(&deployment(2, 1, 3, 3)).ready);
        assert!(
            !deployment_health(&deployment(2, 2, 4, 3)).ready,
            "stale status"
        );
        assert!(
            deployment_health(&deployment(0, 0, 1, 1)).ready,
            "scaled to zero"
        );
    }

    fn pod(scheduled: Option<(&str, &str)>) -> Pod {
        Pod {
            status: Some(PodStatus {
                conditions: scheduled.map(|(reason, message)| {
                    vec![PodCondition {
                        type_: "PodScheduled".into(),
                        status: "False".into(),
                        reason: Some(reason.into()),
                        message: Some(message.into()),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn unschedulable_pods_name_the_scheduler_reason_and_the_hint() {
        let waiting = deployment_health(&deployment(2, 0, 1, 1));
        let anti = "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.";
        let pods = [
            pod(Some(("Unschedulable", anti))),
            pod(Some(("Unschedulable", anti))),
            pod(None),
        ];
        let h = with_unschedulable_pods(waiting.clone(), &pods, Some("add nodes"));
        assert_eq!(h.reason, "Unschedulable");
        assert_eq!(
            h.message,
            format!("0/2 pods ready; 2 pod(s) cannot be placed: {anti} — add nodes")
        );
        assert!(!h.ready && !h.failed);
        assert_eq!(h.counts, waiting.counts);

        // Pods still being scheduled, or only starting: nothing to add.
        let starting = [pod(None), pod(Some(("SchedulingGated", "gated")))];
        assert_eq!(
            with_unschedulable_pods(waiting.clone(), &starting, Some("x")),
            waiting
        );
        // A ready component keeps its status even if a surplus pod waits for a node (a rollout).
        let ready = deployment_health(&deployment(2, 2, 1, 1));
        assert_eq!(with_unschedulable_pods(ready.clone(), &pods, None), ready);
        // Without a hint only the scheduler's words; the hint only where anti-affinity is named.
        let h = with_unschedulable_pods(waiting.clone(), &pods[..1], None);
        assert!(h.message.ends_with(anti), "{}", h.message);
        let cpu = "0/3 nodes are available: 3 Insufficient cpu.";
        let h = with_unschedulable_pods(waiting, &[pod(Some(("Unschedulable", cpu)))], Some("x"));
        assert!(h.message.ends_with(cpu), "{}", h.message);
    }

    fn job(condition: Option<&str>) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: condition.map(|c| {
                    vec![JobCondition {
                        type_: c.into(),
                        status: "True".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn statefulset(replicas: i32, ready: i32) -> StatefulSet {
        StatefulSet {
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(StatefulSetStatus {
                ready_replicas: Some(ready),
                replicas: ready,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn mongodb_ready_needs_members_and_a_finished_init_job() {
        assert!(mongodb_health(&statefulset(3, 3), 3, &job(Some("Complete"))).ready);
        let running = mongodb_health(&statefulset(3, 3), 3, &job(None));
        assert!(!running.ready);
        assert_eq!(running.reason, "ConfiguringReplicaSet");
        assert!(!mongodb_health(&statefulset(3, 2), 3, &job(Some("Complete"))).ready);
        let failed = mongodb_health(&statefulset(3, 3), 3, &job(Some("Failed")));
        assert!(failed.failed && !failed.ready);
        let shrinking = mongodb_health(&statefulset(5, 5), 3, &job(None));
        assert_eq!(shrinking.reason, "RemovingMembers");
    }
}
