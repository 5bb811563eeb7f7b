//! The one error shape for framework-level failures, trailing slashes,
//! health, metrics and the OpenAPI document.

use crate::helpers::{body, error_code, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn framework_errors_use_the_json_error_shape() {
    let app = spawn_app().await;
    let client = &app.client;
    let register = app.url("/api/auth/register/");
    let cases = [
        (
            client.get(app.url("/api/nothing-here/")),
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown path",
        ),
        (
            client.delete(app.url("/api/auth/login/")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "wrong method",
        ),
        (
            client
                .post(&register)
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "malformed JSON",
        ),
        (
            client
                .post(&register)
                .header("content-type", "text/plain")
                .body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "not JSON content type",
        ),
        (
            client
                .post(&register)
                .json(&json!({"username": 5, "email": "x@y.zz", "password": "12345678"})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "wrong type",
        ),
        (
            client
                .post(&register)
                .header("content-type", "application/json")
                .body(format!("{{\"username\": \"{}\"}}", "a".repeat(300 * 1024))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "body over the limit",
        ),
        (
            client
                .get(app.url("/api/admin/users/?page=0"))
                .bearer_auth("x"),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "bad token before bad query",
        ),
    ];
    for (request, status, code, why) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{why}");
        assert_eq!(error_code(response, status).await, code, "{why}");
    }
}

#[actix_web::test]
async fn missing_and_unknown_fields_are_named() {
    let app = spawn_app().await;
    let missing = body(
        app.post("/api/auth/login/", None, &json!({"username": "x"}))
            .await,
    )
    .await;
    assert_eq!(
        missing["error"]["fields"]["password"],
        "this field is required"
    );
    let unknown = body(
        app.post(
            "/api/auth/login/",
            None,
            &json!({"username": "x", "password": "y", "remember": true}),
        )
        .await,
    )
    .await;
    assert_eq!(unknown["error"]["fields"]["remember"], "unknown field");
}

#[actix_web::test]
async fn paths_work_with_and_without_the_trailing_slash() {
    let app = spawn_app().await;
    let user = app.shopper("alice").await;
    for path in ["/api/profile/", "/api/profile"] {
        assert_eq!(
            app.get(path, Some(&user.access)).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
}

#[actix_web::test]
async fn health_metrics_and_request_ids_are_served() {
    let app = spawn_app().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"));
    assert_eq!(body(health).await["status"], "ok");
    app.register("alice").await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"http_requests_total{method="POST",route="/api/auth/register",status="201"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"));
    assert!(metrics.contains("store_group_commit_flushes_total"));
}

#[actix_web::test]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_app().await;
    let doc = body(app.get("/api/openapi.json", None).await).await;
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/auth/register/", "post"),
        ("/api/auth/login/", "post"),
        ("/api/auth/refresh/", "post"),
        ("/api/auth/logout/", "post"),
        ("/api/profile/", "get"),
        ("/api/profile/", "patch"),
        ("/api/profile/password/", "post"),
        ("/api/admin/users/", "get"),
        ("/api/admin/users/{id}/", "patch"),
        ("/api/wishlist/", "get"),
        ("/api/wishlist/", "post"),
        ("/api/wishlist/{product_id}/", "delete"),
        ("/api/wishlist/{product_id}/move-to-cart/", "post"),
        ("/api/products/{id}/reviews/", "get"),
        ("/api/products/{id}/reviews/", "post"),
        ("/api/reviews/{id}/", "patch"),
        ("/api/reviews/{id}/", "delete"),
        ("/api/admin/inventory/", "get"),
        ("/api/admin/inventory/{product_id}/", "get"),
        ("/api/admin/inventory/{product_id}/adjust/", "post"),
        ("/api/admin/inventory/{product_id}/ledger/", "get"),
        ("/api/admin/analytics/", "get"),
        ("/api/admin/audit/", "get"),
        ("/healthz", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
