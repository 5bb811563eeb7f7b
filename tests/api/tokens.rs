//! Token handling: refresh rotation, logout, password change, and forged,
//! tampered or misused JWTs.

use crate::helpers::{body, error_code, spawn_app, JWT_SECRET, PASSWORD};
use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_session() {
    let app = spawn_app().await;
    let user = app.shopper("alice").await;
    let first = app
        .post(
            "/api/auth/refresh/",
            None,
            &json!({"refresh": user.refresh}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let rotated = body(first).await;
    let new_refresh = rotated["refresh"].as_str().unwrap();
    assert_ne!(new_refresh, user.refresh);
    assert_eq!(
        app.get("/api/profile/", rotated["access"].as_str())
            .await
            .status(),
        StatusCode::OK
    );

    let replay = app
        .post(
            "/api/auth/refresh/",
            None,
            &json!({"refresh": user.refresh}),
        )
        .await;
    assert_eq!(
        error_code(replay, StatusCode::UNAUTHORIZED).await,
        "invalid_token"
    );
    // Reuse means the token may be stolen: the whole session ends.
    let after = app
        .post("/api/auth/refresh/", None, &json!({"refresh": new_refresh}))
        .await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/profile/", rotated["access"].as_str())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn logout_ends_the_session_for_both_tokens() {
    let app = spawn_app().await;
    let user = app.shopper("bob").await;
    let other_device = body(app.login("bob", PASSWORD).await).await;
    let out = app
        .post("/api/auth/logout/", None, &json!({"refresh": user.refresh}))
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/profile/", Some(&user.access)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refresh = app
        .post(
            "/api/auth/refresh/",
            None,
            &json!({"refresh": user.refresh}),
        )
        .await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/profile/", other_device["access"].as_str())
            .await
            .status(),
        StatusCode::OK,
        "other sessions stay logged in"
    );
}

#[actix_web::test]
async fn changing_the_password_revokes_every_session_and_returns_new_tokens() {
    let app = spawn_app().await;
    let user = app.shopper("carol").await;
    let other_device = body(app.login("carol", PASSWORD).await).await;

    let wrong_old = app
        .post(
            "/api/profile/password/",
            Some(&user.access),
            &json!({"old_password": "nope nope", "new_password": "a brand new secret"}),
        )
        .await;
    assert_eq!(wrong_old.status(), StatusCode::BAD_REQUEST);
    let weak = app
        .post(
            "/api/profile/password/",
            Some(&user.access),
            &json!({"old_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);

    let changed = app
        .post(
            "/api/profile/password/",
            Some(&user.access),
            &json!({"old_password": PASSWORD, "new_password": "a brand new secret"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let fresh = body(changed).await;

    for (token, why) in [
        (user.access.as_str(), "this device's old access"),
        (
            other_device["access"].as_str().unwrap(),
            "other device's access",
        ),
    ] {
        assert_eq!(
            app.get("/api/profile/", Some(token)).await.status(),
            StatusCode::UNAUTHORIZED,
            "{why}"
        );
    }
    for refresh in [
        user.refresh.as_str(),
        other_device["refresh"].as_str().unwrap(),
    ] {
        let response = app
            .post("/api/auth/refresh/", None, &json!({"refresh": refresh}))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.get("/api/profile/", fresh["access"].as_str())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("carol", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("carol", "a brand new secret").await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn forged_tampered_expired_and_misused_tokens_are_rejected() {
    let app = spawn_app().await;
    let user = app.shopper("dave").await;
    let claims = claims_of(&user.access);
    let now = claims["iat"].as_i64().unwrap();

    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3600);
    expired["iat"] = json!(now - 7200);
    let mut tampered_parts: Vec<String> = user.access.split('.').map(str::to_owned).collect();
    let mut promoted = claims.clone();
    promoted["sub"] = json!("1");
    tampered_parts[1] =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(promoted.to_string());
    let none_header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", user.access.split('.').nth(1).unwrap());
    let mut wrong_audience = claims.clone();
    wrong_audience["aud"] = json!("someone-else");

    let cases = [
        (sign(&expired, JWT_SECRET), "expired"),
        (tampered_parts.join("."), "payload changed after signing"),
        (alg_none, "alg none"),
        (
            sign(&claims, "another-secret-another-secret-another-secret"),
            "wrong secret",
        ),
        (sign(&wrong_audience, JWT_SECRET), "wrong audience"),
        (user.refresh.clone(), "refresh token used as access token"),
        ("garbage".to_owned(), "not a JWT"),
    ];
    for (token, why) in cases {
        let response = app.get("/api/profile/", Some(&token)).await;
        assert_eq!(
            error_code(response, StatusCode::UNAUTHORIZED).await,
            "invalid_token",
            "{why}"
        );
    }
    let access_as_refresh = app
        .post("/api/auth/refresh/", None, &json!({"refresh": user.access}))
        .await;
    assert_eq!(
        access_as_refresh.status(),
        StatusCode::UNAUTHORIZED,
        "access token used as refresh token"
    );
    assert_eq!(
        app.get("/api/profile/", Some(&user.access)).await.status(),
        StatusCode::OK,
        "the genuine token still works"
    );
}
