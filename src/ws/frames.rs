//! The frames of protocol 1 (protocol/README.md): typed requests parsed
//! from text frames, the replies and pushes rendered back, and the error
//! codes. A frame that does not parse is answered with an error naming why,
//! echoing its `id` whenever one could be read.

use crate::api::error::{ApiError, ErrorDetail};
use crate::domain::FieldErrors;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

pub const PROTOCOL_VERSION: u32 = 1;
const MAX_ID_CHARS: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub token: Option<String>,
    pub cart_token: Option<String>,
    pub protocol: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductRef {
    product_id: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    product_id: u64,
    quantity: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetQuantity {
    product_id: u64,
    quantity: i64,
}

/// Every request a client may send.
#[derive(Debug)]
pub enum Request {
    Auth(Auth),
    Ping,
    CartGet,
    CartAdd { product_id: u64, quantity: i64 },
    CartSetQuantity { product_id: u64, quantity: i64 },
    CartRemove { product_id: u64 },
    CartClear,
    ProductWatch { product_id: u64 },
    ProductUnwatch { product_id: u64 },
    AdminSubscribe,
    AdminUnsubscribe,
}

/// Why a text frame is not a request.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Malformed(String),
    #[error("{message}")]
    Invalid {
        message: String,
        fields: FieldErrors,
    },
    #[error("unknown message type `{0}`")]
    UnknownType(String),
}

/// Every error a request can get, mapped to its code in `detail`.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("binary frames are not supported; send JSON text frames")]
    Binary,
    #[error("frames are limited to {0} bytes")]
    FrameTooLarge(usize),
    #[error("fragmented messages are not supported; send each JSON frame whole")]
    Fragmented,
    #[error("authenticate first: send an `auth` frame")]
    NotAuthenticated,
    #[error("this message is for staff only")]
    Forbidden,
    #[error("too many requests; wait {} ms", .0.as_millis().max(1))]
    RateLimited(Duration),
    #[error("too many requests still running on this socket; wait for their replies")]
    Busy,
    #[error("at most {0} products may be watched on one socket")]
    TooManyWatches(usize),
    #[error("this socket belongs to another user; open a new socket to switch users")]
    UserMismatch,
    #[error(
        "protocol version {0} is not supported; this server speaks version {PROTOCOL_VERSION}"
    )]
    UnsupportedVersion(u32),
    #[error("this user already has {0} live sockets open")]
    TooManySessions(usize),
    #[error("unknown or expired cart token")]
    UnknownCartToken,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl WsError {
    pub fn detail(&self) -> ErrorDetail {
        let code = match self {
            WsError::Frame(FrameError::Malformed(_)) => "malformed_json",
            WsError::Frame(FrameError::Invalid { .. }) => "invalid_frame",
            WsError::Frame(FrameError::UnknownType(_)) => "unknown_type",
            WsError::Binary | WsError::Fragmented => "unsupported_frame",
            WsError::FrameTooLarge(_) => "frame_too_large",
            WsError::NotAuthenticated => "not_authenticated",
            WsError::Forbidden => "forbidden",
            WsError::RateLimited(_) | WsError::Busy => "rate_limited",
            WsError::TooManyWatches(_) => "too_many_watches",
            WsError::UserMismatch => "user_mismatch",
            WsError::UnsupportedVersion(_) => "unsupported_version",
            WsError::TooManySessions(_) => "too_many_sessions",
            WsError::UnknownCartToken => "invalid_token",
            WsError::Api(api) => return api.detail(),
        };
        let fields = match self {
            WsError::Frame(FrameError::Invalid { fields, .. }) if !fields.is_empty() => {
                Some(fields.0.clone())
            }
            _ => None,
        };
        ErrorDetail {
            code: code.to_owned(),
            message: self.to_string(),
            fields,
        }
    }
}

/// Reads a text frame: its `id` (if one could be read) and the request.
pub fn parse(text: &str) -> (Value, Result<Request, FrameError>) {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            return (
                Value::Null,
                Err(FrameError::Malformed(format!("the frame is not JSON: {e}"))),
            )
        }
    };
    let Value::Object(mut fields) = value else {
        return (
            Value::Null,
            Err(FrameError::Malformed(
                "a frame must be a JSON object".into(),
            )),
        );
    };
    let id = match fields.remove("id") {
        None | Some(Value::Null) => Value::Null,
        Some(id) if valid_id(&id) => id,
        Some(_) => {
            return (
                Value::Null,
                Err(FrameError::Invalid {
                    message: "`id` must be a string of at most 64 characters or an integer".into(),
                    fields: FieldErrors::single("id", "must be a short string or an integer"),
                }),
            )
        }
    };
    let kind = match fields.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => {
            return (
                id,
                Err(FrameError::Malformed(
                    "a frame needs a string `type`".into(),
                )),
            )
        }
    };
    (id, request(&kind, fields))
}

fn valid_id(id: &Value) -> bool {
    match id {
        Value::String(s) => s.chars().count() <= MAX_ID_CHARS,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

fn request(kind: &str, fields: Map<String, Value>) -> Result<Request, FrameError> {
    let fields = Value::Object(fields);
    Ok(match kind {
        "auth" => Request::Auth(body(kind, fields)?),
        "ping" => body::<NoFields>(kind, fields).map(|_| Request::Ping)?,
        "cart.get" => body::<NoFields>(kind, fields).map(|_| Request::CartGet)?,
        "cart.add" => {
            let add: Add = body(kind, fields)?;
            Request::CartAdd {
                product_id: add.product_id,
                quantity: add.quantity.unwrap_or(1),
            }
        }
        "cart.set_quantity" => {
            let set: SetQuantity = body(kind, fields)?;
            Request::CartSetQuantity {
                product_id: set.product_id,
                quantity: set.quantity,
            }
        }
        "cart.remove" => Request::CartRemove {
            product_id: body::<ProductRef>(kind, fields)?.product_id,
        },
        "cart.clear" => body::<NoFields>(kind, fields).map(|_| Request::CartClear)?,
        "product.watch" => Request::ProductWatch {
            product_id: body::<ProductRef>(kind, fields)?.product_id,
        },
        "product.unwatch" => Request::ProductUnwatch {
            product_id: body::<ProductRef>(kind, fields)?.product_id,
        },
        "admin.subscribe" => body::<NoFields>(kind, fields).map(|_| Request::AdminSubscribe)?,
        "admin.unsubscribe" => body::<NoFields>(kind, fields).map(|_| Request::AdminUnsubscribe)?,
        other => return Err(FrameError::UnknownType(other.chars().take(64).collect())),
    })
}

fn body<T: DeserializeOwned>(kind: &str, fields: Value) -> Result<T, FrameError> {
    serde_json::from_value(fields).map_err(|e| {
        let message = e.to_string();
        FrameError::Invalid {
            fields: crate::api::extract::fields_named_in(&message),
            message: format!("invalid `{kind}` frame: {message}"),
        }
    })
}

#[derive(Serialize)]
struct Reply<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorDetail>,
}

#[derive(Serialize)]
struct Push<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a T,
}

#[derive(Serialize)]
pub struct Hello {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub protocol: u32,
    pub auth_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub max_frame_bytes: usize,
}

fn render(value: &impl Serialize) -> String {
    // Our own views always serialize; an empty object beats a panic if not.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

pub fn ok(id: &Value, data: &impl Serialize) -> String {
    render(&Reply {
        kind: "ok",
        id,
        data: Some(data),
        error: None,
    })
}

pub fn error(id: &Value, error: &WsError) -> String {
    render(&Reply::<()> {
        kind: "error",
        id,
        data: None,
        error: Some(&error.detail()),
    })
}

pub fn push(kind: &str, data: &impl Serialize) -> String {
    render(&Push { kind, data })
}

pub fn hello(hello: &Hello) -> String {
    render(hello)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_that_are_not_requests_say_why_and_keep_their_id() {
        let cases: [(&str, Value, &str, &str); 8] = [
            ("{", Value::Null, "malformed_json", "not JSON"),
            ("[1]", Value::Null, "malformed_json", "an array"),
            (r#"{"id": 3}"#, Value::from(3), "malformed_json", "no type"),
            (
                r#"{"type": 5, "id": "x"}"#,
                Value::from("x"),
                "malformed_json",
                "type not a string",
            ),
            (
                r#"{"type": "nope", "id": 1}"#,
                Value::from(1),
                "unknown_type",
                "unknown type",
            ),
            (
                r#"{"type": "ping", "id": 1.5}"#,
                Value::Null,
                "invalid_frame",
                "fractional id",
            ),
            (
                r#"{"type": "cart.add", "product_id": "7"}"#,
                Value::Null,
                "invalid_frame",
                "mistyped field",
            ),
            (
                r#"{"type": "ping", "extra": true}"#,
                Value::Null,
                "invalid_frame",
                "unknown field",
            ),
        ];
        for (text, id, code, why) in cases {
            let (got_id, parsed) = parse(text);
            let error = WsError::from(parsed.expect_err(why));
            assert_eq!(error.detail().code, code, "{why}");
            assert_eq!(got_id, id, "{why}");
        }
    }

    #[test]
    fn a_cart_add_without_quantity_adds_one() {
        let (_, parsed) = parse(r#"{"type": "cart.add", "product_id": 9}"#);
        assert!(matches!(
            parsed,
            Ok(Request::CartAdd {
                product_id: 9,
                quantity: 1
            })
        ));
    }
}
