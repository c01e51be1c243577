//! RFC 9457 problem details for every error the API returns, including axum's own rejections.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DomainError, FieldError};
use crate::store::StoreError;

const PROBLEM_BASE: &str = "https://beermeetup.io/problems/";

/// `application/problem+json` body.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProblemBody {
    /// "about:blank" or `https://beermeetup.io/problems/<slug>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// A sentence a person understands.
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub slug: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "This needs the link you got when you created or joined the meetup (a bearer token); the one sent is missing or not valid here.",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn meetup_not_found(id: &str) -> Self {
        Self::not_found(format!("There is no meetup with id \"{id}\"."))
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("Too many requests from your address; try again in {retry_after_secs} s."),
            )
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("{PROBLEM_BASE}{}", self.slug),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<DomainError> for Problem {
    fn from(error: DomainError) -> Self {
        let detail = error.to_string();
        match error {
            DomainError::Invalid(errors) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                summarize(&errors),
            )
            .with_errors(errors),
            DomainError::NotFound { field, .. } => Problem::not_found(detail.clone()).with_errors(
                field
                    .map(|f| vec![FieldError::new(f, detail)])
                    .unwrap_or_default(),
            ),
            DomainError::NameTaken(_) => Problem::new(StatusCode::CONFLICT, "name-taken", detail)
                .with_errors(vec![FieldError::new("name", "is already taken")]),
            DomainError::NotOpen(_) => {
                Problem::new(StatusCode::CONFLICT, "meetup-not-open", detail)
            }
            DomainError::NotFinalized => {
                Problem::new(StatusCode::CONFLICT, "not-finalized", detail)
            }
            DomainError::Full(_) => Problem::new(StatusCode::CONFLICT, "limit-reached", detail),
            DomainError::PlaceInDecision => {
                Problem::new(StatusCode::CONFLICT, "place-in-decision", detail)
            }
            DomainError::Forbidden(_) => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
        }
    }
}

fn summarize(errors: &[FieldError]) -> String {
    match errors {
        [only] => format!("{} {}.", only.field, only.message),
        _ => format!(
            "{} fields are not valid: {}.",
            errors.len(),
            errors
                .iter()
                .map(|e| e.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::MeetupNotFound => {
                Problem::not_found("That meetup does not exist (any more).")
            }
            StoreError::NameTaken => DomainError::NameTaken(String::new()).into(),
            StoreError::Full(what) => DomainError::Full(what).into(),
            StoreError::Backend(message) => {
                tracing::error!(%message, "store call failed");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "The database is not reachable right now; please try again shortly.",
                )
            }
        }
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let detail = rejection.body_text();
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                status,
                "body-too-large",
                "The request body is larger than this API accepts.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(
                status,
                "unsupported-media-type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => Problem::new(status, "validation-failed", detail),
            _ => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-body",
                format!("The body is not valid JSON: {detail}"),
            ),
        }
    }
}

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "bad-path", rejection.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "bad-query", rejection.body_text())
    }
}
