//! `/api/payment/*`, `/api/orders/{id}/payments/` and the staff refund
//! `/api/admin/orders/{id}/refund/`. A shopper starts a payment for their
//! own pending order and finishes it at the provider; the client-side
//! returns (Razorpay verify, PayPal capture) settle it only from a verified
//! answer. Another user's order or payment is 404 (invariant 6).

use super::error::{ApiError, ErrorBody};
use super::extract::{idempotency_key, json_body, AuthUser, Json, StaffUser};
use super::AppState;
use crate::domain::audit::Target;
use crate::domain::{FieldErrors, OrderId};
use crate::payments::NextAction;
use crate::services::orders::OrderView;
use crate::services::payments::{CaptureTarget, PaymentView, SettlementView};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/payment").route(web::post().to(start_payment)))
        .service(web::resource("/api/payment/providers").route(web::get().to(providers)))
        .service(
            web::resource("/api/payment/razorpay/verify").route(web::post().to(razorpay_verify)),
        )
        .service(web::resource("/api/payment/paypal/capture").route(web::post().to(paypal_capture)))
        .service(web::resource("/api/orders/{id}/payments").route(web::get().to(order_payments)))
        .service(web::resource("/api/admin/orders/{id}/refund").route(web::post().to(refund)));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartPayment {
    #[serde(deserialize_with = "super::whole::u64")]
    #[schema(maximum = 9_223_372_036_854_775_807i64)]
    pub order_id: u64,
    /// One of `GET /api/payment/providers/`.
    #[schema(pattern = "^(stripe|paypal|razorpay|test)$")]
    pub provider: String,
}

/// A started payment and what the client does next.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartedView {
    #[serde(flatten)]
    pub payment: PaymentView,
    /// Stripe: confirm with `client_secret`; PayPal and test: open `url`;
    /// Razorpay: open Checkout with `order_id` and `key_id`.
    pub next_action: NextAction,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersView {
    /// The enabled providers, e.g. `["stripe", "test"]`.
    pub providers: Vec<&'static str>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RazorpayVerify {
    #[schema(min_length = 1, max_length = 200)]
    pub razorpay_order_id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub razorpay_payment_id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub razorpay_signature: String,
}

/// Our order id (a number) or PayPal's order id (a string).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CaptureOrderId {
    Ours(#[serde(deserialize_with = "super::whole::u64")] u64),
    PayPal(String),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayPalCapture {
    pub order_id: CaptureOrderId,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView {
    pub order: OrderView,
    pub payment: PaymentView,
    /// The provider's refund id.
    pub refund_id: String,
    /// Accepted by the provider but not settled yet; the money still goes back.
    pub refund_pending: bool,
}

fn short_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 200 {
        return Err(FieldErrors::single(field, "must be 1-200 characters").into());
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/payment/", tag = "payments",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Retry-safe key: the same key and body return the same attempt")),
    request_body = StartPayment,
    responses(
        (status = 201, description = "Created at the provider; `next_action` says how to pay", body = StartedView),
        (status = 400, description = "Provider not enabled, or bad body", body = ErrorBody),
        (status = 404, description = "No such order of yours", body = ErrorBody),
        (status = 409, description = "The order is not pending and unpaid", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 502, description = "The provider refused", body = ErrorBody),
    ))]
pub async fn start_payment(
    state: web::Data<AppState>,
    caller: AuthUser,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let request: StartPayment = json_body(&body)?;
    let idempotency = key.map(|k| (k, Sha256::digest(&body).to_vec()));
    let started = state
        .shop
        .start_payment(
            &caller.0,
            OrderId(request.order_id),
            &request.provider,
            idempotency,
        )
        .await?;
    let mut response = HttpResponse::Created();
    if started.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(StartedView {
        payment: PaymentView::new(&started.payment),
        next_action: started.next_action,
    }))
}

#[utoipa::path(get, path = "/api/payment/providers/", tag = "payments",
    responses((status = 200, description = "The enabled providers", body = ProvidersView)))]
pub async fn providers(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(ProvidersView {
        providers: state.shop.payment_providers(),
    })
}

#[utoipa::path(get, path = "/api/orders/{id}/payments/", tag = "payments",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Order id")),
    responses(
        (status = 200, description = "Every attempt, oldest first", body = [PaymentView]),
        (status = 404, description = "No such order of yours", body = ErrorBody),
    ))]
pub async fn order_payments(
    state: web::Data<AppState>,
    caller: AuthUser,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let payments = state
        .shop
        .order_payments(&caller.0, OrderId(path.into_inner()))?;
    let views: Vec<PaymentView> = payments.iter().map(PaymentView::new).collect();
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(post, path = "/api/payment/razorpay/verify/", tag = "payments",
    security(("bearer" = [])),
    request_body = RazorpayVerify,
    responses(
        (status = 200, description = "Signature verified; the order is paid", body = SettlementView),
        (status = 400, description = "Bad signature", body = ErrorBody),
        (status = 404, description = "No such payment of yours", body = ErrorBody),
    ))]
pub async fn razorpay_verify(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<RazorpayVerify>,
) -> Result<HttpResponse, ApiError> {
    short_text("razorpay_order_id", &body.razorpay_order_id)?;
    short_text("razorpay_payment_id", &body.razorpay_payment_id)?;
    short_text("razorpay_signature", &body.razorpay_signature)?;
    let settlement = state
        .shop
        .verify_razorpay(
            &caller.0,
            &body.razorpay_order_id,
            &body.razorpay_payment_id,
            &body.razorpay_signature,
        )
        .await?;
    Ok(HttpResponse::Ok().json(SettlementView::new(&settlement)))
}

#[utoipa::path(post, path = "/api/payment/paypal/capture/", tag = "payments",
    security(("bearer" = [])),
    request_body = PayPalCapture,
    responses(
        (status = 200, description = "Captured (payment succeeded) or pending at PayPal", body = SettlementView),
        (status = 404, description = "No such payment of yours", body = ErrorBody),
        (status = 502, description = "PayPal declined the capture", body = ErrorBody),
    ))]
pub async fn paypal_capture(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<PayPalCapture>,
) -> Result<HttpResponse, ApiError> {
    let target = match &body.order_id {
        CaptureOrderId::Ours(id) => CaptureTarget::Order(OrderId(*id)),
        CaptureOrderId::PayPal(id) => {
            short_text("order_id", id)?;
            CaptureTarget::PayPalOrder(id.clone())
        }
    };
    let settlement = state.shop.capture_paypal(&caller.0, target).await?;
    Ok(HttpResponse::Ok().json(SettlementView::new(&settlement)))
}

#[utoipa::path(post, path = "/api/admin/orders/{id}/refund/", tag = "admin",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Order id")),
    responses(
        (status = 200, description = "Refunded at the provider; the order is cancelled and its stock returned", body = RefundView),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Not a paid, unshipped order", body = ErrorBody),
        (status = 502, description = "The provider refused the refund (its reason is in the message); nothing changed", body = ErrorBody),
    ))]
pub async fn refund(
    state: web::Data<AppState>,
    staff: StaffUser,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let refund = state.shop.refund_order(OrderId(path.into_inner())).await?;
    state
        .shop
        .audit(
            &staff.0,
            "order.refund",
            Target::Order(refund.order.id.0),
            json!({
                "payment_id": refund.payment.id.0,
                "refund_id": refund.refund_id,
                "pending": refund.pending,
            }),
        )
        .await?;
    Ok(HttpResponse::Ok().json(RefundView {
        order: OrderView::new(&refund.order),
        payment: PaymentView::new(&refund.payment),
        refund_id: refund.refund_id,
        refund_pending: refund.pending,
    }))
}
