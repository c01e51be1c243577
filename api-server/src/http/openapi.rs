//! The OpenAPI document, generated from the handlers and types so it cannot drift.

use axum::Json;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi};

use super::handlers;

#[derive(OpenApi)]
#[openapi(
    info(title = "Beer Meetup API", description = "Polls for times and places, with the names behind every vote."),
    paths(
        handlers::create_meetup,
        handlers::get_meetup,
        handlers::patch_meetup,
        handlers::delete_meetup,
        handlers::add_place,
        handlers::patch_place,
        handlers::delete_place,
        handlers::join_meetup,
        handlers::get_me,
        handlers::patch_participant,
        handlers::delete_participant,
        super::secrets::put_secret,
        super::secrets::delete_secret,
        super::secrets::reclaim,
        handlers::list_comments,
        handlers::add_comment,
        handlers::delete_comment,
        handlers::finalize,
        handlers::event_ics,
        handlers::place_suggestions,
        handlers::suggest_places,
        super::live::live,
    ),
    // Not in any response: what the live `meetupUpdated`/`meetupFinalized` events carry
    // (docs/api.md "Live"), so the web app's types come from the same source.
    components(schemas(crate::domain::MeetupChanges)),
    modifiers(&BearerAuth, &ProblemResponses, &InputLimits, &CreatedLinks)
)]
pub struct ApiDoc;

/// Every error is problem JSON, and every operation documents the errors any request can get:
/// 400 (malformed path or query), 429 (rate limits), 503 (store unavailable, `busy`, timeout);
/// with a body also 413, 415 and 422; with a token also 401.
struct ProblemResponses;

fn problem_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                Content::new(Some(RefOr::<Schema>::Ref(Ref::from_schema_name(
                    "ProblemBody",
                )))),
            )
            .build(),
    )
}

const PROBLEM_JSON: &str = "application/problem+json";

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if status.as_str() < "400" {
                        continue;
                    }
                    if let RefOr::T(response) = response
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        response.content.insert(PROBLEM_JSON.to_string(), content);
                    }
                }
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| problem_response(description));
                };
                add("400", "Malformed request (path, query or JSON).");
                add("429", "Rate limited; see `Retry-After`.");
                add(
                    "503",
                    "The store is unreachable, the request timed out, or the meetup changes too fast (`busy`); retry.",
                );
                if operation.request_body.is_some() {
                    add("413", "The body is too large.");
                    add("415", "The body is not sent as `application/json`.");
                    add("422", "The body is valid JSON but not a valid request.");
                }
                if operation.security.is_some() {
                    add("401", "The bearer token is missing or not valid here.");
                }
            }
        }
    }
}

/// Links from the created meetup to every operation on it (its id and the admin token), so
/// tools can chain a create into the calls that need them.
struct CreatedLinks;

impl Modify for CreatedLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut targets = Vec::new();
        for (path, item) in &openapi.paths.paths {
            if !path.starts_with("/api/v1/meetups/{id}") {
                continue;
            }
            let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for operation in operations.into_iter().flatten() {
                if let Some(operation_id) = &operation.operation_id {
                    targets.push((operation_id.clone(), operation.security.is_some()));
                }
            }
        }
        let Some(created) = openapi
            .paths
            .paths
            .get_mut("/api/v1/meetups")
            .and_then(|item| item.post.as_mut())
            .and_then(|operation| operation.responses.responses.get_mut("201"))
        else {
            return;
        };
        let RefOr::T(created) = created else {
            return;
        };
        for (operation_id, secured) in targets {
            let mut link = LinkBuilder::new()
                .operation_id(operation_id.clone())
                .parameter("id", "$response.body#/meetup/id");
            if secured {
                link = link.parameter(
                    "header.Authorization",
                    "Bearer {$response.body#/adminToken}",
                );
            }
            created.links.insert(operation_id, RefOr::T(link.build()));
        }
    }
}

/// Limits in the schemas, from the constants the server enforces (one source of truth).
struct InputLimits;

enum Limit {
    Length(usize, usize),
    Items(usize),
    Enum(&'static [u32]),
}

fn apply(schema: &mut RefOr<Schema>, limit: &Limit) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match (schema, limit) {
        (Schema::Object(object), Limit::Length(min, max)) => {
            object.min_length = (*min > 0).then_some(*min);
            object.max_length = Some(*max);
        }
        (Schema::Object(object), Limit::Enum(values)) => {
            object.enum_values = Some(values.iter().map(|v| (*v).into()).collect());
        }
        (Schema::Array(array), Limit::Items(max)) => array.max_items = Some(*max),
        (Schema::OneOf(one_of), limit) => {
            for item in &mut one_of.items {
                apply(item, limit);
            }
        }
        _ => {}
    }
}

impl Modify for InputLimits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use crate::domain::limits::*;
        use Limit::{Enum, Items, Length};
        let place = [
            ("name", Length(1, MAX_PLACE_NAME_CHARS)),
            ("address", Length(0, MAX_ADDRESS_CHARS)),
            ("link", Length(0, MAX_LINK_CHARS)),
            ("note", Length(0, MAX_NOTE_CHARS)),
        ];
        let table: Vec<(&str, Vec<(&str, Limit)>)> = vec![
            (
                "CreateMeetup",
                vec![
                    ("title", Length(1, MAX_TITLE_CHARS)),
                    ("description", Length(0, MAX_DESCRIPTION_CHARS)),
                    ("organizerName", Length(1, MAX_NAME_CHARS)),
                    ("slots", Items(MAX_SLOTS)),
                    ("days", Items(MAX_DAYS)),
                    ("places", Items(MAX_PLACES)),
                    ("slotMinutes", Enum(&[15, 30, 60])),
                ],
            ),
            (
                "MeetupPatch",
                vec![
                    ("title", Length(1, MAX_TITLE_CHARS)),
                    ("description", Length(0, MAX_DESCRIPTION_CHARS)),
                ],
            ),
            ("PlaceInput", place.iter().map(clone_limit).collect()),
            ("PlacePatch", place.iter().map(clone_limit).collect()),
            ("JoinMeetup", vec![("name", Length(1, MAX_NAME_CHARS))]),
            (
                "ParticipantPatch",
                vec![
                    ("name", Length(1, MAX_NAME_CHARS)),
                    ("note", Length(0, MAX_NOTE_CHARS)),
                ],
            ),
            (
                "SecretInput",
                vec![("secret", Length(MIN_SECRET_CHARS, MAX_SECRET_CHARS))],
            ),
            (
                "ReclaimInput",
                vec![
                    ("name", Length(1, MAX_NAME_CHARS)),
                    ("secret", Length(MIN_SECRET_CHARS, MAX_SECRET_CHARS)),
                ],
            ),
            ("CommentInput", vec![("text", Length(1, MAX_COMMENT_CHARS))]),
            ("FinalizeInput", vec![("note", Length(0, MAX_NOTE_CHARS))]),
            (
                "SuggestionRequest",
                vec![
                    ("q", Length(0, MAX_PLACE_NAME_CHARS)),
                    ("meetups", Items(handlers::MAX_SUGGESTION_MEETUPS)),
                ],
            ),
        ];
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (schema_name, limits) in table {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema_name)
            else {
                continue;
            };
            for (property, limit) in limits {
                if let Some(schema) = object.properties.get_mut(property) {
                    apply(schema, &limit);
                }
            }
        }
    }
}

fn clone_limit(entry: &(&'static str, Limit)) -> (&'static str, Limit) {
    let limit = match &entry.1 {
        Limit::Length(min, max) => Limit::Length(*min, *max),
        Limit::Items(max) => Limit::Items(*max),
        Limit::Enum(values) => Limit::Enum(values),
    };
    (entry.0, limit)
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as served. utoipa 5 writes link fields in snake case (`operation_id`), which
/// no OpenAPI tool reads; they are renamed to the specification's camel case here.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let responses = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let links = response
            .get_mut("links")
            .and_then(|links| links.as_object_mut())
            .into_iter()
            .flat_map(|links| links.values_mut())
            .filter_map(|link| link.as_object_mut());
        for link in links {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(from) {
                    link.insert(to.to_string(), value);
                }
            }
        }
    }
    doc
}

pub async fn serve() -> Json<serde_json::Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_problem_json_with_the_common_statuses_and_inputs_carry_limits() {
        let doc = document();
        let links = &doc["paths"]["/api/v1/meetups"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            links["patch_meetup"]["operationId"], "patch_meetup",
            "{links}"
        );
        assert_eq!(
            links["patch_meetup"]["parameters"]["header.Authorization"],
            "Bearer {$response.body#/adminToken}"
        );
        let patch = &doc["paths"]["/api/v1/meetups/{id}"]["patch"]["responses"];
        for status in [
            "400", "401", "403", "404", "413", "415", "422", "429", "503",
        ] {
            assert!(
                patch[status]["content"]["application/problem+json"].is_object(),
                "{status}: {}",
                patch[status]
            );
            assert!(patch[status]["content"]["application/json"].is_null());
        }
        let get = &doc["paths"]["/api/v1/meetups/{id}"]["get"]["responses"];
        assert!(get["401"].is_null(), "no token, no 401");
        assert!(get["413"].is_null(), "no body, no 413");
        let create = &doc["components"]["schemas"]["CreateMeetup"]["properties"];
        assert_eq!(create["title"]["maxLength"], 120);
        assert_eq!(create["title"]["minLength"], 1);
        assert_eq!(
            create["slotMinutes"]["enum"],
            serde_json::json!([15, 30, 60])
        );
        let place = &doc["components"]["schemas"]["PlaceInput"]["properties"];
        assert_eq!(place["link"]["maxLength"], 500, "{place}");
    }
}
