//! A thin JSON client over one keep-alive connection pool.

use anyhow::Context;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Profile fields every harness shopper registers with, so checkout can
/// ship to the profile address with an empty body.
pub fn shopper_body(username: &str, password: &str) -> Value {
    json!({
        "username": username,
        "email": format!("{username}@example.com"),
        "password": password,
        "address": "1 Bench Road",
        "city": "Loadville",
        "country": "US",
    })
}

#[derive(Clone)]
pub struct Api {
    pub client: Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str, pool: usize, timeout: Duration) -> anyhow::Result<Self> {
        let client = Client::builder()
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            base: base.to_owned(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; the body is JSON when given. Transport errors are
    /// `Err`, every HTTP status is `Ok`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.send(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    /// A request that must succeed (2xx); returns the body.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.send(method.clone(), path, token, body, &[]).await?;
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {value}");
        Ok(value)
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let tokens = self
            .ok(
                Method::POST,
                "/api/auth/login/",
                None,
                Some(&json!({"username": username, "password": password})),
            )
            .await?;
        tokens["access"]
            .as_str()
            .map(str::to_owned)
            .context("login answered without an access token")
    }

    /// Every item of a DRF-style paged listing.
    pub async fn all_pages(&self, path: &str, token: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        for page in 1.. {
            let value = self
                .ok(
                    Method::GET,
                    &format!("{path}{sep}page={page}&page_size=100"),
                    token,
                    None,
                )
                .await?;
            let results = value["results"].as_array().cloned().unwrap_or_default();
            let done = results.is_empty() || value["next"].is_null();
            items.extend(results);
            if done {
                break;
            }
        }
        Ok(items)
    }
}
