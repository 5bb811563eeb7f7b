//! `POST /api/admin/products/import/`: the CSV bulk import of
//! `storefront import` on a running shop, for staff moving a catalog in
//! without stopping the server (and for load tests seeding large catalogs).
//!
//! Invariant: the response comes after the imported rows are flushed and
//! indexed; a bad row is reported by line and skipped, never half-written.

use super::error::{ApiError, ErrorBody};
use super::extract::StaffUser;
use super::AppState;
use crate::catalog::import::{ImportError, COLUMNS};
use crate::domain::FieldErrors;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

/// Largest CSV body: about 100,000 typical rows. Bigger catalogs go in
/// several requests.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/products/import").route(web::post().to(import_products)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedRow {
    /// Line number in the CSV body (the header is line 1).
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    /// Rows stored as new products.
    pub imported: usize,
    /// Rows skipped, with the reason.
    pub rejected: Vec<RejectedRow>,
    /// Ids of the new products, in file order.
    pub product_ids: Vec<u64>,
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Csv(e) => ApiError::BadRequest {
                code: "invalid_csv",
                message: "the body is not readable CSV".into(),
                fields: FieldErrors::single("body", e.to_string()),
            },
            ImportError::MissingColumns(columns) => ApiError::BadRequest {
                code: "invalid_csv",
                message: "the CSV header lacks required columns".into(),
                fields: FieldErrors::single("header", format!("missing: {columns}")),
            },
            ImportError::UnknownColumns(columns) => {
                let mut fields = FieldErrors::new();
                for column in &columns {
                    fields.add(column, "unknown column");
                }
                ApiError::BadRequest {
                    code: "invalid_csv",
                    message: format!(
                        "the CSV header has columns the import does not take: {}; it takes {}",
                        columns.join(", "),
                        COLUMNS.join(", ")
                    ),
                    fields,
                }
            }
            ImportError::Store(e) => e.into(),
        }
    }
}

#[utoipa::path(post, path = "/api/admin/products/import/", tag = "admin",
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv",
        description = "Header row then one product per row; columns name, price, category \
                       (required), description, brand, stock, image_url. Categories and \
                       brands are created on first mention."),
    responses(
        (status = 200, description = "Rows imported (flushed and searchable); bad rows listed", body = ImportView),
        (status = 400, description = "Not CSV, or the header lacks name, price or category, or has a column it does not take", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 413, description = "Body over 16 MiB", body = ErrorBody),
    ))]
pub async fn import_products(
    state: web::Data<AppState>,
    _staff: StaffUser,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
        if body.len() + chunk.len() > MAX_IMPORT_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_IMPORT_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let report = state.catalog.import_csv(body).await?;
    tracing::info!(
        imported = report.imported,
        rejected = report.rejected.len(),
        "products imported"
    );
    Ok(HttpResponse::Ok().json(ImportView {
        imported: report.imported,
        rejected: report
            .rejected
            .into_iter()
            .map(|(line, message)| RejectedRow { line, message })
            .collect(),
        product_ids: report.products.iter().map(|id| id.0).collect(),
    }))
}
