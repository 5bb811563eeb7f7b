//! DRF-style pages: `{count, next, previous, results}`. `page` starts at 1;
//! `page_size` defaults to 20 and is capped at 100 (larger values are
//! clamped, not refused, so a client asking for "everything" still works).

use super::error::ApiError;
use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;

#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1-based page number.
    #[param(minimum = 1, maximum = 18446744073709551615u64)]
    pub page: Option<usize>,
    /// Items per page (1-100, default 20; larger values are clamped to 100).
    #[param(minimum = 1, maximum = 18446744073709551615u64)]
    pub page_size: Option<usize>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: usize,
    pub size: usize,
}

impl PageRequest {
    pub fn parse(page: Option<usize>, page_size: Option<usize>) -> Result<Self, ApiError> {
        let page = page.unwrap_or(1);
        if page == 0 {
            return Err(ApiError::bad_request(
                "invalid_page",
                "page numbers start at 1",
            ));
        }
        let size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if size == 0 {
            return Err(ApiError::bad_request(
                "invalid_page_size",
                "page_size must be at least 1",
            ));
        }
        Ok(Self {
            page,
            size: size.min(MAX_PAGE_SIZE),
        })
    }

    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.size)
    }
}

impl TryFrom<PageQuery> for PageRequest {
    type Error = ApiError;
    fn try_from(q: PageQuery) -> Result<Self, ApiError> {
        Self::parse(q.page, q.page_size)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub count: usize,
    /// URL of the next page, or null.
    pub next: Option<String>,
    /// URL of the previous page, or null.
    pub previous: Option<String>,
    pub results: Vec<T>,
}

impl<T> Page<T> {
    /// Builds a page from the items on it and the total count, with links
    /// that keep the request's other query parameters.
    pub fn new(req: &HttpRequest, page: PageRequest, count: usize, results: Vec<T>) -> Self {
        let last_page = count.div_ceil(page.size).max(1);
        let link = |number: usize| page_link(req, number, page.size);
        Self {
            count,
            next: (page.page < last_page).then(|| link(page.page + 1)),
            previous: (page.page > 1).then(|| link((page.page - 1).min(last_page))),
            results,
        }
    }
}

fn page_link(req: &HttpRequest, page: usize, size: usize) -> String {
    let info = req.connection_info();
    let mut query: Vec<String> = req
        .query_string()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page=") && !p.starts_with("page_size="))
        .map(str::to_owned)
        .collect();
    query.push(format!("page={page}"));
    query.push(format!("page_size={size}"));
    format!(
        "{}://{}{}?{}",
        info.scheme(),
        info.host(),
        req.path(),
        query.join("&")
    )
}
