//! Generates `docs/configuration.md` from the CRD's OpenAPI schema, so the reference can never drift
//! from what the API server accepts. `tests/tests/docs.rs` fails when the committed page is stale;
//! `UPDATE_DOCS=1 cargo test -p beer-meetup-tests --test docs` rewrites it.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The command that regenerates the page, quoted in its header and in the stale-page failure.
pub const REGENERATE: &str = "UPDATE_DOCS=1 cargo test -p beer-meetup-tests --test docs";

/// Fields whose schema is a stock Kubernetes type (documented upstream): listed with their type, not
/// expanded field by field.
const KUBERNETES_TYPES: &[(&str, &str)] = &[
    (
        "affinity",
        "[Affinity](https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#scheduling)",
    ),
    (
        "tolerations",
        "[[]Toleration](https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#scheduling)",
    ),
    ("nodeSelector", "map[string]string"),
    (
        "resources",
        "[ResourceRequirements](https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#resources)",
    ),
    (
        "podSecurityContext",
        "[PodSecurityContext](https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#security-context)",
    ),
    (
        "securityContext",
        "[SecurityContext](https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#security-context-1)",
    ),
    (
        "topologySpreadConstraints",
        "[[]TopologySpreadConstraint](https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#scheduling)",
    ),
    (
        "env",
        "[[]EnvVar](https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#environment-variables)",
    ),
    (
        "conditions",
        "[[]Condition](https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/)",
    ),
];

/// Renders the whole page from the CRD YAML text.
pub fn render(crd_yaml: &str) -> Result<String> {
    let crd: Value = serde_yaml::from_str(crd_yaml).context("the CRD is not YAML")?;
    let spec = &crd["spec"];
    let group = spec["group"].as_str().context("spec.group")?;
    let kind = spec["names"]["kind"].as_str().context("spec.names.kind")?;
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let short: Vec<&str> = spec["names"]["shortNames"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let versions = spec["versions"].as_array().context("spec.versions")?;
    let Some(version) = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .or_else(|| versions.first())
    else {
        bail!("the CRD has no version");
    };
    let vname = version["name"].as_str().context("version name")?;
    let schema = &version["schema"]["openAPIV3Schema"];

    let mut out = String::new();
    writeln!(out, "# Configuration reference: `{kind}`")?;
    writeln!(out)?;
    writeln!(
        out,
        "<!-- Generated from crds/{plural}.yaml by the beer-meetup-tests crate (tests/src/config_reference.rs).\n     Do not edit by hand; regenerate with: {REGENERATE} -->"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "API version `{group}/{vname}`, kind `{kind}`, {} resource (plural `{plural}`{}).",
        spec["scope"]
            .as_str()
            .unwrap_or("Namespaced")
            .to_lowercase(),
        if short.is_empty() {
            String::new()
        } else {
            format!(
                ", short name{} `{}`",
                if short.len() > 1 { "s" } else { "" },
                short.join("`, `")
            )
        }
    )?;
    if let Some(d) = schema["description"].as_str()
        && !d.starts_with("Auto-generated")
    {
        writeln!(out)?;
        writeln!(out, "{}", d.trim())?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Every field is optional unless marked **required**; defaults are applied by the API server \
         when the resource is created, so `kubectl get -o yaml` shows the effective values. \
         Validation (ranges, enums, patterns and CEL rules) is enforced by the API server: an invalid \
         resource is rejected by `kubectl apply` with the message shown here."
    )?;

    let mut sections = Vec::new();
    collect("spec", &schema["properties"]["spec"], &mut sections);
    writeln!(out)?;
    writeln!(out, "## Contents")?;
    writeln!(out)?;
    for s in &sections {
        writeln!(out, "- [`{}`](#{})", s.path, anchor(&s.path))?;
    }
    writeln!(out, "- [`status`](#status)")?;
    if version["additionalPrinterColumns"].is_array() {
        writeln!(out, "- [Printer columns](#printer-columns)")?;
    }
    writeln!(out)?;
    writeln!(out, "## Spec")?;
    let resource_rules = rules(schema);
    if !resource_rules.is_empty() {
        writeln!(out)?;
        writeln!(out, "Rules on the whole resource:")?;
        writeln!(out)?;
        for rule in resource_rules {
            writeln!(out, "- {rule}")?;
        }
    }
    for s in &sections {
        write_section(&mut out, s)?;
    }

    let mut status = Vec::new();
    collect("status", &schema["properties"]["status"], &mut status);
    writeln!(out)?;
    writeln!(out, "## Status")?;
    writeln!(out)?;
    writeln!(
        out,
        "Written by the operator only (the status subresource). `kubectl describe bmp NAME` shows it \
         with the events; `kubectl wait --for=condition=Ready bmp/NAME` waits on its Ready condition."
    )?;
    for s in &status {
        write_section(&mut out, s)?;
    }

    if let Some(cols) = version["additionalPrinterColumns"].as_array() {
        writeln!(out)?;
        writeln!(out, "## Printer columns")?;
        writeln!(out)?;
        writeln!(
            out,
            "What `kubectl get {}` shows:",
            short.first().unwrap_or(&plural)
        )?;
        writeln!(out)?;
        writeln!(out, "| Column | Type | From | Description |")?;
        writeln!(out, "|---|---|---|---|")?;
        for c in cols {
            writeln!(
                out,
                "| {} | {} | `{}` | {} |",
                cell(c["name"].as_str().unwrap_or_default()),
                cell(c["type"].as_str().unwrap_or_default()),
                c["jsonPath"].as_str().unwrap_or_default(),
                cell(c["description"].as_str().unwrap_or_default())
            )?;
        }
    }
    Ok(out)
}

/// One object of the schema: its path and its schema node.
struct Section<'a> {
    path: String,
    node: &'a Value,
}

/// Depth-first: the object itself, then every nested object (and object inside an array or map).
fn collect<'a>(path: &str, node: &'a Value, out: &mut Vec<Section<'a>>) {
    let Some(props) = node["properties"].as_object() else {
        return;
    };
    out.push(Section {
        path: path.to_string(),
        node,
    });
    for (name, child) in props {
        if kubernetes_type(name).is_some() {
            continue;
        }
        let child_path = format!("{path}.{name}");
        if child["properties"].is_object() {
            collect(&child_path, child, out);
        } else if child["items"]["properties"].is_object() {
            collect(&format!("{child_path}[]"), &child["items"], out);
        } else if child["additionalProperties"]["properties"].is_object() {
            collect(
                &format!("{child_path}.<key>"),
                &child["additionalProperties"],
                out,
            );
        }
    }
}

fn write_section(out: &mut String, s: &Section) -> Result<()> {
    writeln!(out)?;
    writeln!(out, "### `{}`", s.path)?;
    writeln!(out)?;
    if let Some(d) = s.node["description"].as_str() {
        writeln!(out, "{}", one_line(d))?;
        writeln!(out)?;
    }
    for rule in rules(s.node) {
        writeln!(out, "- Rule: {rule}")?;
    }
    if !rules(s.node).is_empty() {
        writeln!(out)?;
    }
    let required: Vec<&str> = s.node["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let props = s.node["properties"].as_object().expect("collected objects");
    let with_defaults = props.values().any(|p| p.get("default").is_some());
    if with_defaults {
        writeln!(out, "| Field | Type | Default | Description |")?;
        writeln!(out, "|---|---|---|---|")?;
    } else {
        writeln!(out, "| Field | Type | Description |")?;
        writeln!(out, "|---|---|---|")?;
    }
    for (name, child) in props {
        let mut desc = one_line(child["description"].as_str().unwrap_or_default());
        if required.contains(&name.as_str()) {
            desc = format!("**Required.** {desc}");
        }
        let constraints = constraints(child);
        if !constraints.is_empty() {
            if !desc.is_empty() {
                desc.push_str("<br>");
            }
            desc.push_str(&constraints.join("; "));
        }
        let child_path = format!("{}.{name}", s.path);
        let typ = type_of(name, child, &child_path);
        let default = match child.get("default") {
            Some(v) => format!("`{}`", serde_json::to_string(v)?),
            None => String::new(),
        };
        writeln!(
            out,
            "| `{name}` | {typ} | {} | {} |",
            cell(&default),
            cell(&desc)
        )?;
    }
    Ok(())
}

fn kubernetes_type(name: &str) -> Option<&'static str> {
    KUBERNETES_TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// The type column: scalar types with their format, links to nested sections, stock Kubernetes types.
fn type_of(name: &str, node: &Value, path: &str) -> String {
    if let Some(t) = kubernetes_type(name) {
        return t.to_string();
    }
    if node["properties"].is_object() {
        return format!("[object](#{})", anchor(path));
    }
    if node["items"]["properties"].is_object() {
        return format!("[[]object](#{})", anchor(&format!("{path}[]")));
    }
    if node["additionalProperties"]["properties"].is_object() {
        return format!("[map[string]object](#{})", anchor(&format!("{path}.<key>")));
    }
    if node["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        return "int or string".into();
    }
    let t = scalar(node);
    match t.as_str() {
        "array" => format!("[]{}", scalar(&node["items"])),
        "object" => match node.get("additionalProperties") {
            Some(ap) if ap.is_object() => format!("map[string]{}", scalar(ap)),
            _ => "object".into(),
        },
        _ => t,
    }
}

fn scalar(node: &Value) -> String {
    let t = node["type"].as_str().unwrap_or("any");
    match node["format"].as_str() {
        Some(f) => format!("{t} ({f})"),
        None => t.to_string(),
    }
}

/// Ranges, lengths, enums, patterns, CEL rules and list semantics of one field.
fn constraints(node: &Value) -> Vec<String> {
    let mut c = Vec::new();
    if let Some(e) = node["enum"].as_array() {
        let vals: Vec<String> = e
            .iter()
            .map(|v| {
                format!(
                    "`{}`",
                    v.as_str().map(str::to_string).unwrap_or(v.to_string())
                )
            })
            .collect();
        c.push(format!("One of {}", vals.join(", ")));
    }
    let num = |k: &str| node.get(k).and_then(Value::as_f64).map(number);
    match (num("minimum"), num("maximum")) {
        (Some(a), Some(b)) => c.push(format!("Range {a}–{b}")),
        (Some(a), None) => c.push(format!("Minimum {a}")),
        (None, Some(b)) => c.push(format!("Maximum {b}")),
        _ => {}
    }
    match (num("minLength"), num("maxLength")) {
        (Some(a), Some(b)) => c.push(format!("Length {a}–{b}")),
        (Some(a), None) => c.push(format!("Minimum length {a}")),
        (None, Some(b)) => c.push(format!("Maximum length {b}")),
        _ => {}
    }
    match (num("minItems"), num("maxItems")) {
        (Some(a), Some(b)) => c.push(format!("{a}–{b} items")),
        (Some(a), None) => c.push(format!("At least {a} items")),
        (None, Some(b)) => c.push(format!("At most {b} items")),
        _ => {}
    }
    if let Some(p) = node["pattern"].as_str() {
        c.push(format!("Pattern `{p}`"));
    }
    if node["x-kubernetes-list-type"].as_str() == Some("map")
        && let Some(keys) = node["x-kubernetes-list-map-keys"].as_array()
    {
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        c.push(format!("List keyed by `{}`", keys.join("`, `")));
    }
    // Rules on a scalar field belong to it; rules on objects are listed in the object's section.
    if !node["properties"].is_object() {
        c.extend(rules(node).into_iter().map(|r| format!("Rule: {r}")));
    }
    c
}

/// A schema number without a spurious `.0` (serde_yaml reads `50` as 50.0 in some schemas).
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// The CEL rules (x-kubernetes-validations) of a node: the message when there is one (that is what
/// `kubectl apply` prints), otherwise the rule itself.
fn rules(node: &Value) -> Vec<String> {
    node["x-kubernetes-validations"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let rule = r["rule"].as_str().unwrap_or_default();
                    match r["message"].as_str() {
                        Some(m) => one_line(m),
                        None => format!("`{}`", rule.replace('|', "\\|")),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes.
fn anchor(path: &str) -> String {
    path.chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A table cell: one line, pipes escaped.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.io}
spec:
  group: example.io
  scope: Namespaced
  names: {kind: Widget, plural: widgets, shortNames: [wd]}
  versions:
    - name: v1
      served: true
      storage: true
      additionalPrinterColumns:
        - {name: Phase, type: string, jsonPath: .status.phase}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-validations:
                - {rule: "self.a.size() > 0", message: "a must not be empty"}
              required: [a]
              properties:
                a: {type: string, description: "The a | b.", default: "x"}
                n: {type: integer, minimum: 1, maximum: 7}
                mode: {type: string, enum: [one, two]}
                resources: {type: object, properties: {limits: {type: object}}}
                inner:
                  type: object
                  properties:
                    deep: {type: boolean}
            status:
              type: object
              properties:
                phase: {type: string}
"#;

    #[test]
    fn renders_fields_defaults_constraints_and_sections() {
        let md = render(CRD).unwrap();
        assert!(
            md.contains("API version `example.io/v1`, kind `Widget`"),
            "{md}"
        );
        assert!(
            md.contains("| `a` | string | `\"x\"` | **Required.** The a \\| b. |"),
            "{md}"
        );
        assert!(md.contains("Range 1–7"), "{md}");
        assert!(md.contains("One of `one`, `two`"), "{md}");
        assert!(md.contains("- Rule: a must not be empty\n"), "{md}");
        assert!(md.contains("### `spec.inner`"), "{md}");
        assert!(md.contains("[object](#specinner)"), "{md}");
        assert!(
            !md.contains("### `spec.resources`"),
            "stock types are not expanded: {md}"
        );
        assert!(md.contains("### `status`"), "{md}");
        assert!(md.contains("| Phase | string | `.status.phase` |"), "{md}");
    }
}
