//! Durability and the data directory: restarts keep data, an acknowledged
//! write survives kill -9, and a second server on the same directory stops
//! with a clear message.

use crate::helpers::{spawn_app_with, spawn_binary, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

async fn register(client: &reqwest::Client, address: &str, username: &str) -> StatusCode {
    client
        .post(format!("{address}/api/auth/register/"))
        .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn login(client: &reqwest::Client, address: &str, username: &str) -> StatusCode {
    client
        .post(format!("{address}/api/auth/login/"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
}

#[actix_web::test]
async fn accounts_survive_a_graceful_restart_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let mut server = spawn_binary(dir.path(), &[]).unwrap();
    assert_eq!(
        register(&client, &server.address, "alice").await,
        StatusCode::CREATED
    );
    server.terminate();

    let mut server = spawn_binary(dir.path(), &[]).unwrap();
    assert_eq!(
        login(&client, &server.address, "alice").await,
        StatusCode::OK
    );
    // Acknowledged means durable: kill -9 right after the 201.
    assert_eq!(
        register(&client, &server.address, "bob").await,
        StatusCode::CREATED
    );
    server.kill_9();

    let server = spawn_binary(dir.path(), &[]).unwrap();
    for name in ["alice", "bob"] {
        assert_eq!(
            login(&client, &server.address, name).await,
            StatusCode::OK,
            "{name}"
        );
    }
}

#[actix_web::test]
async fn a_second_server_on_the_same_data_dir_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let _first = spawn_binary(dir.path(), &[]).unwrap();
    let started = std::time::Instant::now();
    let error = spawn_binary(dir.path(), &[])
        .err()
        .expect("second server must not start");
    assert!(
        error.contains("already in use by another storefront process"),
        "{error}"
    );
    assert!(
        started.elapsed().as_secs() < 10,
        "fails fast instead of hanging"
    );
}

#[actix_web::test]
async fn a_generated_jwt_secret_is_private_and_keeps_tokens_valid() {
    let app = spawn_app_with(|s| s.jwt_secret = None).await;
    let user = app.shopper("carol").await;
    let path = app.data_dir.join("jwt_secret");
    let mode = std::fs::metadata(&path).unwrap().permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }
    assert_eq!(
        app.get("/api/profile/", Some(&user.access)).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn demo_mode_seeds_a_shopper_who_can_log_in_and_seeds_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = spawn_binary(dir.path(), &["--demo"]).unwrap();
    let credentials = std::fs::read_to_string(dir.path().join("demo-credentials.txt")).unwrap();
    let shopper_password = credentials
        .lines()
        .find_map(|l| l.strip_prefix("shopper shopper "))
        .unwrap()
        .to_owned();
    let response = client
        .post(format!("{}/api/auth/login/", server.address))
        .json(&json!({"username": "shopper", "password": shopper_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(server);
    let server = spawn_binary(dir.path(), &["--demo"]).unwrap();
    let health: serde_json::Value = client
        .get(format!("{}/healthz", server.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["users"], 2, "second demo start seeds nothing new");
}

#[actix_web::test]
async fn without_demo_no_demo_accounts_exist() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_binary(dir.path(), &[]).unwrap();
    let client = reqwest::Client::new();
    assert_eq!(
        login(&client, &server.address, "admin").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!dir.path().join("demo-credentials.txt").exists());
}
