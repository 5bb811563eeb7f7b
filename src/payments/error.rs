//! Errors of the payment provider layer. The API maps them to HTTP in
//! `api::error`: a refusal is a 502 that names the provider's reason, a bad
//! signature or malformed webhook is a 400, an unreachable provider a 503.
//! Provider credentials and raw responses are logged, never sent to clients.

/// A provider name as shown to users: `stripe`, `paypal`, `razorpay`, `test`.
pub type ProviderName = &'static str;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered and said no: declined card, refund refused, ...
    #[error("{provider} refused: {reason}")]
    Refused {
        provider: ProviderName,
        reason: String,
    },
    /// The money has not settled yet (e.g. a PayPal capture in review); the
    /// webhook finishes it.
    #[error("{provider} has not completed the payment yet: {reason}")]
    Pending {
        provider: ProviderName,
        reason: String,
    },
    /// A webhook or callback signature is missing, wrong or too old.
    #[error("the signature could not be verified")]
    BadSignature,
    /// A signed webhook whose content cannot be understood.
    #[error("malformed webhook: {0}")]
    BadEvent(String),
    #[error("{provider} is unavailable: {detail}")]
    Unavailable {
        provider: ProviderName,
        detail: String,
    },
    #[error("{provider} did not answer in time")]
    Timeout { provider: ProviderName },
    /// Our credentials or settings are wrong (the provider said 401/403, or a
    /// needed secret is absent).
    #[error("{provider} is misconfigured: {detail}")]
    Misconfigured {
        provider: ProviderName,
        detail: String,
    },
    /// The provider answered something we do not understand.
    #[error("unexpected answer from {provider}: {detail}")]
    Protocol {
        provider: ProviderName,
        detail: String,
    },
    /// The named provider is unknown or has no credentials configured.
    #[error("payment provider '{0}' is not available")]
    NotEnabled(String),
    /// The provider has no such operation (e.g. capture on Stripe).
    #[error("{provider} does not support {operation}")]
    Unsupported {
        provider: ProviderName,
        operation: &'static str,
    },
}

impl ProviderError {
    pub(crate) fn protocol(provider: ProviderName, detail: impl Into<String>) -> Self {
        ProviderError::Protocol {
            provider,
            detail: detail.into(),
        }
    }

    pub(crate) fn bad_event(detail: impl Into<String>) -> Self {
        ProviderError::BadEvent(detail.into())
    }
}
