//! A bare actix-web handler returning a small JSON body: the baseline that
//! listing and detail throughput are compared with, so figures from noisy
//! machines stay comparable. Run: `cargo run --release --example bare_actix -- 127.0.0.1:8099`.

use actix_web::{web, App, HttpResponse, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".into());
    HttpServer::new(|| {
        App::new().route(
            "/",
            web::get().to(|| async {
                HttpResponse::Ok().json(serde_json::json!({"id": 1, "name": "bare"}))
            }),
        )
    })
    .bind(addr)?
    .run()
    .await
}
