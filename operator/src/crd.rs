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

/// A storage size: a positive Kubernetes quantity in bytes such as `10Gi`, `500Mi` or `1.5Ti`
/// (no sign, no exponent, no milli-units). Kept in sync with the schema by a unit test.
pub const STORAGE_SIZE_PATTERN: &str =
    r"^([1-9][0-9]*(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$";

/// Schema of a storage size: an integer or a string matching [`STORAGE_SIZE_PATTERN`], never null.
///
/// `Quantity`'s own schema is a bare `x-kubernetes-int-or-string`, which kube marks `nullable`
/// when the field has a default; the API server then stores `size: null` (server-side apply of a
/// null) that the operator cannot decode, and accepts `banana`. `nullable: false` makes the API
/// server prune a null (the schema default applies instead); the pattern refuses non-quantities.
fn storage_size_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "pattern": STORAGE_SIZE_PATTERN,
        "nullable": false,
        "x-kubernetes-int-or-string": true,
    })
}

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
    /// How people reach the platform: its own HAProxy, or an Ingress for the cluster's controller.
    #[serde(default)]
    pub ingress: IngressSpec,
    /// Optional Elasticsearch (single node) for place search; the API falls back to MongoDB.
    #[serde(default)]
    pub elasticsearch: ElasticsearchSpec,
    /// Optional metrics: Prometheus with a Thanos sidecar, and Thanos Query.
    #[serde(default)]
    pub thanos: ThanosSpec,
    /// NetworkPolicies that let only the API server (and the data services' own pods) reach
    /// MongoDB, Redis and Elasticsearch.
    #[serde(default)]
    pub network_policies: NetworkPolicySpec,
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
    /// Days a meetup is kept after its last slot or decision; then the API server deletes it
    /// (`MEETUP_RETENTION_DAYS`).
    #[serde(default = "default_retention_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: i32,
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
    /// failure takes down at most one tier's pods on it. Needs more schedulable nodes than the
    /// larger of `apiServer.replicas` and `web.replicas` (either tier may spread over every node
    /// before the other is placed); pods without a node show as `Unschedulable` in the status.
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
    /// Use a MongoDB outside the platform (e.g. a managed service): the operator deploys no
    /// replica set and gives the API server the connection string from this Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalRef>,
}

/// A connection string kept in a Secret the user manages.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRef {
    /// Secret in the platform's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of the Secret holding the URI (e.g. `mongodb+srv://...` or `redis://...`).
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
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
    #[schemars(schema_with = "storage_size_schema")]
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
#[x_kube(validation = Rule::new("!has(self.external) || self.mode == 'standalone'").message("redis.external cannot be combined with redis.mode: replicated (the operator deploys no Redis then)"))]
pub struct RedisSpec {
    /// `standalone`: one Redis pod. `replicated`: a primary, `replicas` replicas and three
    /// Sentinels that promote a replica when the primary fails.
    #[serde(default)]
    pub mode: RedisMode,
    /// Replicas of the primary in `replicated` mode.
    #[serde(default = "default_redis_replicas")]
    #[schemars(range(min = 1, max = 5))]
    pub replicas: i32,
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
    /// What Redis evicts when `maxMemory` is reached: only keys with a TTL (cached views), never
    /// the revision keys that tell a current view from a stale one.
    #[serde(default)]
    pub max_memory_policy: RedisEvictionPolicy,
    /// Optional persistence of the cache (append-only file on a volume).
    #[serde(default)]
    pub storage: RedisStorageSpec,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Use a Redis outside the platform: the operator deploys none and gives the API server the
    /// URL from this Secret as `REDIS_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalRef>,
}

/// How Redis runs.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One Redis pod (a cache: losing it costs a warm-up).
    #[default]
    Standalone,
    /// A primary, replicas and three Sentinels for automatic failover.
    Replicated,
}

/// Redis `maxmemory-policy` values the platform can live with.
///
/// Only `volatile-*` policies and `noeviction`: the API server writes cached meetup views with a
/// TTL, but the revision/floor keys that make a cached view trustworthy have none — an
/// `allkeys-*` policy could evict those and let a stale view be served as current. The former
/// `allkeys-*` values still decode (objects stored before) and mean their `volatile-*` twin.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RedisEvictionPolicy {
    /// Evict the least recently used keys that have a TTL (cached views), never the
    /// revision keys (the right choice for this cache).
    #[default]
    #[serde(alias = "allkeys-lru")]
    VolatileLru,
    /// Evict the least frequently used keys that have a TTL.
    #[serde(alias = "allkeys-lfu")]
    VolatileLfu,
    /// Evict keys with a TTL at random.
    #[serde(alias = "allkeys-random")]
    VolatileRandom,
    /// Evict keys with the nearest expiry.
    VolatileTtl,
    /// Refuse writes when memory is full (the API then works without the cache).
    Noeviction,
}

impl RedisEvictionPolicy {
    /// The value Redis expects in `--maxmemory-policy`.
    pub fn as_redis_arg(self) -> &'static str {
        match self {
            Self::VolatileLru => "volatile-lru",
            Self::VolatileRandom => "volatile-random",
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
    #[schemars(schema_with = "storage_size_schema")]
    pub size: Quantity,
    /// StorageClass of the volume; the cluster default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

/// CEL rule for HAProxy/Prometheus durations such as `30s`, `1m`, `1h`, `7d`.
const DURATION_RULE: &str = r"self.matches('^[1-9][0-9]*(ms|s|m|h|d)$')";
/// CEL rule for a DNS-1123 label (names of classes and Secrets).
const DNS_LABEL_RULE: &str = r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')";
/// CEL rule for a host name (no wildcard, no port).
const HOST_RULE: &str =
    r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
/// What a rate-limit whitelist entry may look like at admission: hex digits, dots and colons with
/// an optional prefix length (spaces around are trimmed later). Looser than the operator's exact
/// parse, never stricter.
pub const WHITELIST_PATTERN: &str = r"^\s*[0-9A-Fa-f:.]+(/[0-9]+)?\s*$";
/// CEL form of [`WHITELIST_PATTERN`], for every entry.
const WHITELIST_RULE: &str = r"self.all(e, e.matches('^\\s*[0-9A-Fa-f:.]+(/[0-9]+)?\\s*$'))";
/// CEL rule for a full `major.minor.patch` version (Elastic publishes no floating tags).
const FULL_VERSION_RULE: &str = r"self.matches('^[0-9]+\\.[0-9]+\\.[0-9]+$')";

/// How people reach the platform: its own HAProxy (default), or an Ingress for the cluster's
/// ingress controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.enabled || has(self.host)").message("ingress.host is required when ingress.enabled is true"))]
pub struct IngressSpec {
    /// Route `/api` (REST and the live WebSocket) to the API server and `/` to web: through the
    /// platform's own HAProxy (`controller.deploy`) or an Ingress for the cluster's controller.
    #[serde(default)]
    pub enabled: bool,
    /// Host name people use, e.g. `meetups.example.org`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(HOST_RULE).message("ingress.host must be a lower-case DNS name such as meetups.example.org"))]
    pub host: Option<String>,
    /// `ingressClassName` of the Ingress made for the cluster's ingress controller
    /// (`controller.deploy: false`); unused with the platform's own HAProxy.
    #[serde(default = "default_ingress_class")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(DNS_LABEL_RULE).message("ingress.className must be a DNS label such as haproxy"))]
    pub class_name: String,
    /// Serve HTTPS with the certificate in this Secret (type kubernetes.io/tls); HTTP only when
    /// omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTlsSpec>,
    /// Requests per client IP allowed per period; HAProxy answers `statusCode` beyond that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// The platform's own HAProxy.
    #[serde(default)]
    pub controller: IngressControllerSpec,
}

/// TLS of the Ingress.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IngressTlsSpec {
    /// Secret (in the platform's namespace) with `tls.crt` and `tls.key`.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// Rate limiting per client IP: a stick table in the platform's own HAProxy, or the
/// `haproxy.org/rate-limit-*` annotations on the Ingress for the cluster's HAProxy controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Requests allowed per client IP and period.
    #[schemars(range(min = 1, max = 1000000))]
    pub requests: i32,
    /// Length of the period, e.g. `1s`, `10s`, `1m`.
    #[serde(default = "default_rate_limit_period")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message("ingress.rateLimit.period must be a duration such as 10s or 1m"))]
    pub period: String,
    /// HTTP status answered to a client over the limit.
    #[serde(default = "default_rate_limit_status")]
    #[schemars(range(min = 400, max = 599))]
    pub status_code: i32,
    /// Size of the table of tracked client IPs (HAProxy units, e.g. `100k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^[1-9][0-9]*[km]?$')").message("ingress.rateLimit.size must be a number with an optional k or m, e.g. 100k"))]
    pub size: Option<String>,
    /// Client IPs or CIDRs never limited (e.g. `10.0.0.0/8`, `192.168.1.1`, `fd00::/64`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 64)))]
    // A coarse check at admission (hex digits, dots, colons, a prefix length); the operator's
    // validation parses each entry exactly. `isIP`/`isCIDR` would need Kubernetes 1.31, the
    // chart supports 1.25.
    #[x_kube(validation = Rule::new(WHITELIST_RULE).message("ingress.rateLimit.whitelist entries must be IP addresses or CIDRs such as 10.0.0.0/8 or fd00::/64"))]
    pub whitelist: Vec<String>,
}

/// How the controller's Service is exposed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    /// Inside the cluster only (put your own load balancer in front).
    ClusterIP,
    /// A port on every node.
    NodePort,
    /// A cloud load balancer (a NodePort as well, where the cluster has no load balancers).
    #[default]
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The platform's own HAProxy: a plain HAProxy configured by the operator (a ConfigMap), with
/// no access to the Kubernetes API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressControllerSpec {
    /// Run the platform's own HAProxy. Set false to use an ingress controller the cluster
    /// already has (the operator then creates an Ingress naming `className`).
    #[serde(default = "default_true")]
    pub deploy: bool,
    /// HAProxy pods.
    #[serde(default = "default_ingress_replicas")]
    #[schemars(range(min = 1, max = 10))]
    pub replicas: i32,
    /// HAProxy image; defaults to the pinned official `haproxy` image (3.2 LTS line). Must be on
    /// the operator's allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message("ingress.controller.image must be an image reference such as haproxy:3.2.25"))]
    pub image: Option<String>,
    /// Type of the proxy's Service.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Idle timeout of an upgraded (WebSocket) connection (`timeout-tunnel`); live pages stay
    /// open for hours, so it is long.
    #[serde(default = "default_tunnel_timeout")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message("ingress.controller.tunnelTimeout must be a duration such as 1h"))]
    pub tunnel_timeout: String,
    /// Idle timeout of a client connection before an upgrade (`timeout-client`).
    #[serde(default = "default_client_timeout")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message("ingress.controller.clientTimeout must be a duration such as 1m"))]
    pub client_timeout: String,
    /// Deprecated, ignored: the operator creates no IngressClass (nor anything cluster-scoped).
    /// Still accepted so existing platforms apply unchanged; a Warning Event says it is ignored.
    #[serde(default)]
    pub create_ingress_class: bool,
    /// Container resources; modest requests when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Transition rule shared by the data volumes of StatefulSets.
const DATA_STORAGE_IMMUTABLE_RULE: &str = "self.size == oldSelf.size && has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)";

/// A StatefulSet's data volume; the claims are kept when the component is turned off.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(DATA_STORAGE_IMMUTABLE_RULE).message("storage.size and storageClassName cannot change after creation (StatefulSet volume claim templates are immutable); resize the PersistentVolumeClaims directly"))]
pub struct DataStorageSpec {
    /// Size of the volume.
    #[serde(default = "default_data_storage_size")]
    #[schemars(schema_with = "storage_size_schema")]
    pub size: Quantity,
    /// StorageClass of the volume; the cluster default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

/// Single-node Elasticsearch for place search.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ElasticsearchSpec {
    /// Run Elasticsearch and configure the API server to index and search places in it.
    #[serde(default)]
    pub enabled: bool,
    /// Full Elasticsearch version; the image is `elasticsearch:<version>`.
    #[serde(default = "default_elasticsearch_version")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(FULL_VERSION_RULE).message("elasticsearch.version must be a full version such as 9.2.1"))]
    pub version: String,
    /// JVM options (`ES_JAVA_OPTS`); keep the heap at most half the memory limit.
    #[serde(default = "default_es_java_opts")]
    #[schemars(length(max = 512))]
    pub java_opts: String,
    /// The data volume (kept when Elasticsearch is turned off or the platform deleted).
    #[serde(default)]
    pub storage: DataStorageSpec,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Prometheus + Thanos.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ThanosSpec {
    /// Run Prometheus (scraping the platform's annotated pods) with a Thanos sidecar, and Thanos
    /// Query in front of it.
    #[serde(default)]
    pub enabled: bool,
    /// Thanos object-storage configuration (the YAML Thanos documents) in a Secret you manage;
    /// blocks are then uploaded every 2 h. Local disk only when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_storage_secret: Option<SecretKeyRef>,
    /// How long Prometheus keeps samples on its own volume.
    #[serde(default = "default_retention")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message("thanos.retention must be a duration such as 7d"))]
    pub retention: String,
    /// How often targets are scraped.
    #[serde(default = "default_scrape_interval")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message("thanos.scrapeInterval must be a duration such as 30s"))]
    pub scrape_interval: String,
    /// Prometheus' data volume (kept when metrics are turned off or the platform deleted).
    #[serde(default)]
    pub storage: DataStorageSpec,
    /// Thanos Query pods.
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 10))]
    pub query_replicas: i32,
    /// Container resources of Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// A key of a Secret in the platform's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// NetworkPolicies of the data services.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Create them (they take effect where the cluster's network plugin enforces policies).
    #[serde(default = "default_true")]
    pub enabled: bool,
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
    /// `RedisReady`, and when enabled `IngressReady`, `ElasticsearchReady`, `MetricsReady`).
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
    /// Redis pods (data pods; Sentinels are counted in the condition message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<ComponentStatus>,
    /// Pods of the platform's own HAProxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<ComponentStatus>,
    /// Elasticsearch pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elasticsearch: Option<ComponentStatus>,
    /// Prometheus and Thanos Query pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<ComponentStatus>,
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
    /// `Ready` or a component's condition, e.g. `MongoDBReady`.
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
fn default_retention_days() -> i32 {
    90
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
fn default_redis_replicas() -> i32 {
    2
}
fn default_ingress_class() -> String {
    "haproxy".to_owned()
}
fn default_rate_limit_period() -> String {
    "1s".to_owned()
}
fn default_rate_limit_status() -> i32 {
    429
}
fn default_ingress_replicas() -> i32 {
    2
}
fn default_tunnel_timeout() -> String {
    "1h".to_owned()
}
fn default_client_timeout() -> String {
    "1m".to_owned()
}
fn default_data_storage_size() -> Quantity {
    Quantity("10Gi".to_owned())
}
fn default_elasticsearch_version() -> String {
    images::ELASTICSEARCH_DEFAULT_VERSION.to_owned()
}
fn default_es_java_opts() -> String {
    "-Xms512m -Xmx512m".to_owned()
}
fn default_retention() -> String {
    "7d".to_owned()
}
fn default_scrape_interval() -> String {
    "30s".to_owned()
}
fn default_one() -> i32 {
    1
}

impl Default for IngressSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            host: None,
            class_name: default_ingress_class(),
            tls: None,
            rate_limit: None,
            controller: IngressControllerSpec::default(),
        }
    }
}

impl Default for IngressControllerSpec {
    fn default() -> Self {
        Self {
            deploy: true,
            replicas: default_ingress_replicas(),
            image: None,
            service_type: ServiceType::LoadBalancer,
            tunnel_timeout: default_tunnel_timeout(),
            client_timeout: default_client_timeout(),
            create_ingress_class: false,
            resources: None,
        }
    }
}

impl IngressControllerSpec {
    /// The image to run: the CR's override or the pinned default.
    pub fn effective_image(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(images::default_haproxy_image)
    }
}

impl Default for DataStorageSpec {
    fn default() -> Self {
        Self {
            size: default_data_storage_size(),
            storage_class_name: None,
        }
    }
}

impl Default for ElasticsearchSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            version: default_elasticsearch_version(),
            java_opts: default_es_java_opts(),
            storage: DataStorageSpec::default(),
            resources: None,
        }
    }
}

impl Default for ThanosSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            object_storage_secret: None,
            retention: default_retention(),
            scrape_interval: default_scrape_interval(),
            storage: DataStorageSpec::default(),
            query_replicas: 1,
            resources: None,
        }
    }
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Default for ApiServerSpec {
    fn default() -> Self {
        Self {
            replicas: default_api_replicas(),
            image: None,
            log_level: default_log_level(),
            retention_days: default_retention_days(),
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
            external: None,
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
            mode: RedisMode::Standalone,
            replicas: default_redis_replicas(),
            version: default_redis_version(),
            max_memory: default_redis_max_memory(),
            max_memory_policy: RedisEvictionPolicy::VolatileLru,
            storage: RedisStorageSpec::default(),
            resources: None,
            external: None,
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

/// A platform as the watches see it: metadata plus the raw spec and status.
///
/// Decoding into [`BeerMeetupPlatform`] happens per object in the reconciler, so one object the
/// operator cannot read (stored under another schema version, or written around the schema)
/// degrades only itself; with the typed watch it failed every list, and with it every platform.
#[derive(kube::Resource, Serialize, Deserialize, Clone, Debug)]
#[resource(inherit = BeerMeetupPlatform)]
pub struct PlatformObject {
    pub metadata: kube::api::ObjectMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl PlatformObject {
    /// The typed platform, or why this object cannot be one. A status the operator cannot read
    /// is treated as absent (it is recomputed anyway).
    pub fn decode(&self) -> Result<BeerMeetupPlatform, serde_json::Error> {
        let spec = serde_json::from_value(self.spec.clone())?;
        let status = self
            .status
            .clone()
            .and_then(|status| serde_json::from_value(status).ok());
        Ok(BeerMeetupPlatform {
            metadata: self.metadata.clone(),
            spec,
            status,
        })
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
    fn cel_whitelist_rule_is_the_whitelist_pattern_and_never_refuses_what_the_operator_takes() {
        let unescaped = WHITELIST_RULE.replace("\\\\", "\\");
        assert_eq!(
            unescaped,
            format!("self.all(e, e.matches('{WHITELIST_PATTERN}'))")
        );
        let pattern = regex::Regex::new(WHITELIST_PATTERN).expect("pattern");
        let taken = [
            "10.0.0.0/8",
            "192.168.1.1",
            "fd00::/64",
            "::1",
            "::ffff:10.0.0.1",
            " 10.1.2.3/32 ",
            "2001:DB8::/32",
        ];
        for entry in taken {
            assert!(
                crate::children::haproxy_config::parse_address_or_network(entry).is_some(),
                "{entry:?}"
            );
            assert!(pattern.is_match(entry), "{entry:?} refused at admission");
        }
        for garbage in [
            "office",
            "10.0.0.1\n    stats enable",
            "10.0.0.0/8 # vpn",
            "",
            "*",
        ] {
            assert!(!pattern.is_match(garbage), "{garbage:?} passed admission");
        }
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
            "ingress.host is required when ingress.enabled is true",
            "ingress.host must be a lower-case DNS name",
            "ingress.className must be a DNS label",
            "ingress.rateLimit.period must be a duration",
            "ingress.rateLimit.whitelist entries must be IP addresses or CIDRs",
            "ingress.controller.tunnelTimeout must be a duration",
            "ingress.controller.image must be an image reference",
            "elasticsearch.version must be a full version",
            "thanos.retention must be a duration",
            "redis.external cannot be combined with redis.mode: replicated",
            "storage.size and storageClassName cannot change after creation",
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
        assert!(policies.iter().any(|p| p == "volatile-lru"));
        // allkeys-* could evict the revision keys that carry correctness.
        assert!(
            !policies
                .iter()
                .any(|p| p.as_str().is_some_and(|p| p.starts_with("allkeys")))
        );
        let retention = &spec["mongodb"]["properties"]["storage"]["properties"]["retentionPolicy"];
        assert_eq!(retention["enum"], serde_json::json!(["Retain", "Delete"]));
    }

    #[test]
    fn new_options_are_off_by_default_with_sensible_defaults() {
        let spec = BeerMeetupPlatformSpec::default();
        assert!(!spec.ingress.enabled && !spec.elasticsearch.enabled && !spec.thanos.enabled);
        assert!(spec.ingress.controller.deploy);
        assert!(!spec.ingress.controller.create_ingress_class);
        assert_eq!(spec.ingress.class_name, "haproxy");
        assert_eq!(spec.ingress.controller.tunnel_timeout, "1h");
        assert_eq!(spec.redis.mode, RedisMode::Standalone);
        assert!(spec.network_policies.enabled);
        let s = schema();
        let props = &s["properties"]["spec"]["properties"];
        assert_eq!(
            props["redis"]["properties"]["mode"]["enum"],
            serde_json::json!(["standalone", "replicated"])
        );
        assert_eq!(
            props["ingress"]["properties"]["controller"]["properties"]["serviceType"]["enum"],
            serde_json::json!(["ClusterIP", "NodePort", "LoadBalancer"])
        );
        let rate = &props["ingress"]["properties"]["rateLimit"]["properties"];
        assert_eq!(rate["statusCode"]["minimum"], 400.0);
        assert_eq!(
            s["properties"]["spec"]["properties"]["ingress"]["properties"]["rateLimit"]["required"],
            serde_json::json!(["requests"])
        );
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
            "volatile-lru"
        );
        assert_eq!(platform.spec.api_server.retention_days, 90);
    }

    #[test]
    fn an_undecodable_spec_is_an_error_of_that_object_only() {
        let object: PlatformObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "beermeetup.io/v1alpha1",
            "kind": "BeerMeetupPlatform",
            "metadata": {"name": "bad", "namespace": "ns"},
            "spec": {"mongodb": {"storage": {"size": null}}},
            "status": {"phase": "NoSuchPhase"},
        }))
        .expect("any object decodes as a PlatformObject");
        let error = object.decode().expect_err("null size");
        assert!(error.to_string().contains("null"), "{error}");
        let good: PlatformObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "good", "namespace": "ns"},
            "spec": {},
            "status": {"phase": "NoSuchPhase"},
        }))
        .expect("decodes");
        let platform = good.decode().expect("a minimal spec decodes");
        assert_eq!(platform.spec, BeerMeetupPlatformSpec::default());
        assert!(platform.status.is_none(), "an unreadable status is dropped");
    }

    #[test]
    fn stored_allkeys_policies_decode_as_their_volatile_twin() {
        let policy: RedisEvictionPolicy = serde_json::from_str("\"allkeys-lru\"").expect("decodes");
        assert_eq!(policy, RedisEvictionPolicy::VolatileLru);
    }

    #[test]
    fn storage_sizes_are_non_null_quantities() {
        let s = schema();
        let spec = &s["properties"]["spec"]["properties"];
        for size in [
            &spec["mongodb"]["properties"]["storage"]["properties"]["size"],
            &spec["redis"]["properties"]["storage"]["properties"]["size"],
            &spec["elasticsearch"]["properties"]["storage"]["properties"]["size"],
            &spec["thanos"]["properties"]["storage"]["properties"]["size"],
        ] {
            assert_eq!(size["nullable"], false, "{size}");
            assert_eq!(size["pattern"], STORAGE_SIZE_PATTERN, "{size}");
            assert_eq!(size["x-kubernetes-int-or-string"], true, "{size}");
        }
        let pattern = regex::Regex::new(STORAGE_SIZE_PATTERN).expect("regex");
        for good in ["10Gi", "500Mi", "1.5Ti", "0.5Gi", "1000000", "2G"] {
            assert!(pattern.is_match(good), "{good}");
        }
        for bad in ["banana", "", "-1Gi", "0", "10gi", "1e9", "10 Gi", "100m"] {
            assert!(!pattern.is_match(bad), "{bad}");
        }
    }
}
