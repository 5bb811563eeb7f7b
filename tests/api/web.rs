//! The browser clients served by the binary: pages, scripts and the client
//! library with the right types, a self-only Content-Security-Policy, ETag
//! revalidation, and JSON 404s for files that do not exist.

use crate::helpers::{error_code, spawn_app};
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn pages_scripts_and_library_are_served_with_their_content_types() {
    let app = spawn_app().await;
    let cases = [
        ("/", "text/html", "/web/app.js"),
        ("/admin/", "text/html", "/web/admin/admin.js"),
        ("/admin", "text/html", "/web/admin/admin.js"),
        ("/web/app.js", "text/javascript", "import"),
        ("/web/style.css", "text/css", "{"),
        ("/web/favicon.svg", "image/svg+xml", "<svg"),
        ("/js/index.js", "text/javascript", "export"),
        ("/js/api.js", "text/javascript", "ApiError"),
        ("/js/live.js", "text/javascript", "WebSocket"),
    ];
    for (path, content_type, snippet) in cases {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let got = header(&response, CONTENT_TYPE);
        assert!(got.starts_with(content_type), "{path}: {got}");
        assert_eq!(header(&response, CACHE_CONTROL), "no-cache", "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains(snippet), "{path} lacks {snippet:?}");
    }
}

#[actix_web::test]
async fn every_asset_carries_a_self_only_content_security_policy() {
    let app = spawn_app().await;
    for path in ["/", "/admin/", "/web/app.js", "/js/api.js"] {
        let response = app.get(path, None).await;
        let csp = header(&response, CONTENT_SECURITY_POLICY);
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("connect-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(!csp.contains("http"), "{path} names another host: {csp}");
        assert_eq!(
            header(&response, reqwest::header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
    }
}

#[actix_web::test]
async fn pages_name_no_other_host() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/admin/",
        "/web/app.js",
        "/web/style.css",
        "/js/live.js",
    ] {
        let text = app.get(path, None).await.text().await.unwrap();
        for needle in ["http://", "https://", "//fonts.", "cdn"] {
            assert!(!text.contains(needle), "{path} mentions {needle}");
        }
    }
}

#[actix_web::test]
async fn a_matching_etag_gets_304_and_a_stale_one_the_file() {
    let app = spawn_app().await;
    let first = app.get("/web/app.js", None).await;
    let etag = header(&first, ETAG);
    assert!(etag.starts_with('"') && etag.len() > 20, "{etag}");
    let body = first.text().await.unwrap();

    let revalidated = app
        .client
        .get(app.url("/web/app.js"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&revalidated, ETAG), etag);
    assert!(revalidated.text().await.unwrap().is_empty());

    let stale = app
        .client
        .get(app.url("/web/app.js"))
        .header(IF_NONE_MATCH, "\"0000\", \"1111\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.text().await.unwrap(), body);

    // Different files have different tags.
    let other = app.get("/web/style.css", None).await;
    assert_ne!(header(&other, ETAG), etag);
}

#[actix_web::test]
async fn head_answers_headers_without_a_body() {
    let app = spawn_app().await;
    let response = app
        .client
        .head(app.url("/"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, CONTENT_TYPE).starts_with("text/html"));
    assert!(response.text().await.unwrap().is_empty());
}

#[actix_web::test]
async fn unknown_files_and_library_tests_are_json_404s() {
    let app = spawn_app().await;
    for path in [
        "/web/nope.js",
        "/js/test/api.test.js",
        "/web/../Cargo.toml",
        "/js/..%2fCargo.toml",
        "/admin/secret",
        "/index.php",
    ] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let code = error_code(response, StatusCode::NOT_FOUND).await;
        assert_eq!(code, "not_found", "{path}");
    }
}

#[actix_web::test]
async fn writes_to_asset_paths_are_refused_in_the_error_shape() {
    let app = spawn_app().await;
    let response = app.post("/", None, &serde_json::json!({})).await;
    assert_eq!(
        error_code(response, StatusCode::METHOD_NOT_ALLOWED).await,
        "method_not_allowed"
    );
}
