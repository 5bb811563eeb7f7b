//! `storefront import`: good rows land in the catalog, bad rows are
//! reported by line and never stop the good ones.

use crate::helpers::spawn_binary;
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
