//! Skipping applies that would change nothing.
//!
//! Every reconcile builds every child, but most of them are already on the server as built: a
//! platform is reconciled several times while its workloads start, and each server-side apply is a
//! round trip even when it is a no-op. A child is *not* applied when both hold:
//!
//! - the operator's last successful apply of this object (same uid) sent exactly the object built
//!   now (a fingerprint kept in memory, so a restarted operator applies everything once), and
//! - the live object in the watch cache still holds every field the operator sets, with the value
//!   the server answered that apply with (`contains`; lists element by element and of equal
//!   length). The answer, not the request: the server normalises some values (`cpu: 0.5` →
//!   `500m`) and drops fields a feature gate turns off (a StatefulSet's
//!   `rollingUpdate.maxUnavailable` without `MaxUnavailableStatefulSet`), and the live object
//!   would never match the request there.
//!
//! Together these say the apply would be a no-op: what the operator last applied is what it wants
//! now (so no field it owned has to be removed), and nobody changed a field it sets since (drift).
//! Fields other managers added are not looked at; server-side apply would leave them alone too. A
//! change by anyone reaches the cache before the watch event that triggers the next reconcile, so
//! drift is still seen and restored. Anything the comparison cannot prove (a cache not filled
//! yet, a list another manager added to) just means the apply is sent.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use serde::Serialize;
use serde_json::Value;

/// The watch caches of the namespaced child kinds, by kind (fed by the controller's watches).
#[derive(Clone, Default)]
pub struct ChildStores {
    by_kind: HashMap<&'static str, Arc<dyn Any + Send + Sync>>,
}

impl ChildStores {
    pub fn insert<K>(&mut self, kind: &'static str, store: Store<K>)
    where
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        self.by_kind.insert(kind, Arc::new(store));
    }

    /// The cached object of kind `K`, if its kind is watched and the cache holds it.
    pub fn get<K>(&self, namespace: &str, name: &str) -> Option<Arc<K>>
    where
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let store = self
            .by_kind
            .get(K::kind(&()).as_ref())?
            .downcast_ref::<Store<K>>()?;
        store.get(&ObjectRef::new(name).within(namespace))
    }

    /// Every cached object of kind `K` in `namespace` with label `instance` of the platform, once
    /// the cache holds its first full list; `None` while it does not (or the kind is not watched),
    /// then the caller asks the server.
    pub fn of_platform<K>(&self, namespace: &str, platform: &str) -> Option<Vec<Arc<K>>>
    where
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let store = self
            .by_kind
            .get(K::kind(&()).as_ref())?
            .downcast_ref::<Store<K>>()?;
        store.wait_until_ready().now_or_never()?.ok()?;
        Some(
            store
                .state()
                .into_iter()
                .filter(|object| {
                    object.meta().namespace.as_deref() == Some(namespace)
                        && object
                            .meta()
                            .labels
                            .as_ref()
                            .and_then(|labels| labels.get(crate::names::LABEL_INSTANCE))
                            .is_some_and(|instance| instance == platform)
                })
                .collect(),
        )
    }
}

/// A child as built, in the form the comparison needs.
pub struct Desired {
    pub value: Value,
    pub fingerprint: u64,
}

impl Desired {
    pub fn of(object: &impl Serialize) -> Result<Self, serde_json::Error> {
        let value = serde_json::to_value(object)?;
        let mut hasher = DefaultHasher::new();
        value.to_string().hash(&mut hasher);
        Ok(Self {
            value,
            fingerprint: hasher.finish(),
        })
    }
}

/// `(namespace, kind, name)` of a child.
pub type ChildKey = (String, &'static str, String);

/// The operator's last successful apply of one child.
struct Applied {
    uid: String,
    /// Fingerprint of what was sent.
    fingerprint: u64,
    /// The fields that were sent, with the values the server answered (see [`kept`]).
    kept: Value,
}

/// What the operator last applied successfully, per child.
#[derive(Default)]
pub struct LastApplied {
    entries: Mutex<HashMap<ChildKey, Applied>>,
}

impl LastApplied {
    /// Remember a successful apply of `desired`, answered with `response`.
    pub fn remember(&self, key: ChildKey, uid: String, desired: &Desired, response: &Value) {
        let applied = Applied {
            uid,
            fingerprint: desired.fingerprint,
            kept: kept(response, &desired.value),
        };
        self.lock().insert(key, applied);
    }

    /// Whether applying `desired` over `live` would change nothing (see the module comment):
    /// `Ok` when it would not, else why it would (`Err(None)`: this process has not applied
    /// exactly this object; `Err(Some(path))`: the live object differs there — drift).
    pub fn unchanged<K>(
        &self,
        key: &ChildKey,
        live: &K,
        desired: &Desired,
    ) -> Result<(), Option<String>>
    where
        K: Resource + Serialize,
    {
        let Some(uid) = live.meta().uid.as_deref() else {
            return Err(None);
        };
        let entries = self.lock();
        let Some(applied) = entries
            .get(key)
            .filter(|a| a.uid == uid && a.fingerprint == desired.fingerprint)
        else {
            return Err(None);
        };
        let live = serde_json::to_value(live).map_err(|_| None)?;
        match difference(&live, &applied.kept, "") {
            None => Ok(()),
            Some(path) => Err(Some(path)),
        }
    }

    /// [`Self::unchanged`] as a yes/no.
    pub fn is_unchanged<K>(&self, key: &ChildKey, live: &K, desired: &Desired) -> bool
    where
        K: Resource + Serialize,
    {
        self.unchanged(key, live, desired).is_ok()
    }

    /// Forget the children of one platform (their names start with `{platform}-`).
    pub fn forget(&self, namespace: &str, platform: &str) {
        let prefix = format!("{platform}-");
        self.lock()
            .retain(|(ns, _, name), _| ns != namespace || !name.starts_with(&prefix));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChildKey, Applied>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The fields of `wanted` as the server answered them in `response`: a field the answer lacks is
/// left out (the server dropped it or omits its zero value), every other value is the answer's
/// (possibly normalised); a list whose length differs is the answer's whole list.
pub fn kept(response: &Value, wanted: &Value) -> Value {
    match (response, wanted) {
        (Value::Object(response), Value::Object(wanted)) => Value::Object(
            wanted
                .iter()
                .filter_map(|(key, wanted)| {
                    response
                        .get(key)
                        .map(|answered| (key.clone(), kept(answered, wanted)))
                })
                .collect(),
        ),
        (Value::Array(response), Value::Array(wanted)) if response.len() == wanted.len() => {
            Value::Array(
                response
                    .iter()
                    .zip(wanted)
                    .map(|(answered, wanted)| kept(answered, wanted))
                    .collect(),
            )
        }
        (answered, _) => answered.clone(),
    }
}

/// Whether `live` holds every field of `wanted` with the same value. Objects may have more keys
/// (defaults, other managers' fields); lists must have the same length and match element by
/// element; an absent field matches only a wanted zero value (null, "", false, 0, empty list or
/// object): the API server omits those (`omitempty`), and where a field is a pointer it defaults
/// it, so an absent field never stands for a non-zero value.
pub fn contains(live: &Value, wanted: &Value) -> bool {
    difference(live, wanted, "").is_none()
}

/// The path of the first field of `wanted` that `live` does not hold (see [`contains`]).
fn difference(live: &Value, wanted: &Value, path: &str) -> Option<String> {
    match (live, wanted) {
        (Value::Object(live), Value::Object(wanted)) => wanted.iter().find_map(|(key, wanted)| {
            let path = format!("{path}.{key}");
            match live.get(key) {
                Some(live) => difference(live, wanted, &path),
                None if is_zero(wanted) => None,
                None => Some(path),
            }
        }),
        (Value::Array(live), Value::Array(wanted)) => {
            if live.len() != wanted.len() {
                return Some(format!("{path} (length {} ≠ {})", live.len(), wanted.len()));
            }
            live.iter()
                .zip(wanted)
                .enumerate()
                .find_map(|(i, (l, w))| difference(l, w, &format!("{path}[{i}]")))
        }
        (live, wanted) => (live != wanted).then(|| path.to_owned()),
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use serde_json::json;

    #[test]
    fn defaults_and_fields_of_others_do_not_count_as_drift() {
        let wanted =
            json!({"spec": {"replicas": 1, "template": {"containers": [{"name": "api"}]}}});
        let live = json!({
            "spec": {"replicas": 1, "revisionHistoryLimit": 10,
                     "template": {"containers": [{"name": "api", "imagePullPolicy": "IfNotPresent"}]}},
            "status": {"readyReplicas": 1}
        });
        assert!(contains(&live, &wanted));
        assert!(contains(
            &json!({"spec": {}}),
            &json!({"spec": {"args": [], "x": null, "y": {}}})
        ));
    }

    #[test]
    fn what_the_server_dropped_or_normalised_on_apply_is_not_drift() {
        let wanted = json!({"spec": {"maxUnavailable": 1, "cpu": "0.5", "replicas": 3}});
        let answer = json!({"spec": {"cpu": "500m", "replicas": 3, "revisionHistoryLimit": 10}});
        let kept = kept(&answer, &wanted);
        assert_eq!(kept, json!({"spec": {"cpu": "500m", "replicas": 3}}));
        assert!(contains(&answer, &kept));
        assert!(!contains(
            &json!({"spec": {"cpu": "500m", "replicas": 1}}),
            &kept
        ));
    }

    #[test]
    fn changed_removed_and_added_list_elements_are_drift() {
        let wanted = json!({"spec": {"replicas": 1, "ports": [{"port": 80}]}, "data": {"a": "1"}});
        for live in [
            json!({"spec": {"replicas": 3, "ports": [{"port": 80}]}, "data": {"a": "1"}}),
            json!({"spec": {"replicas": 1, "ports": [{"port": 81}]}, "data": {"a": "1"}}),
            json!({"spec": {"replicas": 1, "ports": []}, "data": {"a": "1"}}),
            json!({"spec": {"replicas": 1, "ports": [{"port": 80}, {"port": 81}]}, "data": {"a": "1"}}),
            json!({"spec": {"replicas": 1, "ports": [{"port": 80}]}, "data": {"a": "2"}}),
            json!({"spec": {"replicas": 1, "ports": [{"port": 80}]}, "data": {}}),
            json!({"spec": {"ports": [{"port": 80}]}, "data": {"a": "1"}}),
            json!({"spec": {"replicas": 1, "ports": [{"port": 80}]}}),
        ] {
            assert!(!contains(&live, &wanted), "{live}");
        }
    }

    fn config_map(uid: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("demo-api-config".into()),
                namespace: Some("team-a".into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            data: Some([("key".to_owned(), value.to_owned())].into()),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn skipped_only_after_this_very_object_was_applied_and_while_it_still_matches() {
        let last = LastApplied::default();
        let key: ChildKey = ("team-a".into(), "ConfigMap", "demo-api-config".into());
        let mut wanted = config_map("", "v1");
        wanted.metadata.uid = None;
        let desired = Desired::of(&wanted).expect("json");
        let live = config_map("uid-1", "v1");
        // Never applied by this process (e.g. after a restart): apply.
        assert!(!last.is_unchanged(&key, &live, &desired));
        let answer = serde_json::to_value(&live).expect("json");
        last.remember(key.clone(), "uid-1".into(), &desired, &answer);
        assert!(last.is_unchanged(&key, &live, &desired));
        // Drift: someone edited a field the operator sets.
        assert!(!last.is_unchanged(&key, &config_map("uid-1", "edited"), &desired));
        // Deleted and re-created by someone else.
        assert!(!last.is_unchanged(&key, &config_map("uid-2", "v1"), &desired));
        // The operator wants something else now, even if the live object happens to hold it.
        let mut next = wanted.clone();
        next.metadata.labels = Some([("new".to_owned(), "label".to_owned())].into());
        let next = Desired::of(&next).expect("json");
        let mut labelled = live.clone();
        labelled.metadata.labels = Some([("new".to_owned(), "label".to_owned())].into());
        assert!(!last.is_unchanged(&key, &labelled, &next));
        last.forget("team-a", "demo");
        assert!(!last.is_unchanged(&key, &live, &desired));
    }
}
