//! Every default container image the operator runs, in one place. Names carry no registry host:
//! they resolve on the container runtime's default registry, and a mirror is configured there.
//!
//! The API server and web images follow the operator's own version so an operator upgrade rolls the
//! platform forward with it. Data services are pinned by major.minor only: a CR that does not name a
//! version gets the default below written into its spec by the API server at creation time, so an
//! operator upgrade never silently upgrades a database.

/// The version of this crate; the API and web images are released in lock-step with it.
pub const PLATFORM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Repository of the API server image (tag = [`PLATFORM_VERSION`] unless the CR overrides the image).
pub const API_SERVER_REPOSITORY: &str = "beermeetup/api-server";
/// Repository of the web (static SPA) image.
pub const WEB_REPOSITORY: &str = "beermeetup/web";

/// Official MongoDB image repository; the tag is `spec.mongodb.version`.
pub const MONGODB_REPOSITORY: &str = "mongo";
/// MongoDB 8.0 is the current stable release line.
pub const MONGODB_DEFAULT_VERSION: &str = "8.0";

/// Official Redis image repository; the tag is `spec.redis.version`.
pub const REDIS_REPOSITORY: &str = "redis";
/// Redis 7.4 is the last release line under the BSD-style licence the project prefers.
pub const REDIS_DEFAULT_VERSION: &str = "7.4";

/// Official HAProxy image (3.2 LTS line), the platform's own proxy when
/// `spec.ingress.controller.deploy`; configured by the operator, it needs no Kubernetes API access.
pub const HAPROXY_IMAGE: &str = "haproxy:3.2.25";

/// Elasticsearch repository; the tag is `spec.elasticsearch.version` (Elastic publishes full
/// versions only, no floating `9.2` tag).
pub const ELASTICSEARCH_REPOSITORY: &str = "elasticsearch";
/// Default Elasticsearch version, written into the spec at creation like the other data services.
pub const ELASTICSEARCH_DEFAULT_VERSION: &str = "9.2.1";

/// Prometheus (v3 line), run when `spec.thanos.enabled`.
pub const PROMETHEUS_IMAGE: &str = "prom/prometheus:v3.5.0";
/// Thanos (sidecar next to Prometheus, and Query).
pub const THANOS_IMAGE: &str = "thanosio/thanos:v0.41.0";

/// Which proxy images a platform may run, as the operator's installer decides (chart value
/// `ingressController.allowedImages`, flag `--allowed-ingress-controller-image`).
///
/// The proxy is the platform's internet-facing pod and mounts the platform's TLS key, so "any
/// image in a CR" would let whoever may create a platform run arbitrary code that holds it and
/// sees every request. The pinned default is always allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageAllowList {
    /// Exact references, or prefixes ending in `*` (e.g. `registry.example/haproxy/*`).
    entries: Vec<String>,
}

impl ImageAllowList {
    pub fn new(entries: impl IntoIterator<Item = String>) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect(),
        }
    }

    pub fn allows(&self, image: &str) -> bool {
        image == HAPROXY_IMAGE
            || self
                .entries
                .iter()
                .any(|entry| match entry.strip_suffix('*') {
                    Some(prefix) => image.starts_with(prefix),
                    None => entry == image,
                })
    }

    /// The allowed images, for messages.
    pub fn describe(&self) -> String {
        std::iter::once(HAPROXY_IMAGE)
            .chain(self.entries.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub fn default_haproxy_image() -> String {
    HAPROXY_IMAGE.to_owned()
}

/// The Elasticsearch image for a version, e.g. `elasticsearch:9.2.1`.
pub fn elasticsearch_image(version: &str) -> String {
    format!("{ELASTICSEARCH_REPOSITORY}:{version}")
}

/// The default API server image, e.g. `beermeetup/api-server:0.1.0`.
pub fn default_api_server_image() -> String {
    format!("{API_SERVER_REPOSITORY}:{PLATFORM_VERSION}")
}

/// The default web image, e.g. `beermeetup/web:0.1.0`.
pub fn default_web_image() -> String {
    format!("{WEB_REPOSITORY}:{PLATFORM_VERSION}")
}

/// The MongoDB image for a version, e.g. `mongo:8.0`.
pub fn mongodb_image(version: &str) -> String {
    format!("{MONGODB_REPOSITORY}:{version}")
}

/// The Redis image for a version, e.g. `redis:7.4`.
pub fn redis_image(version: &str) -> String {
    format!("{REDIS_REPOSITORY}:{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_listed_controller_images_run() {
        let none = ImageAllowList::default();
        assert!(none.allows(HAPROXY_IMAGE));
        assert!(!none.allows("evil.example/miner:1"));
        let list = ImageAllowList::new([
            "registry.example/haproxy/*".to_owned(),
            " mirror.example/haproxy:3.2.25 ".to_owned(),
            String::new(),
        ]);
        assert!(list.allows("registry.example/haproxy/haproxy:3.2.25"));
        assert!(list.allows("mirror.example/haproxy:3.2.25"));
        assert!(!list.allows("mirror.example/haproxy:latest"));
        assert!(!list.allows("registry.example/other:1"));
        assert!(list.describe().contains("registry.example/haproxy/*"));
    }

    #[test]
    fn platform_images_follow_the_crate_version() {
        assert_eq!(
            default_api_server_image(),
            format!("beermeetup/api-server:{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(default_web_image().ends_with(&format!(":{PLATFORM_VERSION}")));
    }

    #[test]
    fn data_service_images_use_the_version_as_tag() {
        assert_eq!(mongodb_image("8.0"), "mongo:8.0");
        assert_eq!(redis_image("7.4"), "redis:7.4");
        assert_eq!(elasticsearch_image("9.2.1"), "elasticsearch:9.2.1");
    }

    #[test]
    fn pinned_images_are_valid_references_with_tags() {
        for image in [
            HAPROXY_IMAGE,
            PROMETHEUS_IMAGE,
            THANOS_IMAGE,
            &elasticsearch_image(ELASTICSEARCH_DEFAULT_VERSION),
        ] {
            assert!(crate::validate::is_image_reference(image), "{image}");
            assert!(
                image
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains(':')),
                "{image} is pinned"
            );
        }
        assert!(
            HAPROXY_IMAGE.starts_with("haproxy:3.2."),
            "the 3.2 LTS line"
        );
        assert!(ELASTICSEARCH_DEFAULT_VERSION.starts_with("9."));
    }
}
