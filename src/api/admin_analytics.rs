//! `GET /api/admin/analytics/` (staff only): revenue, orders, average order
//! value, orders by status, top products, new customers and the conversion
//! of carts to orders over a date range, per day, week or month. Served
//! from the maintained day buckets, never by scanning orders.

use super::error::{ApiError, ErrorBody};
use super::extract::StaffUser;
use super::AppState;
use crate::domain::FieldErrors;
use crate::services::analytics::{
    day_number, today, AnalyticsReport, Interval, ReportRequest, MAX_RANGE_DAYS,
};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use time::Date;
use utoipa::IntoParams;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/analytics").route(web::get().to(analytics)));
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AnalyticsQuery {
    /// First day (YYYY-MM-DD, UTC); default 29 days before `to`.
    #[param(schema_with = super::openapi::day)]
    pub from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD, UTC); default today.
    #[param(schema_with = super::openapi::day)]
    pub to: Option<String>,
    /// day (default), week (Monday-based) or month.
    #[param(pattern = "^(day|week|month)$")]
    pub interval: Option<String>,
    /// How many top products to list (1-100, default 10).
    #[param(minimum = 1, maximum = 100)]
    pub top: Option<usize>,
}

fn parse_day(field: &str, text: &str, errors: &mut FieldErrors) -> Option<u32> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    errors
        .check(
            field,
            Date::parse(text, &format).map_err(|_| "must be a date as YYYY-MM-DD".to_string()),
        )
        .and_then(|d| {
            let day = day_number(d);
            if day == 0 && d.year() < 1970 {
                errors.add(field, "must be 1970-01-01 or later");
                None
            } else {
                Some(day)
            }
        })
}

#[utoipa::path(get, path = "/api/admin/analytics/", tag = "admin",
    security(("bearer" = [])),
    params(AnalyticsQuery),
    responses(
        (status = 200, description = "Figures for the range, totals and per period", body = AnalyticsReport),
        (status = 400, description = "Bad date, interval or range", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
    ))]
pub async fn analytics(
    state: web::Data<AppState>,
    _staff: StaffUser,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::new();
    let to = match query.to.as_deref() {
        Some(text) => parse_day("to", text, &mut errors),
        None => Some(today()),
    };
    let from = match query.from.as_deref() {
        Some(text) => parse_day("from", text, &mut errors),
        None => to.map(|t| t.saturating_sub(29)),
    };
    let interval = match query.interval.as_deref() {
        None => Some(Interval::Day),
        Some(text) => errors.check(
            "interval",
            Interval::parse(text).ok_or_else(|| "must be day, week or month".to_string()),
        ),
    };
    let top = query.top.unwrap_or(10);
    if !(1..=100).contains(&top) {
        errors.add("top", "must be 1 to 100");
    }
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            errors.add("from", "must not be after `to`");
        } else if to - from >= MAX_RANGE_DAYS {
            errors.add(
                "from",
                format!("the range may cover at most {MAX_RANGE_DAYS} days"),
            );
        }
    }
    errors.into_result()?;
    let (Some(from), Some(to), Some(interval)) = (from, to, interval) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "validated analytics query left a field unset"
        )));
    };
    let report = state.shop.analytics(ReportRequest {
        from,
        to,
        interval,
        top,
    })?;
    Ok(HttpResponse::Ok().json(report))
}
