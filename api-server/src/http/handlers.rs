//! Thin handlers: load, authenticate, call a domain rule, store, publish the event, respond.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Bearer, JsonBody};
use super::problem::{Problem, ProblemBody};
use crate::domain::ids::{hash_token, new_token};
use crate::domain::limits::{MAX_COMMENTS, MAX_PARTICIPANTS};
use crate::domain::{
    self, CommentInput, CommentView, CreateMeetup, FinalizeInput, JoinMeetup, MeetupPatch,
    MeetupView, ParticipantPatch, ParticipantView, PlaceInput, PlacePatch, PlaceSuggestion,
    PlaceView, Principal, Resource,
};
use crate::events::Event;

type ApiResult<T> = Result<T, Problem>;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedMeetup {
    pub meetup: MeetupView,
    /// Keep it secret: it can change and delete the meetup.
    pub admin_token: String,
    /// The organizer's own participant (they vote too).
    pub participant_id: String,
    pub participant_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinedParticipant {
    pub participant: ParticipantView,
    pub token: String,
    /// Only when the organizer gets their name back with a PIN they set from both links: the
    /// admin token, so the new device may manage the meetup too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SuggestionQuery {
    /// Start of the place name (case-insensitive). With Elasticsearch also the start of a word
    /// of the name or address, and names with a typo or two.
    pub q: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/meetups", tag = "meetups",
    request_body = CreateMeetup,
    responses(
        (status = 201, body = CreatedMeetup),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn create_meetup(
    State(app): State<AppState>,
    ApiJson(input): ApiJson<CreateMeetup>,
) -> ApiResult<(StatusCode, Json<CreatedMeetup>)> {
    let now = Utc::now();
    let (admin_token, participant_token, created) = {
        let mut rng = rand::rng();
        let admin_token = new_token(&mut rng);
        let participant_token = new_token(&mut rng);
        let created = domain::create_meetup(
            input,
            hash_token(&admin_token),
            hash_token(&participant_token),
            now,
            &mut rng,
        )?;
        (admin_token, participant_token, created)
    };
    app.store
        .create_meetup(&created.meetup, &created.organizer)
        .await?;
    for place in &created.meetup.places {
        app.remember_place(&created.meetup.id, place).await;
    }
    tracing::info!(meetup = %created.meetup.id, slots = created.meetup.slots.len(), "meetup created");
    let view = domain::meetup_view(
        &created.meetup,
        vec![created.organizer.clone()],
        Vec::new(),
        now,
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedMeetup {
            meetup: view,
            admin_token,
            participant_id: created.organizer.id,
            participant_token,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/meetups/{id}", tag = "meetups",
    params(("id" = String, Path)),
    responses((status = 200, body = MeetupView), (status = 404, body = ProblemBody)))]
pub async fn get_meetup(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<axum::response::Response> {
    let view = app.view_json(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        view.json.bytes(),
    )
        .into_response())
}

#[utoipa::path(patch, path = "/api/v1/meetups/{id}", tag = "meetups",
    params(("id" = String, Path)), request_body = MeetupPatch,
    security(("bearer" = [])),
    responses((status = 200, body = MeetupView), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 422, body = ProblemBody)))]
pub async fn patch_meetup(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    bearer: Bearer,
    body: JsonBody,
) -> ApiResult<Json<MeetupView>> {
    let (meetup, principal) = app.authenticated(&id, &bearer).await?;
    let patch: MeetupPatch = body.parse()?;
    let (meetup, changes) = app
        .change_authenticated(meetup, &principal, |meetup, principal, now| {
            domain::patch_meetup(meetup, principal, patch.clone(), now).map(|next| {
                let changes = domain::meetup_changes(meetup, &next, now);
                (next, changes)
            })
        })
        .await?;
    app.committed(&meetup.id, meetup.revision)
        .await
        .publish(Event::MeetupUpdated { changes });
    Ok(Json(app.view(&meetup).await?))
}

#[utoipa::path(delete, path = "/api/v1/meetups/{id}", tag = "meetups",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn delete_meetup(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    bearer: Bearer,
) -> ApiResult<StatusCode> {
    let meetup = app.load_meetup(&id).await?;
    let principal = app.authenticate(&meetup, &bearer).await?;
    domain::authorize_meetup_deletion(&principal)?;
    if !app.store.delete_meetup(&meetup.id).await? {
        return Err(Problem::meetup_not_found(&id));
    }
    tracing::info!(meetup = %meetup.id, "meetup deleted");
    app.publish(&meetup.id, meetup.revision + 1, Event::MeetupDeleted {})
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/meetups/{id}/places", tag = "places",
    params(("id" = String, Path)), request_body = PlaceInput, security(("bearer" = [])),
    responses((status = 201, body = PlaceView), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, body = ProblemBody), (status = 422, body = ProblemBody)))]
pub async fn add_place(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    bearer: Bearer,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<PlaceView>)> {
    let (meetup, principal) = app.authenticated(&id, &bearer).await?;
    let input: PlaceInput = body.parse()?;
    let (meetup, place) = app
        .change_authenticated(meetup, &principal, |meetup, principal, now| {
            domain::add_place(meetup, principal, &input, now, &mut rand::rng())
        })
        .await?;
    let committed = app.committed(&meetup.id, meetup.revision).await;
    app.remember_place(&meetup.id, &place).await;
    let view = domain::place_view(&place, &[]);
    committed.publish(Event::PlaceAdded {
        place: view.clone(),
    });
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(patch, path = "/api/v1/meetups/{id}/places/{place_id}", tag = "places",
    params(("id" = String, Path), ("place_id" = String, Path)), request_body = PlacePatch,
    security(("bearer" = [])),
    responses((status = 200, body = PlaceView), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 422, body = ProblemBody)))]
pub async fn patch_place(
    State(app): State<AppState>,
    ApiPath((id, place_id)): ApiPath<(String, String)>,
    bearer: Bearer,
    body: JsonBody,
) -> ApiResult<Json<PlaceView>> {
    let (meetup, principal) = app.authenticated(&id, &bearer).await?;
    let patch: PlacePatch = body.parse()?;
    let (meetup, place) = app
        .change_authenticated(meetup, &principal, |meetup, principal, now| {
            domain::update_place(meetup, principal, &place_id, patch.clone(), now)
        })
        .await?;
    let committed = app.committed(&meetup.id, meetup.revision).await;
    app.remember_place(&meetup.id, &place).await;
    let participants = app.store.participants(&meetup.id).await?;
    let view = domain::place_view(&place, &participants);
    committed.publish(Event::PlaceUpdated {
        place: view.clone(),
    });
    Ok(Json(view))
}

#[utoipa::path(delete, path = "/api/v1/meetups/{id}/places/{place_id}", tag = "places",
    params(("id" = String, Path), ("place_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, body = ProblemBody)))]
pub async fn delete_place(
    State(app): State<AppState>,
    ApiPath((id, place_id)): ApiPath<(String, String)>,
    bearer: Bearer,
) -> ApiResult<StatusCode> {
    let (meetup, ()) = app
        .change_meetup(&id, &bearer, |meetup, principal, now| {
            domain::remove_place(meetup, principal, &place_id, now).map(|m| (m, ()))
        })
        .await?;
    let committed = app.committed(&meetup.id, meetup.revision).await;
    app.forget_place(&meetup.id, &place_id).await;
    // Votes for a place that is gone are ignored by the view; dropping them is tidying up.
    let tidied = app.store.remove_place_votes(&meetup.id, &place_id).await;
    committed.publish(Event::PlaceRemoved { place_id });
    tidied?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/meetups/{id}/participants", tag = "participants",
    params(("id" = String, Path)), request_body = JoinMeetup,
    responses((status = 201, body = JoinedParticipant), (status = 404, body = ProblemBody),
        (status = 409, body = ProblemBody), (status = 422, body = ProblemBody)))]
pub async fn join_meetup(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<JoinMeetup>,
) -> ApiResult<(StatusCode, Json<JoinedParticipant>)> {
    let meetup = app.load_meetup(&id).await?;
    let (token, participant) = {
        let mut rng = rand::rng();
        let token = new_token(&mut rng);
        let participant =
            domain::join_meetup(&meetup, &input, hash_token(&token), Utc::now(), &mut rng)?;
        (token, participant)
    };
    let revision = app
        .store
        .add_participant(&participant, MAX_PARTICIPANTS)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NameTaken => {
                domain::DomainError::NameTaken(participant.name.clone()).into()
            }
            other => Problem::from(other),
        })?;
    let view = domain::participant_view(&meetup, &participant);
    app.publish(
        &meetup.id,
        revision,
        Event::ParticipantJoined {
            participant: view.clone(),
        },
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(JoinedParticipant {
            participant: view,
            token,
            admin_token: None,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/meetups/{id}/participants/me", tag = "participants",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ParticipantView), (status = 401, body = ProblemBody),
        (status = 404, body = ProblemBody)))]
pub async fn get_me(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    bearer: Bearer,
) -> ApiResult<Json<ParticipantView>> {
    let meetup = app.load_meetup(&id).await?;
    let participant = match app.authenticate(&meetup, &bearer).await? {
        Principal::Participant(p) => *p,
        Principal::Admin => app
            .store
            .participant(&meetup.id, &meetup.organizer_id)
            .await?
            .ok_or_else(|| {
                Problem::not_found("The organizer has left this meetup as a participant.")
            })?,
    };
    Ok(Json(domain::participant_view(&meetup, &participant)))
}

#[utoipa::path(patch, path = "/api/v1/meetups/{id}/participants/{participant_id}",
    tag = "participants",
    params(("id" = String, Path), ("participant_id" = String, Path)),
    request_body = ParticipantPatch, security(("bearer" = [])),
    responses((status = 200, body = ParticipantView), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, body = ProblemBody), (status = 422, body = ProblemBody)))]
pub async fn patch_participant(
    State(app): State<AppState>,
    ApiPath((id, participant_id)): ApiPath<(String, String)>,
    bearer: Bearer,
    body: JsonBody,
) -> ApiResult<Json<Arc<ParticipantView>>> {
    let meetup = app.load_meetup(&id).await?;
    // Only who is asking: the store applies the changes to the record it holds when it writes,
    // so the record is neither read nor decoded here (a missing participant is a 404 below).
    let identity = app.identify(&meetup, &bearer).await?;
    let patch: ParticipantPatch = body.parse()?;
    let changes = domain::participant_changes(
        &meetup,
        identity.actor(),
        &participant_id,
        patch,
        Utc::now(),
    )?;
    let new_name = changes.name.as_ref().map(|n| n.name.clone());
    let (revision, updated) = app
        .store
        .update_participant(&meetup.id, &participant_id, changes)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NameTaken => {
                domain::DomainError::NameTaken(new_name.unwrap_or_default()).into()
            }
            other => Problem::from(other),
        })?
        .ok_or_else(|| domain::DomainError::not_found(Resource::Participant, &participant_id))?;
    let view = Arc::new(domain::into_participant_view(&meetup, updated));
    app.publish(
        &meetup.id,
        revision,
        Event::ParticipantUpdated {
            participant: Arc::clone(&view),
        },
    )
    .await;
    Ok(Json(view))
}

#[utoipa::path(delete, path = "/api/v1/meetups/{id}/participants/{participant_id}",
    tag = "participants",
    params(("id" = String, Path), ("participant_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn delete_participant(
    State(app): State<AppState>,
    ApiPath((id, participant_id)): ApiPath<(String, String)>,
    bearer: Bearer,
) -> ApiResult<StatusCode> {
    let meetup = app.load_meetup(&id).await?;
    let principal = app.authenticate(&meetup, &bearer).await?;
    let participant = app.load_participant(&meetup.id, &participant_id).await?;
    domain::authorize_leave(&principal, &participant)?;
    let revision = app
        .store
        .remove_participant(&meetup.id, &participant_id)
        .await?
        .ok_or_else(|| domain::DomainError::not_found(Resource::Participant, &participant_id))?;
    app.publish(
        &meetup.id,
        revision,
        Event::ParticipantLeft { participant_id },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/meetups/{id}/comments", tag = "comments",
    params(("id" = String, Path)),
    responses((status = 200, body = [CommentView]), (status = 404, body = ProblemBody)))]
pub async fn list_comments(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<CommentView>>> {
    let meetup = app.load_meetup(&id).await?;
    let mut comments = app.store.comments(&meetup.id).await?;
    domain::sort_comments(&mut comments);
    Ok(Json(comments.iter().map(domain::comment_view).collect()))
}

#[utoipa::path(post, path = "/api/v1/meetups/{id}/comments", tag = "comments",
    params(("id" = String, Path)), request_body = CommentInput, security(("bearer" = [])),
    responses((status = 201, body = CommentView), (status = 401, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, body = ProblemBody),
        (status = 422, body = ProblemBody)))]
pub async fn add_comment(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    bearer: Bearer,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<CommentView>)> {
    let (meetup, principal) = app.authenticated(&id, &bearer).await?;
    let input: CommentInput = body.parse()?;
    let comment = domain::add_comment(&meetup, &principal, &input, Utc::now(), &mut rand::rng())?;
    let revision = app.store.add_comment(&comment, MAX_COMMENTS).await?;
    let view = domain::comment_view(&comment);
    app.publish(
        &meetup.id,
        revision,
        Event::CommentAdded {
            comment: view.clone(),
        },
    )
    .await;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/api/v1/meetups/{id}/comments/{comment_id}", tag = "comments",
    params(("id" = String, Path), ("comment_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn delete_comment(
    State(app): State<AppState>,
    ApiPath((id, comment_id)): ApiPath<(String, String)>,
    bearer: Bearer,
) -> ApiResult<StatusCode> {
    let meetup = app.load_meetup(&id).await?;
    let principal = app.authenticate(&meetup, &bearer).await?;
    let not_found = || domain::DomainError::not_found(Resource::Comment, &comment_id);
    let comment = if domain::ids::is_valid_id(&comment_id) {
        app.store.comment(&meetup.id, &comment_id).await?
    } else {
        None
    }
    .ok_or_else(not_found)?;
    domain::authorize_comment_removal(&principal, &comment)?;
    let revision = app
        .store
        .remove_comment(&meetup.id, &comment_id)
        .await?
        .ok_or_else(not_found)?;
    app.publish(&meetup.id, revision, Event::CommentRemoved { comment_id })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/meetups/{id}/finalize", tag = "meetups",
    params(("id" = String, Path)), request_body = FinalizeInput, security(("bearer" = [])),
    responses((status = 200, body = MeetupView), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 422, body = ProblemBody)))]
pub async fn finalize(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    bearer: Bearer,
    body: JsonBody,
) -> ApiResult<Json<MeetupView>> {
    let (meetup, principal) = app.authenticated(&id, &bearer).await?;
    let input: FinalizeInput = body.parse()?;
    let (meetup, changes) = app
        .change_authenticated(meetup, &principal, |meetup, principal, now| {
            domain::finalize(meetup, principal, &input, now).map(|next| {
                let changes = domain::meetup_changes(meetup, &next, now);
                (next, changes)
            })
        })
        .await?;
    app.committed(&meetup.id, meetup.revision)
        .await
        .publish(Event::MeetupFinalized { changes });
    Ok(Json(app.view(&meetup).await?))
}

#[utoipa::path(get, path = "/api/v1/meetups/{id}/event.ics", tag = "meetups",
    params(("id" = String, Path)),
    responses((status = 200, content_type = "text/calendar", body = String),
        (status = 404, body = ProblemBody), (status = 409, body = ProblemBody)))]
pub async fn event_ics(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let meetup = app.load_meetup(&id).await?;
    let decision = domain::require_finalized(&meetup)?;
    let origin = app
        .settings
        .public_url
        .clone()
        .or_else(|| request_origin(&headers, &app.settings.trusted_proxies));
    let page = origin.map(|origin| format!("{}/m/{}", origin.trim_end_matches('/'), meetup.id));
    let body = domain::ics::decision_calendar(&meetup, decision, page.as_deref());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"meetup-{}.ics\"", meetup.id),
            ),
        ],
        body,
    ))
}

/// `scheme://host` the request was sent to: its Host header, and https only when a trusted
/// proxy says so. A Host that is no plain host name or address gives nothing.
fn request_origin(
    headers: &axum::http::HeaderMap,
    trusted: &super::client::TrustedProxies,
) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !plain {
        return None;
    }
    let behind_proxy = trusted.hops > 0 || !trusted.networks.is_empty();
    let https = behind_proxy
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    Some(format!("{}://{host}", if https { "https" } else { "http" }))
}

/// Meetups a caller may name as the scope of one suggestion request.
pub const MAX_SUGGESTION_MEETUPS: usize = 20;

/// One meetup the caller belongs to: its id and a token of it (admin or participant).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetupCredential {
    pub id: String,
    pub token: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestionRequest {
    /// Start of the place name (case-insensitive). With Elasticsearch also the start of a word
    /// of the name or address, and names with a typo or two.
    #[serde(default)]
    pub q: String,
    /// The meetups whose places may be suggested, each with a token of it; others' places are
    /// never suggested. Unknown meetups and wrong tokens are skipped.
    #[serde(default)]
    pub meetups: Vec<MeetupCredential>,
}

fn check_suggestion_query(q: &str) -> Result<(), Problem> {
    if q.chars().count() > domain::limits::MAX_PLACE_NAME_CHARS {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            "The search text is too long.",
        ));
    }
    Ok(())
}

/// Deprecated: suggestions need proof of membership, so this answers an empty list. Use
/// `POST /api/v1/places/suggestions`.
#[utoipa::path(get, path = "/api/v1/places/suggestions", tag = "places",
    params(SuggestionQuery),
    responses((status = 200, body = [PlaceSuggestion]),
        (status = 400, body = ProblemBody, content_type = "application/problem+json")))]
pub async fn place_suggestions(
    ApiQuery(query): ApiQuery<SuggestionQuery>,
) -> ApiResult<Json<Vec<PlaceSuggestion>>> {
    check_suggestion_query(query.q.as_deref().unwrap_or_default())?;
    Ok(Json(Vec::new()))
}

/// Places used before in the caller's own meetups (those it sends a token of).
#[utoipa::path(post, path = "/api/v1/places/suggestions", tag = "places",
    request_body = SuggestionRequest,
    responses((status = 200, body = [PlaceSuggestion]),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, body = ProblemBody, content_type = "application/problem+json")))]
pub async fn suggest_places(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<SuggestionRequest>,
) -> ApiResult<Json<Vec<PlaceSuggestion>>> {
    check_suggestion_query(&request.q)?;
    if request.meetups.len() > MAX_SUGGESTION_MEETUPS {
        return Err(domain::DomainError::invalid(
            "meetups",
            format!("at most {MAX_SUGGESTION_MEETUPS} meetups"),
        )
        .into());
    }
    let mut scope = Vec::with_capacity(request.meetups.len());
    for credential in request.meetups {
        if scope.contains(&credential.id) || !domain::ids::is_valid_id(&credential.id) {
            continue;
        }
        let Some(meetup) = app.store.meetup(&credential.id).await? else {
            continue;
        };
        let bearer = Bearer(Some(credential.token));
        match app.authenticate(&meetup, &bearer).await {
            Ok(_) => scope.push(meetup.id),
            Err(problem) if problem.status == StatusCode::UNAUTHORIZED => continue,
            Err(problem) => return Err(problem),
        }
    }
    if scope.is_empty() {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(
        app.search.suggestions(request.q.trim(), &scope, 10).await?,
    ))
}
