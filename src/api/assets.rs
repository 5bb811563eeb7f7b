//! The browser clients, compiled into the binary so that one file is the
//! whole shop: the storefront at `/`, the staff dashboard at `/admin/`, their
//! files under `/web/` and the JavaScript client library under `/js/`.
//!
//! Every response carries a content hash as its ETag (so a revisit costs a
//! 304, and a new build is never served stale) and a Content-Security-Policy
//! that lets the pages talk only to the origin that served them, whatever
//! host and port that is.

use super::error::ApiError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/clients/web");
static JS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/clients/js");

/// 'self' covers ws:// and wss:// to the same host, so the live connection
/// needs no extra source; `data:` images are the inline SVG placeholders.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: String,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // NormalizePath trims trailing slashes, so `/admin/` arrives as `/admin`.
    for path in ["/", "/admin", "/web/{path:.*}", "/js/{path:.*}"] {
        cfg.service(
            web::resource(path)
                .route(web::get().to(serve))
                .route(web::head().to(serve)),
        );
    }
}

async fn serve(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let asset = assets()
        .get(req.path())
        .ok_or_else(|| ApiError::not_found("file"))?;
    let etag = HeaderValue::from_str(&asset.etag).map_err(|e| ApiError::Internal(e.into()))?;
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| matches!(t.trim(), "*") || t.trim() == asset.etag)
        });
    let mut response = HttpResponse::build(if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    response
        .insert_header((header::ETAG, etag))
        // Revalidate every time: file names carry no hash (there is no build
        // step), so the ETag is what keeps a cached copy honest.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    if fresh {
        return Ok(response.finish());
    }
    response.insert_header((header::CONTENT_TYPE, asset.content_type));
    if req.method() == actix_web::http::Method::HEAD {
        return Ok(response.finish());
    }
    Ok(response.body(asset.body))
}

/// URL path -> file, built once from the embedded directories.
fn assets() -> &'static HashMap<String, Asset> {
    static TABLE: OnceLock<HashMap<String, Asset>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        let mut add = |url: String, body: &'static [u8], name: &str| {
            let Some(content_type) = content_type(name) else {
                return;
            };
            let digest = Sha256::digest(body);
            let etag = format!("\"{}\"", hex::encode(&digest[..16]));
            table.insert(
                url,
                Asset {
                    body,
                    content_type,
                    etag,
                },
            );
        };
        for file in files(&WEB) {
            let path = file.path().to_string_lossy().replace('\\', "/");
            add(format!("/web/{path}"), file.contents(), &path);
            match path.as_str() {
                "index.html" => add("/".into(), file.contents(), &path),
                "admin/index.html" => add("/admin".into(), file.contents(), &path),
                _ => {}
            }
        }
        // Only the library itself: its tests stay out of the binary's routes.
        for file in JS.files() {
            let path = file.path().to_string_lossy().replace('\\', "/");
            if path.ends_with(".js") {
                add(format!("/js/{path}"), file.contents(), &path);
            }
        }
        table
    })
}

fn files(dir: &'static Dir<'static>) -> Vec<&'static include_dir::File<'static>> {
    let mut out: Vec<_> = dir.files().collect();
    for sub in dir.dirs() {
        out.extend(files(sub));
    }
    out
}

/// Files of other kinds are not served (nothing else belongs in clients/).
fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_and_script_is_embedded_with_its_type() {
        let table = assets();
        assert_eq!(table["/"].content_type, "text/html; charset=utf-8");
        assert_eq!(table["/admin"].content_type, "text/html; charset=utf-8");
        assert!(table
            .keys()
            .any(|k| k.starts_with("/js/") && k.ends_with(".js")));
        assert!(!table.keys().any(|k| k.contains("/test/")));
    }
}
