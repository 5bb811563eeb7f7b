//! The HTTP plumbing every provider client shares: one reqwest client with
//! a timeout, and one mapping from transport failures and HTTP statuses to
//! `ProviderError`, so all providers fail the same way.

use super::error::{ProviderError, ProviderName};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A client whose every request gives up after `timeout`.
pub(crate) fn client(
    provider: ProviderName,
    timeout: Duration,
) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // Provider answers are never redirects; following one could leak the auth header.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("storefront/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::Misconfigured {
            provider,
            detail: format!("building the HTTP client: {e}"),
        })
}

/// A provider's answer: status and raw body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self, provider: ProviderName) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            tracing::warn!(provider, error = %e, body = %String::from_utf8_lossy(&self.body), "unreadable provider answer");
            ProviderError::protocol(provider, format!("unreadable answer: {e}"))
        })
    }
}

/// Sends a request; transport failures become `Timeout` or `Unavailable`.
pub(crate) async fn send(
    provider: ProviderName,
    request: reqwest::RequestBuilder,
) -> Result<Answer, ProviderError> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(provider, e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(provider, e))?;
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}

fn transport_error(provider: ProviderName, e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout { provider }
    } else {
        ProviderError::Unavailable {
            provider,
            detail: e.without_url().to_string(),
        }
    }
}

/// Maps a non-success status plus the provider's own reason text: 401/403
/// mean our credentials are wrong, 408/429/5xx that the provider cannot
/// serve now, any other 4xx that it refused this request for `reason`.
pub(crate) fn status_error(
    provider: ProviderName,
    status: StatusCode,
    reason: String,
) -> ProviderError {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            tracing::error!(provider, %status, %reason, "provider rejected our credentials");
            ProviderError::Misconfigured {
                provider,
                detail: format!("credentials rejected ({status})"),
            }
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => ProviderError::Unavailable {
            provider,
            detail: format!("{status}: {reason}"),
        },
        s if s.is_server_error() => ProviderError::Unavailable {
            provider,
            detail: format!("{status}: {reason}"),
        },
        _ => ProviderError::Refused { provider, reason },
    }
}

/// `base` + `path`, where `base` has no trailing slash (config trims it).
pub(crate) fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Percent-encodes one path segment (provider ids are normally [A-Za-z0-9_-]
/// but a webhook could name anything).
pub(crate) fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
