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

// Found by the API fuzzer (tests/fuzz): each case is a request the server
// answered differently from what the OpenAPI document says.

#[actix_web::test]
async fn a_wrong_method_gets_405_with_the_allowed_methods() {
    let app = spawn_app().await;
    for (method, path, allowed) in [
        (reqwest::Method::DELETE, "/api/auth/login/", vec!["POST"]),
        (reqwest::Method::PUT, "/api/cart/", vec!["DELETE", "GET"]),
        (reqwest::Method::TRACE, "/metrics", vec!["GET"]),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let mut listed: Vec<&str> = allow.split(',').map(str::trim).collect();
        listed.sort_unstable();
        assert_eq!(listed, allowed, "{method} {path}: Allow: {allow}");
        assert_eq!(
            error_code(response, StatusCode::METHOD_NOT_ALLOWED).await,
            "method_not_allowed"
        );
    }
}

#[actix_web::test]
async fn whole_numbers_may_be_written_with_a_zero_fraction() {
    let app = spawn_app().await;
    let staff = app.staff("boss").await;
    let kitchen = app.category(&staff, "Kitchen").await;
    let kettle = app.product(&staff, kitchen, "Kettle", "20.00", 10).await;
    let shopper = app.shopper("alice").await;
    let added = app
        .post(
            "/api/cart/add/",
            Some(&shopper.access),
            &json!({"product_id": kettle as f64, "quantity": 2.0}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    assert_eq!(body(added).await["item_count"], 2);
    let priced = app
        .patch(
            &format!("/api/products/{kettle}/"),
            Some(&staff.access),
            &json!({"price": 25.0, "stock": 7.0}),
        )
        .await;
    assert_eq!(priced.status(), StatusCode::OK);
    let view = body(priced).await;
    assert_eq!(
        (view["price"].as_str(), view["stock"].as_i64()),
        (Some("25.00"), Some(7))
    );
    // A real fraction is still refused, and nothing changed.
    let fraction = app
        .patch(
            "/api/cart/items/1/",
            Some(&shopper.access),
            &json!({"quantity": 1.5}),
        )
        .await;
    assert_eq!(
        error_code(fraction, StatusCode::BAD_REQUEST).await,
        "invalid_field"
    );
    let cart = body(app.get("/api/cart/", Some(&shopper.access)).await).await;
    assert_eq!(cart["item_count"], 2);
}

#[actix_web::test]
async fn a_json_body_must_be_an_object() {
    let app = spawn_app().await;
    let staff = app.staff("boss").await;
    let alice = app.shopper("alice").await;
    for (path, token, body_text) in [
        (
            format!("/api/admin/users/{}/", alice.id),
            &staff.access,
            "[false, null]",
        ),
        ("/api/cart/add/".to_owned(), &alice.access, "[1, 1]"),
        ("/api/profile/".to_owned(), &alice.access, "null"),
        ("/api/payment/".to_owned(), &alice.access, "[1, \"test\"]"),
        ("/api/checkout/".to_owned(), &alice.access, "[]"),
    ] {
        let method = if path.starts_with("/api/admin/users/") || path == "/api/profile/" {
            reqwest::Method::PATCH
        } else {
            reqwest::Method::POST
        };
        let response = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body_text)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "invalid_body",
            "{path} {body_text}"
        );
    }
    let users = body(
        app.get("/api/admin/users/?search=alice", Some(&staff.access))
            .await,
    )
    .await;
    assert_eq!(users["results"][0]["is_active"], true, "nothing changed");
}

#[actix_web::test]
async fn a_field_given_twice_is_refused_instead_of_taking_the_last_value() {
    let app = spawn_app().await;
    let alice = app.shopper("alice").await;
    let response = app
        .client
        .post(app.url("/api/cart/add/"))
        .bearer_auth(&alice.access)
        .header("content-type", "application/json")
        .body(r#"{"product_id": 1, "quantity": 1, "quantity": 2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "invalid_field"
    );
    let cart = body(app.get("/api/cart/", Some(&alice.access)).await).await;
    assert_eq!(cart["item_count"], 0, "nothing added: {cart}");
}

#[actix_web::test]
async fn text_fields_refuse_control_characters_even_at_the_ends() {
    let app = spawn_app().await;
    let alice = app.shopper("alice").await;
    for (field, value) in [
        ("city", "Springfield\r".to_owned()),
        ("address", "\u{b}1 Main Street".to_owned()),
        ("country", "US\u{85}".to_owned()),
        ("phone", "1".repeat(41)),
        ("phone", format!("+1 {}", "-".repeat(40))),
    ] {
        let response = app
            .patch(
                "/api/profile/",
                Some(&alice.access),
                &json!({ field: value }),
            )
            .await;
        let error = body(response).await;
        assert!(
            error["error"]["fields"][field].is_string(),
            "{field} {value:?} was accepted: {error}"
        );
    }
    // Ordinary whitespace at the ends is still trimmed away.
    let saved = app
        .patch(
            "/api/profile/",
            Some(&alice.access),
            &json!({"city": "  Springfield\n"}),
        )
        .await;
    assert_eq!(body(saved).await["profile"]["city"], "Springfield");
}

#[actix_web::test]
async fn an_unknown_audit_target_type_is_a_400() {
    let app = spawn_app().await;
    let staff = app.staff("boss").await;
    let response = app
        .get("/api/admin/audit/?target_type=true", Some(&staff.access))
        .await;
    let error = body(response).await;
    assert_eq!(error["error"]["code"], "validation_failed", "{error}");
    assert!(error["error"]["fields"]["target_type"].is_string());
    let known = app
        .get("/api/admin/audit/?target_type=product", Some(&staff.access))
        .await;
    assert_eq!(known.status(), StatusCode::OK);
}

#[actix_web::test]
async fn the_openapi_document_shares_error_responses_and_states_the_money_pattern() {
    let app = spawn_app().await;
    let doc = body(app.get("/api/openapi.json", None).await).await;
    let add = &doc["paths"]["/api/cart/add/"]["post"];
    for status in ["400", "401", "413", "415", "503"] {
        assert!(
            add["responses"][status].is_object(),
            "cart add lacks {status}"
        );
    }
    let register = &doc["paths"]["/api/auth/register/"]["post"]["responses"];
    assert_eq!(
        register["429"]["$ref"],
        "#/components/responses/TooManyRequests"
    );
    assert!(doc["components"]["responses"]["Unavailable"]["headers"]["Retry-After"].is_object());
    let min_price = doc["paths"]["/api/products/"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "min_price")
        .unwrap()
        .clone();
    assert_eq!(
        min_price["schema"]["pattern"],
        r"^[0-9]{1,15}(\.[0-9]{1,2})?$"
    );
    let create = &doc["components"]["schemas"]["ProductCreate"];
    assert_eq!(create["required"], json!(["name", "price", "category"]));
    assert!(
        doc["paths"].get("/api/products/{id}/").is_none(),
        "one path item per route"
    );
}
