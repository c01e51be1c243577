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

/// Label selector that matches every object the operator manages (used by its watches).
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY}")
}

/// Label selector for every child of one platform.
pub fn instance_selector(platform: &str) -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_INSTANCE}={platform}")
}

/// The parts of a platform, each with its own workload and Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    ApiServer,
    Web,
    MongoDb,
    Redis,
}

impl Component {
    pub const ALL: [Component; 4] = [Self::ApiServer, Self::Web, Self::MongoDb, Self::Redis];

    /// Value of the `app.kubernetes.io/component` label and suffix of child names.
    pub fn label(self) -> &'static str {
        match self {
            Self::ApiServer => "api",
            Self::Web => "web",
            Self::MongoDb => "mongodb",
            Self::Redis => "redis",
        }
    }

    /// Type of the component's status condition.
    pub fn condition_type(self) -> &'static str {
        match self {
            Self::ApiServer => "ApiServerReady",
            Self::Web => "WebReady",
            Self::MongoDb => "MongoDBReady",
            Self::Redis => "RedisReady",
        }
    }

    /// Name a person reads in messages.
    pub fn display(self) -> &'static str {
        match self {
            Self::ApiServer => "API server",
            Self::Web => "web",
            Self::MongoDb => "MongoDB",
            Self::Redis => "Redis",
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
