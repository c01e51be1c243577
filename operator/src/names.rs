//! Names and labels of child objects, derived from the platform's name.
//!
//! Every child carries the same `app.kubernetes.io/*` labels so orphans can be found by label and so
//! the operator's watches only see objects it manages.

use std::collections::BTreeMap;

/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "beer-meetup-operator";
/// `app.kubernetes.io/managed-by` value of every child.
pub const MANAGED_BY: &str = "beer-meetup-operator";
/// `app.kubernetes.io/name` value of every child.
pub const APP_NAME: &str = "beer-meetup";

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";
/// Namespace of the platform, on cluster-scoped children (IngressClass, ClusterRole[Binding]),
/// whose `instance` label alone would not tell platforms of different namespaces apart.
pub const LABEL_PLATFORM_NAMESPACE: &str = "beermeetup.io/platform-namespace";

/// Label selector that matches every object the operator manages (used by its watches).
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY}")
}

/// Label selector for every child of one platform.
pub fn instance_selector(platform: &str) -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_INSTANCE}={platform}")
}

/// Label selector for the pods of one platform (pod templates carry the selector labels).
pub fn pod_selector(platform: &str) -> String {
    format!("{LABEL_NAME}={APP_NAME},{LABEL_INSTANCE}={platform}")
}

/// Label selector for the cluster-scoped children of one platform.
pub fn cluster_scoped_selector(platform: &str, namespace: &str) -> String {
    format!(
        "{},{LABEL_PLATFORM_NAMESPACE}={namespace}",
        instance_selector(platform)
    )
}

/// The parts of a platform, each with its own workload and Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    ApiServer,
    Web,
    MongoDb,
    Redis,
    /// The platform's own HAProxy (or the Ingress for the cluster's controller).
    Ingress,
    Elasticsearch,
    /// Prometheus with its Thanos sidecar; carries the `MetricsReady` condition.
    Prometheus,
    /// Thanos Query (reported under `MetricsReady`).
    ThanosQuery,
    /// Redis Sentinels (reported under `RedisReady`).
    RedisSentinel,
    /// Pods of the replica-set init Job (reported under `MongoDBReady`). A label of their own so
    /// the MongoDB PodDisruptionBudget never selects them: a Job has no scale subresource, so a
    /// budget covering its pod would allow no disruption at all and block node drains.
    MongoDbInit,
}

impl Component {
    /// The components that always exist (conditions and counts of the original four).
    pub const ALL: [Component; 4] = [Self::ApiServer, Self::Web, Self::MongoDb, Self::Redis];
    /// Every component with its own status condition, in display order.
    pub const WITH_CONDITION: [Component; 7] = [
        Self::ApiServer,
        Self::Web,
        Self::MongoDb,
        Self::Redis,
        Self::Ingress,
        Self::Elasticsearch,
        Self::Prometheus,
    ];

    /// The components whose pods this component's condition reports on.
    pub fn reported_parts(self) -> &'static [Component] {
        match self {
            Self::MongoDb | Self::MongoDbInit => &[Self::MongoDb, Self::MongoDbInit],
            Self::Redis | Self::RedisSentinel => &[Self::Redis, Self::RedisSentinel],
            Self::Prometheus | Self::ThanosQuery => &[Self::Prometheus, Self::ThanosQuery],
            Self::ApiServer => &[Self::ApiServer],
            Self::Web => &[Self::Web],
            Self::Ingress => &[Self::Ingress],
            Self::Elasticsearch => &[Self::Elasticsearch],
        }
    }

    /// Value of the `app.kubernetes.io/component` label and suffix of child names.
    pub fn label(self) -> &'static str {
        match self {
            Self::ApiServer => "api",
            Self::Web => "web",
            Self::MongoDb => "mongodb",
            Self::Redis => "redis",
            Self::Ingress => "ingress",
            Self::Elasticsearch => "elasticsearch",
            Self::Prometheus => "prometheus",
            Self::ThanosQuery => "thanos-query",
            Self::RedisSentinel => "redis-sentinel",
            Self::MongoDbInit => "mongodb-init",
        }
    }

    /// Type of the component's status condition.
    pub fn condition_type(self) -> &'static str {
        match self {
            Self::ApiServer => "ApiServerReady",
            Self::Web => "WebReady",
            Self::MongoDb | Self::MongoDbInit => "MongoDBReady",
            Self::Redis | Self::RedisSentinel => "RedisReady",
            Self::Ingress => "IngressReady",
            Self::Elasticsearch => "ElasticsearchReady",
            Self::Prometheus | Self::ThanosQuery => "MetricsReady",
        }
    }

    /// Name a person reads in messages.
    pub fn display(self) -> &'static str {
        match self {
            Self::ApiServer => "API server",
            Self::Web => "web",
            Self::MongoDb => "MongoDB",
            Self::Redis => "Redis",
            Self::Ingress => "ingress",
            Self::Elasticsearch => "Elasticsearch",
            Self::Prometheus => "metrics",
            Self::ThanosQuery => "Thanos Query",
            Self::RedisSentinel => "Redis Sentinel",
            Self::MongoDbInit => "MongoDB replica-set init",
        }
    }
}

/// Child names of one platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub platform: String,
    pub namespace: String,
}

impl Names {
    pub fn new(platform: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            platform: platform.into(),
            namespace: namespace.into(),
        }
    }

    /// Workload and Service name of a component, e.g. `demo-api`.
    pub fn component(&self, component: Component) -> String {
        format!("{}-{}", self.platform, component.label())
    }

    pub fn api_config(&self) -> String {
        format!("{}-api-config", self.platform)
    }

    pub fn mongodb_credentials(&self) -> String {
        format!("{}-mongodb-credentials", self.platform)
    }

    pub fn redis_credentials(&self) -> String {
        format!("{}-redis-credentials", self.platform)
    }

    pub fn redis_data(&self) -> String {
        format!("{}-redis-data", self.platform)
    }

    /// The replica-set init Job for one membership, e.g. `demo-mongodb-init-0123456789`.
    pub fn mongodb_init_job(&self, membership_hash: &str) -> String {
        format!("{}-mongodb-init-{membership_hash}", self.platform)
    }

    pub fn elasticsearch_credentials(&self) -> String {
        format!("{}-elasticsearch-credentials", self.platform)
    }

    /// Headless Service of the replicated Redis pods (stable per-pod DNS names).
    pub fn redis_headless(&self) -> String {
        format!("{}-redis-headless", self.platform)
    }

    /// Stable DNS name of one Redis pod in replicated mode.
    pub fn redis_pod_host(&self, ordinal: i32) -> String {
        format!(
            "{}-{ordinal}.{}.{}.svc.cluster.local",
            self.component(Component::Redis),
            self.redis_headless(),
            self.namespace
        )
    }

    /// Stable DNS name of one Sentinel.
    pub fn sentinel_host(&self, ordinal: i32) -> String {
        let sts = self.component(Component::RedisSentinel);
        format!("{sts}-{ordinal}.{sts}.{}.svc.cluster.local", self.namespace)
    }

    /// Name of the cluster-scoped objects of a platform (unique across namespaces).
    pub fn cluster_scoped(&self, suffix: &str) -> String {
        format!("beermeetup-{}-{}-{suffix}", self.namespace, self.platform)
    }

    /// Replica-set name (`_id` in `rs.initiate`).
    pub fn replica_set(&self) -> String {
        "rs0".to_owned()
    }

    /// Stable DNS name of one replica-set member through the headless Service.
    pub fn mongodb_member_host(&self, ordinal: i32) -> String {
        let sts = self.component(Component::MongoDb);
        format!(
            "{sts}-{ordinal}.{sts}.{}.svc.cluster.local:27017",
            self.namespace
        )
    }

    /// In-cluster URL of the web Service, the platform's URL until an Ingress exists.
    pub fn web_url(&self) -> String {
        format!(
            "http://{}.{}.svc.cluster.local:8080",
            self.component(Component::Web),
            self.namespace
        )
    }

    /// Labels of every child of a component.
    pub fn labels(&self, component: Component) -> BTreeMap<String, String> {
        let mut labels = self.selector(component);
        labels.insert(LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned());
        labels.insert(LABEL_PART_OF.to_owned(), "beer-meetup-platform".to_owned());
        labels
    }

    /// The immutable subset of [`Self::labels`] used in selectors.
    pub fn selector(&self, component: Component) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_NAME.to_owned(), APP_NAME.to_owned()),
            (LABEL_INSTANCE.to_owned(), self.platform.clone()),
            (LABEL_COMPONENT.to_owned(), component.label().to_owned()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_names_derive_from_the_platform_name() {
        let names = Names::new("demo", "team-a");
        assert_eq!(names.component(Component::ApiServer), "demo-api");
        assert_eq!(names.component(Component::MongoDb), "demo-mongodb");
        assert_eq!(
            names.mongodb_member_host(2),
            "demo-mongodb-2.demo-mongodb.team-a.svc.cluster.local:27017"
        );
        assert_eq!(
            names.mongodb_init_job("0123456789"),
            "demo-mongodb-init-0123456789"
        );
    }

    #[test]
    fn selector_is_a_subset_of_labels() {
        let names = Names::new("demo", "ns");
        let labels = names.labels(Component::Redis);
        for (key, value) in names.selector(Component::Redis) {
            assert_eq!(labels.get(&key), Some(&value));
        }
        assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY);
    }
}
