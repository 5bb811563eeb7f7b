//! Staff analytics, read from the day buckets that the order and cart
//! transactions maintain (`store::stats`): a report over a year reads at
//! most a few hundred small records plus the product-sales records of the
//! range, never the orders themselves, and is right after a restart
//! because the buckets are stored with the orders.

use super::{Shop, ShopError};
use crate::domain::money::format_minor;
use crate::domain::order::OrderStatus;
use crate::domain::ProductId;
use crate::store::stats::{day_of, DayStats, ProductSales};
use serde::Serialize;
use std::collections::BTreeMap;
use time::{Date, Month};
use utoipa::ToSchema;

/// Longest report range, in days (about three years).
pub const MAX_RANGE_DAYS: u32 = 1_100;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN: i32 = 2_440_588;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
    Month,
}

impl Interval {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "day" => Interval::Day,
            "week" => Interval::Week,
            "month" => Interval::Month,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    /// The first day of the period holding `day`: the day itself, the
    /// Monday of its ISO week, or the first of its month.
    fn start_of(self, day: u32) -> u32 {
        match self {
            Interval::Day => day,
            // 1970-01-01 was a Thursday: Monday-based weekday = (day + 3) % 7.
            Interval::Week => day - (day + 3) % 7,
            Interval::Month => {
                let date = date_of(day);
                date.replace_day(1).map_or(day, day_number)
            }
        }
    }
}

pub fn date_of(day: u32) -> Date {
    let julian = i32::try_from(day).unwrap_or(0) + UNIX_EPOCH_JULIAN;
    Date::from_julian_day(julian).unwrap_or(Date::MIN)
}

pub fn day_number(date: Date) -> u32 {
    u32::try_from(date.to_julian_day() - UNIX_EPOCH_JULIAN).unwrap_or(0)
}

/// Today's day number.
pub fn today() -> u32 {
    day_of(crate::domain::time::now_unix())
}

/// A report request: days `from..=to`.
#[derive(Debug, Clone, Copy)]
pub struct ReportRequest {
    pub from: u32,
    pub to: u32,
    pub interval: Interval,
    pub top: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Figures {
    /// Orders placed, cancelled ones included.
    pub orders: i64,
    /// Of those, how many are cancelled now.
    pub cancelled: i64,
    /// Totals of the orders that are not cancelled (decimal string).
    pub revenue: String,
    /// Revenue per order that is not cancelled (decimal string).
    pub average_order_value: String,
    /// Units in orders that are not cancelled.
    pub units: i64,
    /// Users whose first order falls in the period.
    pub new_customers: i64,
    /// Carts that went from empty to holding something in the period.
    pub carts_started: i64,
    /// orders / carts_started, four decimals; null when no cart was started.
    pub conversion_rate: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodFigures {
    /// First day of the period (YYYY-MM-DD).
    pub period: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductFigures {
    pub product_id: u64,
    pub name: String,
    pub units: i64,
    pub revenue: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopProducts {
    pub by_units: Vec<ProductFigures>,
    pub by_revenue: Vec<ProductFigures>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsReport {
    /// First day covered (YYYY-MM-DD, UTC).
    pub from: String,
    /// Last day covered, inclusive.
    pub to: String,
    pub interval: String,
    pub currency: String,
    pub totals: Figures,
    /// Orders placed in the range, by their status now.
    pub orders_by_status: BTreeMap<String, i64>,
    /// One entry per period in the range, empty periods included.
    pub series: Vec<PeriodFigures>,
    pub top_products: TopProducts,
}

fn ratio(numerator: i64, denominator: i64) -> Option<String> {
    if denominator <= 0 {
        return None;
    }
    // Ten-thousandths, rounded half up, in integers.
    let scaled =
        (i128::from(numerator) * 20_000 + i128::from(denominator)) / (2 * i128::from(denominator));
    Some(format!("{}.{:04}", scaled / 10_000, scaled % 10_000))
}

impl Shop {
    fn figures(&self, d: &DayStats) -> Figures {
        let currency = self.catalog.currency();
        let cancelled = d.status_count(OrderStatus::Cancelled);
        let kept = d.orders - cancelled;
        Figures {
            orders: d.orders,
            cancelled,
            revenue: format_minor(d.revenue, currency),
            average_order_value: format_minor(
                if kept > 0 { d.revenue / kept } else { 0 },
                currency,
            ),
            units: d.units,
            new_customers: d.new_customers,
            carts_started: d.carts_started,
            conversion_rate: ratio(d.orders, d.carts_started),
        }
    }

    pub fn analytics(&self, request: ReportRequest) -> Result<AnalyticsReport, ShopError> {
        let currency = self.catalog.currency();
        let end = request.to.saturating_add(1);
        let mut periods: BTreeMap<u32, DayStats> = BTreeMap::new();
        let mut day = request.interval.start_of(request.from).max(request.from);
        while day < end {
            periods.insert(day, DayStats::default());
            day = match request.interval {
                Interval::Day => day + 1,
                Interval::Week => request.interval.start_of(day) + 7,
                Interval::Month => {
                    let date = date_of(request.interval.start_of(day));
                    let next = match date.month() {
                        Month::December => {
                            Date::from_calendar_date(date.year() + 1, Month::January, 1)
                        }
                        m => Date::from_calendar_date(date.year(), m.next(), 1),
                    };
                    next.map_or(end, day_number)
                }
            };
        }
        let mut totals = DayStats::default();
        for (day, stats) in self.store.day_stats(request.from, end)? {
            totals.add(&stats);
            let period = request.interval.start_of(day).max(request.from);
            periods.entry(period).or_default().add(&stats);
        }
        let orders_by_status = OrderStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), totals.status_count(*s)))
            .collect();
        let sales = self.store.product_sales(request.from, end)?;
        Ok(AnalyticsReport {
            from: date_of(request.from).to_string(),
            to: date_of(request.to).to_string(),
            interval: request.interval.as_str().into(),
            currency: currency.code().into(),
            totals: self.figures(&totals),
            orders_by_status,
            series: periods
                .iter()
                .map(|(day, stats)| PeriodFigures {
                    period: date_of(*day).to_string(),
                    figures: self.figures(stats),
                })
                .collect(),
            top_products: TopProducts {
                by_units: self.top(&sales, request.top, |s| s.units),
                by_revenue: self.top(&sales, request.top, |s| s.revenue),
            },
        })
    }

    fn top(
        &self,
        sales: &std::collections::HashMap<ProductId, ProductSales>,
        n: usize,
        key: impl Fn(&ProductSales) -> i64,
    ) -> Vec<ProductFigures> {
        let mut ranked: Vec<(&ProductId, &ProductSales)> =
            sales.iter().filter(|(_, s)| s.units > 0).collect();
        ranked.sort_by(|a, b| key(b.1).cmp(&key(a.1)).then(a.0.cmp(b.0)));
        let snapshot = self.catalog.index().snapshot();
        let currency = self.catalog.currency();
        ranked
            .into_iter()
            .take(n)
            .map(|(id, s)| ProductFigures {
                product_id: id.0,
                name: snapshot
                    .product(*id)
                    .map_or_else(|| "(deleted product)".into(), |d| d.product.name.clone()),
                units: s.units,
                revenue: format_minor(s.revenue, currency),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_on_mondays_and_firsts_of_month() {
        let day = day_number(Date::from_calendar_date(2026, Month::December, 2).unwrap());
        assert_eq!(date_of(day).to_string(), "2026-12-02");
        assert_eq!(
            date_of(Interval::Week.start_of(day)).to_string(),
            "2026-11-30"
        );
        assert_eq!(
            date_of(Interval::Month.start_of(day)).to_string(),
            "2026-12-01"
        );
        assert_eq!(ratio(2, 3).as_deref(), Some("0.6667"));
        assert_eq!(ratio(1, 0), None);
    }
}
