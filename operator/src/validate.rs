//! Checks of the spec the operator relies on.
//!
//! The CRD's schema enforces the same rules at admission; they are repeated here because a cluster
//! may run an older copy of the CRD, or the object may have been written with validation off. A
//! failure here is a *spec* error: reported in status and Events, then the operator waits for the
//! next change instead of retrying.

use kube::ResourceExt;

use crate::crd::{BeerMeetupPlatform, BeerMeetupPlatformSpec, MAX_NAME_LENGTH, RedisMode};
use crate::names::Names;

/// Every problem found, each a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec: {}", .problems.join("; "))]
pub struct SpecError {
    pub problems: Vec<String>,
}

/// A platform that passed [`validate`], with its namespace. Only `validate` makes one, so what
/// takes it (the builders) never meets a spec or metadata it cannot build: building cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct ValidatedPlatform<'a> {
    platform: &'a BeerMeetupPlatform,
    namespace: &'a str,
}

impl<'a> ValidatedPlatform<'a> {
    pub fn platform(&self) -> &'a BeerMeetupPlatform {
        self.platform
    }

    pub fn spec(&self) -> &'a BeerMeetupPlatformSpec {
        &self.platform.spec
    }

    pub fn namespace(&self) -> &'a str {
        self.namespace
    }

    /// Names of the platform's children.
    pub fn names(&self) -> Names {
        Names::new(self.platform.name_any(), self.namespace)
    }
}

/// Validate a platform; the [`ValidatedPlatform`] when the operator can build it.
pub fn validate(platform: &BeerMeetupPlatform) -> Result<ValidatedPlatform<'_>, SpecError> {
    let spec = &platform.spec;
    let mut problems = Vec::new();
    let namespace = platform.metadata.namespace.as_deref();
    if namespace.is_none_or(str::is_empty) {
        problems.push(
            "metadata.namespace is missing (a BeerMeetupPlatform lives in a namespace)".to_owned(),
        );
    }

    let name = platform.name_any();
    if name.len() > MAX_NAME_LENGTH {
        problems.push(format!(
            "metadata.name must be at most {MAX_NAME_LENGTH} characters (child object names are derived from it)"
        ));
    }
    let members = spec.mongodb.members;
    if !(1..=7).contains(&members) {
        problems.push(format!(
            "mongodb.members must be between 1 and 7, not {members}"
        ));
    } else if members % 2 == 0 {
        problems.push(format!(
            "mongodb.members must be odd (1, 3, 5 or 7) so the replica set can always elect a primary, not {members}"
        ));
    }
    for (field, replicas) in [
        ("apiServer.replicas", spec.api_server.replicas),
        ("web.replicas", spec.web.replicas),
    ] {
        if !(0..=50).contains(&replicas) {
            problems.push(format!("{field} must be between 0 and 50, not {replicas}"));
        }
    }
    for (field, image) in [
        ("apiServer.image", spec.api_server.image.as_deref()),
        ("web.image", spec.web.image.as_deref()),
    ] {
        if let Some(image) = image
            && !is_image_reference(image)
        {
            problems.push(format!(
                "{field} must be an image reference such as registry.example/org/name:1.2.3, not {image:?}"
            ));
        }
    }
    for (field, version) in [
        ("mongodb.version", spec.mongodb.version.as_str()),
        ("redis.version", spec.redis.version.as_str()),
    ] {
        if !is_version(version) {
            problems.push(format!(
                "{field} must look like 8.0 or 8.0.4, not {version:?}"
            ));
        }
    }
    let ingress = &spec.ingress;
    if ingress.enabled && ingress.host.as_deref().is_none_or(str::is_empty) {
        problems.push("ingress.host is required when ingress.enabled is true".to_owned());
    }
    if let Some(host) = ingress.host.as_deref()
        && !host.is_empty()
        && !is_host(host)
    {
        problems.push(format!(
            "ingress.host must be a lower-case DNS name such as meetups.example.org, not {host:?}"
        ));
    }
    if !is_dns_label(&ingress.class_name) {
        problems.push(format!(
            "ingress.className must be a DNS label such as haproxy, not {:?}",
            ingress.class_name
        ));
    }
    if let Some(image) = ingress.controller.image.as_deref()
        && !is_image_reference(image)
    {
        problems.push(format!(
            "ingress.controller.image must be an image reference such as haproxy:3.2.25, not {image:?}"
        ));
    }
    if !(1..=10).contains(&ingress.controller.replicas) {
        problems.push(format!(
            "ingress.controller.replicas must be between 1 and 10, not {}",
            ingress.controller.replicas
        ));
    }
    let mut durations = vec![
        (
            "ingress.controller.tunnelTimeout",
            ingress.controller.tunnel_timeout.as_str(),
        ),
        (
            "ingress.controller.clientTimeout",
            ingress.controller.client_timeout.as_str(),
        ),
        ("thanos.retention", spec.thanos.retention.as_str()),
        (
            "thanos.scrapeInterval",
            spec.thanos.scrape_interval.as_str(),
        ),
    ];
    if let Some(limit) = &ingress.rate_limit {
        durations.push(("ingress.rateLimit.period", limit.period.as_str()));
        if limit.requests < 1 {
            problems.push("ingress.rateLimit.requests must be at least 1".to_owned());
        }
        if !(400..=599).contains(&limit.status_code) {
            problems.push(format!(
                "ingress.rateLimit.statusCode must be between 400 and 599, not {}",
                limit.status_code
            ));
        }
        // Written into HAProxy's configuration: only what parses as an address or network.
        for entry in &limit.whitelist {
            if crate::children::haproxy_config::parse_address_or_network(entry).is_none() {
                problems.push(format!(
                    "ingress.rateLimit.whitelist entries must be IP addresses or CIDRs such as 10.0.0.0/8, not {entry:?}"
                ));
            }
        }
    }
    for (field, value) in durations {
        if !is_duration(value) {
            problems.push(format!(
                "{field} must be a duration such as 30s, 1m or 1h, not {value:?}"
            ));
        }
    }
    if spec.redis.external.is_some() && spec.redis.mode == RedisMode::Replicated {
        problems.push(
            "redis.external cannot be combined with redis.mode: replicated (the operator deploys no Redis then)"
                .to_owned(),
        );
    }
    if !(1..=5).contains(&spec.redis.replicas) {
        problems.push(format!(
            "redis.replicas must be between 1 and 5, not {}",
            spec.redis.replicas
        ));
    }
    let version = &spec.elasticsearch.version;
    if !(is_version(version) && version.split('.').count() == 3) {
        problems.push(format!(
            "elasticsearch.version must be a full version such as 9.2.1, not {version:?}"
        ));
    }
    if !is_redis_memory(&spec.redis.max_memory) {
        problems.push(format!(
            "redis.maxMemory must be a whole number with kb, mb or gb, e.g. 256mb, not {:?}",
            spec.redis.max_memory
        ));
    }

    match namespace {
        Some(namespace) if problems.is_empty() => Ok(ValidatedPlatform {
            platform,
            namespace,
        }),
        _ => Err(SpecError { problems }),
    }
}

/// `<n><unit>` as HAProxy and Prometheus accept it (ms, s, m, h, d), without a leading zero.
fn is_duration(value: &str) -> bool {
    let Some(number) = ["ms", "s", "m", "h", "d"]
        .iter()
        .find_map(|unit| value.strip_suffix(unit))
    else {
        return false;
    };
    !number.is_empty() && !number.starts_with('0') && number.chars().all(|c| c.is_ascii_digit())
}

/// A DNS-1123 label: lower-case alphanumerics and '-', not at either end.
fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A host name: dot-separated DNS labels.
fn is_host(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns_label)
}

/// `major.minor` or `major.minor.patch`, digits only.
fn is_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `<digits><kb|mb|gb>` without a leading zero, as Redis accepts it.
fn is_redis_memory(value: &str) -> bool {
    let Some(number) = ["kb", "mb", "gb"]
        .iter()
        .find_map(|unit| value.strip_suffix(unit))
    else {
        return false;
    };
    !number.is_empty() && !number.starts_with('0') && number.chars().all(|c| c.is_ascii_digit())
}

/// Same grammar as [`crate::crd::IMAGE_PATTERN`]: `[host[:port]/]path[:tag][@sha256:digest]`.
pub fn is_image_reference(image: &str) -> bool {
    if image.is_empty() || image.len() > 255 {
        return false;
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let Some(hex) = digest.strip_prefix("sha256:") else {
            return false;
        };
        if hex.len() != 64 || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            return false;
        }
    }
    // A tag is a ':' after the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let valid_tag = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid_tag {
            return false;
        }
    }
    let mut components: Vec<&str> = path.split('/').collect();
    // The first component is a registry host when more follow and it looks like one.
    if components.len() > 1 {
        let host = components[0];
        let (host_name, port) = match host.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        };
        if let Some(port) = port
            && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
        {
            return false;
        }
        let host_ok = host_name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
        if !host_ok {
            return false;
        }
        components.remove(0);
    }
    components.iter().all(|component| {
        !component.is_empty()
            && component.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::test_support::platform;
    use crate::crd::BeerMeetupPlatformSpec;

    fn problems(spec: BeerMeetupPlatformSpec) -> Vec<String> {
        validate(&platform(spec))
            .err()
            .map(|e| e.problems)
            .unwrap_or_default()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(
            problems(BeerMeetupPlatformSpec::default()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn even_members_are_rejected_with_the_reason() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.mongodb.members = 4;
        let p = problems(spec);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("mongodb.members must be odd"), "{p:?}");
    }

    #[test]
    fn members_out_of_range_are_rejected() {
        for members in [0, 9, -1] {
            let mut spec = BeerMeetupPlatformSpec::default();
            spec.mongodb.members = members;
            assert!(problems(spec)[0].contains("between 1 and 7"));
        }
    }

    #[test]
    fn replicas_out_of_range_are_rejected() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.web.replicas = 51;
        spec.api_server.replicas = -1;
        assert_eq!(problems(spec).len(), 2);
    }

    #[test]
    fn a_platform_without_namespace_is_not_valid() {
        let mut p = platform(BeerMeetupPlatformSpec::default());
        p.metadata.namespace = None;
        let error = validate(&p).expect_err("no namespace");
        assert!(error.problems[0].contains("metadata.namespace"), "{error}");
        p.metadata.namespace = Some("team-a".into());
        let valid = validate(&p).expect("valid");
        assert_eq!(valid.namespace(), "team-a");
        assert_eq!(valid.names().namespace, "team-a");
    }

    #[test]
    fn long_names_are_rejected() {
        let mut p = platform(BeerMeetupPlatformSpec::default());
        p.metadata.name = Some("x".repeat(41));
        assert!(validate(&p).is_err());
        p.metadata.name = Some("x".repeat(40));
        assert!(validate(&p).is_ok());
    }

    #[test]
    fn bad_versions_and_memory_are_rejected() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.mongodb.version = "latest".into();
        spec.redis.version = "7".into();
        spec.redis.max_memory = "256MB".into();
        assert_eq!(problems(spec).len(), 3);
    }

    #[test]
    fn image_references() {
        for good in [
            "mongo:8.0",
            "beermeetup/api-server:0.1.0",
            "registry.example:5000/org/app",
            "localhost/app_x:v1.2-rc.1",
            "org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_image_reference(good), "{good} should be accepted");
        }
        for bad in [
            "",
            "Not An Image",
            "UPPER/case:1",
            "app:",
            "app:-tag",
            "org//app",
            "host:port/app",
            "app@sha256:short",
            "-app",
        ] {
            assert!(!is_image_reference(bad), "{bad} should be rejected");
        }
    }

    #[test]
    fn ingress_needs_a_valid_host_and_class() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.enabled = true;
        assert_eq!(
            problems(spec.clone()),
            ["ingress.host is required when ingress.enabled is true"]
        );
        spec.ingress.host = Some("Meetups.Example".into());
        spec.ingress.class_name = "-bad".into();
        let p = problems(spec.clone());
        assert_eq!(p.len(), 2, "{p:?}");
        spec.ingress.host = Some("meetups.example.org".into());
        spec.ingress.class_name = "haproxy".into();
        assert!(problems(spec).is_empty());
    }

    #[test]
    fn durations_are_checked() {
        for good in ["1h", "30s", "500ms", "7d", "10m"] {
            assert!(is_duration(good), "{good}");
        }
        for bad in ["", "1", "h", "01h", "1 h", "1w", "-1s"] {
            assert!(!is_duration(bad), "{bad}");
        }
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.controller.tunnel_timeout = "forever".into();
        spec.thanos.retention = "1y".into();
        assert_eq!(problems(spec).len(), 2);
    }

    #[test]
    fn external_redis_excludes_replicated_mode() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.redis.external = Some(crate::crd::ExternalRef {
            secret_name: "r".into(),
            key: "url".into(),
        });
        assert!(problems(spec.clone()).is_empty());
        spec.redis.mode = RedisMode::Replicated;
        assert!(problems(spec)[0].starts_with("redis.external cannot be combined"));
    }

    #[test]
    fn elasticsearch_needs_a_full_version() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.elasticsearch.version = "9.2".into();
        assert!(problems(spec)[0].starts_with("elasticsearch.version must be a full version"));
    }

    #[test]
    fn bad_controller_image_and_replicas_are_rejected() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.controller.image = Some("Bad Image".into());
        spec.ingress.controller.replicas = 0;
        spec.redis.replicas = 9;
        assert_eq!(problems(spec).len(), 3);
    }

    #[test]
    fn rate_limit_whitelist_holds_only_addresses_and_networks() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.rate_limit = Some(crate::crd::RateLimitSpec {
            requests: 10,
            period: "1s".into(),
            status_code: 429,
            size: None,
            whitelist: vec!["10.0.0.0/8".into(), "fd00::1".into()],
        });
        assert!(problems(spec.clone()).is_empty());
        if let Some(limit) = spec.ingress.rate_limit.as_mut() {
            limit.whitelist.push("10.0.0.1\n    stats enable".into());
            limit.status_code = 200;
        }
        let found = problems(spec);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("ingress.rateLimit.whitelist entries"))
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("ingress.rateLimit.statusCode"))
        );
    }

    #[test]
    fn bad_image_is_a_spec_error() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.api_server.image = Some("not an image".into());
        assert!(problems(spec)[0].starts_with("apiServer.image must be an image reference"));
    }
}
