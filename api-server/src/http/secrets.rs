//! A participant's optional PIN/password and getting a name back with it on another device.
//! The rules live in `domain::secret`; this module runs the hashing off the async threads,
//! bounds how many hashes run at once, and counts failed attempts.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use tokio::sync::Semaphore;

use super::AppState;
use super::client::ClientKey;
use super::extract::{ApiJson, ApiPath, Bearer, JsonBody};
use super::handlers::JoinedParticipant;
use super::problem::{Problem, ProblemBody};
use crate::domain::ids::token_matches;
use crate::domain::secret::{
    self, FailurePolicy, FailureWindow, ParticipantSecret, ReclaimInput, SealedTokens, SecretInput,
};
use crate::domain::{self, ParticipantChanges, Resource};
use crate::events::Event;

/// Failed reclaims per meetup+name and per client address, and the hashing slots.
pub struct ReclaimGuard {
    per_name: moka::sync::Cache<String, FailureWindow>,
    per_client: moka::sync::Cache<IpAddr, FailureWindow>,
    /// argon2 takes 19 MiB and a core for ~20 ms: at most this many run at once per replica.
    hashing: Semaphore,
}

/// Keys remembered at most (each a few dozen bytes), so a flood of names cannot grow memory.
const MAX_TRACKED_KEYS: u64 = 100_000;

fn failure_cache<K>(policy: FailurePolicy) -> moka::sync::Cache<K, FailureWindow>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(MAX_TRACKED_KEYS)
        .time_to_live(policy.memory())
        .build()
}

impl Default for ReclaimGuard {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            per_name: failure_cache(FailurePolicy::PER_NAME),
            per_client: failure_cache(FailurePolicy::PER_CLIENT),
            hashing: Semaphore::new(cores.clamp(1, 4)),
        }
    }
}

impl ReclaimGuard {
    fn check(&self, name: &str, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let by_name = FailureWindow::check(
            self.per_name.get(name).as_ref(),
            FailurePolicy::PER_NAME,
            now,
        );
        let by_client = FailureWindow::check(
            self.per_client.get(&client).as_ref(),
            FailurePolicy::PER_CLIENT,
            now,
        );
        match (by_name, by_client) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(wait), _) | (_, Err(wait)) => Err(wait),
        }
    }

    fn record_failure(&self, name: String, client: IpAddr, now: Instant) {
        self.per_name.entry(name).and_upsert_with(|entry| {
            FailureWindow::record_failure(
                entry.map(|e| e.into_value()).as_ref(),
                FailurePolicy::PER_NAME,
                now,
            )
        });
        self.per_client.entry(client).and_upsert_with(|entry| {
            FailureWindow::record_failure(
                entry.map(|e| e.into_value()).as_ref(),
                FailurePolicy::PER_CLIENT,
                now,
            )
        });
    }

    /// Runs argon2 work on a blocking thread, at most `hashing` permits at once.
    async fn hash<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Problem> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| Problem::internal("Something went wrong on our side."))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Problem::internal("Something went wrong on our side."))
    }
}

fn reclaim_failed() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "reclaim-failed",
        "That name and PIN do not match anyone in this meetup. Check both, or join with another name.",
    )
}

fn too_many_attempts(wait: Duration) -> Problem {
    let secs = wait.as_secs().max(1);
    Problem {
        retry_after_secs: Some(secs),
        ..Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            format!(
                "Too many wrong PINs for this name or from your address; try again in {} min.",
                secs.div_ceil(60)
            ),
        )
    }
}

/// Stores the participant's new secret state and tells live clients (the write bumps the
/// revision; the participant's public view does not change).
async fn write_secret(
    app: &AppState,
    meetup: &domain::MeetupRecord,
    participant_id: &str,
    secret: Option<ParticipantSecret>,
) -> Result<(), Problem> {
    let changes = ParticipantChanges {
        secret: Some(secret),
        ..Default::default()
    };
    let (revision, updated) = app
        .store
        .update_participant(&meetup.id, participant_id, changes)
        .await?
        .ok_or_else(|| domain::DomainError::not_found(Resource::Participant, participant_id))?;
    app.publish(
        &meetup.id,
        revision,
        Event::ParticipantUpdated {
            participant: std::sync::Arc::new(domain::into_participant_view(meetup, updated)),
        },
    )
    .await;
    Ok(())
}

/// Sets or changes the PIN/password that gets this name back on another device. Only the
/// participant's own link may do it (it is that link's token that the PIN unlocks); the
/// organizer may add their admin token (`adminToken`) to get organizer rights back with it.
#[utoipa::path(put, path = "/api/v1/meetups/{id}/participants/{participant_id}/secret",
    tag = "participants",
    params(("id" = String, Path), ("participant_id" = String, Path)),
    request_body = SecretInput, security(("bearer" = [])),
    responses((status = 204, description = "The PIN is set."), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 422, body = ProblemBody)))]
pub async fn put_secret(
    State(app): State<AppState>,
    ApiPath((id, participant_id)): ApiPath<(String, String)>,
    bearer: Bearer,
    body: JsonBody,
) -> Result<StatusCode, Problem> {
    let (meetup, principal) = app.authenticated(&id, &bearer).await?;
    let input: SecretInput = body.parse()?;
    secret::authorize_secret_change(&principal, &participant_id)?;
    secret::validate_secret(&input.secret)?;
    if let Some(admin_token) = &input.admin_token {
        secret::authorize_admin_seal(&meetup, &participant_id, admin_token)?;
    }
    let tokens = SealedTokens {
        token: bearer.0.unwrap_or_default(),
        admin_token: input.admin_token,
    };
    let sealed = app
        .reclaims
        .hash(move || secret::seal(&input.secret, &tokens, &mut rand::rng()))
        .await?
        .map_err(|_| Problem::internal("Something went wrong on our side."))?;
    write_secret(&app, &meetup, &participant_id, Some(sealed)).await?;
    tracing::info!(meetup = %meetup.id, participant = %participant_id, "participant set a PIN");
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the PIN/password: the name can then only be used with the personal link.
#[utoipa::path(delete, path = "/api/v1/meetups/{id}/participants/{participant_id}/secret",
    tag = "participants",
    params(("id" = String, Path), ("participant_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204, description = "No PIN any more."),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody)))]
pub async fn delete_secret(
    State(app): State<AppState>,
    ApiPath((id, participant_id)): ApiPath<(String, String)>,
    bearer: Bearer,
) -> Result<StatusCode, Problem> {
    let (meetup, principal) = app.authenticated(&id, &bearer).await?;
    secret::authorize_secret_change(&principal, &participant_id)?;
    write_secret(&app, &meetup, &participant_id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gets a name back on another device with the PIN/password its owner set: answers what
/// joining answered (the participant and their token). A name that does not exist, has no
/// PIN, or a wrong PIN all get the same 401. Failed attempts are limited per meetup and name
/// and per client address (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/meetups/{id}/participants/reclaim", tag = "participants",
    params(("id" = String, Path)), request_body = ReclaimInput,
    responses((status = 200, body = JoinedParticipant),
        (status = 401, body = ProblemBody, description = "No such name with that PIN here."),
        (status = 404, body = ProblemBody), (status = 422, body = ProblemBody),
        (status = 429, body = ProblemBody, description = "Too many wrong PINs; see `Retry-After`.")))]
pub async fn reclaim(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    client: Option<Extension<ClientKey>>,
    ApiJson(input): ApiJson<ReclaimInput>,
) -> Result<Json<JoinedParticipant>, Problem> {
    let meetup = app.load_meetup(&id).await?;
    let key = secret::reclaim_key(&input)?;
    let client = client.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(key)| key.0);
    let name = format!("{}/{key}", meetup.id);
    app.reclaims
        .check(&name, client, Instant::now())
        .map_err(too_many_attempts)?;
    let owner = app.store.participant_by_name_key(&meetup.id, &key).await?;
    let stored = owner.as_ref().and_then(|p| p.secret.clone());
    let opened = app
        .reclaims
        .hash(move || match stored {
            Some(stored) => secret::open(&stored, &input.secret),
            None => {
                secret::verify_nothing(&input.secret);
                None
            }
        })
        .await?;
    let found = owner
        .zip(opened)
        .filter(|(p, tokens)| token_matches(&tokens.token, &p.token_hash));
    let Some((participant, tokens)) = found else {
        app.reclaims.record_failure(name, client, Instant::now());
        metrics::counter!("reclaims_total", "result" => "failed").increment(1);
        return Err(reclaim_failed());
    };
    metrics::counter!("reclaims_total", "result" => "ok").increment(1);
    tracing::info!(meetup = %meetup.id, participant = %participant.id, "name reclaimed with a PIN");
    // An admin token kept under the PIN counts only while it is still the meetup's.
    let admin_token = tokens.admin_token.filter(|admin| {
        participant.id == meetup.organizer_id && token_matches(admin, &meetup.admin_token_hash)
    });
    Ok(Json(JoinedParticipant {
        participant: domain::participant_view(&meetup, &participant),
        token: tokens.token,
        admin_token,
    }))
}
