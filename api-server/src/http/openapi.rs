//! The OpenAPI document, generated from the handlers and types so it cannot drift.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
        handlers::list_comments,
        handlers::add_comment,
        handlers::delete_comment,
        handlers::finalize,
        handlers::event_ics,
        handlers::place_suggestions,
        handlers::suggest_places,
        super::live::live,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

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

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
