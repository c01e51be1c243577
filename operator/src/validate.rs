//! Checks of the spec the operator relies on.
//!
//! The CRD's schema enforces the same rules at admission; they are repeated here because a cluster
//! may run an older copy of the CRD, or the object may have been written with validation off. A
//! failure here is a *spec* error: reported in status and Events, then the operator waits for the
//! next change instead of retrying.

use kube::ResourceExt;

use crate::crd::{BeerMeetupPlatform, MAX_NAME_LENGTH};

/// Every problem found, each a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec: {}", .problems.join("; "))]
pub struct SpecError {
    pub problems: Vec<String>,
}

/// Validate a platform; `Ok` when the operator can build it.
pub fn validate(platform: &BeerMeetupPlatform) -> Result<(), SpecError> {
    let spec = &platform.spec;
    let mut problems = Vec::new();

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
    if !is_redis_memory(&spec.redis.max_memory) {
        problems.push(format!(
            "redis.maxMemory must be a whole number with kb, mb or gb, e.g. 256mb, not {:?}",
            spec.redis.max_memory
        ));
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(SpecError { problems })
    }
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
    use crate::build::test_support::platform;
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
            "ghcr.io/beer-meetup/api-server:0.1.0",
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
    fn bad_image_is_a_spec_error() {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.api_server.image = Some("not an image".into());
        assert!(problems(spec)[0].starts_with("apiServer.image must be an image reference"));
    }
}
