//! Image uploads (`POST /api/products/{id}/image/`, `POST /api/brands/{id}/logo/`,
//! multipart field `image`) and serving of stored media at `/media/...`.
//!
//! Invariants: only PNG, JPEG and WebP recognised from their bytes are kept,
//! up to 5 MiB; a refused upload stores nothing; media files are served with
//! `nosniff` and a sandboxing CSP so a stored file can never run script.

use super::error::{ApiError, ErrorBody};
use super::extract::StaffUser;
use super::AppState;
use crate::api::brands::BrandView;
use crate::api::products::ProductView;
use crate::catalog::media::{self, ImageKind, MAX_IMAGE_BYTES};
use crate::domain::audit::Target;
use crate::domain::{BrandId, ProductId};
use crate::store::StoreError;
use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;
use utoipa::ToSchema;

/// Bytes read (and thrown away) past the image limit before the connection
/// is refused outright, so an oversized upload still gets a clean 400.
const DRAIN_LIMIT: usize = 4 * MAX_IMAGE_BYTES;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/products/{id}/image").route(web::post().to(upload_product_image)),
    )
    .service(web::resource("/api/brands/{id}/logo").route(web::post().to(upload_brand_logo)))
    .service(web::resource("/media/{folder}/{file}").route(web::get().to(serve_media)));
}

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImageUpload {
    /// A PNG, JPEG or WebP file of at most 5 MiB.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_image",
        fields: crate::domain::FieldErrors::single("image", message.into()),
        message: "the upload is not an accepted image".into(),
    }
}

/// Reads the `image` field of a multipart body and recognises its kind.
async fn read_image(mut payload: Multipart) -> Result<(ImageKind, Vec<u8>), ApiError> {
    let mut image: Option<Vec<u8>> = None;
    let mut too_large = false;
    let mut total = 0usize;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| {
            ApiError::bad_request(
                "invalid_upload",
                format!("send multipart/form-data with a file field \"image\": {e}"),
            )
        })?;
        let is_image = field.name() == Some("image");
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request("invalid_upload", e.to_string()))?;
            total += chunk.len();
            if total > DRAIN_LIMIT {
                return Err(invalid("must be at most 5 MiB"));
            }
            if is_image && !too_large {
                if buf.len() + chunk.len() > MAX_IMAGE_BYTES {
                    too_large = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        if is_image {
            if image.is_some() {
                return Err(invalid("send exactly one file"));
            }
            image = Some(buf);
        }
    }
    if too_large {
        return Err(invalid("must be at most 5 MiB"));
    }
    let bytes = image.ok_or_else(|| invalid("this field is required"))?;
    let kind =
        ImageKind::sniff(&bytes).ok_or_else(|| invalid("must be a PNG, JPEG or WebP image"))?;
    Ok((kind, bytes))
}

async fn store_file(
    state: &AppState,
    folder: &'static str,
    prefix: String,
    kind: ImageKind,
    bytes: Vec<u8>,
) -> Result<String, ApiError> {
    let data_dir = state.store.data_dir().to_path_buf();
    web::block(move || media::save(&data_dir, folder, &prefix, kind.extension(), &bytes))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::from(StoreError::Io(e)))
}

#[utoipa::path(post, path = "/api/products/{id}/image/", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id")),
    request_body(content = ImageUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Image stored; the product now shows it", body = ProductView),
        (status = 400, description = "Not a PNG/JPEG/WebP image, or over 5 MiB", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
pub async fn upload_product_image(
    state: web::Data<AppState>,
    staff: StaffUser,
    id: web::Path<u64>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let id = ProductId(id.into_inner());
    let old = state
        .catalog
        .store()
        .product(id)?
        .ok_or_else(|| ApiError::not_found("product"))?;
    let (kind, bytes) = read_image(payload).await?;
    let path = store_file(&state, "products", id.to_string(), kind, bytes).await?;
    let updated = state
        .catalog
        .update_product(id, |p| p.image = Some(path.clone()))
        .await;
    let product = match updated {
        Ok(product) => product,
        Err(e) => {
            media::remove(state.store.data_dir(), &path);
            return Err(e.into());
        }
    };
    if let Some(previous) = old.image {
        media::remove(state.store.data_dir(), &previous);
    }
    let snapshot = state.catalog.index().snapshot();
    let on_hand = snapshot.product(id).map(|d| d.on_hand()).unwrap_or(0);
    state
        .shop
        .audit(
            &staff.0,
            "product.image",
            Target::Product(id.0),
            json!({"image": product.image}),
        )
        .await?;
    Ok(HttpResponse::Ok().json(ProductView::new(&product, on_hand, &snapshot)))
}

#[utoipa::path(post, path = "/api/brands/{id}/logo/", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Brand id")),
    request_body(content = ImageUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Logo stored", body = BrandView),
        (status = 400, description = "Not a PNG/JPEG/WebP image, or over 5 MiB", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such brand", body = ErrorBody),
    ))]
pub async fn upload_brand_logo(
    state: web::Data<AppState>,
    staff: StaffUser,
    id: web::Path<u64>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let id = BrandId(id.into_inner());
    let old = state
        .catalog
        .store()
        .brand(id)?
        .ok_or_else(|| ApiError::not_found("brand"))?;
    let (kind, bytes) = read_image(payload).await?;
    let path = store_file(&state, "brands", id.to_string(), kind, bytes).await?;
    let updated = state
        .catalog
        .update_brand(id, |b| b.logo = Some(path.clone()))
        .await;
    let brand = match updated {
        Ok(brand) => brand,
        Err(e) => {
            media::remove(state.store.data_dir(), &path);
            return Err(e.into());
        }
    };
    if let Some(previous) = old.logo {
        media::remove(state.store.data_dir(), &previous);
    }
    state
        .shop
        .audit(
            &staff.0,
            "brand.logo",
            Target::Brand(id.0),
            json!({"logo": brand.logo}),
        )
        .await?;
    let snapshot = state.catalog.index().snapshot();
    Ok(HttpResponse::Ok().json(BrandView::new(&brand, &snapshot)))
}

/// Serves a stored media file.
pub async fn serve_media(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (folder, file) = path.into_inner();
    let public = format!("/media/{folder}/{file}");
    let disk = media::resolve(state.store.data_dir(), &public)
        .ok_or_else(|| ApiError::not_found("file"))?;
    let content_type = media::content_type(&file).ok_or_else(|| ApiError::not_found("file"))?;
    let bytes = web::block(move || std::fs::read(disk))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|_| ApiError::not_found("file"))?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        ))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(bytes))
}
