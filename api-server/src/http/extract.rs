//! Extractors whose rejections are problem JSON, and the bearer token.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// A JSON object body with problem-JSON rejections (400 malformed, 413, 415, 422). A JSON array
/// is refused where an object is expected (serde would read it as the fields in order).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        JsonBody::from_request(request, state)
            .await?
            .parse()
            .map(ApiJson)
    }
}

/// The raw JSON object body, checked (content type, size, an object) but not yet parsed, so a
/// handler can authenticate first and parse after: a request without a valid token gets 401
/// whatever its body.
#[derive(Debug)]
pub struct JsonBody(Bytes);

impl JsonBody {
    /// The body as `T`: 400 if it is no JSON, 422 if it is no object or does not fit `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        let bytes = &self.0;
        let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
        match first {
            // Plain serde_json first: axum's parse tracks the path of every field (a string per
            // map key) only to name the field in an error, so it runs again just for that.
            Some(b'{') => match serde_json::from_slice::<T>(bytes) {
                Ok(value) => Ok(value),
                Err(_) => Ok(axum::Json::<T>::from_bytes(bytes)?.0),
            },
            Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
                if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() =>
            {
                Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation-failed",
                    "The body must be a JSON object.",
                ))
            }
            _ => {
                let _ = axum::Json::<serde_json::Value>::from_bytes(bytes)?;
                Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-body",
                    "The body is not valid JSON.",
                ))
            }
        }
    }
}

fn is_json_content_type(request: &Request) -> bool {
    let Some(value) = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(&request) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body-too-large",
                        "The request body is larger than this API accepts.",
                    )
                } else {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "malformed-body",
                        format!("The body could not be read: {}", rejection.body_text()),
                    )
                }
            })?;
        Ok(Self(bytes))
    }
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct ApiPath<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct ApiQuery<T>(pub T);

/// The `Authorization: Bearer <token>` value, if any. Absence is decided per route (401).
#[derive(Debug, Clone, Default)]
pub struct Bearer(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty() && token.len() <= 128)
            .map(str::to_string);
        Ok(Bearer(token))
    }
}
