//! The driver: dereference → validate → build (pure) → apply → update status.
//!
//! - Dereference reads what the builders need from the cluster: existing generated Secrets (so
//!   credentials are reused, never rotated), the MongoDB StatefulSet's size and the init Job.
//! - Apply is server-side apply with one field manager, in the builders' fixed order. An unchanged
//!   child is a no-op on the server (no write, same resourceVersion).
//! - Orphans (children no longer wanted, e.g. an old init Job or a PodDisruptionBudget after a
//!   scale to one) are deleted by label, once per spec generation.
//! - Status goes through the status subresource with the same field manager; it is computed
//!   purely, so an unchanged world gives an identical status and no write.
//!
//! Errors: a spec the operator cannot act on is reported (condition + Event) and the operator
//! waits for the next change; anything else is reported the same way (Ready=False with the
//! failed step as reason, a Warning Event when the message changes) and retried with exponential
//! backoff. A platform the operator cannot even decode is reported as `Undecodable` and affects
//! no other platform (see [`PlatformObject`]).

pub mod unchanged;
pub mod watches;

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use kube::runtime::controller::{Action, Config as RuntimeConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info, instrument, warn};

use crate::children::credentials::{
    self, MongoCredentials, Origin, PasswordCredentials, RedisCredentials,
};
use crate::children::{self, BuildInputs, Child, ChildSet};
use crate::crd::{BeerMeetupPlatform, BeerMeetupPlatformStatus, Phase, PlatformObject, RedisMode};
use crate::metrics::Metrics;
use crate::names::{self, Component, FIELD_MANAGER, Names};
use crate::status::{self, ComponentHealth, Observed};
use crate::validate;
use unchanged::{ChildStores, Desired, LastApplied};

/// Why a reconciliation failed; all of these are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting orphan {kind} {name}: {source}")]
    DeleteOrphan {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating status: {0}")]
    Status(#[source] kube::Error),
    #[error("the platform has no namespace (the API server always sets one)")]
    NoNamespace,
    #[error("serializing status: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl ReconcileError {
    /// Short label for the failures metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::Apply { .. } => "apply",
            Self::DeleteOrphan { .. } => "delete_orphan",
            Self::Status(_) => "status",
            Self::NoNamespace => "no_namespace",
            Self::Serialize(_) => "serialize",
        }
    }

    /// Reason of the Ready condition and of the Warning Event when this failure stops a
    /// reconciliation.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "ReadFailed",
            Self::Apply { .. } => "ApplyFailed",
            Self::DeleteOrphan { .. } => "DeleteOrphanFailed",
            Self::Status(_) => "StatusUpdateFailed",
            Self::NoNamespace => "NoNamespace",
            Self::Serialize(_) => "SerializeFailed",
        }
    }
}

/// Reason of the Ready condition of a platform the operator cannot decode.
pub const UNDECODABLE: &str = "Undecodable";
/// Longest message the operator puts into a condition or Event.
const MAX_MESSAGE: usize = 1024;

/// Settings of the controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Namespaces to watch; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// Platforms reconciled at the same time.
    pub concurrency: u16,
    /// Re-check a Ready platform this often even without events (drift the watches missed).
    pub resync: Duration,
    /// Re-check a platform that is still converging this often.
    pub converging_requeue: Duration,
    /// Reporting instance of Events (pod name).
    pub instance: Option<String>,
    /// Ingress-controller images platforms may run besides the pinned default.
    pub allowed_ingress_images: crate::images::ImageAllowList,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            concurrency: 8,
            resync: Duration::from_secs(300),
            converging_requeue: Duration::from_secs(15),
            instance: None,
            allowed_ingress_images: crate::images::ImageAllowList::default(),
        }
    }
}

/// A platform and an Event reason.
type EventKey = (ObjectRef<PlatformObject>, String);

/// Shared state of the reconcilers.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    reporter: Reporter,
    /// The Event recorder and note last used per platform and reason. kube's Recorder folds
    /// Events with the same reason into a series that keeps the *first* note, so a new note gets
    /// a fresh recorder (a new Event) and a repeated note the same one (a series).
    recorders: Mutex<HashMap<EventKey, (String, Recorder)>>,
    /// uid and time of the operator's last write of each child, to count changes.
    applied_versions: Mutex<HashMap<(String, String, String), String>>,
    config: ControllerConfig,
    /// Consecutive failures per platform, for exponential backoff.
    failures: Mutex<HashMap<ObjectRef<PlatformObject>, u32>>,
    /// The generation of each platform whose orphans were last swept.
    swept: Mutex<HashMap<ObjectRef<BeerMeetupPlatform>, i64>>,
    /// Whether the ServiceMonitor CRD exists, and when that was last checked.
    service_monitor_crd: Mutex<Option<(Instant, bool)>>,
    /// The watch caches of the children, to skip applies that would change nothing.
    stores: ChildStores,
    /// What the operator last applied to each child.
    last_applied: LastApplied,
}

/// How long a ServiceMonitor CRD lookup is trusted (installing the Prometheus Operator later is
/// noticed within this time).
const DISCOVERY_TTL: Duration = Duration::from_secs(60);

impl Context {
    /// `stores`: the watch caches of one controller (one namespace scope); every platform it
    /// reconciles lives in that scope.
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        config: ControllerConfig,
        stores: ChildStores,
    ) -> Self {
        let reporter = Reporter {
            controller: names::MANAGED_BY.to_owned(),
            instance: config.instance.clone(),
        };
        Self {
            client,
            metrics,
            reporter,
            recorders: Mutex::default(),
            applied_versions: Mutex::default(),
            config,
            failures: Mutex::default(),
            swept: Mutex::default(),
            service_monitor_crd: Mutex::default(),
            stores,
            last_applied: LastApplied::default(),
        }
    }

    /// Whether the cluster serves ServiceMonitors (the Prometheus Operator's CRD), cached for
    /// [`DISCOVERY_TTL`]. A lookup the operator may not make counts as "absent".
    async fn service_monitors_available(&self) -> bool {
        let cached = *self
            .service_monitor_crd
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, present)) = cached
            && at.elapsed() < DISCOVERY_TTL
        {
            return present;
        }
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let present = match crds.get_opt(children::thanos::SERVICE_MONITOR_CRD).await {
            Ok(crd) => {
                crd.is_some_and(|crd| crd.spec.versions.iter().any(|v| v.name == "v1" && v.served))
            }
            Err(error) => {
                debug!(%error, "cannot look up the ServiceMonitor CRD; assuming it is absent");
                false
            }
        };
        *self
            .service_monitor_crd
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), present));
        present
    }

    async fn publish<K>(&self, platform: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let key = (
            ObjectRef::<PlatformObject>::new(&platform.name_any())
                .within(&platform.namespace().unwrap_or_default()),
            reason.to_owned(),
        );
        let recorder = {
            let mut recorders = self
                .recorders
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match recorders.get(&key) {
                Some((last_note, recorder)) if *last_note == note => recorder.clone(),
                _ => {
                    let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
                    recorders.insert(key, (note.clone(), recorder.clone()));
                    recorder
                }
            }
        };
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        // An Event is information; failing to record one must not fail the reconciliation.
        if let Err(error) = recorder.publish(&event, &platform.object_ref(&())).await {
            warn!(%error, reason, "could not record Event");
        }
    }

    /// Forget what was kept per platform (Event recorders, applied versions) once it is gone.
    fn forget(&self, namespace: &str, name: &str) {
        self.recorders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(platform, _), _| {
                platform.name != name || platform.namespace.as_deref() != Some(namespace)
            });
        let prefix = format!("{name}-");
        self.applied_versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(ns, _, child), _| ns != namespace || !child.starts_with(&prefix));
        self.last_applied.forget(namespace, name);
    }

    /// Count a child as changed when an apply wrote it: a new uid (re-created) or a new time on
    /// the operator's own managed-fields entry (the server updates it only when the apply changed
    /// something). The resourceVersion would not do: controllers' status writes bump it too. The
    /// first apply after a start only records what it sees.
    fn record_applied(&self, kind: &str, object: &impl Resource) {
        let meta = object.meta();
        let own_write = meta
            .managed_fields
            .iter()
            .flatten()
            .filter(|entry| {
                entry.manager.as_deref() == Some(FIELD_MANAGER)
                    && entry.operation.as_deref() == Some("Apply")
                    && entry.subresource.as_deref().unwrap_or_default().is_empty()
            })
            .find_map(|entry| entry.time.as_ref())
            .map(|time| format!("{time:?}"));
        let (Some(uid), Some(own_write)) = (meta.uid.clone(), own_write) else {
            return;
        };
        let version = format!("{uid}@{own_write}");
        let key = (
            meta.namespace.clone().unwrap_or_default(),
            kind.to_owned(),
            meta.name.clone().unwrap_or_default(),
        );
        let previous = self
            .applied_versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, version.clone());
        if previous.is_some_and(|previous| previous != version) {
            self.metrics.child_changed();
        }
    }
}

/// Run the controller until the future is dropped.
pub async fn run_controller(
    client: Client,
    config: ControllerConfig,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    run_controller_until(client, config, metrics, futures::future::pending()).await
}

/// Run the controller until `shutdown` completes; then reconciliations in flight finish and no
/// new ones start (`Controller::graceful_shutdown_on`).
pub async fn run_controller_until(
    client: Client,
    config: ControllerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown: Shared<BoxFuture<'static, ()>> = shutdown.boxed().shared();
    let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.iter().cloned().map(Some).collect()
    };
    let controllers = scopes.into_iter().map(|namespace| {
        info!(
            namespace = namespace.as_deref().unwrap_or("<all>"),
            "watching BeerMeetupPlatforms"
        );
        controller_for(
            client.clone(),
            namespace,
            config.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
    });
    futures::future::join_all(controllers).await;
    Ok(())
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Namespaced kinds the platform owns (owner reference with `controller: true`), in the order
/// orphans are swept (workloads before what they use). This list alone drives both the `.owns()`
/// watches and the orphan sweep; a unit test checks that every namespaced kind the builders make
/// is in it (Secrets are handled apart: watched by label, see [`controller_for`]).
macro_rules! owned_kinds {
    ($callback:ident) => {
        $callback!(
            Deployment,
            StatefulSet,
            Job,
            PodDisruptionBudget,
            Service,
            ConfigMap,
            PersistentVolumeClaim,
            Ingress,
            NetworkPolicy,
            RoleBinding,
            Role,
            ServiceAccount
        )
    };
}

macro_rules! kind_names {
    ($($kind:ident),*) => {
        &[$(stringify!($kind)),*]
    };
}

/// Names of the kinds in [`owned_kinds`].
pub const OWNED_KINDS: &[&str] = owned_kinds!(kind_names);

/// One watch of children of kind `K` (operator's label only), with its own backoff, feeding a
/// cache of them (registered in `stores`).
fn child_watch<K>(
    client: &Client,
    namespace: Option<&str>,
    config: &watcher::Config,
    stores: &mut ChildStores,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let kind: &'static str = match K::kind(&()) {
        std::borrow::Cow::Borrowed(kind) => kind,
        std::borrow::Cow::Owned(_) => "child",
    };
    let (store, writer) = reflector::store();
    stores.insert(kind, store);
    let stream = watcher(scoped::<K>(client, namespace), config.clone())
        .backoff(watches::WatchBackoff::default())
        // The cache compares fields the operator sets; managed fields only cost memory there.
        .modify(|object| object.meta_mut().managed_fields = None)
        .reflect(writer)
        .touched_objects();
    watches::logged(kind, stream)
}

/// What of a platform, when it changes, asks for a reconcile: its spec (the generation), its
/// deletion, or a new object under the same name. Status writes (the operator's own, each one a
/// watch event) and metadata edits do not.
type PlatformTrigger = (Option<String>, Option<i64>, bool);

fn platform_trigger(platform: &PlatformObject) -> PlatformTrigger {
    (
        platform.uid(),
        platform.metadata.generation,
        platform.metadata.deletion_timestamp.is_some(),
    )
}

async fn controller_for(
    client: Client,
    namespace: Option<String>,
    config: ControllerConfig,
    metrics: Arc<Metrics>,
    shutdown: Shared<BoxFuture<'static, ()>>,
) {
    let namespace = namespace.as_deref();
    // Only objects carrying the operator's label are watched: less memory, fewer wake-ups.
    let children = watcher::Config::default().labels(&names::managed_selector());
    // Platforms are watched as `PlatformObject` (raw spec) and decoded one by one in `reconcile`.
    let (reader, writer) = reflector::store();
    let mut last_triggers: HashMap<ObjectRef<PlatformObject>, PlatformTrigger> = HashMap::new();
    let platforms = watcher(
        scoped::<PlatformObject>(&client, namespace),
        watcher::Config::default(),
    )
    .backoff(watches::WatchBackoff::default())
    .reflect(writer)
    .applied_objects()
    .filter(move |item| {
        // Errors pass (they are logged and dropped below); a platform only when it changed.
        let pass = match item {
            Ok(platform) => {
                let trigger = platform_trigger(platform);
                last_triggers.insert(ObjectRef::from_obj(platform), trigger.clone())
                    != Some(trigger)
            }
            Err(_) => true,
        };
        futures::future::ready(pass)
    });
    let first_list = reader.clone();
    let mut stores = ChildStores::default();
    let mut controller =
        Controller::for_stream(watches::logged("BeerMeetupPlatform", platforms), reader)
            .with_config(RuntimeConfig::default().concurrency(config.concurrency))
            .graceful_shutdown_on(shutdown.clone());
    macro_rules! watch_owned {
        ($($kind:ident),*) => {
            $(
                controller = controller.owns_stream(
                    child_watch::<$kind>(&client, namespace, &children, &mut stores),
                );
            )*
        };
    }
    owned_kinds!(watch_owned);
    // Secrets by label rather than owner: the MongoDB credentials deliberately have no owner
    // (they outlive the platform with its volumes) yet must be restored when deleted.
    controller = controller.watches_stream(
        child_watch::<Secret>(&client, namespace, &children, &mut stores),
        |secret: Secret| {
            let instance = secret.labels().get(names::LABEL_INSTANCE).cloned();
            let namespace = secret.namespace();
            instance
                .zip(namespace)
                .map(|(name, ns)| ObjectRef::<PlatformObject>::new(&name).within(&ns))
        },
    );
    let ctx = Arc::new(Context::new(client.clone(), metrics, config, stores));
    let run = controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => debug!(platform = %object, "reconciled"),
                Err(error) => debug!(error = %watches::short_error(&error), "reconcile stream"),
            }
        });
    // kube-runtime holds its runner until the first list is in the store, but stops polling the
    // watch once shutdown starts: a signal before that list would park the runner forever. No
    // reconciliation can have started then, so there is nothing to finish.
    let stopped_before_first_list = async {
        shutdown.await;
        if first_list.wait_until_ready().now_or_never().is_none() {
            return;
        }
        futures::future::pending::<()>().await;
    };
    tokio::select! {
        () = run => {}
        () = stopped_before_first_list => {
            info!(
                namespace = namespace.unwrap_or("<all>"),
                "stopped before the first list of BeerMeetupPlatforms; nothing was in flight"
            );
        }
    }
}

/// Requeue after a failure: 2 s, 4 s, 8 s … capped at 5 minutes.
fn error_policy(
    platform: Arc<PlatformObject>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics.failed(error.metric_reason());
    let key = ObjectRef::from_obj(platform.as_ref());
    let attempts = {
        let mut failures = ctx
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = backoff(attempts);
    warn!(
        platform = %platform.name_any(),
        namespace = platform.namespace().unwrap_or_default(),
        %error,
        attempts,
        retry_in_s = delay.as_secs(),
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// Exponential backoff for the n-th consecutive failure.
pub fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(8);
    Duration::from_secs((2u64 << exponent).min(300))
}

#[instrument(skip_all, fields(platform = %object.name_any(), namespace = object.namespace().unwrap_or_default()))]
async fn reconcile(
    object: Arc<PlatformObject>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let platform = match object.decode() {
        Ok(platform) => platform,
        Err(error) => {
            report_undecodable(&ctx, &object, &error).await;
            ctx.metrics.reconciled(started.elapsed());
            return Ok(Action::await_change());
        }
    };
    let result = reconcile_inner(&platform, &ctx).await;
    ctx.metrics.reconciled(started.elapsed());
    match &result {
        Ok(_) => {
            ctx.failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&ObjectRef::from_obj(object.as_ref()));
        }
        Err(error) => report_failure(&ctx, &platform, error).await,
    }
    result
}

/// `text` cut to [`MAX_MESSAGE`] characters.
fn bounded(text: String) -> String {
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Whether the Ready condition already says `reason: message` (then nothing is written again).
fn already_reported(
    status: Option<&BeerMeetupPlatformStatus>,
    reason: &str,
    message: &str,
) -> bool {
    status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == status::READY))
        .is_some_and(|c| c.reason == reason && c.message == message)
}

/// A platform the operator cannot decode: Degraded with the cause, a Warning Event and one log
/// line, once per cause. Nothing else is touched; other platforms are not affected.
async fn report_undecodable(ctx: &Context, object: &PlatformObject, error: &serde_json::Error) {
    let Some(namespace) = object.namespace() else {
        return;
    };
    ctx.metrics.failed("undecodable");
    let message = bounded(format!(
        "the operator cannot read this platform's spec ({error}); re-apply it with a valid spec \
         (kubectl apply validates it against the current CRD)"
    ));
    let previous: Option<BeerMeetupPlatformStatus> = object
        .status
        .clone()
        .and_then(|status| serde_json::from_value(status).ok());
    if already_reported(previous.as_ref(), UNDECODABLE, &message) {
        return;
    }
    warn!(%error, "platform cannot be decoded; reporting it Degraded");
    ctx.publish(object, EventType::Warning, UNDECODABLE, message.clone())
        .await;
    let new_status = status::degraded(
        previous.as_ref(),
        object.metadata.generation,
        UNDECODABLE,
        &message,
        &now(),
    );
    if let Err(error) = write_status(ctx, &object.name_any(), &namespace, &new_status).await {
        debug!(error = %watches::short_error(&error), "could not report an undecodable platform");
    }
}

/// A failed reconciliation leaves its reason on the Ready condition and a Warning Event (when
/// the message changed); the retry comes from [`error_policy`].
async fn report_failure(ctx: &Context, platform: &BeerMeetupPlatform, error: &ReconcileError) {
    let Some(namespace) = platform.namespace() else {
        return;
    };
    if platform.metadata.deletion_timestamp.is_some() {
        return;
    }
    let reason = error.condition_reason();
    let message = bounded(error.to_string());
    let previous = platform.status.as_ref();
    if already_reported(previous, reason, &message) {
        return;
    }
    ctx.publish(platform, EventType::Warning, reason, message.clone())
        .await;
    if matches!(error, ReconcileError::Status(_)) {
        // The status cannot be written: the Event is all that can be said.
        return;
    }
    let new_status = status::degraded(
        previous,
        platform.metadata.generation,
        reason,
        &message,
        &now(),
    );
    if let Err(error) = write_status(ctx, &platform.name_any(), &namespace, &new_status).await {
        debug!(error = %watches::short_error(&error), "could not report a failed reconciliation");
    }
}

async fn reconcile_inner(
    platform: &BeerMeetupPlatform,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let Some(namespace) = platform.namespace() else {
        return Err(ReconcileError::NoNamespace);
    };
    if platform.metadata.deletion_timestamp.is_some() {
        // Children go with the garbage collector (owner references). The finalizer is only on
        // platforms of older operators, which made cluster-scoped objects: sweep what is left.
        if has_finalizer(platform) {
            let wanted = HashSet::new();
            let deleted = delete_cluster_scoped(ctx, platform, &namespace, &wanted).await?;
            for (kind, name) in deleted {
                info!(
                    kind,
                    name, "deleted cluster-scoped child of a deleted platform"
                );
            }
            set_finalizer(ctx, platform, &namespace, false).await?;
        }
        ctx.forget(&namespace, &platform.name_any());
        return Ok(Action::await_change());
    }
    let previous = platform.status.as_ref();
    let generation = platform.metadata.generation;

    if platform.spec.paused {
        let new_status = status::paused(previous, generation);
        if previous.and_then(|p| p.phase) != Some(Phase::Paused) {
            ctx.publish(
                platform,
                EventType::Normal,
                "Paused",
                "spec.paused is true: the operator changes nothing until it is false".into(),
            )
            .await;
        }
        write_status(ctx, &platform.name_any(), &namespace, &new_status).await?;
        return Ok(Action::await_change());
    }

    // Validate.
    let validated = match validate::validate(platform) {
        Ok(validated) => validated,
        Err(spec_error) => return report_invalid(ctx, platform, &namespace, &spec_error).await,
    };
    // The installer's image policy (not the CR) decides what the internet-facing pod may run.
    let ingress = &platform.spec.ingress;
    if ingress.enabled && ingress.controller.deploy {
        let image = ingress.controller.effective_image();
        if !ctx.config.allowed_ingress_images.allows(&image) {
            let message = format!(
                "ingress.controller.image {image} is not allowed by this operator's installer \
                 (allowed: {}); leave the field out to use the default, or ask for the image to \
                 be added to the chart value ingressController.allowedImages",
                ctx.config.allowed_ingress_images.describe()
            );
            if !already_reported(previous, IMAGE_NOT_ALLOWED, &message) {
                ctx.publish(
                    platform,
                    EventType::Warning,
                    IMAGE_NOT_ALLOWED,
                    message.clone(),
                )
                .await;
                let new_status =
                    status::degraded(previous, generation, IMAGE_NOT_ALLOWED, &message, &now());
                write_status(ctx, &platform.name_any(), &namespace, &new_status).await?;
            }
            ctx.metrics.failed("image_not_allowed");
            return Ok(Action::await_change());
        }
    }

    // Dereference.
    let names = Names::new(platform.name_any(), namespace.clone());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let statefulsets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let init_job_name = children::init_job_name(&validated);
    let spec = &platform.spec;
    let mongo_sts_name = names.component(Component::MongoDb);
    let (mongo_credentials_name, redis_credentials_name, elasticsearch_credentials_name) = (
        names.mongodb_credentials(),
        names.redis_credentials(),
        names.elasticsearch_credentials(),
    );
    // Independent reads, sent together. Credentials and workloads are read from the server, not
    // the watch caches: a cache that has not seen a Secret yet must never lead to new passwords.
    let tls_secret = spec
        .ingress
        .tls
        .as_ref()
        .filter(|_| spec.ingress.enabled && spec.ingress.controller.deploy)
        .map(|tls| tls.secret_name.clone());
    let (current_sts, mongo, redis, elasticsearch, current_job, service_monitor_crd, tls) = futures::try_join!(
        get_opt(&statefulsets, &mongo_sts_name),
        read_credentials(&secrets, &mongo_credentials_name),
        read_credentials(&secrets, &redis_credentials_name),
        async {
            if spec.elasticsearch.enabled {
                read_credentials(&secrets, &elasticsearch_credentials_name).await
            } else {
                Ok(StoredCredentials::default())
            }
        },
        get_opt(&jobs, &init_job_name),
        // Looked up even with metrics off: ServiceMonitors of an earlier spec must be swept.
        async { Ok(ctx.service_monitors_available().await) },
        // The certificate the platform's HAProxy serves: its hash rolls the pods on renewal.
        async {
            match &tls_secret {
                Some(name) => get_opt(&secrets, name).await,
                None => Ok(None),
            }
        },
    )?;
    // Credentials gone (original and backup) while the data service they open still runs: new
    // values would lock it out, so stop and say what to do.
    let mut lost = Vec::new();
    if spec.mongodb.external.is_none() && mongo.secret.is_none() && current_sts.is_some() {
        lost.push((names.mongodb_credentials(), "the MongoDB replica set"));
    }
    if spec.redis.external.is_none()
        && redis.secret.is_none()
        && redis_running(ctx, &namespace, &names).await?
    {
        lost.push((names.redis_credentials(), "Redis"));
    }
    if spec.elasticsearch.enabled
        && elasticsearch.secret.is_none()
        && get_opt(&statefulsets, &names.component(Component::Elasticsearch))
            .await?
            .is_some()
    {
        lost.push((names.elasticsearch_credentials(), "Elasticsearch"));
    }
    if !lost.is_empty() {
        let message = credentials_lost_message(&lost);
        if !already_reported(previous, CREDENTIALS_MISSING, &message) {
            warn!(%message, "credentials missing while their data service runs");
            ctx.publish(
                platform,
                EventType::Warning,
                CREDENTIALS_MISSING,
                message.clone(),
            )
            .await;
            let new_status =
                status::degraded(previous, generation, CREDENTIALS_MISSING, &message, &now());
            write_status(ctx, &platform.name_any(), &namespace, &new_status).await?;
        }
        ctx.metrics.failed("credentials_missing");
        // The Secret watch wakes the platform when a Secret is restored.
        return Ok(Action::await_change());
    }
    for (stored, name) in [
        (&mongo, names.mongodb_credentials()),
        (&redis, names.redis_credentials()),
        (&elasticsearch, names.elasticsearch_credentials()),
    ] {
        if stored.from_backup {
            ctx.publish(
                platform,
                EventType::Warning,
                "CredentialsRestored",
                format!(
                    "Secret {name} was deleted; restored it from {} (the data services still \
                     use these values). To change credentials, see \"Rotating credentials\" in \
                     the operator README",
                    credentials::backup_name(&name)
                ),
            )
            .await;
        }
    }
    let (mongodb_credentials, mongo_origin) = MongoCredentials::resolve(mongo.secret.as_ref());
    let (redis_credentials, _) = RedisCredentials::resolve(redis.secret.as_ref());
    let elasticsearch_credentials = if spec.elasticsearch.enabled {
        PasswordCredentials::resolve(elasticsearch.secret.as_ref()).0
    } else {
        PasswordCredentials::placeholders("elasticsearch")
    };
    let service_monitors = platform.spec.thanos.enabled && service_monitor_crd;
    let inputs = BuildInputs {
        mongodb_credentials,
        redis_credentials,
        elasticsearch_credentials,
        service_monitors,
        current_mongodb_replicas: current_sts
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.replicas),
        membership_job_succeeded: current_job
            .as_ref()
            .is_some_and(|j| status::job_state(j) == status::JobState::Succeeded),
        tls_certificate_hash: tls.as_ref().and_then(children::ingress::certificate_hash),
    };

    // Build.
    let child_set = children::build_children(&validated, &inputs);

    // Apply.
    let applied = apply_all(ctx, &namespace, &child_set).await?;
    let mut notes = Vec::new();
    if mongo_origin == Origin::Generated {
        notes.push((
            "CredentialsGenerated",
            format!(
                "generated MongoDB credentials in Secret {}",
                names.mongodb_credentials()
            ),
        ));
    }
    if current_job.is_none() && platform.spec.mongodb.external.is_none() {
        notes.push((
            "ReplicaSetConfiguring",
            format!(
                "Job {init_job_name} configures the replica set for {} member(s)",
                platform.spec.mongodb.members
            ),
        ));
    }
    // The Events and the sweep are independent requests: sent together.
    let publish = futures::future::join_all(
        notes
            .into_iter()
            .map(|(reason, note)| ctx.publish(platform, EventType::Normal, reason, note)),
    );
    let ((), swept) = futures::join!(
        publish.map(|_| ()),
        sweep_orphans_once(ctx, platform, &namespace, &child_set, service_monitor_crd)
    );
    swept?;
    if has_finalizer(platform) {
        // The sweep above removed what an older operator left cluster-wide (as far as this
        // operator may): nothing cluster-scoped is made any more.
        set_finalizer(ctx, platform, &namespace, false).await?;
    }
    if platform.spec.ingress.controller.create_ingress_class
        && previous.and_then(|p| p.observed_generation) != generation
    {
        ctx.publish(
            platform,
            EventType::Warning,
            "DeprecatedField",
            "spec.ingress.controller.createIngressClass is deprecated and ignored: the operator \
             creates no IngressClass (its own HAProxy needs none; with controller.deploy false, \
             the class is the cluster admin's)"
                .into(),
        )
        .await;
    }

    // Update status.
    let mut observed = observe(platform, &names, &applied, &child_set);
    explain_unschedulable(ctx, platform, &namespace, &mut observed).await;
    let url = children::ingress::url(&platform.spec.ingress).unwrap_or_else(|| names.web_url());
    let new_status = status::compute(previous, generation, &observed, &url, &now());
    let old_phase = previous.and_then(|p| p.phase);
    if new_status.phase != old_phase
        && let Some(phase) = new_status.phase
    {
        let (type_, note) = match phase {
            Phase::Ready => (EventType::Normal, "every component is ready".to_owned()),
            Phase::Degraded => (
                EventType::Warning,
                ready_message(&new_status).unwrap_or_default(),
            ),
            _ => (
                EventType::Normal,
                ready_message(&new_status).unwrap_or_default(),
            ),
        };
        ctx.publish(platform, type_, &format!("{phase:?}"), note)
            .await;
    }
    // An unchanged status is not sent again. `previous` may be older than the last write (the
    // cache lags); then the write is sent and is a no-op on the server.
    if previous != Some(&new_status) {
        write_status(ctx, &platform.name_any(), &namespace, &new_status).await?;
    }

    Ok(if new_status.phase == Some(Phase::Ready) {
        Action::requeue(ctx.config.resync)
    } else {
        Action::requeue(ctx.config.converging_requeue)
    })
}

fn ready_message(status: &BeerMeetupPlatformStatus) -> Option<String> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == status::READY)
        .map(|c| c.message.clone())
}

/// A spec the operator cannot build: InvalidSpec with every problem (condition and a Warning
/// Event, once per message); then wait for the next change of the spec.
async fn report_invalid(
    ctx: &Context,
    platform: &BeerMeetupPlatform,
    namespace: &str,
    spec_error: &validate::SpecError,
) -> Result<Action, ReconcileError> {
    let previous = platform.status.as_ref();
    let message = spec_error.problems.join("; ");
    if !already_reported(previous, "InvalidSpec", &message) {
        ctx.publish(platform, EventType::Warning, "InvalidSpec", message.clone())
            .await;
    }
    ctx.metrics.failed("invalid_spec");
    let new_status = status::invalid(previous, platform.metadata.generation, &message, &now());
    write_status(ctx, &platform.name_any(), namespace, &new_status).await?;
    Ok(Action::await_change())
}

/// Reason of the Ready condition when the HAProxy image is not allow-listed.
pub const IMAGE_NOT_ALLOWED: &str = "ImageNotAllowed";

/// Reason of the Ready condition when credentials of a running data service are gone.
pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";

/// A generated credentials Secret as found: the original, else its backup.
#[derive(Default)]
struct StoredCredentials {
    secret: Option<Secret>,
    /// The original was gone and the backup was used (it is re-created from it).
    from_backup: bool,
}

async fn read_credentials(
    secrets: &Api<Secret>,
    name: &str,
) -> Result<StoredCredentials, ReconcileError> {
    if let Some(secret) = get_opt(secrets, name).await? {
        return Ok(StoredCredentials {
            secret: Some(secret),
            from_backup: false,
        });
    }
    let backup = get_opt(secrets, &credentials::backup_name(name)).await?;
    Ok(StoredCredentials {
        from_backup: backup.is_some(),
        secret: backup,
    })
}

/// Whether the platform's Redis (Deployment in standalone, StatefulSet in replicated mode) exists.
async fn redis_running(
    ctx: &Context,
    namespace: &str,
    names: &Names,
) -> Result<bool, ReconcileError> {
    let name = names.component(Component::Redis);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
    let statefulsets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), namespace);
    let (deployment, statefulset) =
        futures::try_join!(get_opt(&deployments, &name), get_opt(&statefulsets, &name))?;
    Ok(deployment.is_some() || statefulset.is_some())
}

/// What to do when credentials of running data services are gone.
fn credentials_lost_message(lost: &[(String, &str)]) -> String {
    let list = lost
        .iter()
        .map(|(secret, service)| {
            format!(
                "Secret {secret} and its backup {} are gone while {service} still runs with \
                 their values",
                credentials::backup_name(secret)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "{list}. The operator will not generate new values (they would lock the running \
         service out of its data). Re-create the Secret with the values in use (from your own \
         backup), or, to start over without the data, delete the data service's workload and \
         volumes; see \"Rotating credentials\" in the operator README"
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn get_opt<K>(api: &Api<K>, name: &str) -> Result<Option<K>, ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    api.get_opt(name)
        .await
        .map_err(|source| ReconcileError::Read {
            what: format!("{} {name}", K::kind(&())),
            source,
        })
}

/// The children as the server returned them from the apply (with their status).
#[derive(Default)]
struct Applied {
    deployments: HashMap<String, Deployment>,
    statefulsets: HashMap<String, StatefulSet>,
    jobs: HashMap<String, Job>,
}

/// Apply a namespaced child, unless its cached live object shows the apply would change nothing
/// (see [`unchanged`]); either way the object as it is now comes back.
async fn apply_one<K>(ctx: &Context, namespace: &str, object: &K) -> Result<K, ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static,
{
    let kind: &'static str = match K::kind(&()) {
        std::borrow::Cow::Borrowed(kind) => kind,
        std::borrow::Cow::Owned(_) => "child",
    };
    let name = object.meta().name.clone().unwrap_or_default();
    let desired = Desired::of(object)?;
    let key = (namespace.to_owned(), kind, name);
    if let Some(live) = ctx.stores.get::<K>(namespace, &key.2) {
        match ctx.last_applied.unchanged(&key, live.as_ref(), &desired) {
            Ok(()) => {
                ctx.metrics.apply_skipped();
                return Ok(live.as_ref().clone());
            }
            Err(Some(path)) => {
                info!(
                    kind,
                    name = key.2,
                    at = path,
                    "child differs from the spec; applying it"
                );
            }
            Err(None) => {}
        }
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let applied = patch_apply(ctx, &api, object).await?;
    if let Some(uid) = applied.meta().uid.clone() {
        let answer = serde_json::to_value(&applied)?;
        ctx.last_applied.remember(key, uid, &desired, &answer);
    }
    Ok(applied)
}

async fn patch_apply<K>(ctx: &Context, api: &Api<K>, object: &K) -> Result<K, ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    ctx.metrics.apply_sent();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|source| ReconcileError::Apply {
        kind: K::kind(&()).into_owned(),
        name,
        source,
    })
    .inspect(|applied| ctx.record_applied(&K::kind(&()), applied))
}

/// Apply every child in the builders' order. Children of the same apply rank do not depend on
/// each other and go to the server together; a rank starts when the one before it is done.
async fn apply_all(
    ctx: &Context,
    namespace: &str,
    child_set: &ChildSet,
) -> Result<Applied, ReconcileError> {
    let mut applied = Applied::default();
    for rank in child_set
        .children
        .chunk_by(|a, b| a.apply_rank() == b.apply_rank())
    {
        let results = futures::future::try_join_all(
            rank.iter().map(|child| apply_child(ctx, namespace, child)),
        )
        .await?;
        for workload in results.into_iter().flatten() {
            match workload {
                Workload::StatefulSet(sts) => {
                    applied.statefulsets.insert(sts.name_any(), sts);
                }
                Workload::Job(job) => {
                    applied.jobs.insert(job.name_any(), job);
                }
                Workload::Deployment(deployment) => {
                    applied
                        .deployments
                        .insert(deployment.name_any(), deployment);
                }
            }
        }
    }
    Ok(applied)
}

/// A workload as the server has it after the apply (its status feeds the platform's status).
enum Workload {
    StatefulSet(StatefulSet),
    Job(Job),
    Deployment(Deployment),
}

async fn apply_child(
    ctx: &Context,
    namespace: &str,
    child: &Child,
) -> Result<Option<Workload>, ReconcileError> {
    match child {
        Child::ServiceAccount(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::Role(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::RoleBinding(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::Secret(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::ConfigMap(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::Service(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::PersistentVolumeClaim(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::NetworkPolicy(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::PodDisruptionBudget(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::StatefulSet(o) => apply_one(ctx, namespace, o)
            .await
            .map(|sts| Some(Workload::StatefulSet(sts))),
        Child::Job(o) => apply_one(ctx, namespace, o)
            .await
            .map(|job| Some(Workload::Job(job))),
        Child::Deployment(o) => apply_one(ctx, namespace, o)
            .await
            .map(|deployment| Some(Workload::Deployment(deployment))),
        Child::Ingress(o) => apply_one(ctx, namespace, o).await.map(|_| None),
        Child::ServiceMonitor(o) => {
            let resource = children::thanos::service_monitor_resource();
            let api: Api<DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), namespace, &resource);
            let name = o.name_any();
            ctx.metrics.apply_sent();
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(o),
            )
            .await
            .map_err(|source| ReconcileError::Apply {
                kind: "ServiceMonitor".to_owned(),
                name,
                source,
            })?;
            Ok(None)
        }
    }
}

fn observe(
    platform: &BeerMeetupPlatform,
    names: &Names,
    applied: &Applied,
    child_set: &ChildSet,
) -> Observed {
    let spec = &platform.spec;
    let missing = || ComponentHealth {
        counts: Default::default(),
        ready: false,
        failed: false,
        reason: "NotApplied".to_owned(),
        message: "not applied yet".to_owned(),
    };
    let deployment = |name: &str| {
        applied
            .deployments
            .get(name)
            .map(status::deployment_health)
            .unwrap_or_else(missing)
    };
    let statefulset = |name: &str| {
        applied
            .statefulsets
            .get(name)
            .map(status::statefulset_health)
            .unwrap_or_else(missing)
    };
    let components = children::components(spec)
        .into_iter()
        .map(|component| {
            let health = match component {
                Component::MongoDb => match &spec.mongodb.external {
                    Some(external) => status::not_managed(
                        status::EXTERNAL,
                        &format!(
                            "uses the MongoDB in Secret {} (key {})",
                            external.secret_name, external.key
                        ),
                    ),
                    None => match (
                        applied
                            .statefulsets
                            .get(&names.component(Component::MongoDb)),
                        applied.jobs.get(&child_set.mongodb_init_job),
                    ) {
                        (Some(sts), Some(job)) => {
                            status::mongodb_health(sts, spec.mongodb.members, job)
                        }
                        _ => missing(),
                    },
                },
                Component::Redis => match (&spec.redis.external, spec.redis.mode) {
                    (Some(external), _) => status::not_managed(
                        status::EXTERNAL,
                        &format!(
                            "uses the Redis in Secret {} (key {})",
                            external.secret_name, external.key
                        ),
                    ),
                    (None, RedisMode::Standalone) => deployment(&names.component(Component::Redis)),
                    (None, RedisMode::Replicated) => status::combine(&[
                        ("redis", statefulset(&names.component(Component::Redis))),
                        (
                            "sentinels",
                            statefulset(&names.component(Component::RedisSentinel)),
                        ),
                    ]),
                },
                Component::Ingress if !spec.ingress.controller.deploy => status::not_managed(
                    "ExistingController",
                    &format!(
                        "served by the cluster's ingress controller of class {}",
                        spec.ingress.class_name
                    ),
                ),
                Component::Ingress => deployment(&children::ingress::controller_name_of(names)),
                Component::Elasticsearch => statefulset(&names.component(Component::Elasticsearch)),
                Component::Prometheus => status::combine(&[
                    (
                        "prometheus",
                        statefulset(&names.component(Component::Prometheus)),
                    ),
                    (
                        "thanos query",
                        deployment(&names.component(Component::ThanosQuery)),
                    ),
                ]),
                other => deployment(&names.component(other)),
            };
            (component, health)
        })
        .collect();
    Observed { components }
}

/// Gives every component still waiting for pods the scheduler's reason when it cannot place them
/// (one list of the platform's pods, only while something is not ready). Best effort: without
/// the list the status keeps its pod counts.
async fn explain_unschedulable(
    ctx: &Context,
    platform: &BeerMeetupPlatform,
    namespace: &str,
    observed: &mut Observed,
) {
    if observed.components.iter().all(|(_, h)| h.ready || h.failed) {
        return;
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = names::pod_selector(&platform.name_any());
    let pods = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(pods) => pods.items,
        Err(error) => {
            debug!(error = %error, "could not list the platform's pods to explain a wait");
            return;
        }
    };
    for (component, health) in &mut observed.components {
        let labels: Vec<&str> = component
            .reported_parts()
            .iter()
            .map(|part| part.label())
            .collect();
        let own: Vec<Pod> = pods
            .iter()
            .filter(|pod| {
                pod.labels()
                    .get(names::LABEL_COMPONENT)
                    .is_some_and(|l| labels.contains(&l.as_str()))
            })
            .cloned()
            .collect();
        *health = status::with_unschedulable_pods(
            health.clone(),
            &own,
            separate_nodes_hint(&platform.spec, *component).as_deref(),
        );
    }
}

/// What to change when `placement.separateNodes` leaves API or web pods without a node: each tier
/// may take every node before the other is placed, so the cluster needs more nodes than the larger
/// tier has replicas.
fn separate_nodes_hint(
    spec: &crate::crd::BeerMeetupPlatformSpec,
    component: Component,
) -> Option<String> {
    (spec.placement.separate_nodes
        && matches!(component, Component::ApiServer | Component::Web))
    .then(|| {
        format!(
            "placement.separateNodes keeps API and web pods on different nodes, so they need at \
             least {} schedulable nodes between them (one more than the larger of \
             apiServer.replicas and web.replicas); add nodes, lower the replicas, or set \
             placement.separateNodes: false",
            spec.api_server.replicas.max(spec.web.replicas) + 1
        )
    })
}

async fn write_status(
    ctx: &Context,
    name: &str,
    namespace: &str,
    new_status: &BeerMeetupPlatformStatus,
) -> Result<(), ReconcileError> {
    // Through `PlatformObject`: the answer decodes even when the spec does not.
    let api: Api<PlatformObject> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": BeerMeetupPlatform::api_version(&()),
        "kind": BeerMeetupPlatform::kind(&()),
        "status": new_status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(ReconcileError::Status)?;
    Ok(())
}

/// Finalizer older operators put on platforms with cluster-scoped children (an IngressClass, the
/// ingress controller's ClusterRole and binding). This operator makes none: it only sweeps what
/// is left of them and removes the finalizer.
pub const FINALIZER: &str = "beermeetup.io/cluster-scoped-children";

fn has_finalizer(platform: &BeerMeetupPlatform) -> bool {
    platform.finalizers().iter().any(|f| f == FINALIZER)
}

/// Add or remove the finalizer. The merge patch carries the resourceVersion it was computed from,
/// so a concurrent change of other finalizers makes it fail with a conflict (and the reconcile
/// retry) instead of dropping them.
async fn set_finalizer(
    ctx: &Context,
    platform: &BeerMeetupPlatform,
    namespace: &str,
    present: bool,
) -> Result<(), ReconcileError> {
    let mut wanted: Vec<String> = platform
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        wanted.push(FINALIZER.to_owned());
    }
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": platform.resource_version(),
            "finalizers": wanted,
        }
    });
    let api: Api<PlatformObject> = Api::namespaced(ctx.client.clone(), namespace);
    match api
        .patch(
            &platform.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Already gone: nothing left to finalize.
        Err(kube::Error::Api(status)) if status.code == 404 && !present => Ok(()),
        Err(source) => Err(ReconcileError::Apply {
            kind: "BeerMeetupPlatform finalizer".to_owned(),
            name: platform.name_any(),
            source,
        }),
    }
}

/// Delete orphans only when the spec changed since the last sweep (or after a restart): the set of
/// wanted children depends on the spec alone.
async fn sweep_orphans_once(
    ctx: &Context,
    platform: &BeerMeetupPlatform,
    namespace: &str,
    child_set: &ChildSet,
    service_monitor_crd: bool,
) -> Result<(), ReconcileError> {
    let key = ObjectRef::from_obj(platform);
    let generation = platform.metadata.generation.unwrap_or(0);
    let already = ctx
        .swept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
        .is_some_and(|g| *g == generation);
    if already {
        return Ok(());
    }
    delete_orphans(ctx, platform, namespace, child_set, service_monitor_crd).await?;
    ctx.swept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, generation);
    Ok(())
}

async fn delete_orphans(
    ctx: &Context,
    platform: &BeerMeetupPlatform,
    namespace: &str,
    child_set: &ChildSet,
    service_monitor_crd: bool,
) -> Result<(), ReconcileError> {
    let wanted: HashSet<(String, String)> = child_set
        .keys()
        .into_iter()
        .map(|(kind, name)| (kind.to_owned(), name))
        .collect();
    let uid = platform.uid().unwrap_or_default();
    let selector = names::instance_selector(&platform.name_any());
    let client = &ctx.client;
    let mut deleted = Vec::new();
    let platform_name = platform.name_any();
    macro_rules! sweep_owned {
        ($($kind:ident),*) => {
            $(
                deleted.extend(
                    delete_orphans_of::<$kind>(ctx, namespace, &platform_name, &uid, &wanted)
                        .await?,
                );
            )*
        };
    }
    owned_kinds!(sweep_owned);
    deleted
        .extend(delete_orphans_of::<Secret>(ctx, namespace, &platform_name, &uid, &wanted).await?);
    if service_monitor_crd {
        let resource = children::thanos::service_monitor_resource();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        match delete_unwanted(api, "ServiceMonitor", &selector, Some(&uid), &wanted).await {
            Ok(gone) => deleted.extend(gone),
            // No CRD (404) or no right to list them: nothing of ours can exist there.
            Err(ReconcileError::Read { source, .. }) if is_absent_or_forbidden(&source) => {}
            Err(other) => return Err(other),
        }
    }
    // Cluster-scoped objects of an older operator exist only while the platform carries its
    // finalizer.
    if has_finalizer(platform) {
        deleted.extend(delete_cluster_scoped(ctx, platform, namespace, &wanted).await?);
    }
    for (kind, name) in deleted {
        ctx.metrics.child_changed();
        info!(kind, name, "deleted child that is no longer wanted");
        ctx.publish(
            platform,
            EventType::Normal,
            "ChildDeleted",
            format!("deleted {kind} {name}, no longer wanted by the spec"),
        )
        .await;
    }
    Ok(())
}

/// Delete every object of kind `K` labelled for this platform, controlled by it, and not wanted.
/// Objects without the platform as controller (e.g. retained data volumes) are never touched.
/// The candidates come from the watch cache once it holds its first list (an object too new to be
/// there yet is one this reconcile just applied, hence wanted); before that, from a list request.
async fn delete_orphans_of<K>(
    ctx: &Context,
    namespace: &str,
    platform: &str,
    owner_uid: &str,
    wanted: &HashSet<(String, String)>,
) -> Result<Vec<(String, String)>, ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let kind = K::kind(&()).into_owned();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    match ctx.stores.of_platform::<K>(namespace, platform) {
        Some(cached) => {
            let candidates = cached
                .iter()
                .map(|object| object.as_ref().clone())
                .collect();
            delete_listed(&api, &kind, candidates, Some(owner_uid), wanted).await
        }
        None => {
            let selector = names::instance_selector(platform);
            delete_unwanted(api, &kind, &selector, Some(owner_uid), wanted).await
        }
    }
}

/// Delete what an older operator made cluster-wide for the platform (IngressClass, ClusterRole,
/// ClusterRoleBinding; no owner reference, matched by instance and namespace labels). Without the
/// right to list or delete them (the chart grants none), they are skipped and logged: the operator
/// README tells the admin how to remove them.
async fn delete_cluster_scoped(
    ctx: &Context,
    platform: &BeerMeetupPlatform,
    namespace: &str,
    wanted: &HashSet<(String, String)>,
) -> Result<Vec<(String, String)>, ReconcileError> {
    let client = &ctx.client;
    let selector = names::cluster_scoped_selector(&platform.name_any(), namespace);
    let mut deleted = Vec::new();
    for result in [
        delete_unwanted(
            Api::<IngressClass>::all(client.clone()),
            "IngressClass",
            &selector,
            None,
            wanted,
        )
        .await,
        delete_unwanted(
            Api::<ClusterRoleBinding>::all(client.clone()),
            "ClusterRoleBinding",
            &selector,
            None,
            wanted,
        )
        .await,
        delete_unwanted(
            Api::<ClusterRole>::all(client.clone()),
            "ClusterRole",
            &selector,
            None,
            wanted,
        )
        .await,
    ] {
        match result {
            Ok(gone) => deleted.extend(gone),
            Err(ReconcileError::Read { source, .. }) if is_absent_or_forbidden(&source) => {
                debug!(error = %source, "not sweeping cluster-scoped children");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(deleted)
}

fn is_absent_or_forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404 || status.code == 403)
}

/// Delete every object the API lists under `selector` that is not wanted. With `owner_uid`, only
/// objects controlled by the platform are considered (namespaced children); without, the selector
/// alone identifies them (cluster-scoped children).
async fn delete_unwanted<K>(
    api: Api<K>,
    kind: &str,
    selector: &str,
    owner_uid: Option<&str>,
    wanted: &HashSet<(String, String)>,
) -> Result<Vec<(String, String)>, ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|source| ReconcileError::Read {
            what: format!("{kind} list"),
            source,
        })?;
    delete_listed(&api, kind, list.items, owner_uid, wanted).await
}

/// Delete those of `candidates` (objects labelled for the platform) that are not wanted; with
/// `owner_uid`, only those the platform controls.
async fn delete_listed<K>(
    api: &Api<K>,
    kind: &str,
    candidates: Vec<K>,
    owner_uid: Option<&str>,
    wanted: &HashSet<(String, String)>,
) -> Result<Vec<(String, String)>, ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let kind = kind.to_owned();
    let mut deleted = Vec::new();
    for object in candidates {
        let name = object.name_any();
        let controlled = owner_uid.is_none_or(|uid| {
            object
                .owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true))
        });
        if !controlled || wanted.contains(&(kind.clone(), name.clone())) {
            continue;
        }
        let params = DeleteParams {
            // Jobs leave their pods behind with the default orphan policy.
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => deleted.push((kind.clone(), name)),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(ReconcileError::DeleteOrphan { kind, name, source });
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_is_recognised_only_by_its_name() {
        let mut p = crate::children::test_support::platform(Default::default());
        assert!(!has_finalizer(&p));
        p.metadata.finalizers = Some(vec!["other.example/keep".to_owned()]);
        assert!(!has_finalizer(&p));
        p.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
        assert!(has_finalizer(&p));
    }

    /// What the server would return after applying `child_set`, every workload ready (or not).
    fn applied_world(child_set: &ChildSet, ready: bool) -> Applied {
        use k8s_openapi::api::apps::v1::{DeploymentStatus, StatefulSetStatus};
        use k8s_openapi::api::batch::v1::JobStatus;
        let mut applied = Applied::default();
        for child in &child_set.children {
            match child {
                Child::Deployment(d) => {
                    let mut d = d.clone();
                    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let count = if ready { replicas } else { 0 };
                    d.status = Some(DeploymentStatus {
                        ready_replicas: Some(count),
                        updated_replicas: Some(count),
                        ..DeploymentStatus::default()
                    });
                    applied.deployments.insert(d.name_any(), d);
                }
                Child::StatefulSet(s) => {
                    let mut s = s.clone();
                    let replicas = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    s.status = Some(StatefulSetStatus {
                        replicas,
                        ready_replicas: Some(if ready { replicas } else { 0 }),
                        updated_replicas: Some(replicas),
                        ..StatefulSetStatus::default()
                    });
                    applied.statefulsets.insert(s.name_any(), s);
                }
                Child::Job(j) => {
                    let mut j = j.clone();
                    j.status = Some(JobStatus {
                        succeeded: Some(i32::from(ready)),
                        ..JobStatus::default()
                    });
                    applied.jobs.insert(j.name_any(), j);
                }
                _ => {}
            }
        }
        applied
    }

    #[test]
    fn observe_reports_each_component_from_the_applied_objects() {
        use crate::children::BuildInputs;
        use crate::children::test_support::{self, build_valid};
        use crate::crd::{BeerMeetupPlatformSpec, ExternalRef};
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.enabled = true;
        spec.ingress.host = Some("m.example.org".into());
        let platform = test_support::platform(spec);
        let names = Names::new("demo", "team-a");
        let set = build_valid(&platform, &BuildInputs::placeholders()).expect("builds");

        let ready = observe(&platform, &names, &applied_world(&set, true), &set);
        let components: Vec<Component> = ready.components.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            components,
            [
                Component::ApiServer,
                Component::Web,
                Component::MongoDb,
                Component::Redis,
                Component::Ingress
            ]
        );
        for (component, health) in &ready.components {
            assert!(
                health.ready,
                "{component:?}: {} {}",
                health.reason, health.message
            );
        }

        let starting = observe(&platform, &names, &applied_world(&set, false), &set);
        for (component, health) in &starting.components {
            assert!(!health.ready, "{component:?} is not ready yet");
        }
        // Nothing applied yet: every managed component says so.
        let nothing = observe(&platform, &names, &Applied::default(), &set);
        assert!(
            nothing
                .components
                .iter()
                .all(|(_, h)| !h.ready && h.reason == "NotApplied")
        );

        // External databases are reported as such, never as missing.
        let mut external = platform.clone();
        external.spec.mongodb.external = Some(ExternalRef {
            secret_name: "atlas".into(),
            key: "uri".into(),
        });
        let set = build_valid(&external, &BuildInputs::placeholders()).expect("builds");
        let observed = observe(&external, &names, &Applied::default(), &set);
        let mongo = observed.get(Component::MongoDb).expect("mongodb");
        assert_eq!(mongo.reason, status::EXTERNAL);
    }

    #[test]
    fn every_namespaced_child_kind_is_watched_and_swept() {
        use crate::children::BuildInputs;
        use crate::children::test_support::{self, build_valid};
        use crate::crd::{BeerMeetupPlatformSpec, RedisMode};
        // Every option on, so every kind the builders can make shows up.
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.ingress.enabled = true;
        spec.ingress.host = Some("m.example.org".into());
        spec.elasticsearch.enabled = true;
        spec.thanos.enabled = true;
        spec.redis.mode = RedisMode::Replicated;
        spec.redis.storage.persistent = true;
        let mut inputs = BuildInputs::placeholders();
        inputs.service_monitors = true;
        let set = build_valid(&test_support::platform(spec), &inputs).expect("builds");
        for child in &set.children {
            let kind = child.kind();
            let handled_apart = matches!(child, Child::Secret(_) | Child::ServiceMonitor(_));
            assert!(
                handled_apart || OWNED_KINDS.contains(&kind),
                "{kind} is built but not in owned_kinds!, so it would be neither watched nor swept"
            );
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }
}
