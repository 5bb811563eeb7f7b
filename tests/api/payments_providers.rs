//! The payment provider clients against small fake provider servers that
//! speak the same HTTP shapes as Stripe, PayPal and Razorpay, started on free
//! ports inside each test. They check what we send (auth, idempotency
//! headers, form and JSON fields) and how answers are mapped.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storefront::config::{PayPalSettings, PaymentSettings, RazorpaySettings, StripeSettings};
use storefront::domain::money::{Currency, Money};
use storefront::domain::payment::{Payment, PaymentStatus};
use storefront::domain::{OrderId, PaymentId};
use storefront::payments::signature::{
    razorpay_payment_signature, razorpay_webhook_signature, stripe_signature_header, stripe_v1,
};
use storefront::payments::test_provider::{render_pay_page, TestOutcome};
use storefront::payments::{
    idempotency_key_for, Clock, CreatePayment, EventKind, NextAction, ProviderError, Providers,
    RefundPayment,
};
use storefront::store::Store;

const NOW: i64 = 1_700_000_000;
const STRIPE_WEBHOOK_SECRET: &str = "whsec_fake_endpoint_secret";

/// One request as the fake provider saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).expect("form body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

type Respond = dyn Fn(&Seen) -> (u16, Value) + Send + Sync;

/// A fake provider: records every request and answers with `respond`.
pub struct Fake {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Fake {
    pub async fn start(respond: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) -> Fake {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Respond> = Arc::new(respond);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (server_seen, server_respond) = (seen.clone(), respond.clone());
        let server = HttpServer::new(move || {
            let seen = server_seen.clone();
            let respond = server_respond.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let seen = seen.clone();
                let respond = respond.clone();
                async move {
                    let request = Seen {
                        method: req.method().to_string(),
                        path: req.path().to_owned(),
                        headers: req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                            })
                            .collect(),
                        body: body.to_vec(),
                    };
                    let (status, answer) = respond(&request);
                    seen.lock().unwrap().push(request);
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .json(answer)
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Fake {
            base: format!("http://127.0.0.1:{port}"),
            seen,
            handle,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

fn fixed_clock(now: Arc<AtomicI64>) -> Clock {
    Arc::new(move || now.load(Ordering::SeqCst))
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").unwrap())
}

fn create_request(payment: u64, minor: i64) -> CreatePayment {
    CreatePayment {
        payment_id: PaymentId(payment),
        order_id: OrderId(7),
        amount: usd(minor),
        idempotency_key: idempotency_key_for(PaymentId(payment), "create"),
    }
}

fn no_providers() -> PaymentSettings {
    PaymentSettings {
        timeout: Duration::from_secs(5),
        ..PaymentSettings::default()
    }
}

fn providers(settings: PaymentSettings, data_dir: &Path, now: Arc<AtomicI64>) -> Providers {
    Providers::with_clock(&settings, data_dir, fixed_clock(now)).expect("providers build")
}

fn stripe_settings(base: &str) -> PaymentSettings {
    PaymentSettings {
        stripe: Some(StripeSettings {
            secret_key: "sk_test_fake".into(),
            webhook_secret: STRIPE_WEBHOOK_SECRET.into(),
            api_base: base.into(),
        }),
        ..no_providers()
    }
}

fn paypal_settings(base: &str) -> PaymentSettings {
    PaymentSettings {
        paypal: Some(PayPalSettings {
            client_id: "paypal-client".into(),
            client_secret: "paypal-secret".into(),
            webhook_id: Some("WH-FAKE-ID".into()),
            api_base: base.into(),
        }),
        ..no_providers()
    }
}

fn razorpay_settings(base: &str) -> PaymentSettings {
    PaymentSettings {
        razorpay: Some(RazorpaySettings {
            key_id: "rzp_test_key".into(),
            key_secret: "rzp_key_secret".into(),
            webhook_secret: Some("rzp_webhook_secret".into()),
            api_base: base.into(),
        }),
        ..no_providers()
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn pair(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), value.to_owned())
}

// ---------------------------------------------------------------- Stripe

#[actix_web::test]
async fn stripe_create_sends_only_accepted_form_fields_with_bearer_auth_and_idempotency_key() {
    let fake = Fake::start(|_| (200, json!({"id": "pi_123", "client_secret": "pi_123_secret_abc", "status": "requires_payment_method"}))).await;
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(
        stripe_settings(&fake.base),
        dir.path(),
        Arc::new(AtomicI64::new(NOW)),
    );
    let created = providers
        .get("stripe")
        .unwrap()
        .create(&create_request(41, 1999))
        .await
        .unwrap();
    assert_eq!(created.transaction_id, "pi_123");
    assert_eq!(
        created.next_action,
        NextAction::StripeConfirm {
            client_secret: "pi_123_secret_abc".into()
        }
    );
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/payment_intents")
    );
    assert_eq!(request.header("authorization"), Some("Bearer sk_test_fake"));
    assert_eq!(
        request.header("idempotency-key"),
        Some("storefront-create-41")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let mut form = request.form();
    form.sort();
    assert_eq!(
        form,
        vec![
            pair("amount", "1999"),
            pair("currency", "usd"),
            pair("metadata[order_id]", "7"),
            pair("metadata[payment_id]", "41"),
            pair("payment_method_types[]", "card"),
        ]
    );
    fake.stop().await;
}

#[actix_web::test]
async fn stripe_errors_map_to_refused_misconfigured_and_unavailable() {
    let fake = Fake::start(|r| match r.header("idempotency-key") {
        Some("storefront-create-1") => (
            402,
            json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}}),
        ),
        Some("storefront-create-2") => (401, json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****"}})),
        _ => (500, json!({"error": {"type": "api_error", "message": "boom"}})),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(
        stripe_settings(&fake.base),
        dir.path(),
        Arc::new(AtomicI64::new(NOW)),
    );
    let stripe = providers.get("stripe").unwrap();
    match stripe.create(&create_request(1, 1999)).await {
        Err(ProviderError::Refused {
            provider: "stripe",
            reason,
        }) => {
            assert!(
                reason.contains("Your card has insufficient funds."),
                "{reason}"
            );
            assert!(reason.contains("insufficient_funds"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        stripe.create(&create_request(2, 1999)).await,
        Err(ProviderError::Misconfigured { .. })
    ));
    assert!(matches!(
        stripe.create(&create_request(3, 1999)).await,
        Err(ProviderError::Unavailable { .. })
    ));
    fake.stop().await;
}

#[actix_web::test]
async fn stripe_refunds_name_the_payment_intent_and_a_refused_refund_carries_stripes_reason() {
    let fake = Fake::start(|r| {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&r.body).unwrap();
        if form.contains(&pair("payment_intent", "pi_done")) {
            (400, json!({"error": {"type": "invalid_request_error", "code": "charge_already_refunded", "message": "Charge ch_1 has already been refunded."}}))
        } else {
            (200, json!({"id": "re_1", "status": "succeeded", "payment_intent": "pi_123"}))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(
        stripe_settings(&fake.base),
        dir.path(),
        Arc::new(AtomicI64::new(NOW)),
    );
    let stripe = providers.get("stripe").unwrap();
    let refund = |reference: &str| RefundPayment {
        reference: reference.into(),
        amount: usd(1999),
        idempotency_key: idempotency_key_for(PaymentId(41), "refund"),
    };
    let refunded = stripe.refund(&refund("pi_123")).await.unwrap();
    assert_eq!(
        (refunded.refund_id.as_str(), refunded.pending),
        ("re_1", false)
    );
    let request = &fake.requests_to("/v1/refunds")[0];
    assert_eq!(
        request.header("idempotency-key"),
        Some("storefront-refund-41")
    );
    let mut form = request.form();
    form.sort();
    assert_eq!(
        form,
        vec![pair("amount", "1999"), pair("payment_intent", "pi_123")]
    );
    match stripe.refund(&refund("pi_done")).await {
        Err(ProviderError::Refused { reason, .. }) => {
            assert!(reason.contains("already been refunded"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    fake.stop().await;
}

fn stripe_event(kind: &str, object: Value) -> Vec<u8> {
    json!({"id": "evt_1", "object": "event", "type": kind, "data": {"object": object}})
        .to_string()
        .into_bytes()
}

#[actix_web::test]
async fn stripe_webhooks_verify_good_reject_bad_and_expired_and_accept_any_v1() {
    let now = Arc::new(AtomicI64::new(NOW));
    let dir = tempfile::tempdir().unwrap();
    // No request is made for webhooks, so the API base is never contacted.
    let providers = providers(
        stripe_settings("http://127.0.0.1:9"),
        dir.path(),
        now.clone(),
    );
    let stripe = providers.get("stripe").unwrap();
    let body = stripe_event(
        "payment_intent.succeeded",
        json!({"id": "pi_123", "object": "payment_intent", "amount": 1999, "amount_received": 1999, "currency": "usd"}),
    );
    let good = stripe_signature_header(STRIPE_WEBHOOK_SECRET, NOW - 10, &body);
    let event = stripe
        .verify_webhook(&headers(&[("stripe-signature", &good)]), &body)
        .await
        .unwrap();
    assert_eq!(event.kind, EventKind::Succeeded);
    assert_eq!(event.provider_event_id, "evt_1");
    assert_eq!(event.transaction_id.as_deref(), Some("pi_123"));
    assert_eq!(
        (event.amount, event.currency.as_deref()),
        (Some(1999), Some("USD"))
    );

    let rolled = format!(
        "t={NOW},v1={},v1={}",
        stripe_v1("whsec_old_secret", NOW, &body),
        stripe_v1(STRIPE_WEBHOOK_SECRET, NOW, &body)
    );
    assert!(stripe
        .verify_webhook(&headers(&[("stripe-signature", &rolled)]), &body)
        .await
        .is_ok());

    let forged = stripe_signature_header("whsec_attacker", NOW, &body);
    let old = stripe_signature_header(STRIPE_WEBHOOK_SECRET, NOW - 301, &body);
    let bad_cases: [(HeaderMap, &str); 4] = [
        (headers(&[("stripe-signature", &forged)]), "wrong secret"),
        (headers(&[("stripe-signature", &old)]), "older than 300 s"),
        (headers(&[("stripe-signature", "t=1,v1=zz")]), "garbage"),
        (HeaderMap::new(), "unsigned"),
    ];
    for (map, why) in bad_cases {
        assert!(
            matches!(
                stripe.verify_webhook(&map, &body).await,
                Err(ProviderError::BadSignature)
            ),
            "{why}"
        );
    }

    let failed = stripe_event(
        "payment_intent.payment_failed",
        json!({"id": "pi_9", "amount": 500, "currency": "eur", "last_payment_error": {"message": "Your card was declined."}}),
    );
    let signed = stripe_signature_header(STRIPE_WEBHOOK_SECRET, NOW, &failed);
    let event = stripe
        .verify_webhook(&headers(&[("stripe-signature", &signed)]), &failed)
        .await
        .unwrap();
    assert_eq!(event.kind, EventKind::Failed);
    assert_eq!(
        event.failure_reason.as_deref(),
        Some("Your card was declined.")
    );
    assert_eq!(event.currency.as_deref(), Some("EUR"));
}

// ---------------------------------------------------------------- PayPal

pub fn paypal_fake_answer(request: &Seen) -> (u16, Value) {
    match request.path.as_str() {
        "/v1/oauth2/token" => (
            200,
            json!({"access_token": "A21-token", "token_type": "Bearer", "expires_in": 32400}),
        ),
        "/v2/checkout/orders" => (
            201,
            json!({"id": "5O190127TN364715T", "status": "CREATED", "links": [
                {"href": "https://api.paypal.test/v2/checkout/orders/5O190127TN364715T", "rel": "self", "method": "GET"},
                {"href": "https://www.paypal.test/checkoutnow?token=5O190127TN364715T", "rel": "approve", "method": "GET"}
            ]}),
        ),
        "/v2/checkout/orders/ORDER-OK/capture" => (
            201,
            json!({"id": "ORDER-OK", "status": "COMPLETED", "purchase_units": [{"payments": {"captures": [
                {"id": "CAP-1", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "19.99"}}
            ]}}]}),
        ),
        "/v2/checkout/orders/ORDER-PENDING/capture" => (
            201,
            json!({"id": "ORDER-PENDING", "status": "COMPLETED", "purchase_units": [{"payments": {"captures": [
                {"id": "CAP-2", "status": "PENDING", "status_details": {"reason": "PENDING_REVIEW"}, "amount": {"currency_code": "USD", "value": "19.99"}}
            ]}}]}),
        ),
        "/v2/checkout/orders/ORDER-DECLINED/capture" => (
            422,
            json!({"name": "UNPROCESSABLE_ENTITY", "message": "The requested action could not be performed.", "details": [
                {"issue": "INSTRUMENT_DECLINED", "description": "The instrument presented was either declined by the processor or bank."}
            ]}),
        ),
        "/v2/payments/captures/CAP-1/refund" => {
            (201, json!({"id": "REF-1", "status": "COMPLETED"}))
        }
        "/v1/notifications/verify-webhook-signature" => {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let status = if body["transmission_sig"] == "good-sig" {
                "SUCCESS"
            } else {
                "FAILURE"
            };
            (200, json!({"verification_status": status}))
        }
        _ => (
            404,
            json!({"name": "RESOURCE_NOT_FOUND", "message": "no such path"}),
        ),
    }
}

#[actix_web::test]
async fn paypal_create_capture_and_refund_send_request_ids_and_share_one_cached_token() {
    let fake = Fake::start(paypal_fake_answer).await;
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(
        paypal_settings(&fake.base),
        dir.path(),
        Arc::new(AtomicI64::new(NOW)),
    );
    let paypal = providers.get("paypal").unwrap();

    let created = paypal.create(&create_request(41, 1999)).await.unwrap();
    assert_eq!(created.transaction_id, "5O190127TN364715T");
    assert_eq!(
        created.next_action,
        NextAction::Redirect {
            url: "https://www.paypal.test/checkoutnow?token=5O190127TN364715T".into()
        }
    );
    let create = &fake.requests_to("/v2/checkout/orders")[0];
    assert_eq!(
        create.header("paypal-request-id"),
        Some("storefront-create-41")
    );
    assert_eq!(create.header("authorization"), Some("Bearer A21-token"));
    let body = create.json();
    assert_eq!(body["intent"], "CAPTURE");
    assert_eq!(
        body["purchase_units"][0]["amount"],
        json!({"currency_code": "USD", "value": "19.99"})
    );

    let captured = paypal
        .capture("ORDER-OK", "storefront-capture-41")
        .await
        .unwrap();
    assert_eq!(captured.capture_id, "CAP-1");
    assert_eq!(
        (captured.amount, captured.currency.as_deref()),
        (Some(1999), Some("USD"))
    );
    let capture = &fake.requests_to("/v2/checkout/orders/ORDER-OK/capture")[0];
    assert_eq!(
        capture.header("paypal-request-id"),
        Some("storefront-capture-41")
    );

    let refunded = paypal
        .refund(&RefundPayment {
            reference: "CAP-1".into(),
            amount: usd(1999),
            idempotency_key: "storefront-refund-41".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        (refunded.refund_id.as_str(), refunded.pending),
        ("REF-1", false)
    );
    let refund = &fake.requests_to("/v2/payments/captures/CAP-1/refund")[0];
    assert_eq!(
        refund.header("paypal-request-id"),
        Some("storefront-refund-41")
    );
    assert_eq!(
        refund.json()["amount"],
        json!({"currency_code": "USD", "value": "19.99"})
    );

    let tokens = fake.requests_to("/v1/oauth2/token");
    assert_eq!(tokens.len(), 1, "one token for three calls");
    assert_eq!(
        tokens[0].header("authorization").map(str::to_owned),
        Some(basic("paypal-client", "paypal-secret"))
    );
    assert_eq!(
        tokens[0].form(),
        vec![pair("grant_type", "client_credentials")]
    );
    fake.stop().await;
}

#[actix_web::test]
async fn paypal_capture_succeeds_only_when_completed() {
    let fake = Fake::start(paypal_fake_answer).await;
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(
        paypal_settings(&fake.base),
        dir.path(),
        Arc::new(AtomicI64::new(NOW)),
    );
    let paypal = providers.get("paypal").unwrap();
    match paypal.capture("ORDER-PENDING", "k1").await {
        Err(ProviderError::Pending { reason, .. }) => assert_eq!(reason, "PENDING_REVIEW"),
        other => panic!("expected pending, got {other:?}"),
    }
    match paypal.capture("ORDER-DECLINED", "k2").await {
        Err(ProviderError::Refused {
            provider: "paypal",
            reason,
        }) => {
            assert!(reason.starts_with("INSTRUMENT_DECLINED"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    fake.stop().await;
}

#[actix_web::test]
async fn paypal_webhooks_are_verified_by_paypal_with_the_raw_event_and_our_webhook_id() {
    let fake = Fake::start(paypal_fake_answer).await;
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(
        paypal_settings(&fake.base),
        dir.path(),
        Arc::new(AtomicI64::new(NOW)),
    );
    let paypal = providers.get("paypal").unwrap();
    // Keys deliberately out of alphabetical order and a decimal that
    // re-serialising could change: PayPal must get the bytes it sent.
    let body = br#"{"id":"WH-58D329510W468432D-8HN650336L201105X","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"status":"COMPLETED","id":"CAP-1","amount":{"value":"19.99","currency_code":"USD"},"supplementary_data":{"related_ids":{"order_id":"5O190127TN364715T"}}},"zeta":1.10}"#;
    let signed = |sig: &str| {
        headers(&[
            (
                "paypal-transmission-id",
                "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
            ),
            ("paypal-transmission-time", "2016-02-18T20:01:35Z"),
            ("paypal-transmission-sig", sig),
            (
                "paypal-cert-url",
                "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42",
            ),
            ("paypal-auth-algo", "SHA256withRSA"),
        ])
    };
    let event = paypal
        .verify_webhook(&signed("good-sig"), body)
        .await
        .unwrap();
    assert_eq!(event.kind, EventKind::Succeeded);
    assert_eq!(
        event.provider_event_id,
        "WH-58D329510W468432D-8HN650336L201105X"
    );
    assert_eq!(event.transaction_id.as_deref(), Some("5O190127TN364715T"));
    assert_eq!(event.settlement_id.as_deref(), Some("CAP-1"));
    assert_eq!(
        (event.amount, event.currency.as_deref()),
        (Some(1999), Some("USD"))
    );

    let verify = &fake.requests_to("/v1/notifications/verify-webhook-signature")[0];
    assert_eq!(verify.header("authorization"), Some("Bearer A21-token"));
    let sent = String::from_utf8(verify.body.clone()).unwrap();
    assert!(
        sent.contains(std::str::from_utf8(body).unwrap()),
        "raw event forwarded: {sent}"
    );
    let sent: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["webhook_id"], "WH-FAKE-ID");
    assert_eq!(sent["auth_algo"], "SHA256withRSA");
    assert_eq!(
        sent["transmission_id"],
        "69cd13f0-d67a-11e5-baa3-778b53f4ae55"
    );

    assert!(matches!(
        paypal.verify_webhook(&signed("forged"), body).await,
        Err(ProviderError::BadSignature)
    ));
    let calls = fake
        .requests_to("/v1/notifications/verify-webhook-signature")
        .len();
    assert!(matches!(
        paypal.verify_webhook(&HeaderMap::new(), body).await,
        Err(ProviderError::BadSignature)
    ));
    assert_eq!(
        fake.requests_to("/v1/notifications/verify-webhook-signature")
            .len(),
        calls,
        "an unsigned webhook is refused without asking PayPal"
    );
    fake.stop().await;
}

// ---------------------------------------------------------------- Razorpay

#[actix_web::test]
async fn razorpay_orders_use_basic_auth_and_subunits_and_refusals_carry_the_description() {
    let fake = Fake::start(|r| match r.path.as_str() {
        "/v1/orders" => {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (200, json!({"id": "order_9A33XWu170gUtm", "entity": "order", "amount": body["amount"], "currency": body["currency"], "receipt": body["receipt"], "status": "created"}))
        }
        "/v1/payments/pay_ok/refund" => (200, json!({"id": "rfnd_1", "entity": "refund", "amount": 1999, "status": "processed"})),
        _ => (400, json!({"error": {"code": "BAD_REQUEST_ERROR", "description": "The payment has been fully refunded already"}})),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(
        razorpay_settings(&fake.base),
        dir.path(),
        Arc::new(AtomicI64::new(NOW)),
    );
    let razorpay = providers.get("razorpay").unwrap();
    let created = razorpay.create(&create_request(41, 1999)).await.unwrap();
    assert_eq!(created.transaction_id, "order_9A33XWu170gUtm");
    assert_eq!(
        created.next_action,
        NextAction::RazorpayCheckout {
            order_id: "order_9A33XWu170gUtm".into(),
            key_id: "rzp_test_key".into(),
            amount: 1999,
            currency: "USD".into(),
        }
    );
    let request = &fake.requests_to("/v1/orders")[0];
    assert_eq!(
        request.header("authorization").map(str::to_owned),
        Some(basic("rzp_test_key", "rzp_key_secret"))
    );
    assert_eq!(
        request.json(),
        json!({"amount": 1999, "currency": "USD", "receipt": "payment_41", "notes": {"order_id": "7", "payment_id": "41"}})
    );

    let refund = |reference: &str| RefundPayment {
        reference: reference.into(),
        amount: usd(1999),
        idempotency_key: "storefront-refund-41".into(),
    };
    assert_eq!(
        razorpay.refund(&refund("pay_ok")).await.unwrap().refund_id,
        "rfnd_1"
    );
    assert_eq!(
        fake.requests_to("/v1/payments/pay_ok/refund")[0].json()["amount"],
        1999
    );
    match razorpay.refund(&refund("pay_done")).await {
        Err(ProviderError::Refused {
            provider: "razorpay",
            reason,
        }) => {
            assert_eq!(reason, "The payment has been fully refunded already")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    fake.stop().await;
}

#[actix_web::test]
async fn razorpay_payment_and_webhook_signatures_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(
        razorpay_settings("http://127.0.0.1:9"),
        dir.path(),
        Arc::new(AtomicI64::new(NOW)),
    );
    let razorpay = providers.get("razorpay").unwrap();
    let good = razorpay_payment_signature("rzp_key_secret", "order_A", "pay_B");
    assert!(razorpay
        .verify_payment_signature("order_A", "pay_B", &good)
        .is_ok());
    assert!(matches!(
        razorpay.verify_payment_signature("order_OTHER", "pay_B", &good),
        Err(ProviderError::BadSignature)
    ));

    let body = json!({"entity": "event", "event": "payment.captured", "payload": {"payment": {"entity": {
        "id": "pay_B", "entity": "payment", "amount": 1999, "currency": "INR", "status": "captured", "order_id": "order_A"
    }}}})
    .to_string();
    let signature = razorpay_webhook_signature("rzp_webhook_secret", body.as_bytes());
    let event = razorpay
        .verify_webhook(
            &headers(&[
                ("x-razorpay-signature", &signature),
                ("x-razorpay-event-id", "evt_rzp_1"),
            ]),
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(event.kind, EventKind::Succeeded);
    assert_eq!(event.provider_event_id, "evt_rzp_1");
    assert_eq!(event.transaction_id.as_deref(), Some("order_A"));
    assert_eq!(event.settlement_id.as_deref(), Some("pay_B"));
    assert_eq!(
        (event.amount, event.currency.as_deref()),
        (Some(1999), Some("INR"))
    );

    let forged = razorpay_webhook_signature("wrong", body.as_bytes());
    let cases = [
        (
            headers(&[
                ("x-razorpay-signature", &forged),
                ("x-razorpay-event-id", "e"),
            ]),
            "forged",
        ),
        (headers(&[("x-razorpay-event-id", "e")]), "unsigned"),
    ];
    for (map, why) in cases {
        assert!(
            matches!(
                razorpay.verify_webhook(&map, body.as_bytes()).await,
                Err(ProviderError::BadSignature)
            ),
            "{why}"
        );
    }
    let no_event_id = razorpay
        .verify_webhook(
            &headers(&[("x-razorpay-signature", &signature)]),
            body.as_bytes(),
        )
        .await;
    assert!(
        matches!(no_event_id, Err(ProviderError::BadEvent(_))),
        "no dedupe key"
    );
}

// ---------------------------------------------------------------- registry, test provider, timeouts

#[actix_web::test]
async fn only_providers_with_credentials_are_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(NOW));
    let none = providers(no_providers(), dir.path(), now.clone());
    assert!(none.enabled().is_empty());
    assert!(matches!(
        none.get("stripe"),
        Err(ProviderError::NotEnabled(_))
    ));
    let mut settings = stripe_settings("http://127.0.0.1:9");
    settings.test_provider = true;
    let some = providers(settings, dir.path(), now);
    assert_eq!(some.enabled(), vec!["stripe", "test"]);
    assert!(matches!(
        some.get("paypal"),
        Err(ProviderError::NotEnabled(_))
    ));
    assert!(matches!(
        some.get("bitcoin"),
        Err(ProviderError::NotEnabled(_))
    ));
}

#[actix_web::test]
async fn a_test_payment_reaches_the_store_only_through_its_signed_callback() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let settings = PaymentSettings {
        test_provider: true,
        ..no_providers()
    };
    let providers = providers(settings, dir.path(), Arc::new(AtomicI64::new(NOW)));
    let test = providers.get("test").unwrap();
    let created = test.create(&create_request(41, 1999)).await.unwrap();
    let token = providers.test_provider().unwrap().page_token(PaymentId(41));
    assert_eq!(
        created.next_action,
        NextAction::Redirect {
            url: format!("/pay/test/41?token={token}")
        }
    );
    assert!(providers
        .test_provider()
        .unwrap()
        .check_page_token(PaymentId(41), &token));
    assert!(!providers
        .test_provider()
        .unwrap()
        .check_page_token(PaymentId(42), &token));
    let payment = Payment {
        id: PaymentId(41),
        order_id: OrderId(7),
        amount_minor: 1999,
        currency: "USD".into(),
        provider: test.name().into(),
        transaction_id: created.transaction_id,
        settlement_id: None,
        status: PaymentStatus::Created,
        created_at: NOW,
        updated_at: NOW,
    };
    store.insert_payment(&payment).unwrap();
    assert!(render_pay_page(&payment, &token)
        .contains(&format!(r#"action="/pay/test/41?token={token}""#)));

    // What the pay page's POST handler does: sign, then verify like any webhook.
    let callback = providers
        .test_provider()
        .unwrap()
        .sign_outcome(&payment, TestOutcome::Pay);
    let event = test
        .verify_webhook(&callback.headers(), &callback.body)
        .await
        .unwrap();
    event.check_amount(&payment).unwrap();
    let found = store
        .payment_by_reference(event.provider, event.references().next().unwrap())
        .unwrap()
        .unwrap();
    let applied = store
        .apply_payment_outcome(
            found.id,
            &event.outcome().unwrap(),
            Some((event.provider, &event.provider_event_id)),
        )
        .unwrap()
        .unwrap();
    assert!(applied.changed);
    assert_eq!(
        store.payment(PaymentId(41)).unwrap().unwrap().status,
        PaymentStatus::Succeeded
    );
    // A replay of the same callback changes nothing.
    assert!(store
        .apply_payment_outcome(
            found.id,
            &event.outcome().unwrap(),
            Some((event.provider, &event.provider_event_id))
        )
        .unwrap()
        .is_none());

    // A callback signed by another data directory's secret is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let other = providers_for_test(other_dir.path());
    let forged = other
        .test_provider()
        .unwrap()
        .sign_outcome(&payment, TestOutcome::Pay);
    assert!(matches!(
        test.verify_webhook(&forged.headers(), &forged.body).await,
        Err(ProviderError::BadSignature)
    ));

    let mut cheaper = payment.clone();
    cheaper.amount_minor = 1;
    let underpaid = providers
        .test_provider()
        .unwrap()
        .sign_outcome(&cheaper, TestOutcome::Pay);
    let event = test
        .verify_webhook(&underpaid.headers(), &underpaid.body)
        .await
        .unwrap();
    assert!(
        event.check_amount(&payment).is_err(),
        "amount mismatch is caught"
    );
}

fn providers_for_test(dir: &Path) -> Providers {
    let settings = PaymentSettings {
        test_provider: true,
        ..no_providers()
    };
    providers(settings, dir, Arc::new(AtomicI64::new(NOW)))
}

#[actix_web::test]
async fn a_provider_that_does_not_answer_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let held = actix_web::rt::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stripe_settings(&base);
    settings.timeout = Duration::from_millis(300);
    let providers = providers(settings, dir.path(), Arc::new(AtomicI64::new(NOW)));
    let result = providers
        .get("stripe")
        .unwrap()
        .create(&create_request(1, 100))
        .await;
    assert!(
        matches!(result, Err(ProviderError::Timeout { provider: "stripe" })),
        "{result:?}"
    );
    held.abort();
}

// ---------------------------------------------------------------- localstripe

/// Pays a PaymentIntent created by our client against `localstripe` (a
/// Stripe double from PyPI) the way Stripe.js would, then verifies the
/// signed `payment_intent.succeeded` webhook it sends. Run with
/// `LOCALSTRIPE_URL=http://127.0.0.1:8420 cargo test localstripe -- --ignored`
/// after `localstripe --port 8420 --from-scratch`.
#[actix_web::test]
#[ignore = "needs a running localstripe; set LOCALSTRIPE_URL"]
async fn stripe_pays_against_localstripe_and_its_signed_webhook_verifies() {
    let base = std::env::var("LOCALSTRIPE_URL").expect("LOCALSTRIPE_URL");
    let receiver = Fake::start(|_| (200, json!({}))).await;
    let http = reqwest::Client::new();
    let registered = http
        .post(format!("{base}/_config/webhooks/storefront_test"))
        .json(&json!({
            "url": format!("{}/webhook", receiver.base),
            "secret": STRIPE_WEBHOOK_SECRET,
            "events": ["payment_intent.succeeded"],
        }))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "webhook registered");

    let dir = tempfile::tempdir().unwrap();
    let providers = Providers::from_settings(&stripe_settings(&base), dir.path()).unwrap();
    let stripe = providers.get("stripe").unwrap();
    let created = stripe.create(&create_request(41, 1999)).await.unwrap();
    let intent = created.transaction_id.clone();
    assert!(matches!(
        created.next_action,
        NextAction::StripeConfirm { .. }
    ));

    // The browser's part, as Stripe.js does it: a PaymentMethod from the test
    // card, attached to the intent, then a confirm with no parameters.
    let stripe_api = |path: &str, form: &[(&str, &str)]| {
        http.post(format!("{base}{path}"))
            .bearer_auth("sk_test_fake")
            .form(form)
            .send()
    };
    let method: Value = stripe_api(
        "/v1/payment_methods",
        &[
            ("type", "card"),
            ("card[number]", "4242424242424242"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2034"),
            ("card[cvc]", "123"),
        ],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let method_id = method["id"].as_str().expect("payment method id").to_owned();
    let path = format!("/v1/payment_intents/{intent}");
    let updated = stripe_api(&path, &[("payment_method", &method_id)])
        .await
        .unwrap();
    assert!(updated.status().is_success(), "payment method set");
    let confirmed: Value = stripe_api(&format!("{path}/confirm"), &[])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");

    let mut delivered = None;
    for _ in 0..100 {
        if let Some(seen) = receiver.requests_to("/webhook").into_iter().next() {
            delivered = Some(seen);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let webhook = delivered.expect("localstripe delivered the webhook");
    let map = headers(
        &webhook
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    let event = stripe.verify_webhook(&map, &webhook.body).await.unwrap();
    assert_eq!(event.kind, EventKind::Succeeded);
    assert_eq!(event.transaction_id.as_deref(), Some(intent.as_str()));
    assert_eq!(
        (event.amount, event.currency.as_deref()),
        (Some(1999), Some("USD"))
    );
    let mut tampered = webhook.body.clone();
    tampered.push(b' ');
    assert!(matches!(
        stripe.verify_webhook(&map, &tampered).await,
        Err(ProviderError::BadSignature)
    ));
    receiver.stop().await;
}
