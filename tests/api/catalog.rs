//! Catalog: search, filters, ordering, pagination, visibility, staff CRUD,
//! validation, uploads and the index after writes and restarts.

use crate::helpers::{body, error_code, spawn_app, spawn_binary, TestApp, TestUser};
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Shop {
    app: TestApp,
    staff: TestUser,
    kitchen: u64,
    garden: u64,
    acme: u64,
}

async fn post_ok(app: &TestApp, token: &str, path: &str, value: Value) -> Value {
    let response = app.post(path, Some(token), &value).await;
    let status = response.status();
    let json = body(response).await;
    assert_eq!(status, StatusCode::CREATED, "{path} {value}: {json}");
    json
}

/// A small shop: two categories, one brand, five products.
async fn shop() -> Shop {
    let app = spawn_app().await;
    let staff = app.staff("boss").await;
    let t = staff.access.clone();
    let kitchen = post_ok(&app, &t, "/api/categories/", json!({"name": "Kitchen"})).await["id"]
        .as_u64()
        .unwrap();
    let garden = post_ok(
        &app,
        &t,
        "/api/categories/",
        json!({"name": "Garden Tools"}),
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let acme = post_ok(&app, &t, "/api/brands/", json!({"name": "Acmé"})).await["id"]
        .as_u64()
        .unwrap();
    for (name, price, category, brand, stock, description) in [
        (
            "Crème Brûlée Torch",
            "24.50",
            kitchen,
            Some(acme),
            5,
            "For caramelising sugar",
        ),
        ("Coffee Mug", "9.99", kitchen, None, 0, "Holds hot coffee"),
        (
            "Steel Spade",
            "35.00",
            garden,
            Some(acme),
            12,
            "Digs garden beds",
        ),
        (
            "Garden Hose",
            "19.99",
            garden,
            None,
            3,
            "Twenty metres, with coffee-coloured stripes",
        ),
        ("Mug Rack", "14.00", kitchen, None, 7, "Wall rack for mugs"),
    ] {
        post_ok(
            &app,
            &t,
            "/api/products/",
            json!({"name": name, "price": price, "category": category, "brand": brand,
                   "stock": stock, "description": description}),
        )
        .await;
    }
    Shop {
        app,
        staff,
        kitchen,
        garden,
        acme,
    }
}

async fn names(app: &TestApp, query: &str, token: Option<&str>) -> Vec<String> {
    let response = app.get(&format!("/api/products/?{query}"), token).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let page = body(response).await;
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn search_matches_name_category_and_brand_words_ignoring_case_and_accents() {
    let s = shop().await;
    let cases: &[(&str, &[&str], &str)] = &[
        ("search=creme", &["Crème Brûlée Torch"], "accents folded"),
        (
            "search=CRÈME%20torch",
            &["Crème Brûlée Torch"],
            "case ignored, all words",
        ),
        (
            "search=tools",
            &["Garden Hose", "Steel Spade"],
            "category name",
        ),
        (
            "search=acme",
            &["Crème Brûlée Torch", "Steel Spade"],
            "brand name",
        ),
        ("search=mug", &["Coffee Mug", "Mug Rack"], "word prefix"),
        (
            "search=coffee",
            &["Coffee Mug", "Garden Hose"],
            "name matches rank before description",
        ),
        ("search=coffee%20spade", &[], "every word must match"),
    ];
    for (query, expected, why) in cases {
        assert_eq!(names(&s.app, query, None).await, *expected, "{why}");
    }
}

#[actix_web::test]
async fn each_filter_and_ordering_works_alone_and_combined() {
    let s = shop().await;
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (
            format!("category={}&ordering=name", s.kitchen),
            vec!["Coffee Mug", "Crème Brûlée Torch", "Mug Rack"],
            "category by id",
        ),
        (
            "category=garden-tools&ordering=name".into(),
            vec!["Garden Hose", "Steel Spade"],
            "category by slug",
        ),
        (
            format!("brand={}&ordering=name", s.acme),
            vec!["Crème Brûlée Torch", "Steel Spade"],
            "brand",
        ),
        (
            "min_price=19.99&ordering=price".into(),
            vec!["Garden Hose", "Crème Brûlée Torch", "Steel Spade"],
            "min price inclusive",
        ),
        (
            "max_price=14&ordering=price".into(),
            vec!["Coffee Mug", "Mug Rack"],
            "max price inclusive",
        ),
        (
            "in_stock=true&search=mug".into(),
            vec!["Mug Rack"],
            "in stock",
        ),
        (
            "ordering=-price&page_size=2".into(),
            vec!["Steel Spade", "Crème Brûlée Torch"],
            "price descending",
        ),
        (
            "ordering=-created_at&page_size=1".into(),
            vec!["Mug Rack"],
            "newest first",
        ),
        (
            "ordering=-rating&page_size=1".into(),
            vec!["Crème Brûlée Torch"],
            "no ratings yet: ties by id",
        ),
        (
            format!(
                "category={}&in_stock=true&max_price=30&ordering=-price",
                s.kitchen
            ),
            vec!["Crème Brûlée Torch", "Mug Rack"],
            "combined",
        ),
        (
            format!("search=garden&brand={}", s.acme),
            vec!["Steel Spade"],
            "search with a filter",
        ),
    ];
    for (query, expected, why) in cases {
        assert_eq!(
            names(&s.app, &query, None).await,
            expected,
            "{why}: {query}"
        );
    }
    let _ = s.garden;
}

#[actix_web::test]
async fn bad_listing_parameters_are_400_with_the_field_named() {
    let s = shop().await;
    let cases = [
        ("page=0", "page", "pages start at 1"),
        ("page_size=0", "page_size", "empty pages"),
        ("ordering=popularity", "ordering", "unknown ordering"),
        ("min_price=-1", "min_price", "negative price"),
        ("max_price=abc", "max_price", "not a number"),
        ("category=nope", "category", "unknown category"),
        ("brand=999999", "brand", "unknown brand"),
    ];
    for (query, field, why) in cases {
        let response = s.app.get(&format!("/api/products/?{query}"), None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        let json = body(response).await;
        assert!(json["error"]["fields"][field].is_string(), "{why}: {json}");
    }
}

#[actix_web::test]
async fn pages_follow_drf_and_page_size_is_clamped_to_100() {
    let s = shop().await;
    let page = body(
        s.app
            .get("/api/products/?page_size=2&ordering=name", None)
            .await,
    )
    .await;
    assert_eq!(page["count"], 5);
    assert!(page["previous"].is_null());
    let next = page["next"].as_str().unwrap();
    assert!(
        next.contains("page=2") && next.contains("page_size=2"),
        "{next}"
    );
    let last = body(
        s.app
            .get("/api/products/?page_size=2&page=3&ordering=name", None)
            .await,
    )
    .await;
    assert_eq!(last["results"].as_array().unwrap().len(), 1);
    assert!(last["next"].is_null());
    assert!(last["previous"].as_str().unwrap().contains("page=2"));
    let past = s.app.get("/api/products/?page_size=2&page=4", None).await;
    assert_eq!(error_code(past, StatusCode::NOT_FOUND).await, "not_found");
    let clamped = body(s.app.get("/api/products/?page_size=1000", None).await).await;
    assert_eq!(clamped["results"].as_array().unwrap().len(), 5);
    let empty = body(s.app.get("/api/products/?search=zzz", None).await).await;
    assert_eq!(empty["count"], 0);
}

#[actix_web::test]
async fn shoppers_cannot_see_inactive_products_but_staff_can() {
    let s = shop().await;
    let t = s.staff.access.as_str();
    let product = post_ok(
        &s.app,
        t,
        "/api/products/",
        json!({"name": "Secret Pan", "price": "5", "category": s.kitchen, "is_active": false}),
    )
    .await;
    let id = product["id"].as_u64().unwrap();
    assert_eq!(product["price"], "5.00");
    assert_eq!(product["currency"], "USD");
    let shopper = s.app.shopper("alice").await;
    for token in [None, Some(shopper.access.as_str())] {
        assert_eq!(
            s.app
                .get(&format!("/api/products/{id}/"), token)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            s.app.get("/api/products/secret-pan/", token).await.status(),
            StatusCode::NOT_FOUND
        );
        assert!(names(&s.app, "search=secret", token).await.is_empty());
    }
    assert_eq!(
        s.app
            .get(&format!("/api/products/{id}/"), Some(t))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        names(&s.app, "search=secret", Some(t)).await,
        ["Secret Pan"]
    );
    let by_slug = body(s.app.get("/api/products/mug-rack/", None).await).await;
    assert_eq!(by_slug["stock"], 7);
    assert_eq!(by_slug["rating_average"], Value::Null);
}

#[actix_web::test]
async fn staff_routes_are_401_for_anonymous_and_403_for_shoppers() {
    let s = shop().await;
    let shopper = s.app.shopper("bob").await;
    let routes = [
        (reqwest::Method::POST, "/api/products/".to_string()),
        (reqwest::Method::PATCH, "/api/products/1/".into()),
        (reqwest::Method::PUT, "/api/products/1/".into()),
        (reqwest::Method::DELETE, "/api/products/1/".into()),
        (reqwest::Method::POST, "/api/categories/".into()),
        (
            reqwest::Method::DELETE,
            format!("/api/categories/{}/", s.kitchen),
        ),
        (reqwest::Method::POST, "/api/brands/".into()),
        (reqwest::Method::PATCH, format!("/api/brands/{}/", s.acme)),
        (reqwest::Method::POST, "/api/products/1/image/".into()),
    ];
    for (method, path) in routes {
        let anon = s
            .app
            .request(method.clone(), &path, None, Some(&json!({})))
            .await;
        assert_eq!(anon.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let shop = s
            .app
            .request(
                method.clone(),
                &path,
                Some(&shopper.access),
                Some(&json!({})),
            )
            .await;
        assert_eq!(shop.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
}

#[actix_web::test]
async fn invalid_product_fields_are_400_per_field_and_nothing_is_written() {
    let s = shop().await;
    let t = s.staff.access.as_str();
    let k = s.kitchen;
    let cases = [
        (
            json!({"name": " ", "price": "1", "category": k}),
            "name",
            "empty name",
        ),
        (
            json!({"name": "X", "price": "-1.00", "category": k}),
            "price",
            "negative price",
        ),
        (
            json!({"name": "X", "price": -3, "category": k}),
            "price",
            "negative integer price",
        ),
        (
            json!({"name": "X", "price": 1.5, "category": k}),
            "price",
            "float price",
        ),
        (
            json!({"name": "X", "price": "1.999", "category": k}),
            "price",
            "too many decimals",
        ),
        (
            json!({"name": "X", "price": "1", "category": 999999}),
            "category",
            "unknown category",
        ),
        (
            json!({"name": "X", "price": "1", "category": "nope"}),
            "category",
            "unknown category slug",
        ),
        (
            json!({"name": "X", "price": "1", "category": k, "brand": 424242}),
            "brand",
            "unknown brand",
        ),
        (
            json!({"name": "X", "price": "1", "category": k, "stock": -1}),
            "stock",
            "negative stock",
        ),
        (
            json!({"name": "X", "price": "1", "category": k, "slug": "Bad Slug"}),
            "slug",
            "bad slug",
        ),
        (
            json!({"name": "X", "price": "1", "category": k, "image": "javascript:alert(1)"}),
            "image",
            "bad image URL",
        ),
        (json!({"price": "1", "category": k}), "name", "missing name"),
        (
            json!({"name": "X", "price": "1", "category": k, "rating_count": 5}),
            "rating_count",
            "server-owned field",
        ),
        (
            json!({"name": "X", "price": "1", "category": k, "id": 5}),
            "id",
            "server-owned id",
        ),
    ];
    for (value, field, why) in cases {
        let response = s.app.post("/api/products/", Some(t), &value).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        let json = body(response).await;
        assert!(json["error"]["fields"][field].is_string(), "{why}: {json}");
    }
    let duplicate = s
        .app
        .post(
            "/api/products/",
            Some(t),
            &json!({"name": "X", "price": "1", "category": k, "slug": "mug-rack"}),
        )
        .await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    assert!(body(duplicate).await["error"]["fields"]["slug"].is_string());
    let category = s
        .app
        .post(
            "/api/categories/",
            Some(t),
            &json!({"name": "Other", "slug": "kitchen"}),
        )
        .await;
    assert_eq!(
        category.status(),
        StatusCode::CONFLICT,
        "duplicate category slug"
    );
    let empty = s
        .app
        .post("/api/categories/", Some(t), &json!({"name": ""}))
        .await;
    assert_eq!(
        empty.status(),
        StatusCode::BAD_REQUEST,
        "empty category name"
    );
    assert_eq!(
        body(s.app.get("/api/products/?page_size=100", Some(t)).await).await["count"],
        5
    );
}

#[actix_web::test]
async fn the_index_follows_updates_stock_changes_and_deletes() {
    let s = shop().await;
    let t = s.staff.access.as_str();
    let mug = body(s.app.get("/api/products/coffee-mug/", None).await).await;
    let id = mug["id"].as_u64().unwrap();
    let patched = s
        .app
        .patch(
            &format!("/api/products/{id}/"),
            Some(t),
            &json!({"name": "Espresso Cup", "price": "7.25", "stock": 4}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched = body(patched).await;
    assert_eq!(
        (patched["price"].as_str(), patched["stock"].as_i64()),
        (Some("7.25"), Some(4))
    );
    assert!(
        names(&s.app, "search=coffee%20mug", None).await.is_empty(),
        "old name gone"
    );
    assert_eq!(
        names(&s.app, "search=espresso&in_stock=true", None).await,
        ["Espresso Cup"]
    );
    let level = s
        .app
        .store
        .stock_level(storefront::domain::ProductId(id))
        .unwrap()
        .unwrap();
    assert_eq!((level.on_hand, level.received), (4, 4));
    // Renaming a category re-indexes its products.
    s.app
        .patch(
            &format!("/api/categories/{}/", s.garden),
            Some(t),
            &json!({"name": "Outdoor"}),
        )
        .await;
    assert_eq!(
        names(&s.app, "search=outdoor&ordering=name", None).await,
        ["Garden Hose", "Steel Spade"]
    );
    assert!(names(&s.app, "search=tools", None).await.is_empty());
    // A category with products cannot go; an unused product is deleted for good.
    let in_use = s
        .app
        .delete(&format!("/api/categories/{}/", s.garden), Some(t))
        .await;
    assert_eq!(error_code(in_use, StatusCode::CONFLICT).await, "in_use");
    let gone = s.app.delete(&format!("/api/products/{id}/"), Some(t)).await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.app
            .get(&format!("/api/products/{id}/"), Some(t))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(names(&s.app, "search=espresso", Some(t)).await.is_empty());
    let categories = body(s.app.get("/api/categories/", None).await).await;
    let kitchen = categories
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slug"] == "kitchen")
        .unwrap();
    assert_eq!(kitchen["product_count"], 2);
    let brands = body(s.app.get("/api/brands/", None).await).await;
    assert_eq!(brands[0]["product_count"], 2);
}

#[actix_web::test]
async fn a_product_referenced_by_orders_is_only_deactivated() {
    let s = shop().await;
    let t = s.staff.access.as_str();
    let rack = body(s.app.get("/api/products/mug-rack/", None).await).await;
    let id = rack["id"].as_u64().unwrap();
    let mut key = id.to_be_bytes().to_vec();
    key.extend_from_slice(&77u64.to_be_bytes());
    s.app
        .store
        .trees
        .order_items_by_product
        .insert(key, &[])
        .unwrap();
    let response = s.app.delete(&format!("/api/products/{id}/"), Some(t)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await["is_active"], false);
    assert_eq!(
        s.app.get("/api/products/mug-rack/", None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(s
        .app
        .store
        .product(storefront::domain::ProductId(id))
        .unwrap()
        .is_some());
}

fn multipart(bytes: Vec<u8>, field: &str, name: &str, mime: &str) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap();
    reqwest::multipart::Form::new().part(field.to_owned(), part)
}

fn media_files(app: &TestApp) -> usize {
    std::fs::read_dir(app.data_dir.join("media/products"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[actix_web::test]
async fn uploads_accept_real_images_and_refuse_anything_else_storing_nothing() {
    let s = shop().await;
    let t = s.staff.access.as_str();
    let id = body(s.app.get("/api/products/mug-rack/", None).await).await["id"]
        .as_u64()
        .unwrap();
    let url = s.app.url(&format!("/api/products/{id}/image/"));
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    big.resize(5 * 1024 * 1024 + 1, 0);
    let cases = [
        (
            b"<html>not an image</html>".to_vec(),
            "image",
            "a.png",
            "image/png",
            "HTML named .png",
        ),
        (
            b"GIF89a......".to_vec(),
            "image",
            "a.gif",
            "image/gif",
            "GIF",
        ),
        (big, "image", "big.png", "image/png", "over 5 MiB"),
        (
            b"\x89PNG\r\n\x1a\nxx".to_vec(),
            "file",
            "a.png",
            "image/png",
            "wrong field name",
        ),
    ];
    for (bytes, field, name, mime, why) in cases {
        let response = s
            .app
            .client
            .post(&url)
            .bearer_auth(t)
            .multipart(multipart(bytes, field, name, mime))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(media_files(&s.app), 0, "{why}: nothing stored");
    }
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let response = s
        .app
        .client
        .post(&url)
        .bearer_auth(t)
        .multipart(multipart(png.clone(), "image", "x.txt", "text/plain"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "sniffed, not trusted from the name"
    );
    let image = body(response).await["image"].as_str().unwrap().to_owned();
    assert!(
        image.starts_with("/media/products/") && image.ends_with(".png"),
        "{image}"
    );
    let served = s.app.get(&image, None).await;
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().to_vec(), png);
    assert_eq!(
        s.app
            .get("/media/products/..%2F..%2Fstorefront.lock", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn the_index_is_rebuilt_from_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args([
            "create-admin",
            "--username",
            "chief",
            "--email",
            "chief@example.com",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("STOREFRONT_ADMIN_PASSWORD", crate::helpers::PASSWORD)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let client = reqwest::Client::new();
    let first = spawn_binary(dir.path(), &[]).expect("first start");
    let login = client
        .post(format!("{}/api/auth/login/", first.address))
        .json(&json!({"username": "chief", "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = body(login).await["access"].as_str().unwrap().to_owned();
    let post = |path: &str, value: Value| {
        client
            .post(format!("{}{path}", first.address))
            .bearer_auth(&token)
            .json(&value)
            .send()
    };
    let cat = body(
        post("/api/categories/", json!({"name": "Tea"}))
            .await
            .unwrap(),
    )
    .await["id"]
        .as_u64()
        .unwrap();
    for name in ["Green Tea", "Black Tea", "Teapot"] {
        let r = post(
            "/api/products/",
            json!({"name": name, "price": "3.50", "category": cat, "stock": 2}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let pot = body(
        client
            .get(format!("{}/api/products/teapot/", first.address))
            .send()
            .await
            .unwrap(),
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let r = client
        .delete(format!("{}/api/products/{pot}/", first.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Every write above was acknowledged, so it must survive even kill -9.
    drop(first);
    let second = spawn_binary(dir.path(), &[]).expect("restart");
    let page = body(
        client
            .get(format!(
                "{}/api/products/?search=tea&ordering=name",
                second.address
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Black Tea", "Green Tea"]);
    assert_eq!(page["results"][0]["stock"], 2);
}

/// Listing pages and details are assembled from views rendered when a
/// product is indexed; what those views embed from elsewhere must still
/// show its current value.
#[actix_web::test]
async fn listings_and_details_show_renamed_categories_and_brands_and_live_stock() {
    let s = shop().await;
    let t = s.staff.access.as_str();
    for (path, name) in [
        (format!("/api/categories/{}/", s.kitchen), "Cookware"),
        (format!("/api/brands/{}/", s.acme), "Acme \"Tools\""),
    ] {
        let renamed = s.app.patch(&path, Some(t), &json!({"name": name})).await;
        assert_eq!(renamed.status(), StatusCode::OK, "{path}");
    }
    let listed = |query: &'static str| {
        let app = &s.app;
        async move {
            let page = body(app.get(&format!("/api/products/?{query}"), None).await).await;
            page["results"].as_array().unwrap().clone()
        }
    };
    let kitchen = listed("category=kitchen&ordering=name").await;
    assert_eq!(kitchen.len(), 3);
    for product in &kitchen {
        assert_eq!(product["category"]["name"], "Cookware", "{product}");
    }
    let torch = &kitchen[1];
    assert_eq!(torch["name"], "Crème Brûlée Torch");
    assert_eq!(torch["brand"]["name"], "Acme \"Tools\"");
    let torch_id = torch["id"].as_u64().unwrap();
    let detail = body(s.app.get(&format!("/api/products/{torch_id}/"), None).await).await;
    assert_eq!(&detail, torch, "detail and listing agree");
    assert_eq!(
        listed("search=cookware&ordering=name").await.len(),
        3,
        "the new name is searchable"
    );

    // A checkout and a restock change stock without re-indexing the product.
    let shopper = s.app.shopper("ada").await;
    s.app.add_to_cart(&shopper, torch_id, 2).await;
    let order = s
        .app
        .checkout(&shopper, None, &crate::helpers::address_body())
        .await;
    assert_eq!(order.status(), StatusCode::CREATED);
    let stock_listed = |products: Vec<Value>| {
        products
            .iter()
            .find(|p| p["id"] == torch_id)
            .map(|p| {
                (
                    p["stock"].as_i64().unwrap(),
                    p["in_stock"].as_bool().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(stock_listed(listed("ordering=name").await), (3, true));
    assert_eq!(s.app.stock_of(torch_id, None).await, 3);
    let shopper2 = s.app.shopper("bob").await;
    s.app.add_to_cart(&shopper2, torch_id, 3).await;
    let order = s
        .app
        .checkout(&shopper2, None, &crate::helpers::address_body())
        .await;
    assert_eq!(order.status(), StatusCode::CREATED);
    assert_eq!(stock_listed(listed("ordering=name").await), (0, false));
    let restocked = s
        .app
        .post(
            &format!("/api/admin/products/{torch_id}/restock/"),
            Some(t),
            &json!({"quantity": 4, "reason": "delivery"}),
        )
        .await;
    assert_eq!(restocked.status(), StatusCode::OK);
    assert_eq!(stock_listed(listed("ordering=price").await), (4, true));
    assert_eq!(
        stock_listed(listed("search=torch").await),
        (4, true),
        "search pages too"
    );
    let detail = body(s.app.get(&format!("/api/products/{torch_id}/"), None).await).await;
    assert_eq!(
        (detail["stock"].as_i64(), detail["in_stock"].as_bool()),
        (Some(4), Some(true))
    );
}
