//! The staff dashboard's figures: orders and revenue today, pending orders
//! and low-stock products. One actor keeps them from the hub's order and
//! stock events (rebuilt from sled at start and after it missed events) and
//! pushes them to watching staff sockets when they change, at most once per
//! `dashboard_interval`, so a burst of checkouts costs one push, not one per
//! order.

use crate::actors::hub::{next_subscriber_id, Deliver, Event, EventHub, Lagged, Subscribe, Topic};
use crate::catalog::index::Query;
use crate::catalog::Catalog;
use crate::domain::money::format_minor;
use crate::domain::order::{Order, OrderStatus};
use crate::domain::time::now_unix;
use crate::domain::{OrderId, ProductId};
use crate::store::{Store, StoreError};
use actix::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Low-stock products listed in one push; the count covers all of them.
const LOW_STOCK_LISTED: usize = 50;
const SECONDS_PER_DAY: i64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LowStock {
    pub product_id: u64,
    pub name: String,
    pub stock: i64,
}

/// The `dashboard.stats` payload (protocol/README.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DashboardStats {
    /// The UTC day the "today" figures cover.
    pub date: String,
    pub orders_today: u64,
    /// Total of today's orders that are not cancelled (decimal string).
    pub revenue_today: String,
    pub currency: String,
    pub pending_orders: u64,
    pub low_stock_threshold: i64,
    pub low_stock_count: usize,
    pub low_stock: Vec<LowStock>,
}

/// Fresh figures for a watcher.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct StatsUpdate(pub Arc<DashboardStats>);

/// Starts sending figures to `recipient`: the current ones at once, then
/// every change.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchStats {
    pub id: u64,
    pub recipient: Recipient<StatsUpdate>,
}

/// Stops sending figures to a watcher.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnwatchStats {
    pub id: u64,
}

/// Stops the dashboard so its store handle is released (server shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopDashboard;

pub struct Dashboard {
    store: Store,
    catalog: Catalog,
    hub: Addr<EventHub>,
    interval: Duration,
    threshold: i64,
    day_start: i64,
    /// Today's orders: total and whether cancelled.
    today: HashMap<OrderId, (i64, bool)>,
    pending: HashSet<OrderId>,
    /// Products in the last computed low-stock list; a stock change of one
    /// of these, or one that falls to the threshold, changes the figures.
    low: HashSet<ProductId>,
    watchers: HashMap<u64, Recipient<StatsUpdate>>,
    last_sent: Option<Arc<DashboardStats>>,
    last_push: Option<Instant>,
    push_scheduled: bool,
}

fn day_start(now: i64) -> i64 {
    now - now.rem_euclid(SECONDS_PER_DAY)
}

impl Dashboard {
    pub fn new(
        store: Store,
        catalog: Catalog,
        hub: Addr<EventHub>,
        interval: Duration,
        threshold: i64,
    ) -> Self {
        Self {
            store,
            catalog,
            hub,
            interval,
            threshold,
            day_start: day_start(now_unix()),
            today: HashMap::new(),
            pending: HashSet::new(),
            low: HashSet::new(),
            watchers: HashMap::new(),
            last_sent: None,
            last_push: None,
            push_scheduled: false,
        }
    }

    /// Reads today's and pending orders from sled.
    fn rebuild(&mut self) -> Result<(), StoreError> {
        let start = day_start(now_unix());
        let orders = self
            .store
            .orders_matching(|o| o.created_at >= start || o.status == OrderStatus::Pending)?;
        self.day_start = start;
        self.today.clear();
        self.pending.clear();
        for order in &orders {
            self.apply(order);
        }
        Ok(())
    }

    fn roll_day(&mut self) -> bool {
        let start = day_start(now_unix());
        if start == self.day_start {
            return false;
        }
        self.day_start = start;
        self.today.clear();
        true
    }

    fn apply(&mut self, order: &Order) {
        if order.status == OrderStatus::Pending {
            self.pending.insert(order.id);
        } else {
            self.pending.remove(&order.id);
        }
        if order.created_at >= self.day_start {
            self.today.insert(
                order.id,
                (order.total, order.status == OrderStatus::Cancelled),
            );
        }
    }

    fn compute(&mut self) -> DashboardStats {
        let snapshot = self.catalog.index().snapshot();
        let (_, active) = snapshot.query(&Query {
            limit: usize::MAX,
            ..Query::default()
        });
        let mut low: Vec<LowStock> = active
            .iter()
            .filter(|doc| doc.on_hand() <= self.threshold)
            .map(|doc| LowStock {
                product_id: doc.product.id.0,
                name: doc.product.name.clone(),
                stock: doc.on_hand(),
            })
            .collect();
        low.sort_by_key(|l| (l.stock, l.product_id));
        self.low = low.iter().map(|l| ProductId(l.product_id)).collect();
        let count = low.len();
        low.truncate(LOW_STOCK_LISTED);
        let currency = self.catalog.currency();
        let revenue = self
            .today
            .values()
            .filter(|(_, cancelled)| !cancelled)
            .fold(0i64, |sum, (total, _)| sum.saturating_add(*total));
        let date = time::OffsetDateTime::from_unix_timestamp(self.day_start)
            .map(|t| t.date().to_string())
            .unwrap_or_default();
        DashboardStats {
            date,
            orders_today: self.today.len() as u64,
            revenue_today: format_minor(revenue, currency),
            currency: currency.code().to_owned(),
            pending_orders: self.pending.len() as u64,
            low_stock_threshold: self.threshold,
            low_stock_count: count,
            low_stock: low,
        }
    }

    fn changed(&mut self, ctx: &mut Context<Self>) {
        if self.watchers.is_empty() || self.push_scheduled {
            return;
        }
        self.push_scheduled = true;
        let wait = self.last_push.map_or(Duration::ZERO, |at| {
            self.interval.saturating_sub(at.elapsed())
        });
        ctx.run_later(wait, |act, _| act.push());
    }

    fn push(&mut self) {
        self.push_scheduled = false;
        let stats = self.compute();
        if self.last_sent.as_deref() == Some(&stats) {
            return;
        }
        let stats = Arc::new(stats);
        self.watchers.retain(
            |_, watcher| match watcher.try_send(StatsUpdate(stats.clone())) {
                Ok(()) | Err(SendError::Full(_)) => true,
                Err(SendError::Closed(_)) => false,
            },
        );
        self.last_sent = Some(stats);
        self.last_push = Some(Instant::now());
    }
}

impl Actor for Dashboard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Events arrive in bursts (a checkout storm); missing one means a rebuild.
        ctx.set_mailbox_capacity(4096);
        if let Err(e) = self.rebuild() {
            tracing::error!(error = %e, "dashboard figures could not be read");
        }
        let id = next_subscriber_id();
        for topic in [Topic::Staff, Topic::AllStock] {
            self.hub.do_send(Subscribe {
                id,
                topic,
                deliver: ctx.address().recipient(),
                lagged: ctx.address().recipient(),
            });
        }
        ctx.run_interval(Duration::from_secs(30), |act, ctx| {
            if act.roll_day() {
                act.changed(ctx);
            }
        });
    }
}

impl Handler<Deliver> for Dashboard {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        match &*msg.0 {
            Event::OrderCreated { payload, .. } | Event::OrderUpdated { payload, .. } => {
                self.roll_day();
                let Some(id) = payload["id"].as_u64() else {
                    return;
                };
                match self.store.order(OrderId(id)) {
                    Ok(Some(order)) => self.apply(&order),
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, order_id = id, "dashboard could not read an order");
                        return;
                    }
                }
                self.changed(ctx);
            }
            Event::StockChanged {
                product_id,
                on_hand,
            } => {
                if *on_hand <= self.threshold || self.low.contains(product_id) {
                    self.changed(ctx);
                }
            }
            Event::CartUpdated { .. }
            | Event::BackInStock { .. }
            | Event::WishlistBackInStock { .. }
            | Event::SessionsEnded { .. }
            | Event::ShuttingDown => {}
        }
    }
}

impl Handler<Lagged> for Dashboard {
    type Result = ();

    fn handle(&mut self, _: Lagged, ctx: &mut Context<Self>) {
        if let Err(e) = self.rebuild() {
            tracing::error!(error = %e, "dashboard figures could not be read");
        }
        self.changed(ctx);
    }
}

impl Handler<WatchStats> for Dashboard {
    type Result = ();

    fn handle(&mut self, msg: WatchStats, _: &mut Context<Self>) {
        let stats = Arc::new(self.compute());
        if self.watchers.is_empty() {
            // Nobody was told anything since the last push; this is now
            // what watchers hold.
            self.last_sent = Some(stats.clone());
        }
        msg.recipient.do_send(StatsUpdate(stats));
        self.watchers.insert(msg.id, msg.recipient);
    }
}

impl Handler<UnwatchStats> for Dashboard {
    type Result = ();

    fn handle(&mut self, msg: UnwatchStats, _: &mut Context<Self>) {
        self.watchers.remove(&msg.id);
    }
}

impl Handler<StopDashboard> for Dashboard {
    type Result = ();

    fn handle(&mut self, _: StopDashboard, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::day_start;

    #[test]
    fn days_start_at_utc_midnight() {
        assert_eq!(day_start(86_400 * 3 + 5), 86_400 * 3);
        assert_eq!(day_start(86_400 * 3), 86_400 * 3);
        assert_eq!(day_start(86_400 * 3 - 1), 86_400 * 2);
    }
}
