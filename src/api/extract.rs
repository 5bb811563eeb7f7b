//! Extractor configuration and the identity extractors. Failures of JSON,
//! query and path extraction come back in the project's error shape, and
//! handlers receive an `AuthUser` or `StaffUser` only for a valid caller.

use super::error::ApiError;
use super::AppState;
use crate::auth::{AuthError, Identity};
use crate::domain::FieldErrors;
use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::future::{ready, Ready};

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| json_error(err, limit).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let QueryPayloadError::Deserialize(e) = &err else {
            return ApiError::bad_request("invalid_query", err.to_string()).into();
        };
        let message = e.to_string();
        ApiError::BadRequest {
            code: "invalid_query",
            fields: fields_named_in(&message),
            message: format!("invalid query string: {message}"),
        }
        .into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        tracing::debug!(error = %err, "unparsable path segment");
        ApiError::NotFound("no such resource".into()).into()
    })
}

fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) => {
            let message = e.to_string();
            let code = if e.is_data() {
                "invalid_field"
            } else {
                "malformed_json"
            };
            ApiError::BadRequest {
                code,
                fields: fields_named_in(&message),
                message: format!("invalid JSON body: {message}"),
            }
        }
        other => ApiError::bad_request("malformed_json", format!("invalid JSON body: {other}")),
    }
}

/// serde names the offending field in backticks for unknown and missing
/// fields; surface it under `fields` so clients can point at the input.
pub(crate) fn fields_named_in(message: &str) -> FieldErrors {
    let mut fields = FieldErrors::new();
    let reason = if message.starts_with("unknown field") {
        "unknown field"
    } else if message.starts_with("missing field") {
        "this field is required"
    } else {
        return fields;
    };
    if let Some(name) = message.split('`').nth(1) {
        fields.add(name, reason);
    }
    fields
}

/// A JSON request body that must be an object. serde would also build a
/// struct from an array of its field values (`[null, true]`), which the
/// OpenAPI document does not allow and no client means; this refuses it.
/// Size, content type and syntax are checked by `web::Json` (see `json_config`).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Checked for syntax but kept as text: one typed parse follows,
        // with no `Value` tree built in between.
        let raw = web::Json::<Box<RawValue>>::from_request(req, payload);
        Box::pin(async move {
            let raw = raw.await?.into_inner();
            Ok(Json(from_object(raw.get())?))
        })
    }
}

/// Reads well-formed JSON text into `T`, refusing anything but an object.
fn from_object<T: DeserializeOwned>(json: &str) -> Result<T, ApiError> {
    if !json.trim_start().starts_with('{') {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_str(json).map_err(|e| {
        let message = e.to_string();
        ApiError::BadRequest {
            code: "invalid_field",
            fields: fields_named_in(&message),
            message: format!("invalid JSON body: {message}"),
        }
    })
}

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

/// The bearer token of a request, if it sent one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The caller a middleware already authenticated from this request's
/// bearer token (the rate limiter does, for throttled routes).
pub(crate) struct Authenticated(pub Identity);

fn authenticate(req: &HttpRequest) -> Result<Identity, ApiError> {
    if let Some(Authenticated(identity)) = req.extensions().get::<Authenticated>() {
        return Ok(identity.clone());
    }
    let token = bearer_token(req).ok_or(AuthError::Missing)?;
    Ok(state(req)?.accounts.authenticate(token)?)
}

/// A logged-in caller.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Identity);

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(AuthUser))
    }
}

/// A caller that sent a token, or nobody: `None` for anonymous requests.
/// A token that is present but invalid is still an error.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Identity>);

impl FromRequest for MaybeUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if bearer_token(req).is_none() {
            return ready(Ok(MaybeUser(None)));
        }
        ready(authenticate(req).map(|i| MaybeUser(Some(i))))
    }
}

/// A logged-in staff member; other users get 403.
#[derive(Debug, Clone)]
pub struct StaffUser(pub Identity);

impl FromRequest for StaffUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|identity| {
            if identity.user.is_staff {
                Ok(StaffUser(identity))
            } else {
                Err(ApiError::Forbidden("this action is for staff only".into()))
            }
        }))
    }
}

/// The client's address for throttling: the peer, or the first
/// X-Forwarded-For hop when the operator trusts their proxy.
pub fn client_address(req: &HttpRequest, trust_proxy: bool) -> String {
    if trust_proxy {
        if let Some(ip) = req.connection_info().realip_remote_addr() {
            return ip.to_owned();
        }
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The `Idempotency-Key` header, if sent; a malformed one is a 400.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// A JSON body read as bytes (so its hash can bind an Idempotency-Key),
/// with the same errors as the JSON extractor.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let raw: &RawValue = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        fields: FieldErrors::new(),
        message: format!("invalid JSON body: {e}"),
    })?;
    from_object(raw.get())
}
