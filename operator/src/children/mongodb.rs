//! The MongoDB replica set: credentials Secret, headless Service, StatefulSet, PodDisruptionBudget
//! and the Job that initiates or reconfigures the replica set.
//!
//! Membership changes are made safe in two ways: the Job adds or removes one member per
//! reconfiguration (as the MongoDB community operator does), and on scale-down the StatefulSet keeps
//! its current size until the Job has removed the surplus members from the replica-set config, so
//! the set never loses its majority because pods vanished first.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, Secret, SecretKeySelector,
    SecretVolumeSource, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::common::{self, BuildContext};
use super::credentials::{self, MongoCredentials};
use super::{BuildInputs, Child};
use crate::crd::VolumeRetentionPolicy;
use crate::images;
use crate::names::{Component, LABEL_VERSION};

pub const PORT: i32 = 27017;
/// uid/gid of the `mongodb` user in the official image.
const MONGODB_UID: i64 = 999;
const KEYFILE_DIR: &str = "/etc/mongodb-keyfile";
const KEYFILE_SOURCE_DIR: &str = "/etc/mongodb-keyfile-source";
const DATA_DIR: &str = "/data/db";
/// Database the API server uses.
pub const APP_DATABASE: &str = "beermeetup";
/// Name of the data volume template (PVCs are named `data-<sts>-<ordinal>`).
pub const DATA_VOLUME: &str = "data";

/// The replica-set objects and the name of the init Job for the desired membership.
pub struct MongoChildren {
    pub children: Vec<Child>,
    pub init_job_name: String,
}

/// Host names of the members, in ordinal order.
pub fn member_hosts(ctx: &BuildContext<'_>, members: i32) -> Vec<String> {
    (0..members)
        .map(|ordinal| ctx.names.mongodb_member_host(ordinal))
        .collect()
}

/// The app's connection string: every member, the replica-set name, credentials in the admin db.
pub fn app_uri(ctx: &BuildContext<'_>, app_password: &str) -> String {
    format!(
        "mongodb://{user}:{app_password}@{hosts}/{APP_DATABASE}?replicaSet={rs}&authSource=admin",
        user = credentials::MONGO_APP_USERNAME,
        hosts = member_hosts(ctx, ctx.spec.mongodb.members).join(","),
        rs = ctx.names.replica_set(),
    )
}

/// StatefulSet size: the desired member count, except during a scale-down whose reconfiguration
/// has not finished yet (then the current size, so removed members leave the config first).
pub fn statefulset_replicas(desired: i32, inputs: &BuildInputs) -> i32 {
    match inputs.current_mongodb_replicas {
        Some(current) if current > desired && !inputs.membership_job_succeeded => current,
        _ => desired,
    }
}

/// Name of the init Job for the desired membership: a hash of the member hosts and the image.
///
/// The image is part of the hash because a Job's pod template is immutable; re-running the
/// guarded script after an upgrade is harmless.
pub fn init_job_name(ctx: &BuildContext<'_>) -> String {
    let image = images::mongodb_image(&ctx.spec.mongodb.version);
    let hosts = member_hosts(ctx, ctx.spec.mongodb.members);
    let mut parts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    parts.push(&image);
    ctx.names.mongodb_init_job(&common::short_hash(&parts))
}

pub fn build(ctx: &BuildContext<'_>, inputs: &BuildInputs) -> MongoChildren {
    let spec = &ctx.spec.mongodb;
    let name = ctx.names.component(Component::MongoDb);
    let image = images::mongodb_image(&spec.version);
    let hosts = member_hosts(ctx, spec.members);
    let init_job_name = init_job_name(ctx);
    if spec.external.is_some() {
        // A database outside the platform: nothing to run (kept volumes and keys stay untouched).
        return MongoChildren {
            children: Vec::new(),
            init_job_name,
        };
    }

    let mut children = vec![
        Child::Secret(credentials_secret(ctx, &inputs.mongodb_credentials)),
        Child::Service(headless_service(ctx, &name)),
    ];
    if let Some(pdb) = common::disruption_budget(ctx, Component::MongoDb, spec.members, 3) {
        children.push(Child::PodDisruptionBudget(pdb));
    }
    children.push(Child::StatefulSet(statefulset(
        ctx,
        &name,
        &image,
        statefulset_replicas(spec.members, inputs),
    )));
    children.push(Child::Job(init_job(ctx, &init_job_name, &image, &hosts)));
    MongoChildren {
        children,
        init_job_name,
    }
}

fn credentials_secret(ctx: &BuildContext<'_>, creds: &MongoCredentials) -> Secret {
    let name = ctx.names.mongodb_credentials();
    // With retained volumes the keys must outlive the CR too: a platform re-created under the same
    // name finds its data and the passwords that open it. With `Delete` both go with the platform.
    let metadata = match ctx.spec.mongodb.storage.retention_policy {
        VolumeRetentionPolicy::Retain => ctx.unowned_meta(name, Component::MongoDb),
        VolumeRetentionPolicy::Delete => ctx.meta(name, Component::MongoDb),
    };
    let data = [
        (
            credentials::MONGO_ROOT_USERNAME_KEY,
            credentials::MONGO_ROOT_USERNAME.to_owned(),
        ),
        (
            credentials::MONGO_ROOT_PASSWORD_KEY,
            creds.root_password.clone(),
        ),
        (
            credentials::MONGO_APP_USERNAME_KEY,
            credentials::MONGO_APP_USERNAME.to_owned(),
        ),
        (
            credentials::MONGO_APP_PASSWORD_KEY,
            creds.app_password.clone(),
        ),
        (credentials::MONGO_KEYFILE_KEY, creds.keyfile.clone()),
        (
            credentials::MONGO_URI_KEY,
            app_uri(ctx, &creds.app_password),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.into_bytes())))
    .collect::<BTreeMap<_, _>>();
    Secret {
        metadata,
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

fn headless_service(ctx: &BuildContext<'_>, name: &str) -> Service {
    Service {
        metadata: ctx.meta(name, Component::MongoDb),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            // Members must resolve each other before they are ready, or the set never forms.
            publish_not_ready_addresses: Some(true),
            selector: Some(ctx.names.selector(Component::MongoDb)),
            ports: Some(vec![ServicePort {
                name: Some("mongodb".to_owned()),
                port: PORT,
                target_port: Some(IntOrString::Int(PORT)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn plain_env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn statefulset(ctx: &BuildContext<'_>, name: &str, image: &str, replicas: i32) -> StatefulSet {
    let spec = &ctx.spec.mongodb;
    let secret = ctx.names.mongodb_credentials();
    let mut pod_labels = ctx.names.labels(Component::MongoDb);
    pod_labels.insert(LABEL_VERSION.to_owned(), spec.version.clone());
    let retention = match spec.storage.retention_policy {
        VolumeRetentionPolicy::Retain => "Retain",
        VolumeRetentionPolicy::Delete => "Delete",
    };
    let tcp_probe = |initial_delay: i32| Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(PORT),
            ..TCPSocketAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        ..Probe::default()
    };

    // mongod refuses a keyfile readable by group or others, and a Secret volume with an fsGroup is
    // always group-readable, so an init container copies it with mode 0400.
    let copy_keyfile = Container {
        name: "install-keyfile".to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!(
                "cp {KEYFILE_SOURCE_DIR}/keyfile {KEYFILE_DIR}/keyfile && chmod 0400 {KEYFILE_DIR}/keyfile"
            ),
        ]),
        volume_mounts: Some(vec![
            common::mount("keyfile-source", KEYFILE_SOURCE_DIR),
            common::mount("keyfile", KEYFILE_DIR),
        ]),
        resources: Some(common::resources("10m", "16Mi", "64Mi")),
        security_context: Some(common::container_security(true)),
        ..Container::default()
    };
    let mongod = Container {
        name: "mongod".to_owned(),
        image: Some(image.to_owned()),
        args: Some(vec![
            "--replSet".to_owned(),
            ctx.names.replica_set(),
            "--keyFile".to_owned(),
            format!("{KEYFILE_DIR}/keyfile"),
            "--bind_ip_all".to_owned(),
            "--dbpath".to_owned(),
            DATA_DIR.to_owned(),
        ]),
        env: Some(vec![
            // The image's entrypoint creates this root user on first start of an empty volume.
            secret_env(
                "MONGO_INITDB_ROOT_USERNAME",
                &secret,
                credentials::MONGO_ROOT_USERNAME_KEY,
            ),
            secret_env(
                "MONGO_INITDB_ROOT_PASSWORD",
                &secret,
                credentials::MONGO_ROOT_PASSWORD_KEY,
            ),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("mongodb".to_owned()),
            container_port: PORT,
            ..ContainerPort::default()
        }]),
        resources: Some(
            spec.resources
                .clone()
                .unwrap_or_else(|| common::resources("250m", "512Mi", "2Gi")),
        ),
        readiness_probe: Some(tcp_probe(5)),
        liveness_probe: Some(tcp_probe(30)),
        volume_mounts: Some(vec![
            common::mount(DATA_VOLUME, DATA_DIR),
            common::mount("keyfile", KEYFILE_DIR),
            // The entrypoint writes a temporary config here during first-start user creation.
            common::mount("tmp", "/tmp"),
        ]),
        security_context: Some(common::container_security(false)),
        ..Container::default()
    };

    StatefulSet {
        metadata: ctx.meta(name, Component::MongoDb),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(name.to_owned()),
            // Members start together; the init Job waits for all of them before changing the set.
            pod_management_policy: Some("Parallel".to_owned()),
            // An image upgrade (spec.mongodb.version) replaces one member at a time, highest
            // ordinal first, each only after the previous one is ready again.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    max_unavailable: Some(IntOrString::Int(1)),
                }),
            }),
            selector: ctx.selector(Component::MongoDb),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(retention.to_owned()),
                    when_scaled: Some(retention.to_owned()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    init_containers: Some(vec![copy_keyfile]),
                    containers: vec![mongod],
                    security_context: Some(common::pod_security(MONGODB_UID)),
                    affinity: Some(k8s_openapi::api::core::v1::Affinity {
                        pod_anti_affinity: common::affinity(
                            ctx,
                            &Default::default(),
                            Component::MongoDb,
                            None,
                        )
                        .pod_anti_affinity,
                        ..Default::default()
                    }),
                    volumes: Some(vec![
                        Volume {
                            name: "keyfile-source".to_owned(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(secret.clone()),
                                default_mode: Some(0o400),
                                items: Some(vec![k8s_openapi::api::core::v1::KeyToPath {
                                    key: credentials::MONGO_KEYFILE_KEY.to_owned(),
                                    path: "keyfile".to_owned(),
                                    ..Default::default()
                                }]),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        common::empty_dir("keyfile"),
                        common::empty_dir("tmp"),
                    ]),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(DATA_VOLUME.to_owned()),
                    // No managed-by label: orphan cleanup must never see data volumes.
                    labels: Some(ctx.names.selector(Component::MongoDb)),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                    storage_class_name: spec.storage.storage_class_name.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            spec.storage.size.clone(),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                status: None,
            }]),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// mongosh script run by the init Job. Credentials come from the environment, never argv.
///
/// Guarded: it initiates only when no desired member reports an existing replica set, and
/// reconfigures only while the config differs from the desired hosts, one member per step.
pub const REPLICA_SET_SCRIPT: &str = r#"
const rsName = process.env.RS_NAME;
const desired = process.env.RS_MEMBERS.split(' ').filter(h => h.length > 0);
const user = process.env.MONGO_ROOT_USERNAME;
const pwd = process.env.MONGO_ROOT_PASSWORD;

function open(host) {
  const admin = new Mongo('mongodb://' + host + '/?directConnection=true').getDB('admin');
  admin.auth(user, pwd);
  return admin;
}
function retry(what, fn) {
  for (let attempt = 1; attempt <= 150; attempt++) {
    try { return fn(); } catch (e) { print(what + ' (attempt ' + attempt + '): ' + e.message); sleep(2000); }
  }
  throw new Error('gave up: ' + what);
}
function isUninitialized(admin) {
  const status = admin.runCommand({ replSetGetStatus: 1 });
  return status.ok !== 1 && status.codeName === 'NotYetInitialized';
}
function primary() {
  return retry('find primary', () => {
    for (const host of desired) {
      try {
        const hello = open(host).runCommand({ hello: 1 });
        if (hello.primary) { return open(hello.primary); }
      } catch (e) { print('hello ' + host + ': ' + e.message); }
    }
    throw new Error('no primary yet');
  });
}

// Every desired member must answer before the set changes (new pods may still be starting).
const admins = desired.map(host => retry('ping ' + host, () => { const a = open(host); a.runCommand({ ping: 1 }); return a; }));

if (admins.every(isUninitialized)) {
  print('initiating replica set ' + rsName + ' with ' + desired.join(', '));
  const res = admins[0].runCommand({ replSetInitiate: { _id: rsName, members: desired.map((host, i) => ({ _id: i, host: host })) } });
  if (res.ok !== 1) { throw new Error('replSetInitiate failed: ' + tojson(res)); }
}

// One member per reconfiguration until the config holds exactly the desired hosts.
for (;;) {
  const admin = primary();
  const config = admin.runCommand({ replSetGetConfig: 1 }).config;
  const current = config.members.map(m => m.host);
  const toAdd = desired.find(h => !current.includes(h));
  const toRemove = current.find(h => !desired.includes(h));
  if (!toAdd && !toRemove) { break; }
  if (toRemove && admin.runCommand({ hello: 1 }).me === toRemove) {
    print('stepping down ' + toRemove + ' before removing it');
    admin.runCommand({ replSetStepDown: 60 });
    sleep(2000);
    continue;
  }
  if (toAdd) {
    print('adding ' + toAdd);
    config.members.push({ _id: Math.max(...config.members.map(m => m._id)) + 1, host: toAdd });
  } else {
    print('removing ' + toRemove);
    config.members = config.members.filter(m => m.host !== toRemove);
  }
  config.version += 1;
  const res = admin.runCommand({ replSetReconfig: config });
  if (res.ok !== 1) { print('reconfig not accepted yet: ' + res.errmsg); sleep(2000); }
}

// The application user, created once on the primary.
const admin = primary();
if (admin.getUser(process.env.APP_USERNAME) === null) {
  print('creating application user');
  admin.createUser({ user: process.env.APP_USERNAME, pwd: process.env.APP_PASSWORD, roles: [{ role: 'readWrite', db: process.env.APP_DATABASE }] });
}
print('replica set ' + rsName + ' has ' + desired.length + ' member(s)');
"#;

fn init_job(ctx: &BuildContext<'_>, name: &str, image: &str, hosts: &[String]) -> Job {
    let secret = ctx.names.mongodb_credentials();
    let container = Container {
        name: "configure-replica-set".to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec![
            "mongosh".to_owned(),
            "--nodb".to_owned(),
            "--quiet".to_owned(),
            "--eval".to_owned(),
            REPLICA_SET_SCRIPT.trim().to_owned(),
        ]),
        env: Some(vec![
            plain_env("RS_NAME", ctx.names.replica_set()),
            plain_env("RS_MEMBERS", hosts.join(" ")),
            plain_env("APP_DATABASE", APP_DATABASE),
            secret_env(
                "MONGO_ROOT_USERNAME",
                &secret,
                credentials::MONGO_ROOT_USERNAME_KEY,
            ),
            secret_env(
                "MONGO_ROOT_PASSWORD",
                &secret,
                credentials::MONGO_ROOT_PASSWORD_KEY,
            ),
            secret_env("APP_USERNAME", &secret, credentials::MONGO_APP_USERNAME_KEY),
            secret_env("APP_PASSWORD", &secret, credentials::MONGO_APP_PASSWORD_KEY),
        ]),
        resources: Some(common::resources("50m", "128Mi", "512Mi")),
        security_context: Some(common::container_security(false)),
        ..Container::default()
    };
    Job {
        metadata: ctx.meta(name, Component::MongoDb),
        spec: Some(JobSpec {
            backoff_limit: Some(10),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    // Not the members' labels: the MongoDB PodDisruptionBudget must not select
                    // the Job's pod (see `Component::MongoDbInit`).
                    labels: Some(ctx.names.labels(Component::MongoDbInit)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_owned()),
                    containers: vec![container],
                    security_context: Some(common::pod_security(MONGODB_UID)),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{inputs, platform};
    use super::*;
    use crate::children::BuildInputs;
    use crate::children::test_support::build_valid;
    use crate::crd::BeerMeetupPlatformSpec;

    fn spec_with_members(members: i32) -> BeerMeetupPlatformSpec {
        let mut spec = BeerMeetupPlatformSpec::default();
        spec.mongodb.members = members;
        spec
    }

    fn find<'a, T>(children: &'a [Child], pick: impl Fn(&'a Child) -> Option<&'a T>) -> &'a T {
        children.iter().find_map(pick).expect("child present")
    }

    fn sts(children: &[Child]) -> &StatefulSet {
        find(children, |c| match c {
            Child::StatefulSet(s) => Some(s),
            _ => None,
        })
    }

    fn job(children: &[Child]) -> &Job {
        find(children, |c| match c {
            Child::Job(j) => Some(j),
            _ => None,
        })
    }

    fn build_for(spec: BeerMeetupPlatformSpec, inputs: &BuildInputs) -> Vec<Child> {
        build_valid(&platform(spec), inputs)
            .expect("builds")
            .children
    }

    #[test]
    fn statefulset_runs_a_keyfile_protected_replica_set() {
        let children = build_for(spec_with_members(3), &inputs());
        let s = sts(&children);
        let spec = s.spec.as_ref().expect("spec");
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("demo-mongodb"));
        let pod = spec.template.spec.as_ref().expect("pod");
        let args = pod.containers[0].args.clone().expect("args");
        assert!(args.windows(2).any(|w| w == ["--replSet", "rs0"]));
        assert!(args.iter().any(|a| a == "--keyFile"));
        let init = &pod.init_containers.as_ref().expect("init")[0];
        let command = init.command.as_ref().expect("command").join(" ");
        assert!(command.contains("chmod 0400"));
        let source = pod
            .volumes
            .as_ref()
            .expect("volumes")
            .iter()
            .find(|v| v.name == "keyfile-source")
            .and_then(|v| v.secret.clone())
            .expect("secret volume");
        assert_eq!(source.default_mode, Some(0o400));
        assert_eq!(image_of(s), "mongo:8.0");
    }

    fn image_of(s: &StatefulSet) -> String {
        s.spec
            .as_ref()
            .expect("spec")
            .template
            .spec
            .as_ref()
            .expect("pod")
            .containers[0]
            .image
            .clone()
            .expect("image")
    }

    #[test]
    fn volume_claims_follow_storage_spec_and_are_retained_by_default() {
        let mut spec = spec_with_members(1);
        spec.mongodb.storage.storage_class_name = Some("fast".into());
        spec.mongodb.storage.size =
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("5Gi".into());
        let children = build_for(spec, &inputs());
        let s = sts(&children).spec.clone().expect("spec");
        let claim = &s.volume_claim_templates.expect("templates")[0];
        let claim_spec = claim.spec.clone().expect("claim spec");
        assert_eq!(claim_spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            claim_spec
                .resources
                .and_then(|r| r.requests)
                .expect("requests")["storage"]
                .0,
            "5Gi"
        );
        // Data volumes must not carry the managed-by label the orphan cleanup selects on.
        assert!(
            !claim
                .metadata
                .labels
                .clone()
                .unwrap_or_default()
                .contains_key(crate::names::LABEL_MANAGED_BY)
        );
        let retention = s.persistent_volume_claim_retention_policy.expect("policy");
        assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
        assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
    }

    #[test]
    fn delete_policy_removes_volumes_and_owns_the_credentials() {
        let mut spec = spec_with_members(1);
        spec.mongodb.storage.retention_policy = VolumeRetentionPolicy::Delete;
        let children = build_for(spec, &inputs());
        let retention = sts(&children)
            .spec
            .clone()
            .and_then(|s| s.persistent_volume_claim_retention_policy)
            .expect("policy");
        assert_eq!(retention.when_deleted.as_deref(), Some("Delete"));
        let secret = find(&children, |c| match c {
            Child::Secret(s) if s.metadata.name.as_deref() == Some("demo-mongodb-credentials") => {
                Some(s)
            }
            _ => None,
        });
        assert!(secret.metadata.owner_references.is_some());
    }

    #[test]
    fn retained_credentials_have_no_owner_so_they_outlive_the_platform() {
        let children = build_for(spec_with_members(1), &inputs());
        let secret = find(&children, |c| match c {
            Child::Secret(s) if s.metadata.name.as_deref() == Some("demo-mongodb-credentials") => {
                Some(s)
            }
            _ => None,
        });
        assert!(secret.metadata.owner_references.is_none());
        let data = secret.data.clone().expect("data");
        for key in [
            credentials::MONGO_ROOT_USERNAME_KEY,
            credentials::MONGO_ROOT_PASSWORD_KEY,
            credentials::MONGO_APP_USERNAME_KEY,
            credentials::MONGO_APP_PASSWORD_KEY,
            credentials::MONGO_KEYFILE_KEY,
            credentials::MONGO_URI_KEY,
        ] {
            assert!(data.contains_key(key), "missing {key}");
        }
    }

    #[test]
    fn headless_service_publishes_not_ready_members() {
        let children = build_for(spec_with_members(3), &inputs());
        let svc = find(&children, |c| match c {
            Child::Service(s) if s.metadata.name.as_deref() == Some("demo-mongodb") => Some(s),
            _ => None,
        });
        let spec = svc.spec.clone().expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
    }

    #[test]
    fn app_uri_lists_every_member_with_replica_set_and_auth_source() {
        let spec = spec_with_members(3);
        let names = crate::names::Names::new("demo", "team-a");
        let ctx = BuildContext {
            spec: &spec,
            names: &names,
            owner: None,
        };
        let uri = app_uri(&ctx, "pw");
        assert!(uri.starts_with("mongodb://beer-meetup:pw@demo-mongodb-0.demo-mongodb.team-a"));
        assert_eq!(uri.matches(":27017").count(), 3);
        assert!(uri.ends_with("/beermeetup?replicaSet=rs0&authSource=admin"));
    }

    #[test]
    fn init_job_name_changes_only_with_membership_or_image() {
        let name = |spec: BeerMeetupPlatformSpec| {
            build_valid(&platform(spec), &inputs())
                .expect("builds")
                .mongodb_init_job
        };
        let three = name(spec_with_members(3));
        let mut other = spec_with_members(3);
        other.api_server.replicas = 7;
        assert_eq!(three, name(other), "unrelated changes keep the Job");
        assert_ne!(three, name(spec_with_members(5)));
        let mut upgraded = spec_with_members(3);
        upgraded.mongodb.version = "8.2".into();
        assert_ne!(three, name(upgraded));
    }

    #[test]
    fn init_job_passes_members_and_keeps_credentials_out_of_argv() {
        let children = build_for(spec_with_members(3), &inputs());
        let j = job(&children);
        let pod = j.spec.clone().expect("spec").template.spec.expect("pod");
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let container = &pod.containers[0];
        let env = container.env.clone().expect("env");
        let members = env
            .iter()
            .find(|e| e.name == "RS_MEMBERS")
            .and_then(|e| e.value.clone())
            .expect("members");
        assert_eq!(members.split(' ').count(), 3);
        let password = env
            .iter()
            .find(|e| e.name == "MONGO_ROOT_PASSWORD")
            .expect("password env");
        assert!(password.value.is_none() && password.value_from.is_some());
        let argv = container.command.clone().expect("command").join(" ");
        assert!(!argv.contains("<generated"));
        assert!(
            argv.contains("replSetGetStatus"),
            "guarded by the status check"
        );
        assert!(argv.contains("NotYetInitialized"));
    }

    #[test]
    fn scale_down_waits_for_the_reconfiguration() {
        let mut waiting = inputs();
        waiting.current_mongodb_replicas = Some(5);
        waiting.membership_job_succeeded = false;
        assert_eq!(statefulset_replicas(3, &waiting), 5);
        waiting.membership_job_succeeded = true;
        assert_eq!(statefulset_replicas(3, &waiting), 3);
        let mut growing = inputs();
        growing.current_mongodb_replicas = Some(3);
        assert_eq!(
            statefulset_replicas(5, &growing),
            5,
            "scale-up is immediate"
        );
        assert_eq!(statefulset_replicas(3, &inputs()), 3, "first creation");
    }

    #[test]
    fn disruption_budget_never_selects_the_init_job_pod() {
        let children = build_for(spec_with_members(3), &inputs());
        let pdb = children
            .iter()
            .find_map(|c| match c {
                Child::PodDisruptionBudget(p)
                    if p.metadata.name.as_deref() == Some("demo-mongodb") =>
                {
                    Some(p)
                }
                _ => None,
            })
            .expect("mongodb pdb");
        let selector = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.clone())
            .expect("match labels");
        let job_pod_labels = job(&children)
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .expect("job pod labels");
        let matches = selector
            .iter()
            .all(|(key, value)| job_pod_labels.get(key) == Some(value));
        assert!(
            !matches,
            "PDB selector {selector:?} matches the init Job's pod labels {job_pod_labels:?}"
        );
        // The members themselves are covered.
        let member_labels = sts(&children)
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .expect("member labels");
        assert!(
            selector
                .iter()
                .all(|(key, value)| member_labels.get(key) == Some(value))
        );
    }

    #[test]
    fn disruption_budget_only_with_three_or_more_members() {
        let has_pdb = |members| {
            build_for(spec_with_members(members), &inputs())
                .iter()
                .any(|c| matches!(c, Child::PodDisruptionBudget(p) if p.metadata.name.as_deref() == Some("demo-mongodb")))
        };
        assert!(!has_pdb(1));
        assert!(has_pdb(3));
    }
}
