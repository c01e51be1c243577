//! Generated secrets: created once, then read back from the cluster and reused, so they are never
//! rotated by accident (a new root password would lock the operator out of existing data).
//!
//! The types have a redacting `Debug` so a stray `{:?}` in a log line cannot leak them.
//!
//! Every generated Secret has a backup copy (`<name>-backup`, same owner as the original) that the
//! operator keeps in sync. When the original is deleted while the databases still run with its
//! values, the operator restores it from the backup; when both are gone it refuses to generate new
//! values for a running data service (Degraded with what to do) instead of locking it out.

use std::fmt;

use k8s_openapi::api::core::v1::Secret;
use rand::Rng;
use rand::distr::Alphanumeric;

/// Secret keys of the MongoDB credentials Secret.
pub const MONGO_ROOT_USERNAME_KEY: &str = "root-username";
pub const MONGO_ROOT_PASSWORD_KEY: &str = "root-password";
pub const MONGO_APP_USERNAME_KEY: &str = "app-username";
pub const MONGO_APP_PASSWORD_KEY: &str = "app-password";
pub const MONGO_KEYFILE_KEY: &str = "keyfile";
/// The app's connection string (app user, every member, `replicaSet`, `authSource=admin`).
pub const MONGO_URI_KEY: &str = "uri";

/// Secret keys of the Redis Secret.
pub const REDIS_PASSWORD_KEY: &str = "password";
/// `redis://:<password>@<service>:6379/0` for the API server.
pub const REDIS_URL_KEY: &str = "url";

/// Keys of the other generated Secrets (Elasticsearch).
pub const USERNAME_KEY: &str = "username";
pub const PASSWORD_KEY: &str = "password";
/// Comma-separated Sentinel URLs in the Redis Secret (replicated mode).
pub const REDIS_SENTINEL_URLS_KEY: &str = "sentinel-urls";

pub const MONGO_ROOT_USERNAME: &str = "root";
pub const MONGO_APP_USERNAME: &str = "beer-meetup";

const PASSWORD_LENGTH: usize = 32;
/// mongod accepts 6–1024 base64 characters; 756 is the size `openssl rand -base64 756` makes.
const KEYFILE_LENGTH: usize = 756;

/// MongoDB secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct MongoCredentials {
    pub root_password: String,
    pub app_password: String,
    pub keyfile: String,
}

/// Redis secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisCredentials {
    pub password: String,
}

/// A single generated password (Elasticsearch's `elastic` user).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordCredentials {
    pub password: String,
}

impl fmt::Debug for PasswordCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordCredentials(<redacted>)")
    }
}

impl PasswordCredentials {
    /// Values shown by `render`: never real secrets.
    pub fn placeholders(what: &str) -> Self {
        Self {
            password: format!("<generated: {what} password>"),
        }
    }

    /// Reuse the existing password; generate it only when missing.
    pub fn resolve(existing: Option<&Secret>) -> (Self, Origin) {
        match secret_value(existing, PASSWORD_KEY) {
            Some(password) => (Self { password }, Origin::Existing),
            None => (
                Self {
                    password: random_alphanumeric(PASSWORD_LENGTH),
                },
                Origin::Generated,
            ),
        }
    }
}

impl fmt::Debug for MongoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MongoCredentials(<redacted>)")
    }
}

impl fmt::Debug for RedisCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedisCredentials(<redacted>)")
    }
}

/// Whether a value came from the cluster or was generated just now (worth an Event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Existing,
    Generated,
}

/// Annotation of a backup Secret naming the Secret it copies.
pub const BACKUP_OF_ANNOTATION: &str = "beermeetup.io/backup-of";

/// Name of the backup copy of the generated Secret `primary`.
pub fn backup_name(primary: &str) -> String {
    format!("{primary}-backup")
}

/// The backup copy of a generated credentials Secret: same data, labels and owner (so it goes
/// with the original when the platform is deleted, and stays when the original stays).
pub fn backup(primary: &Secret) -> Secret {
    let mut copy = primary.clone();
    let primary_name = primary.metadata.name.clone().unwrap_or_default();
    copy.metadata.name = Some(backup_name(&primary_name));
    copy.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(BACKUP_OF_ANNOTATION.to_owned(), primary_name);
    copy
}

fn random_alphanumeric(length: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

/// A non-empty UTF-8 value of a Secret key.
fn secret_value(secret: Option<&Secret>, key: &str) -> Option<String> {
    let bytes = secret?.data.as_ref()?.get(key)?;
    let value = String::from_utf8(bytes.0.clone()).ok()?;
    (!value.is_empty()).then_some(value)
}

impl MongoCredentials {
    /// Values shown by `render`: never real secrets.
    pub fn placeholders() -> Self {
        Self {
            root_password: "<generated: root password>".to_owned(),
            app_password: "<generated: app password>".to_owned(),
            keyfile: "<generated: replica-set keyfile>".to_owned(),
        }
    }

    /// Reuse every value the existing Secret holds; generate only what is missing.
    pub fn resolve(existing: Option<&Secret>) -> (Self, Origin) {
        let mut origin = Origin::Existing;
        let mut take_or_generate = |key: &str, length: usize| {
            secret_value(existing, key).unwrap_or_else(|| {
                origin = Origin::Generated;
                random_alphanumeric(length)
            })
        };
        let credentials = Self {
            root_password: take_or_generate(MONGO_ROOT_PASSWORD_KEY, PASSWORD_LENGTH),
            app_password: take_or_generate(MONGO_APP_PASSWORD_KEY, PASSWORD_LENGTH),
            keyfile: take_or_generate(MONGO_KEYFILE_KEY, KEYFILE_LENGTH),
        };
        (credentials, origin)
    }
}

impl RedisCredentials {
    /// Values shown by `render`: never real secrets.
    pub fn placeholders() -> Self {
        Self {
            password: "<generated: redis password>".to_owned(),
        }
    }

    /// Reuse the existing password; generate it only when missing.
    pub fn resolve(existing: Option<&Secret>) -> (Self, Origin) {
        match secret_value(existing, REDIS_PASSWORD_KEY) {
            Some(password) => (Self { password }, Origin::Existing),
            None => (
                Self {
                    password: random_alphanumeric(PASSWORD_LENGTH),
                },
                Origin::Generated,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn existing_values_are_never_replaced() {
        let existing = secret(&[
            (MONGO_ROOT_PASSWORD_KEY, "root-pw"),
            (MONGO_APP_PASSWORD_KEY, "app-pw"),
            (MONGO_KEYFILE_KEY, "keyfile-content"),
        ]);
        let (creds, origin) = MongoCredentials::resolve(Some(&existing));
        assert_eq!(origin, Origin::Existing);
        assert_eq!(creds.root_password, "root-pw");
        assert_eq!(creds.app_password, "app-pw");
        assert_eq!(creds.keyfile, "keyfile-content");
    }

    #[test]
    fn only_missing_values_are_generated() {
        let existing = secret(&[
            (MONGO_ROOT_PASSWORD_KEY, "root-pw"),
            (MONGO_KEYFILE_KEY, ""),
        ]);
        let (creds, origin) = MongoCredentials::resolve(Some(&existing));
        assert_eq!(origin, Origin::Generated);
        assert_eq!(creds.root_password, "root-pw");
        assert_eq!(creds.app_password.len(), PASSWORD_LENGTH);
        assert_eq!(creds.keyfile.len(), KEYFILE_LENGTH);
        assert!(creds.keyfile.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn generated_values_differ_each_time() {
        let (a, _) = MongoCredentials::resolve(None);
        let (b, _) = MongoCredentials::resolve(None);
        assert_ne!(a.root_password, b.root_password);
        let (r, origin) = RedisCredentials::resolve(None);
        assert_eq!(origin, Origin::Generated);
        assert_eq!(r.password.len(), PASSWORD_LENGTH);
    }

    #[test]
    fn redis_password_is_reused() {
        let (r, origin) = RedisCredentials::resolve(Some(&secret(&[(REDIS_PASSWORD_KEY, "kept")])));
        assert_eq!(origin, Origin::Existing);
        assert_eq!(r.password, "kept");
    }

    #[test]
    fn single_passwords_are_reused_or_generated() {
        let (p, origin) = PasswordCredentials::resolve(Some(&secret(&[(PASSWORD_KEY, "kept")])));
        assert_eq!((p.password.as_str(), origin), ("kept", Origin::Existing));
        let (p, origin) = PasswordCredentials::resolve(None);
        assert_eq!(origin, Origin::Generated);
        assert_eq!(p.password.len(), PASSWORD_LENGTH);
        assert!(!format!("{p:?}").contains(&p.password));
    }

    #[test]
    fn a_backup_copies_data_and_owner_under_its_own_name() {
        let mut primary = secret(&[(PASSWORD_KEY, "kept")]);
        primary.metadata.name = Some("demo-redis-credentials".into());
        primary.metadata.owner_references = Some(vec![Default::default()]);
        let copy = backup(&primary);
        assert_eq!(
            copy.metadata.name.as_deref(),
            Some("demo-redis-credentials-backup")
        );
        assert_eq!(copy.data, primary.data);
        assert_eq!(
            copy.metadata.owner_references,
            primary.metadata.owner_references
        );
        assert_eq!(
            copy.metadata.annotations.clone().expect("annotations")[BACKUP_OF_ANNOTATION],
            "demo-redis-credentials"
        );
        // Resolving from the backup gives the same values.
        let (p, origin) = PasswordCredentials::resolve(Some(&copy));
        assert_eq!((p.password.as_str(), origin), ("kept", Origin::Existing));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let (m, _) = MongoCredentials::resolve(None);
        let shown = format!("{m:?}");
        assert!(!shown.contains(&m.root_password));
        assert!(shown.contains("redacted"));
        let (r, _) = RedisCredentials::resolve(None);
        assert!(!format!("{r:?}").contains(&r.password));
    }
}
