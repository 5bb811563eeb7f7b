//! Pure signature functions (no I/O), shared by the providers and the
//! cross-check tool. Every comparison of a received signature goes through
//! `Mac::verify_slice`, which is constant-time, so response timing never
//! tells an attacker how many leading bytes of a forgery were right.

use super::ProviderError;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac
}

/// HMAC-SHA256 over the concatenation of `parts`, as lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(mac(key, parts).finalize().into_bytes())
}

/// True when `given_hex` is the HMAC-SHA256 of `parts` (constant-time).
pub fn verify_hmac_sha256_hex(key: &[u8], parts: &[&[u8]], given_hex: &str) -> bool {
    match hex::decode(given_hex.trim()) {
        Ok(given) => mac(key, parts).verify_slice(&given).is_ok(),
        Err(_) => false,
    }
}

/// The `v1` value of a Stripe-style signature: HMAC-SHA256 over `"{t}.{body}"`.
pub fn stripe_v1(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    hmac_sha256_hex(secret.as_bytes(), &[t.as_bytes(), b".", body])
}

/// A `Stripe-Signature` header value for `body` (used by the test provider
/// and tests; Stripe itself signs real webhooks).
pub fn stripe_signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", stripe_v1(secret, timestamp, body))
}

/// Verifies a `Stripe-Signature` header (`t=...,v1=...[,v1=...][,v0=...]`):
/// any `v1` may match (Stripe sends one per active secret while rolling),
/// other schemes are ignored, and `t` must be within `tolerance_secs` of
/// `now`. Returns the signed timestamp.
pub fn verify_stripe_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, ProviderError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(ProviderError::BadSignature)?;
    let t = timestamp.to_string();
    let parts: [&[u8]; 3] = [t.as_bytes(), b".", body];
    // Check every candidate (no early exit) so timing does not depend on which matched.
    let matched = candidates.iter().fold(false, |found, candidate| {
        verify_hmac_sha256_hex(secret.as_bytes(), &parts, candidate) | found
    });
    if !matched {
        return Err(ProviderError::BadSignature);
    }
    // Checked after the MAC so a replayed old event with a valid signature is
    // still refused, and a forged one learns nothing about the clock.
    if (now - timestamp).abs() > tolerance_secs {
        return Err(ProviderError::BadSignature);
    }
    Ok(timestamp)
}

/// Razorpay's payment signature: hex HMAC-SHA256(key_secret, order_id + "|" + payment_id).
pub fn razorpay_payment_signature(key_secret: &str, order_id: &str, payment_id: &str) -> String {
    hmac_sha256_hex(
        key_secret.as_bytes(),
        &[order_id.as_bytes(), b"|", payment_id.as_bytes()],
    )
}

pub fn verify_razorpay_payment_signature(
    key_secret: &str,
    order_id: &str,
    payment_id: &str,
    signature: &str,
) -> bool {
    verify_hmac_sha256_hex(
        key_secret.as_bytes(),
        &[order_id.as_bytes(), b"|", payment_id.as_bytes()],
        signature,
    )
}

/// Razorpay's webhook signature: hex HMAC-SHA256(webhook_secret, raw body).
pub fn razorpay_webhook_signature(webhook_secret: &str, body: &[u8]) -> String {
    hmac_sha256_hex(webhook_secret.as_bytes(), &[body])
}

pub fn verify_razorpay_webhook_signature(
    webhook_secret: &str,
    body: &[u8],
    signature: &str,
) -> bool {
    verify_hmac_sha256_hex(webhook_secret.as_bytes(), &[body], signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with Python's hmac module, e.g.
    // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test_secret",b"1700000000.{\"id\":\"evt_1\"}",hashlib.sha256).hexdigest())'
    const STRIPE_SECRET: &str = "whsec_test_secret";
    const STRIPE_BODY: &[u8] = br#"{"id":"evt_1"}"#;
    const STRIPE_T: i64 = 1_700_000_000;
    const STRIPE_V1: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
    const RAZORPAY_PAYMENT_SIG: &str =
        "83aed3fb7f5346c030faba88472c9afb64db45c6738f342fd45927a74427556d";
    const RAZORPAY_WEBHOOK_SIG: &str =
        "e06c9b7e33d38f47008efdf70c03b31a2120e249976ff6d004a4a00b52acae66";

    #[test]
    fn stripe_v1_matches_an_independent_computation() {
        assert_eq!(stripe_v1(STRIPE_SECRET, STRIPE_T, STRIPE_BODY), STRIPE_V1);
    }

    #[test]
    fn stripe_headers_verify_with_any_v1_and_within_tolerance_only() {
        let good = format!("t={STRIPE_T},v1={STRIPE_V1}");
        let wrong = "0".repeat(64);
        let cases: [(String, i64, bool, &str); 8] = [
            (good.clone(), STRIPE_T, true, "exact"),
            (good.clone(), STRIPE_T + 300, true, "at the tolerance edge"),
            (good.clone(), STRIPE_T + 301, false, "too old"),
            (good.clone(), STRIPE_T - 301, false, "too far in the future"),
            (
                format!("t={STRIPE_T},v1={wrong},v1={STRIPE_V1},v0=abc"),
                STRIPE_T,
                true,
                "second v1 matches",
            ),
            (
                format!("t={STRIPE_T},v0={STRIPE_V1}"),
                STRIPE_T,
                false,
                "only v0 is not enough",
            ),
            (
                format!("t={},v1={STRIPE_V1}", STRIPE_T + 1),
                STRIPE_T,
                false,
                "timestamp is signed",
            ),
            (format!("v1={STRIPE_V1}"), STRIPE_T, false, "no timestamp"),
        ];
        for (header, now, ok, why) in cases {
            let result = verify_stripe_signature(STRIPE_SECRET, &header, STRIPE_BODY, now, 300);
            assert_eq!(result.is_ok(), ok, "{why}: {header}");
        }
        let tampered = br#"{"id":"evt_2"}"#;
        assert!(verify_stripe_signature(STRIPE_SECRET, &good, tampered, STRIPE_T, 300).is_err());
        assert!(verify_stripe_signature("whsec_other", &good, STRIPE_BODY, STRIPE_T, 300).is_err());
    }

    #[test]
    fn razorpay_signatures_match_independent_computations() {
        assert_eq!(
            razorpay_payment_signature(
                "rzp_key_secret",
                "order_9A33XWu170gUtm",
                "pay_29QQoUBi66xm2f"
            ),
            RAZORPAY_PAYMENT_SIG
        );
        assert!(verify_razorpay_payment_signature(
            "rzp_key_secret",
            "order_9A33XWu170gUtm",
            "pay_29QQoUBi66xm2f",
            RAZORPAY_PAYMENT_SIG
        ));
        assert!(!verify_razorpay_payment_signature(
            "rzp_key_secret",
            "order_9A33XWu170gUtm",
            "pay_other",
            RAZORPAY_PAYMENT_SIG
        ));
        let body = br#"{"event":"payment.captured"}"#;
        assert_eq!(
            razorpay_webhook_signature("rzp_webhook_secret", body),
            RAZORPAY_WEBHOOK_SIG
        );
        assert!(verify_razorpay_webhook_signature(
            "rzp_webhook_secret",
            body,
            RAZORPAY_WEBHOOK_SIG
        ));
        assert!(!verify_razorpay_webhook_signature(
            "rzp_webhook_secret",
            body,
            "not hex"
        ));
        assert!(!verify_razorpay_webhook_signature(
            "rzp_webhook_secret",
            body,
            ""
        ));
    }
}
