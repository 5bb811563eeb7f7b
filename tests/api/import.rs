//! `storefront import` and `POST /api/admin/products/import/`: good rows
//! land in the catalog, bad rows are reported by line and never stop the
//! good ones.

use crate::helpers::{body, error_code, spawn_app, spawn_binary};
use reqwest::StatusCode;
use std::process::Command;

#[actix_web::test]
async fn import_keeps_good_rows_and_reports_bad_ones_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("products.csv");
    std::fs::write(
        &csv,
        "name,description,price,category,brand,stock,image_url\n\
         Blue Mug,A blue mug,12.50,Kitchen,Acme,10,\n\
         Red Mug,,abc,Kitchen,Acme,3,\n\
         ,no name,5.00,Kitchen,,1,\n\
         Garden Hose,\"Twenty metres, green\",19.99,Garden,,4,https://example.com/hose.png\n\
         Bad Image,x,1.00,Garden,,1,ftp://nope\n\
         Negative,x,1.00,Garden,,-4,\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["import"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "line 3: price",
        "line 4: name",
        "line 6: image_url",
        "line 7: stock",
        "Imported 2 products; 4 rows rejected.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    let server = spawn_binary(&data, &[]).unwrap();
    let listing: serde_json::Value =
        reqwest::get(format!("{}/api/products/?ordering=name", server.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let names: Vec<&str> = listing["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Blue Mug", "Garden Hose"]);
    assert_eq!(listing["results"][0]["stock"], 10);
    assert_eq!(listing["results"][0]["price"], "12.50");
    let categories: serde_json::Value = reqwest::get(format!("{}/api/categories/", server.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        categories
            .as_array()
            .map_or_else(|| categories["results"].as_array().unwrap().len(), Vec::len),
        2
    );
}

#[actix_web::test]
async fn staff_import_over_http_is_searchable_at_once_and_reports_bad_rows() {
    let app = spawn_app().await;
    let staff = app.staff("importer").await;
    let shopper = app.shopper("browser").await;
    let csv = "name,price,category,brand,stock\n\
               Teal Kettle,30.00,Kitchen,Acme,7\n\
               Broken,notaprice,Kitchen,,1\n\
               Pine Rake,8.25,Garden,,0\n";
    let post = |token: &str, csv: &'static str| {
        app.client
            .post(app.url("/api/admin/products/import/"))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
    };

    let refused = post(&shopper.access, csv).await.unwrap();
    assert_eq!(
        error_code(refused, StatusCode::FORBIDDEN).await,
        "forbidden"
    );
    let no_header = post(&staff.access, "title,cost\nMug,1.00\n").await.unwrap();
    assert_eq!(
        error_code(no_header, StatusCode::BAD_REQUEST).await,
        "invalid_csv"
    );
    let listing = body(app.get("/api/products/", None).await).await;
    assert_eq!(listing["count"], 0, "refused imports store nothing");

    let report = body(post(&staff.access, csv).await.unwrap()).await;
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["rejected"][0]["line"], 3, "{report}");
    assert_eq!(report["product_ids"].as_array().unwrap().len(), 2);
    let found = body(app.get("/api/products/?search=kettle", None).await).await;
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(found["results"][0]["stock"], 7);
    assert_eq!(found["results"][0]["brand"]["name"], "Acme");
    let garden = body(app.get("/api/products/?category=garden", None).await).await;
    assert_eq!(garden["count"], 1, "{garden}");
}
