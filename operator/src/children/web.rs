//! The web app: a static server (SPA fallback to index.html) behind a Service on port 8080.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodTemplateSpec};
use kube::api::ObjectMeta;

use super::Child;
use super::api_server::{PLATFORM_UID, PORT, common_service, http_probe};
use super::common::{self, BuildContext};
use crate::names::Component;

pub fn build(ctx: &BuildContext<'_>) -> Vec<Child> {
    let name = ctx.names.component(Component::Web);
    let mut children = vec![Child::Service(common_service(ctx, &name, Component::Web))];
    if let Some(pdb) = common::disruption_budget(ctx, Component::Web, ctx.spec.web.replicas, 2) {
        children.push(Child::PodDisruptionBudget(pdb));
    }
    children.push(Child::Deployment(deployment(ctx, &name)));
    children
}

fn deployment(ctx: &BuildContext<'_>, name: &str) -> Deployment {
    let spec = &ctx.spec.web;
    let container = Container {
        name: "web".to_owned(),
        image: Some(spec.effective_image()),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: PORT,
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(http_probe("/", 1)),
        liveness_probe: Some(http_probe("/", 10)),
        resources: Some(
            spec.pod
                .resources
                .clone()
                .unwrap_or_else(|| common::resources("50m", "32Mi", "128Mi")),
        ),
        security_context: Some(common::container_security(true)),
        volume_mounts: Some(vec![common::mount("tmp", "/tmp")]),
        // The image's nginx proxies /api (REST and the live WebSocket) here, so the app works at the
        // web Service alone, without an ingress (the name gets the pod's search domain).
        env: Some(vec![common::env(
            "API_UPSTREAM",
            format!("{}:{PORT}", ctx.names.component(Component::ApiServer)),
        )]),
        ..Container::default()
    };
    Deployment {
        metadata: ctx.meta(name, Component::Web),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: ctx.selector(Component::Web),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.names.labels(Component::Web)),
                    ..ObjectMeta::default()
                }),
                spec: Some(common::stateless_pod_spec(
                    ctx,
                    &spec.pod,
                    Component::Web,
                    Component::ApiServer,
                    PLATFORM_UID,
                    container,
                )),
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
    use k8s_openapi::api::core::v1::Toleration;

    fn web_deployment(spec: BeerMeetupPlatformSpec) -> Deployment {
        build_valid(&platform(spec), &inputs())
            .expect("builds")
            .children
            .into_iter()
            .find_map(|c| match c {
                Child::Deployment(d) if d.metadata.name.as_deref() == Some("demo-web") => Some(d),
                _ => None,
            })
            .expect("web deployment")
    }

    #[test]
    fn web_proxies_api_to_the_platform_api_service() {
        let d = web_deployment(BeerMeetupPlatformSpec::default());
        let pod = d.spec.expect("spec").template.spec.expect("pod");
        let env = pod.containers[0].env.clone().expect("env");
        let upstream = env
            .iter()
            .find(|e| e.name == "API_UPSTREAM")
            .and_then(|e| e.value.clone());
        assert_eq!(upstream.as_deref(), Some("demo-api:8080"));
    }

    #[test]
    fn web_serves_on_8080_and_keeps_away_from_api_pods() {
        let d = web_deployment(BeerMeetupPlatformSpec::default());
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(2));
        let pod = spec.template.spec.expect("pod");
        assert_eq!(
            pod.containers[0].ports.clone().expect("ports")[0].container_port,
            8080
        );
        let required = pod
            .affinity
            .and_then(|a| a.pod_anti_affinity)
            .and_then(|a| a.required_during_scheduling_ignored_during_execution)
            .expect("required anti-affinity");
        let labels = required[0]
            .label_selector
            .clone()
            .and_then(|s| s.match_labels)
            .expect("labels");
        assert_eq!(labels["app.kubernetes.io/component"], "api");
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some(crate::images::default_web_image().as_str())
        );
    }

    #[test]
    fn tolerations_and_replicas_follow_the_spec() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.web.replicas = 3;
        spec.web.pod.tolerations = vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        }];
        let d = web_deployment(spec);
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.template
                .spec
                .and_then(|p| p.tolerations)
                .map(|t| t.len()),
            Some(1)
        );
    }
}
