//! The built-in `test` provider for the demo shop and for tests: no money
//! moves and no outside service is called. Its pay page (`/pay/test/{id}`,
//! rendered by `render_pay_page`) offers Pay and Decline; the choice comes
//! back as a callback signed exactly like a Stripe webhook (HMAC-SHA256 over
//! `"{t}.{body}"` in a `Storefront-Test-Signature` header) with a secret kept
//! in the data directory.
//!
//! Invariant kept here: the test provider reaches an order only through
//! `verify_webhook`, the same verified path as the real providers; there is
//! no shortcut that marks a payment paid.

use super::signature::{
    hmac_sha256_hex, stripe_signature_header, verify_hmac_sha256_hex, verify_stripe_signature,
};
use super::{
    header, int, text, Clock, CreatePayment, Created, EventKind, NextAction, ProviderError,
    ProviderName, RefundPayment, Refunded, WebhookEvent, SIGNATURE_TOLERANCE_SECS,
};
use crate::domain::money::{format_minor, Currency};
use crate::domain::payment::{Payment, PaymentStatus};
use crate::domain::PaymentId;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

pub const NAME: ProviderName = "test";
/// The header carrying the callback signature.
pub const SIGNATURE_HEADER: &str = "storefront-test-signature";
const SECRET_FILE: &str = "test_payments_secret";

/// The callback secret of this data directory, created (0600) on first use.
pub fn load_or_create_secret(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 64 => Ok(text.trim().to_owned()),
        Ok(_) => Err(std::io::Error::other(format!(
            "{} is too short",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let secret = hex::encode(secret);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path)?;
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            Ok(secret)
        }
        Err(e) => Err(e),
    }
}

/// The shopper's choice on the pay page (`outcome=pay` or `outcome=decline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    Pay,
    Decline,
}

/// The pay page's form body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayForm {
    pub outcome: TestOutcome,
}

/// A callback as the test provider sends it: deliver `body` with `headers()`
/// to `verify_webhook` (in process, or over HTTP to the webhook route).
#[derive(Debug, Clone)]
pub struct SignedCallback {
    pub body: Vec<u8>,
    /// The `Storefront-Test-Signature` value.
    pub signature: String,
}

impl SignedCallback {
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&self.signature) {
            headers.insert(HeaderName::from_static(SIGNATURE_HEADER), value);
        }
        headers
    }
}

pub struct TestProvider {
    secret: String,
    clock: Clock,
    tolerance_secs: i64,
}

impl TestProvider {
    pub fn new(secret: String, clock: Clock) -> Self {
        Self {
            secret,
            clock,
            tolerance_secs: SIGNATURE_TOLERANCE_SECS,
        }
    }

    /// Deterministic, so a retried create names the same transaction.
    pub fn transaction_id(payment_id: PaymentId) -> String {
        format!("test_{payment_id}")
    }

    pub fn create(&self, request: &CreatePayment) -> Result<Created, ProviderError> {
        Ok(Created {
            transaction_id: Self::transaction_id(request.payment_id),
            next_action: self.next_action(request.payment_id),
        })
    }

    pub fn next_action(&self, payment_id: PaymentId) -> NextAction {
        NextAction::Redirect {
            url: format!(
                "/pay/test/{payment_id}?token={}",
                self.page_token(payment_id)
            ),
        }
    }

    /// The pay link's token. Payment ids are sequential, so without it
    /// anyone could pay or decline another shopper's test payment.
    pub fn page_token(&self, payment_id: PaymentId) -> String {
        let id = payment_id.to_string();
        hmac_sha256_hex(self.secret.as_bytes(), &[b"pay-page:", id.as_bytes()])
    }

    /// Constant-time check of a pay link's token.
    pub fn check_page_token(&self, payment_id: PaymentId, token: &str) -> bool {
        let id = payment_id.to_string();
        verify_hmac_sha256_hex(
            self.secret.as_bytes(),
            &[b"pay-page:", id.as_bytes()],
            token,
        )
    }

    pub fn refund(&self, request: &RefundPayment) -> Refunded {
        Refunded {
            refund_id: format!("test_refund_{}", request.reference),
            pending: false,
        }
    }

    /// The signed callback for the shopper's choice on the pay page.
    pub fn sign_outcome(&self, payment: &Payment, outcome: TestOutcome) -> SignedCallback {
        let mut id = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let now = (self.clock)();
        let body = json!({
            "id": format!("evt_test_{}", hex::encode(id)),
            "type": match outcome {
                TestOutcome::Pay => "payment.succeeded",
                TestOutcome::Decline => "payment.failed",
            },
            "transaction_id": payment.transaction_id,
            "amount": payment.amount_minor,
            "currency": payment.currency,
            "created": now,
        })
        .to_string()
        .into_bytes();
        SignedCallback {
            signature: stripe_signature_header(&self.secret, now, &body),
            body,
        }
    }

    /// Verifies a callback's signature and age, then normalises it.
    pub fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ProviderError> {
        let signature = header(headers, SIGNATURE_HEADER).ok_or(ProviderError::BadSignature)?;
        verify_stripe_signature(
            &self.secret,
            signature,
            body,
            (self.clock)(),
            self.tolerance_secs,
        )?;
        let event: Value = serde_json::from_slice(body)
            .map_err(|e| ProviderError::bad_event(format!("not JSON: {e}")))?;
        let id = text(&event, "/id").ok_or_else(|| ProviderError::bad_event("no event id"))?;
        let event_type =
            text(&event, "/type").ok_or_else(|| ProviderError::bad_event("no event type"))?;
        let kind = match event_type.as_str() {
            "payment.succeeded" => EventKind::Succeeded,
            "payment.failed" => EventKind::Failed,
            _ => EventKind::Other,
        };
        Ok(WebhookEvent {
            provider: NAME,
            provider_event_id: id,
            event_type,
            kind,
            transaction_id: text(&event, "/transaction_id"),
            settlement_id: None,
            amount: int(&event, "/amount"),
            currency: text(&event, "/currency").map(|c| c.to_ascii_uppercase()),
            failure_reason: (kind == EventKind::Failed)
                .then(|| "declined on the test pay page".to_owned()),
        })
    }
}

/// The self-contained HTML pay page: no scripts, no external assets, every
/// value escaped. Pay and Decline POST `outcome` back to the same link
/// (`token` is the page token).
pub fn render_pay_page(payment: &Payment, token: &str) -> String {
    let amount = Currency::parse(&payment.currency)
        .map(|c| format_minor(payment.amount_minor, c))
        .unwrap_or_else(|_| payment.amount_minor.to_string());
    let action = format!("/pay/test/{}?token={token}", payment.id);
    let open = matches!(
        payment.status,
        PaymentStatus::Created | PaymentStatus::Pending | PaymentStatus::Failed
    );
    let controls = if open {
        format!(
            r#"<form method="post" action="{action}">
<button type="submit" name="outcome" value="pay">Pay {amount} {currency}</button>
<button type="submit" name="outcome" value="decline" class="decline">Decline</button>
</form>"#,
            action = escape(&action),
            amount = escape(&amount),
            currency = escape(&payment.currency),
        )
    } else {
        format!(
            "<p>This payment is {}.</p>",
            escape(status_word(payment.status))
        )
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test payment</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem;cursor:pointer}}.decline{{background:#eee}}
.note{{color:#666;font-size:.9rem}}</style></head>
<body><h1>Test payment</h1>
<p>Order {order} &middot; payment {payment}</p>
<p><strong>{amount} {currency}</strong></p>
{controls}
<p class="note">Test provider: no money moves. Your choice reaches the shop as a signed callback.</p>
</body></html>
"#,
        order = escape(&payment.order_id.to_string()),
        payment = escape(&payment.id.to_string()),
        amount = escape(&amount),
        currency = escape(&payment.currency),
    )
}

fn status_word(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Created => "created",
        PaymentStatus::Pending => "pending",
        PaymentStatus::Succeeded => "paid",
        PaymentStatus::Failed => "declined",
        PaymentStatus::Refunded => "refunded",
    }
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderId;
    use std::sync::Arc;

    fn payment(currency: &str) -> Payment {
        Payment {
            id: PaymentId(42),
            order_id: OrderId(7),
            amount_minor: 1999,
            currency: currency.into(),
            provider: NAME.into(),
            transaction_id: TestProvider::transaction_id(PaymentId(42)),
            settlement_id: None,
            status: PaymentStatus::Created,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_pay_page_escapes_everything_and_posts_to_itself() {
        let page = render_pay_page(&payment("<script>"), "abc");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains(r#"action="/pay/test/42?token=abc""#));
        assert!(page.contains(r#"value="pay""#) && page.contains(r#"value="decline""#));
        assert!(!page.contains("http"), "no external assets");
        let mut paid = payment("USD");
        paid.status = PaymentStatus::Succeeded;
        assert!(!render_pay_page(&paid, "abc").contains("<form"));
        assert!(render_pay_page(&payment("USD"), "abc").contains("19.99 USD"));
    }

    #[test]
    fn callbacks_verify_only_with_this_secret_and_within_tolerance() {
        let now = Arc::new(std::sync::atomic::AtomicI64::new(1_700_000_000));
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || clock_now.load(std::sync::atomic::Ordering::SeqCst));
        let provider = TestProvider::new("a".repeat(64), clock.clone());
        let callback = provider.sign_outcome(&payment("USD"), TestOutcome::Pay);
        let event = provider
            .verify_webhook(&callback.headers(), &callback.body)
            .unwrap();
        assert_eq!(event.kind, EventKind::Succeeded);
        assert_eq!(event.transaction_id.as_deref(), Some("test_42"));
        assert_eq!(
            (event.amount, event.currency.as_deref()),
            (Some(1999), Some("USD"))
        );

        let other = TestProvider::new("b".repeat(64), clock);
        assert!(matches!(
            other.verify_webhook(&callback.headers(), &callback.body),
            Err(ProviderError::BadSignature)
        ));
        let mut tampered = callback.body.clone();
        tampered.extend_from_slice(b" ");
        assert!(provider
            .verify_webhook(&callback.headers(), &tampered)
            .is_err());
        assert!(provider
            .verify_webhook(&HeaderMap::new(), &callback.body)
            .is_err());
        now.fetch_add(301, std::sync::atomic::Ordering::SeqCst);
        assert!(
            provider
                .verify_webhook(&callback.headers(), &callback.body)
                .is_err(),
            "expired"
        );
    }

    #[test]
    fn the_secret_is_created_once_per_data_dir_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(load_or_create_secret(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
