//! `render -f cr.yaml`: every child the operator would apply, as YAML, without a cluster.
//!
//! Generated secrets are shown as placeholders (never real values), as `stringData` so a reader
//! sees which keys exist. Owner references point at a placeholder uid, since only the API server
//! assigns the real one.

use kube::ResourceExt;
use serde::Deserialize;

use crate::children::{self, BuildInputs, Child};
use crate::crd::BeerMeetupPlatform;
use crate::validate;

/// Placeholder uid used in rendered owner references.
pub const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("reading the custom resource: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("document {index} is a {kind}, not a BeerMeetupPlatform")]
    NotAPlatform { index: usize, kind: String },
    #[error("{name}: {source}")]
    Invalid {
        name: String,
        #[source]
        source: validate::SpecError,
    },
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// What `render` assumes about the cluster it cannot see.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Render as if the Prometheus Operator's ServiceMonitor CRD were installed.
    pub service_monitors: bool,
    /// Namespace of CRs that name none (as `kubectl apply -n` would put them); `default` when
    /// unset. Child names, hosts and the init Job's hashed name depend on it.
    pub namespace: Option<String>,
}

/// Render every BeerMeetupPlatform in a (multi-document) YAML string.
pub fn render(input: &str) -> Result<String, RenderError> {
    render_with(input, RenderOptions::default())
}

/// [`render`] with assumptions about the cluster.
pub fn render_with(input: &str, options: RenderOptions) -> Result<String, RenderError> {
    let mut out = String::new();
    for (index, document) in serde_yaml::Deserializer::from_str(input).enumerate() {
        let value = serde_yaml::Value::deserialize(document)?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_owned();
        if kind != "BeerMeetupPlatform" {
            return Err(RenderError::NotAPlatform { index, kind });
        }
        let mut platform: BeerMeetupPlatform = serde_yaml::from_value(value)?;
        if platform.metadata.namespace.is_none() {
            platform.metadata.namespace = Some(
                options
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
            );
        }
        platform.metadata.uid = Some(PLACEHOLDER_UID.to_owned());
        out.push_str(&render_platform(&platform, &options)?);
    }
    Ok(out)
}

fn render_platform(
    platform: &BeerMeetupPlatform,
    options: &RenderOptions,
) -> Result<String, RenderError> {
    let name = platform.name_any();
    let validated = validate::validate(platform).map_err(|source| RenderError::Invalid {
        name: name.clone(),
        source,
    })?;
    let inputs = BuildInputs {
        service_monitors: options.service_monitors && platform.spec.thanos.enabled,
        ..BuildInputs::placeholders()
    };
    let set = children::build_children(&validated, &inputs);
    let mut out = String::new();
    for child in &set.children {
        let mut value = serde_json::to_value(child)?;
        if let Child::Secret(secret) = child {
            // Show keys and placeholders readably instead of base64.
            let string_data: serde_json::Map<String, serde_json::Value> = secret
                .data
                .iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::Value::String(String::from_utf8_lossy(&v.0).into_owned()),
                    )
                })
                .collect();
            if let Some(object) = value.as_object_mut() {
                object.remove("data");
                object.insert("stringData".into(), string_data.into());
            }
        }
        let location = format!(
            "{}/{}",
            platform.namespace().unwrap_or_default(),
            child.name()
        );
        out.push_str(&format!(
            "---\n# {} {location} (platform {name})\n",
            child.kind()
        ));
        out.push_str(&serde_yaml::to_string(&value)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "apiVersion: beermeetup.io/v1alpha1\nkind: BeerMeetupPlatform\nmetadata:\n  name: demo\nspec: {}\n";

    #[test]
    fn renders_every_child_with_placeholders_only() {
        let out = render(MINIMAL).expect("renders");
        assert!(out.contains("kind: StatefulSet"));
        assert!(out.contains("kind: Deployment"));
        assert!(out.contains("kind: Job"));
        assert!(out.contains("<generated: root password>"));
        for document in out.split("---\n").filter(|d| d.contains("kind: Secret")) {
            assert!(
                document.contains("stringData:"),
                "secrets are rendered as stringData"
            );
            assert!(!document.contains("\ndata:"));
        }
        assert!(out.contains(PLACEHOLDER_UID));
        // Stable: same input, same output.
        assert_eq!(out, render(MINIMAL).expect("renders again"));
    }

    #[test]
    fn output_is_in_apply_order() {
        let out = render(MINIMAL).expect("renders");
        let first_secret = out.find("kind: Secret").expect("secret");
        let first_deployment = out.find("kind: Deployment").expect("deployment");
        assert!(first_secret < first_deployment);
    }

    #[test]
    fn invalid_specs_are_reported() {
        let input = MINIMAL.replace("spec: {}", "spec:\n  mongodb:\n    members: 2");
        let error = render(&input).expect_err("even members");
        assert!(error.to_string().contains("mongodb.members must be odd"));
    }

    #[test]
    fn a_cr_without_namespace_renders_in_the_given_one() {
        let here = render_with(
            MINIMAL,
            RenderOptions {
                namespace: Some("team-a".into()),
                ..RenderOptions::default()
            },
        )
        .expect("renders");
        assert!(here.contains("namespace: team-a"));
        assert!(!here.contains("namespace: default"));
        let default = render(MINIMAL).expect("renders");
        assert!(default.contains("namespace: default"));
    }

    #[test]
    fn every_option_renders() {
        let input = MINIMAL.replace(
            "spec: {}",
            "spec:\n  ingress:\n    enabled: true\n    host: m.example.org\n  elasticsearch:\n    enabled: true\n  thanos:\n    enabled: true\n  redis:\n    mode: replicated",
        );
        let out = render_with(
            &input,
            RenderOptions {
                service_monitors: true,
                ..RenderOptions::default()
            },
        )
        .expect("renders");
        for kind in [
            "ConfigMap",
            "Role",
            "RoleBinding",
            "ServiceAccount",
            "NetworkPolicy",
            "ServiceMonitor",
        ] {
            assert!(
                out.contains(&format!("\nkind: {kind}\n")),
                "{kind} rendered"
            );
        }
        // The platform's own HAProxy: its configuration, and nothing cluster-scoped or Ingress.
        assert!(out.contains("haproxy.cfg: |"));
        for absent in [
            "kind: Ingress\n",
            "kind: IngressClass",
            "kind: ClusterRole",
            "(cluster-scoped)",
        ] {
            assert!(!out.contains(absent), "{absent} rendered");
        }
        assert!(out.contains("<generated: elasticsearch password>"));
        assert!(
            !render(&input)
                .expect("renders")
                .contains("kind: ServiceMonitor")
        );
    }

    #[test]
    fn other_kinds_are_refused() {
        let error = render("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
            .expect_err("not a platform");
        assert!(matches!(error, RenderError::NotAPlatform { .. }));
    }

    #[test]
    fn multiple_documents_render_in_order() {
        let two = format!(
            "{MINIMAL}---\n{}",
            MINIMAL.replace("name: demo", "name: other")
        );
        let out = render(&two).expect("renders");
        let demo = out.find("platform demo").expect("demo");
        let other = out.find("platform other").expect("other");
        assert!(demo < other);
    }
}
