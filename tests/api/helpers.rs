//! `spawn_app()` starts the real server in-process on a free port with a
//! temporary data dir; `spawn_binary()` runs the `storefront` executable for
//! tests that restart or kill it. Logs show only when TEST_LOG is set.

#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use storefront::config::Settings;
use storefront::domain::account::{Email, NewUser, Profile, Username};
use storefront::startup::Application;
use storefront::store::Store;
use tempfile::TempDir;

/// Known to tests so they can forge tokens with the right or wrong key.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub store: Store,
    pub data_dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    _dir: Option<TempDir>,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: u64,
    pub username: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        storefront::telemetry::init("debug,sled=info");
    }
}

pub fn test_settings(data_dir: &Path) -> Settings {
    let mut settings = Settings::for_data_dir(data_dir);
    settings.jwt_secret = Some(JWT_SECRET.into());
    settings.workers = Some(2);
    // Tests register and check out far faster than a shop allows; the
    // limits tests turn them back on.
    settings.rate_limits = storefront::config::RateLimits::unlimited();
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    configure(&mut settings);
    let data_dir = settings.data_dir.clone();
    let app = Application::build(settings).await.expect("server builds");
    let port = app.port();
    let handle = app.handle();
    let store = app.store();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        store,
        data_dir,
        handle,
        _dir: Some(dir),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut builder = self.client.request(method, self.url(path));
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = body {
            builder = builder.json(body);
        }
        builder.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        self.request(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request(Method::DELETE, path, token, None).await
    }

    pub async fn register(&self, username: &str) -> reqwest::Response {
        self.post(
            "/api/auth/register/",
            None,
            &json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": PASSWORD,
            }),
        )
        .await
    }

    pub async fn login(&self, login: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/auth/login/",
            None,
            &json!({"username": login, "password": password}),
        )
        .await
    }

    /// Registers and logs in a shopper.
    pub async fn shopper(&self, username: &str) -> TestUser {
        let created = self.register(username).await;
        assert_eq!(created.status(), StatusCode::CREATED, "register {username}");
        let id = body(created).await["id"].as_u64().expect("user id");
        self.logged_in(id, username).await
    }

    /// Creates a staff account the way `create-admin` does (no HTTP route may
    /// grant staff to oneself) and logs it in over HTTP.
    pub async fn staff(&self, username: &str) -> TestUser {
        let user = self
            .store
            .create_user(NewUser {
                username: Username::parse(username).unwrap(),
                email: Email::parse(&format!("{username}@staff.example.com")).unwrap(),
                password_hash: storefront::auth::passwords::hash_blocking(PASSWORD).unwrap(),
                is_staff: true,
                profile: Profile::default(),
            })
            .expect("staff created");
        self.store.durable().await.expect("flushed");
        self.logged_in(user.id.0, username).await
    }

    async fn logged_in(&self, id: u64, username: &str) -> TestUser {
        let response = self.login(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "login {username}");
        let tokens = body(response).await;
        TestUser {
            id,
            username: username.into(),
            password: PASSWORD.into(),
            access: tokens["access"].as_str().unwrap().into(),
            refresh: tokens["refresh"].as_str().unwrap().into(),
        }
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// Stops the server and starts a new one on the same data directory,
    /// as a restart of the process would; nothing in memory carries over.
    pub async fn restart(mut self) -> TestApp {
        let dir = self._dir.take();
        let data_dir = self.data_dir.clone();
        self.handle.stop(true).await;
        drop(self);
        let settings = test_settings(&data_dir);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let app = loop {
            match Application::build(settings.clone()).await {
                Ok(app) => break app,
                // The old instance may still be letting go of the directory.
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "data directory still busy");
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("server did not start again: {e:#}"),
            }
        };
        let port = app.port();
        let handle = app.handle();
        let store = app.store();
        actix_web::rt::spawn(app.run_until_stopped());
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            store,
            data_dir,
            handle,
            _dir: dir,
        }
    }
}

/// The JSON body of a response (panics with the text if it is not JSON).
pub async fn body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Asserts the project's error shape and returns the error code.
pub async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let value = body(response).await;
    let code = value["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error shape: {value}"));
    assert!(
        value["error"]["message"].is_string(),
        "error message: {value}"
    );
    code.to_owned()
}

/// The server binary as a child process, for restart and kill -9 tests.
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
    pub address: String,
}

pub fn spawn_binary(data_dir: &Path, extra_args: &[&str]) -> Result<ServerProcess, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra_args)
        .env("STOREFRONT_JWT_SECRET", JWT_SECRET)
        // Tests that want rate limits pass --rate-limits, which wins over this.
        .env("STOREFRONT_RATE_LIMITS", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().expect("stdout");
    // stderr is drained for the whole life of the child (a full pipe would
    // block the server's logging, and so the server); it is kept only until
    // the server listens, to explain a failed start.
    let early_log = std::sync::Arc::new(std::sync::Mutex::new(Some(Vec::new())));
    let drain = child.stderr.take().map(|stderr| {
        let (show, log) = (std::env::var("TEST_LOG").is_ok(), early_log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if show {
                    eprintln!("[server] {line}");
                }
                if let Some(kept) = log.lock().unwrap().as_mut() {
                    kept.push(line);
                }
            }
        })
    });
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
            let port: u16 = rest.trim().parse().map_err(|_| line.clone())?;
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            early_log.lock().unwrap().take();
            return Ok(ServerProcess {
                child,
                port,
                address: format!("http://127.0.0.1:{port}"),
            });
        }
    }
    child.wait().map_err(|e| e.to_string())?;
    if let Some(drain) = drain {
        let _ = drain.join();
    }
    let log = early_log.lock().unwrap().take().unwrap_or_default();
    Err(log.join("\n"))
}

impl ServerProcess {
    /// SIGKILL: no chance to flush or clean up.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A shipping address body accepted by checkout.
pub fn address_body() -> Value {
    json!({"shipping_address": {
        "name": "Ada Shopper",
        "address": "1 Market Street",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    }})
}

impl TestApp {
    /// A category made by staff; returns its id.
    pub async fn category(&self, staff: &TestUser, name: &str) -> u64 {
        let response = self
            .post(
                "/api/categories/",
                Some(&staff.access),
                &json!({"name": name}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "category {name}");
        body(response).await["id"].as_u64().expect("category id")
    }

    /// A product made by staff; returns its id.
    pub async fn product(
        &self,
        staff: &TestUser,
        category: u64,
        name: &str,
        price: &str,
        stock: i64,
    ) -> u64 {
        let response = self
            .post(
                "/api/products/",
                Some(&staff.access),
                &json!({"name": name, "price": price, "category": category, "stock": stock}),
            )
            .await;
        let status = response.status();
        let value = body(response).await;
        assert_eq!(status, StatusCode::CREATED, "product {name}: {value}");
        value["id"].as_u64().expect("product id")
    }

    /// `count` shoppers named `{prefix}{n}`, registered a few at a time
    /// (password hashing is deliberately slow).
    pub async fn shoppers(&self, prefix: &str, count: usize) -> Vec<TestUser> {
        use futures_util::StreamExt;
        let mut users: Vec<TestUser> = futures_util::stream::iter(0..count)
            .map(|n| async move { self.shopper(&format!("{prefix}{n}")).await })
            .buffer_unordered(4)
            .collect()
            .await;
        users.sort_by_key(|u| u.id);
        users
    }

    /// Units on hand as the product detail shows them (staff see inactive ones too).
    pub async fn stock_of(&self, product: u64, token: Option<&str>) -> i64 {
        let response = self.get(&format!("/api/products/{product}/"), token).await;
        assert_eq!(response.status(), StatusCode::OK, "product {product}");
        body(response).await["stock"].as_i64().expect("stock")
    }

    /// Adds to the caller's cart and asserts it worked; returns the cart.
    pub async fn add_to_cart(&self, user: &TestUser, product: u64, quantity: i64) -> Value {
        let response = self
            .post(
                "/api/cart/add/",
                Some(&user.access),
                &json!({"product_id": product, "quantity": quantity}),
            )
            .await;
        let status = response.status();
        let value = body(response).await;
        assert_eq!(status, StatusCode::OK, "add {product} x{quantity}: {value}");
        value
    }

    /// POST /api/checkout/ with an address, optionally with an Idempotency-Key.
    pub async fn checkout(
        &self,
        user: &TestUser,
        key: Option<&str>,
        payload: &Value,
    ) -> reqwest::Response {
        let mut builder = self
            .client
            .post(self.url("/api/checkout/"))
            .bearer_auth(&user.access)
            .json(payload);
        if let Some(key) = key {
            builder = builder.header("Idempotency-Key", key);
        }
        builder.send().await.expect("request sent")
    }

    /// Every order, through the staff list (all pages).
    pub async fn all_orders(&self, staff: &TestUser, filter: &str) -> Vec<Value> {
        all_orders_at(&self.client, &self.address, &staff.access, filter).await
    }
}

/// Every order the staff list shows at `address` (all pages of 100).
pub async fn all_orders_at(
    client: &reqwest::Client,
    address: &str,
    staff_token: &str,
    filter: &str,
) -> Vec<Value> {
    let mut orders = Vec::new();
    let mut page = 1;
    loop {
        let response = client
            .get(format!(
                "{address}/api/admin/orders/?page_size=100&page={page}{filter}"
            ))
            .bearer_auth(staff_token)
            .send()
            .await
            .expect("request sent");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "admin orders page {page}"
        );
        let value = body(response).await;
        let results = value["results"].as_array().expect("results").clone();
        let done = results.len() < 100 || value["next"].is_null();
        orders.extend(results);
        if done {
            return orders;
        }
        page += 1;
    }
}

/// Units of each product in orders that are not cancelled.
pub fn units_sold(orders: &[Value]) -> std::collections::HashMap<u64, i64> {
    let mut sold = std::collections::HashMap::new();
    for order in orders.iter().filter(|o| o["status"] != "cancelled") {
        for item in order["items"].as_array().expect("items") {
            *sold
                .entry(item["product_id"].as_u64().unwrap())
                .or_insert(0) += item["quantity"].as_i64().unwrap();
        }
    }
    sold
}
