//! Every default container image the operator runs, in one place.
//!
//! The API server and web images follow the operator's own version so an operator upgrade rolls the
//! platform forward with it. Data services are pinned by major.minor only: a CR that does not name a
//! version gets the default below written into its spec by the API server at creation time, so an
//! operator upgrade never silently upgrades a database.

/// The version of this crate; the API and web images are released in lock-step with it.
pub const PLATFORM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Repository of the API server image (tag = [`PLATFORM_VERSION`] unless the CR overrides the image).
pub const API_SERVER_REPOSITORY: &str = "ghcr.io/beer-meetup/api-server";
/// Repository of the web (static SPA) image.
pub const WEB_REPOSITORY: &str = "ghcr.io/beer-meetup/web";

/// Official MongoDB image repository; the tag is `spec.mongodb.version`.
pub const MONGODB_REPOSITORY: &str = "mongo";
/// MongoDB 8.0 is the current stable release line.
pub const MONGODB_DEFAULT_VERSION: &str = "8.0";

/// Official Redis image repository; the tag is `spec.redis.version`.
pub const REDIS_REPOSITORY: &str = "redis";
/// Redis 7.4 is the last release line under the BSD-style licence the project prefers.
pub const REDIS_DEFAULT_VERSION: &str = "7.4";

/// The default API server image, e.g. `ghcr.io/beer-meetup/api-server:0.1.0`.
pub fn default_api_server_image() -> String {
    format!("{API_SERVER_REPOSITORY}:{PLATFORM_VERSION}")
}

/// The default web image, e.g. `ghcr.io/beer-meetup/web:0.1.0`.
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
    fn platform_images_follow_the_crate_version() {
        assert_eq!(
            default_api_server_image(),
            format!(
                "ghcr.io/beer-meetup/api-server:{}",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(default_web_image().ends_with(&format!(":{PLATFORM_VERSION}")));
    }

    #[test]
    fn data_service_images_use_the_version_as_tag() {
        assert_eq!(mongodb_image("8.0"), "mongo:8.0");
        assert_eq!(redis_image("7.4"), "redis:7.4");
    }
}
