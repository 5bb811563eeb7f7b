//! Prints this crate's payment signatures for the cases given on stdin, so
//! `tests/crosscheck/payments_signatures.py` can check them against the
//! providers' official libraries.
//!
//! Input (one JSON object): `{"stripe": [{"secret", "timestamp", "body"}],
//! "razorpay_payment": [{"key_secret", "order_id", "payment_id"}],
//! "razorpay_webhook": [{"secret", "body"}]}`. Output: the same lists, each
//! case with a `signature` (Stripe: the full `Stripe-Signature` header).

use serde_json::{json, Value};
use std::io::Read;
use storefront::payments::signature::{
    razorpay_payment_signature, razorpay_webhook_signature, stripe_signature_header,
};

fn field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name].as_str().unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let cases: Value = serde_json::from_str(&input)?;
    let list = |name: &str| cases[name].as_array().cloned().unwrap_or_default();
    let stripe: Vec<Value> = list("stripe")
        .into_iter()
        .map(|c| {
            let header = stripe_signature_header(
                field(&c, "secret"),
                c["timestamp"].as_i64().unwrap_or_default(),
                field(&c, "body").as_bytes(),
            );
            json!({"secret": c["secret"], "timestamp": c["timestamp"], "body": c["body"], "signature": header})
        })
        .collect();
    let payment: Vec<Value> = list("razorpay_payment")
        .into_iter()
        .map(|c| {
            let signature = razorpay_payment_signature(
                field(&c, "key_secret"),
                field(&c, "order_id"),
                field(&c, "payment_id"),
            );
            json!({"key_secret": c["key_secret"], "order_id": c["order_id"], "payment_id": c["payment_id"], "signature": signature})
        })
        .collect();
    let webhook: Vec<Value> = list("razorpay_webhook")
        .into_iter()
        .map(|c| {
            let signature =
                razorpay_webhook_signature(field(&c, "secret"), field(&c, "body").as_bytes());
            json!({"secret": c["secret"], "body": c["body"], "signature": signature})
        })
        .collect();
    println!(
        "{}",
        json!({"stripe": stripe, "razorpay_payment": payment, "razorpay_webhook": webhook})
    );
    Ok(())
}
