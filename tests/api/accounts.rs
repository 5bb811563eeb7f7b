//! Registration, login, profile and the staff user routes.

use crate::helpers::{body, error_code, spawn_app, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn register_login_and_profile_round_trip() {
    let app = spawn_app().await;
    let created = app
        .post(
            "/api/auth/register/",
            None,
            &json!({"username": "alice", "email": "Alice@Example.com", "password": PASSWORD,
                    "phone": "+1 555 0100", "city": "Paris"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let user = body(created).await;
    assert_eq!(user["username"], "alice");
    assert_eq!(user["is_staff"], false);
    assert_eq!(user["profile"]["city"], "Paris");
    assert_eq!(user["profile"]["phone"], "+1 555 0100");
    assert!(
        user.get("password_hash").is_none(),
        "hash never leaves the server"
    );

    // Email login is case-insensitive; username login works too.
    for login in ["alice", "alice@example.com"] {
        let tokens = body(app.login(login, PASSWORD).await).await;
        assert!(tokens["access"].is_string(), "{login}: {tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
    }
    let tokens = body(app.login("ALICE@EXAMPLE.COM", PASSWORD).await).await;
    let access = tokens["access"].as_str().unwrap();

    let profile = body(app.get("/api/profile/", Some(access)).await).await;
    assert_eq!(profile["email"], "Alice@Example.com");

    let updated = app
        .patch(
            "/api/profile",
            Some(access),
            &json!({"address": "1 Rue de Rivoli", "postal_code": "75001", "email": "alice@new.example.com"}),
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let updated = body(updated).await;
    assert_eq!(updated["profile"]["address"], "1 Rue de Rivoli");
    assert_eq!(updated["profile"]["city"], "Paris", "untouched fields stay");
    assert_eq!(updated["email"], "alice@new.example.com");

    // The old email no longer logs in; the new one does.
    assert_eq!(
        app.login("alice@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("alice@new.example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn duplicate_username_or_email_is_409_naming_the_field() {
    let app = spawn_app().await;
    assert_eq!(app.register("bob").await.status(), StatusCode::CREATED);
    let cases = [
        (
            json!({"username": "BOB", "email": "other@example.com", "password": PASSWORD}),
            "username",
            "same username, other case",
        ),
        (
            json!({"username": "bobby", "email": "BOB@example.com", "password": PASSWORD}),
            "email",
            "same email, other case",
        ),
    ];
    for (request, field, why) in cases {
        let response = app.post("/api/auth/register/", None, &request).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{why}");
        let error = body(response).await;
        assert_eq!(error["error"]["code"], "already_exists", "{why}");
        assert!(
            error["error"]["fields"][field].is_string(),
            "{why}: {error}"
        );
    }
    assert_eq!(app.store.user_count(), 1, "nothing was written");
}

#[actix_web::test]
async fn invalid_registrations_are_400_with_field_errors_and_write_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "carol", "email": "carol@example.com", "password": "short"}),
            "password",
            "password under 8 characters",
        ),
        (
            json!({"username": "carol1234", "email": "carol@example.com", "password": "CAROL1234"}),
            "password",
            "password equal to the username",
        ),
        (
            json!({"username": "carol", "email": "not-an-email", "password": PASSWORD}),
            "email",
            "email without @",
        ),
        (
            json!({"username": "carol", "email": "carol@example", "password": PASSWORD}),
            "email",
            "email without a top-level domain",
        ),
        (
            json!({"username": "c", "email": "carol@example.com", "password": PASSWORD}),
            "username",
            "username too short",
        ),
        (
            json!({"username": "carol smith", "email": "carol@example.com", "password": PASSWORD}),
            "username",
            "username with a space",
        ),
        (
            json!({"username": "carol", "email": "carol@example.com", "password": PASSWORD, "phone": "call me"}),
            "phone",
            "phone with letters",
        ),
        (
            json!({"username": "carol", "email": "carol@example.com"}),
            "password",
            "password missing",
        ),
        (
            json!({"username": "carol", "email": "carol@example.com", "password": PASSWORD, "is_staff": true}),
            "is_staff",
            "server-owned field",
        ),
    ];
    for (request, field, why) in cases {
        let response = app.post("/api/auth/register/", None, &request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        let error = body(response).await;
        assert!(
            error["error"]["fields"][field].is_string(),
            "{why}: {error}"
        );
    }
    assert_eq!(app.store.user_count(), 0, "no case created a user");
}

#[actix_web::test]
async fn profile_cannot_change_server_owned_fields_or_take_a_used_email() {
    let app = spawn_app().await;
    let dave = app.shopper("dave").await;
    app.shopper("erin").await;
    for (request, status, why) in [
        (
            json!({"is_staff": true}),
            StatusCode::BAD_REQUEST,
            "is_staff",
        ),
        (
            json!({"username": "root"}),
            StatusCode::BAD_REQUEST,
            "username",
        ),
        (
            json!({"email": "ERIN@example.com"}),
            StatusCode::CONFLICT,
            "another user's email",
        ),
        (
            json!({"email": "nope"}),
            StatusCode::BAD_REQUEST,
            "bad email",
        ),
    ] {
        let response = app
            .patch("/api/profile/", Some(&dave.access), &request)
            .await;
        assert_eq!(response.status(), status, "{why}");
    }
    let profile = body(app.get("/api/profile/", Some(&dave.access)).await).await;
    assert_eq!(profile["is_staff"], false);
    assert_eq!(profile["email"], "dave@example.com");
}

#[actix_web::test]
async fn staff_routes_are_401_for_anonymous_and_403_for_shoppers() {
    let app = spawn_app().await;
    let shopper = app.shopper("frank").await;
    let staff = app.staff("boss").await;
    assert_eq!(
        error_code(
            app.get("/api/admin/users/", None).await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "not_authenticated"
    );
    assert_eq!(
        error_code(
            app.get("/api/admin/users/", Some(&shopper.access)).await,
            StatusCode::FORBIDDEN
        )
        .await,
        "forbidden"
    );
    let response = app
        .patch(
            &format!("/api/admin/users/{}/", shopper.id),
            Some(&shopper.access),
            &json!({"is_staff": true}),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "a shopper cannot promote themselves"
    );

    let list = body(
        app.get("/api/admin/users/?search=FRA", Some(&staff.access))
            .await,
    )
    .await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["username"], "frank");
    let staff_only = body(
        app.get("/api/admin/users/?is_staff=true", Some(&staff.access))
            .await,
    )
    .await;
    assert_eq!(staff_only["count"], 1);
    assert_eq!(staff_only["results"][0]["username"], "boss");
}

#[actix_web::test]
async fn staff_cannot_demote_or_disable_themselves() {
    let app = spawn_app().await;
    let staff = app.staff("boss").await;
    for flags in [json!({"is_staff": false}), json!({"is_active": false})] {
        let response = app
            .patch(
                &format!("/api/admin/users/{}/", staff.id),
                Some(&staff.access),
                &flags,
            )
            .await;
        assert_eq!(
            error_code(response, StatusCode::CONFLICT).await,
            "self_demotion",
            "{flags}"
        );
    }
    let me = body(app.get("/api/profile/", Some(&staff.access)).await).await;
    assert_eq!(me["is_staff"], true);
}

#[actix_web::test]
async fn disabled_users_cannot_log_in_and_their_tokens_stop_working() {
    let app = spawn_app().await;
    let shopper = app.shopper("grace").await;
    let staff = app.staff("boss").await;
    assert_eq!(
        app.get("/api/profile/", Some(&shopper.access))
            .await
            .status(),
        StatusCode::OK
    );

    let response = app
        .patch(
            &format!("/api/admin/users/{}/", shopper.id),
            Some(&staff.access),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(
        error_code(
            app.get("/api/profile/", Some(&shopper.access)).await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "account_disabled"
    );
    assert_eq!(
        error_code(app.login("grace", PASSWORD).await, StatusCode::UNAUTHORIZED).await,
        "account_disabled"
    );
    let refresh = app
        .post(
            "/api/auth/refresh/",
            None,
            &json!({"refresh": shopper.refresh}),
        )
        .await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.shopper("heidi").await;
    let wrong = body(app.login("heidi", "not the password").await).await;
    let unknown = body(app.login("nobody-here", "not the password").await).await;
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
    assert_eq!(wrong, unknown, "no hint whether the account exists");
}

#[actix_web::test]
async fn repeated_failed_logins_are_throttled_with_retry_after() {
    let app = crate::helpers::spawn_app_with(|s| s.login_limits.per_account = 3).await;
    app.shopper("ivan").await;
    for _ in 0..3 {
        assert_eq!(
            app.login("ivan", "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let throttled = app.login("ivan", PASSWORD).await;
    assert_eq!(
        throttled.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert_eq!(body(throttled).await["error"]["code"], "rate_limited");
    // Another account from the same address is not locked by ivan's failures.
    app.shopper("judy").await;
}
