//! The `BeerMeetupPlatform` custom resource (`beermeetup.io/v1alpha1`).
//!
//! Everything a user may leave out has a default, either in the schema (so `kubectl get -o yaml`
//! shows the effective value and an operator upgrade does not change it) or, for the platform's own
//! images, in [`crate::images`] (so an operator upgrade rolls the platform forward).
//!
//! Validation lives in the schema so the API server rejects a bad CR at `kubectl apply` time:
//! OpenAPI ranges and enums for simple limits, CEL `x-kubernetes-validations` with a human message
//! for everything else. [`crate::validate`] repeats the rules the operator relies on, because a
//! cluster may run an older copy of the CRD.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::images;

/// Longest platform name: child names add up to 23 characters (`-mongodb-init-<10 hex>`) and a pod
/// label value (`job-name`, `controller-revision-hash`) may hold at most 63.
pub const MAX_NAME_LENGTH: usize = 40;

/// Image references: optional registry host (with port), path components, optional tag and digest.
/// Kept in sync with the CEL rules below by a unit test.
pub const IMAGE_PATTERN: &str = r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$";

/// The desired state of one meetup platform: API, web, a MongoDB replica set and a Redis cache.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "beermeetup.io",
    version = "v1alpha1",
    kind = "BeerMeetupPlatform",
    plural = "beermeetupplatforms",
    singular = "beermeetupplatform",
    shortname = "bmp",
    category = "all",
    namespaced,
    status = "BeerMeetupPlatformStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.readyComponents","description":"Components ready / components"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"Mongo","type":"string","jsonPath":".status.mongodbMembers","description":"MongoDB members ready / desired"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("size(self.metadata.name) <= 40").message("metadata.name must be at most 40 characters (child object names are derived from it)"),
)]
#[serde(rename_all = "camelCase")]
pub struct BeerMeetupPlatformSpec {
    /// The HTTP/WebSocket API server.
    #[serde(default)]
    pub api_server: ApiServerSpec,
    /// The static web app (single-page app with fallback to index.html).
    #[serde(default)]
    pub web: WebSpec,
    /// How API and web pods are spread over nodes.
    #[serde(default)]
    pub placement: PlacementSpec,
    /// The MongoDB replica set holding meetups, participants and comments.
    #[serde(default)]
    pub mongodb: MongoDbSpec,
    /// The Redis cache and live-update fan-out.
    #[serde(default)]
    pub redis: RedisSpec,
    /// When true the operator changes nothing for this platform (status still reports Paused).
    #[serde(default)]
    pub paused: bool,
}

/// The API server Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerSpec {
    /// Number of API server pods.
    #[serde(default = "default_api_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    /// Container image; defaults to the API server image released with this operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message("apiServer.image must be an image reference such as registry.example/org/api-server:1.2.3"))]
    pub image: Option<String>,
    /// Log filter passed to the API server as RUST_LOG.
    #[serde(default = "default_log_level")]
    #[schemars(length(min = 1, max = 200))]
    pub log_level: String,
    /// Pod scheduling and resources.
    #[serde(flatten)]
    pub pod: PodOverrides,
}

/// The web Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebSpec {
    /// Number of web pods.
    #[serde(default = "default_web_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    /// Container image; defaults to the web image released with this operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message("web.image must be an image reference such as registry.example/org/web:1.2.3"))]
    pub image: Option<String>,
    /// Pod scheduling and resources.
    #[serde(flatten)]
    pub pod: PodOverrides,
}

/// CEL form of [`IMAGE_PATTERN`] (CEL string literals need the backslash doubled; raw string here).
const IMAGE_RULE: &str = r"self.matches('^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$')";

/// Resources and scheduling shared by the stateless workloads.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Container resources; the operator sets modest requests and a memory limit when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity rules; merged with the anti-affinity from `placement.separateNodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

/// Where pods go relative to each other.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSpec {
    /// Keep API and web pods on different nodes (required pod anti-affinity both ways), so a node
    /// failure takes down at most one tier's pods on it.
    #[serde(default = "default_true")]
    pub separate_nodes: bool,
}

/// The MongoDB replica set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MongoDbSpec {
    /// Replica-set members; odd so elections always have a majority.
    #[serde(default = "default_mongodb_members")]
    #[schemars(range(min = 1, max = 7))]
    #[x_kube(validation = Rule::new("self % 2 == 1").message("mongodb.members must be odd (1, 3, 5 or 7) so the replica set can always elect a primary"))]
    pub members: i32,
    /// MongoDB major.minor (or full) version; the image is `mongo:<version>`.
    #[serde(default = "default_mongodb_version")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(VERSION_RULE).message("mongodb.version must look like 8.0 or 8.0.4"))]
    pub version: String,
    /// Persistent storage of each member.
    #[serde(default)]
    pub storage: MongoDbStorageSpec,
    /// Container resources of each member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Shared CEL rule for `major.minor[.patch]` version strings.
const VERSION_RULE: &str = r"self.matches('^[0-9]+\\.[0-9]+(\\.[0-9]+)?$')";

/// Transition rule: the volume template of a StatefulSet cannot change, so neither may its source.
const STORAGE_IMMUTABLE_RULE: &str = "self.size == oldSelf.size && has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)";

/// Persistent volumes of the replica set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(STORAGE_IMMUTABLE_RULE).message("mongodb.storage.size and storageClassName cannot change after creation (StatefulSet volume claim templates are immutable); resize the PersistentVolumeClaims directly"))]
pub struct MongoDbStorageSpec {
    /// Size of each member's volume.
    #[serde(default = "default_mongodb_storage_size")]
    pub size: Quantity,
    /// StorageClass of the volumes; the cluster default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
    /// What happens to the data volumes when members are removed or the platform is deleted.
    /// `Retain` (default) keeps them, so data survives a mistaken scale-down or `kubectl delete`;
    /// `Delete` removes them with the pods.
    #[serde(default)]
    pub retention_policy: VolumeRetentionPolicy,
}

/// Whether data volumes outlive their pods.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VolumeRetentionPolicy {
    /// Keep PersistentVolumeClaims after scale-down and after the platform is deleted.
    #[default]
    Retain,
    /// Delete PersistentVolumeClaims with their pods.
    Delete,
}

/// The Redis cache.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RedisSpec {
    /// Redis major.minor (or full) version; the image is `redis:<version>`.
    #[serde(default = "default_redis_version")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(VERSION_RULE).message("redis.version must look like 7.4 or 7.4.2"))]
    pub version: String,
    /// Memory Redis may use for data before it evicts keys, in Redis units (e.g. 256mb, 1gb).
    #[serde(default = "default_redis_max_memory")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^[1-9][0-9]*(kb|mb|gb)$')").message("redis.maxMemory must be a whole number with kb, mb or gb, e.g. 256mb"))]
    pub max_memory: String,
    /// What Redis evicts when `maxMemory` is reached; an LRU policy suits a cache.
    #[serde(default)]
    pub max_memory_policy: RedisEvictionPolicy,
    /// Optional persistence of the cache (append-only file on a volume).
    #[serde(default)]
    pub storage: RedisStorageSpec,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Redis `maxmemory-policy` values.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RedisEvictionPolicy {
    /// Evict the least recently used keys (the right choice for a cache).
    #[default]
    AllkeysLru,
    /// Evict the least frequently used keys.
    AllkeysLfu,
    /// Evict random keys.
    AllkeysRandom,
    /// Evict least recently used keys that have a TTL.
    VolatileLru,
    /// Evict least frequently used keys that have a TTL.
    VolatileLfu,
    /// Evict keys with the nearest expiry.
    VolatileTtl,
    /// Refuse writes when memory is full.
    Noeviction,
}

impl RedisEvictionPolicy {
    /// The value Redis expects in `--maxmemory-policy`.
    pub fn as_redis_arg(self) -> &'static str {
        match self {
            Self::AllkeysLru => "allkeys-lru",
            Self::AllkeysLfu => "allkeys-lfu",
            Self::AllkeysRandom => "allkeys-random",
            Self::VolatileLru => "volatile-lru",
            Self::VolatileLfu => "volatile-lfu",
            Self::VolatileTtl => "volatile-ttl",
            Self::Noeviction => "noeviction",
        }
    }
}

/// Redis persistence. A cache needs none, so it is off by default; when on, the volume belongs to
/// the platform and is deleted with it (a cache holds nothing that cannot be rebuilt).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RedisStorageSpec {
    /// Keep an append-only file on a PersistentVolumeClaim instead of memory only.
    #[serde(default)]
    pub persistent: bool,
    /// Size of the volume when `persistent` is true.
    #[serde(default = "default_redis_storage_size")]
    pub size: Quantity,
    /// StorageClass of the volume; the cluster default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

/// What the operator last saw; written only through the status subresource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BeerMeetupPlatformStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One-word summary: Pending, Progressing, Ready, Degraded or Paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `Ready` plus one condition per component (`ApiServerReady`, `WebReady`, `MongoDBReady`,
    /// `RedisReady`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Components ready out of components, e.g. `4/4` (printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_components: Option<String>,
    /// MongoDB members ready out of desired, e.g. `3/3` (printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mongodb_members: Option<String>,
    /// Pods of the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<ComponentStatus>,
    /// Pods of the web app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<ComponentStatus>,
    /// Members of the MongoDB replica set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mongodb: Option<ComponentStatus>,
    /// Redis pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<ComponentStatus>,
    /// Where people reach the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Ready and desired pods of one component.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Pods ready.
    pub ready: i32,
    /// Pods wanted.
    pub desired: i32,
}

/// Lifecycle summary of a platform.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Seen, nothing applied yet.
    Pending,
    /// Children applied, not all ready yet.
    Progressing,
    /// Every component ready.
    Ready,
    /// The spec is invalid or a component failed.
    Degraded,
    /// `spec.paused` is true; nothing is changed.
    Paused,
}

/// A Kubernetes-style condition (same shape as `metav1.Condition`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `ApiServerReady`, `WebReady`, `MongoDBReady` or `RedisReady`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// The generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed (RFC 3339); unchanged when only reason or message change.
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
    /// CamelCase reason for the last status.
    #[schemars(length(max = 1024))]
    pub reason: String,
    /// Human-readable detail.
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// Condition truth value.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

fn default_api_replicas() -> i32 {
    2
}
fn default_web_replicas() -> i32 {
    2
}
fn default_log_level() -> String {
    "info".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_mongodb_members() -> i32 {
    3
}
fn default_mongodb_version() -> String {
    images::MONGODB_DEFAULT_VERSION.to_owned()
}
fn default_mongodb_storage_size() -> Quantity {
    Quantity("10Gi".to_owned())
}
fn default_redis_version() -> String {
    images::REDIS_DEFAULT_VERSION.to_owned()
}
fn default_redis_max_memory() -> String {
    "256mb".to_owned()
}
fn default_redis_storage_size() -> Quantity {
    Quantity("1Gi".to_owned())
}

impl Default for ApiServerSpec {
    fn default() -> Self {
        Self {
            replicas: default_api_replicas(),
            image: None,
            log_level: default_log_level(),
            pod: PodOverrides::default(),
        }
    }
}

impl Default for WebSpec {
    fn default() -> Self {
        Self {
            replicas: default_web_replicas(),
            image: None,
            pod: PodOverrides::default(),
        }
    }
}

impl Default for PlacementSpec {
    fn default() -> Self {
        Self {
            separate_nodes: true,
        }
    }
}

impl Default for MongoDbSpec {
    fn default() -> Self {
        Self {
            members: default_mongodb_members(),
            version: default_mongodb_version(),
            storage: MongoDbStorageSpec::default(),
            resources: None,
        }
    }
}

impl Default for MongoDbStorageSpec {
    fn default() -> Self {
        Self {
            size: default_mongodb_storage_size(),
            storage_class_name: None,
            retention_policy: VolumeRetentionPolicy::Retain,
        }
    }
}

impl Default for RedisSpec {
    fn default() -> Self {
        Self {
            version: default_redis_version(),
            max_memory: default_redis_max_memory(),
            max_memory_policy: RedisEvictionPolicy::AllkeysLru,
            storage: RedisStorageSpec::default(),
            resources: None,
        }
    }
}

impl Default for RedisStorageSpec {
    fn default() -> Self {
        Self {
            persistent: false,
            size: default_redis_storage_size(),
            storage_class_name: None,
        }
    }
}

impl ApiServerSpec {
    /// The image to run: the CR's override or the operator's default.
    pub fn effective_image(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(images::default_api_server_image)
    }
}

impl WebSpec {
    /// The image to run: the CR's override or the operator's default.
    pub fn effective_image(&self) -> String {
        self.image.clone().unwrap_or_else(images::default_web_image)
    }
}

/// The CRD as YAML, exactly as `crds/beermeetupplatforms.yaml` holds it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    let yaml = serde_yaml::to_string(&BeerMeetupPlatform::crd())?;
    Ok(format!(
        "# Generated by `beer-meetup-operator crd` (make crds). Do not edit by hand.\n{yaml}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    fn schema() -> serde_json::Value {
        let crd = BeerMeetupPlatform::crd();
        serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema"),
        )
        .expect("json")
    }

    #[test]
    fn cel_image_rule_is_the_image_pattern() {
        // CEL string literals need the backslash doubled; otherwise the two must be identical.
        let unescaped = IMAGE_RULE.replace("\\\\", "\\");
        assert_eq!(unescaped, format!("self.matches('{IMAGE_PATTERN}')"));
    }

    #[test]
    fn every_rule_has_a_message_naming_the_field() {
        let text = schema().to_string();
        for message in [
            "mongodb.members must be odd",
            "apiServer.image must be an image reference",
            "web.image must be an image reference",
            "mongodb.version must look like",
            "redis.version must look like",
            "redis.maxMemory must be a whole number",
            "mongodb.storage.size and storageClassName cannot change after creation",
            "metadata.name must be at most 40 characters",
        ] {
            assert!(text.contains(message), "missing rule message: {message}");
        }
    }

    #[test]
    fn ranges_and_enums_are_in_the_schema() {
        let s = schema();
        let spec = &s["properties"]["spec"]["properties"];
        let members = &spec["mongodb"]["properties"]["members"];
        assert_eq!(members["minimum"], 1.0);
        assert_eq!(members["maximum"], 7.0);
        assert_eq!(spec["apiServer"]["properties"]["replicas"]["maximum"], 50.0);
        let policies = spec["redis"]["properties"]["maxMemoryPolicy"]["enum"]
            .as_array()
            .expect("enum");
        assert!(policies.iter().any(|p| p == "allkeys-lru"));
        let retention = &spec["mongodb"]["properties"]["storage"]["properties"]["retentionPolicy"];
        assert_eq!(retention["enum"], serde_json::json!(["Retain", "Delete"]));
    }

    #[test]
    fn conditions_are_a_map_keyed_by_type() {
        let s = schema();
        let conditions = &s["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"])
        );
    }

    #[test]
    fn crd_identity_and_printer_columns() {
        let crd = BeerMeetupPlatform::crd();
        assert_eq!(crd.spec.group, "beermeetup.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["bmp".to_owned()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        let columns: Vec<String> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(columns, ["Phase", "Ready", "URL", "Mongo", "Age"]);
    }

    #[test]
    fn a_minimal_cr_gets_every_default() {
        let platform: BeerMeetupPlatform = serde_yaml::from_str(
            "apiVersion: beermeetup.io/v1alpha1\nkind: BeerMeetupPlatform\nmetadata: {name: x}\nspec: {}\n",
        )
        .expect("parses");
        assert_eq!(platform.spec, BeerMeetupPlatformSpec::default());
        assert_eq!(platform.spec.mongodb.members, 3);
        assert!(platform.spec.placement.separate_nodes);
        assert_eq!(
            platform.spec.redis.max_memory_policy.as_redis_arg(),
            "allkeys-lru"
        );
    }
}
