//! Every order in memory: the read side of `orders_by_id`, with each
//! user's orders listed, so that reading orders never touches sled (and
//! sled keeps no per-user order index: data directories from before may
//! still hold an unused `orders_by_user` tree).
//!
//! Why: sled finishes pending B-tree splits and merges on whatever
//! traversal meets them, reads included, and that writes its log. Once a log
//! write failed (a full disk), sled refuses every later one until the
//! database is reopened, so a read that walked into a node the last writes
//! had overfilled failed as well: the order list answered 503 while the
//! disk was full, though nothing in it writes.
//!
//! Invariant: once a transaction that writes an order has committed, the
//! book holds what sled holds for that order. A writer holds the order's
//! stripe lock (`writing`) from before its transaction until the book has
//! the result, so the versions of one order land in commit order; orders of
//! different stripes are written in parallel.

use crate::domain::order::Order;
use crate::domain::{OrderId, UserId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

const STRIPES: usize = 64;

#[derive(Default)]
struct Book {
    by_id: BTreeMap<OrderId, Arc<Order>>,
    by_user: HashMap<UserId, BTreeSet<OrderId>>,
}

pub struct OrderBook {
    book: RwLock<Book>,
    stripes: [Mutex<()>; STRIPES],
}

impl OrderBook {
    pub fn new(orders: impl IntoIterator<Item = Order>) -> Self {
        let book = Self {
            book: RwLock::new(Book::default()),
            stripes: std::array::from_fn(|_| Mutex::new(())),
        };
        for order in orders {
            book.put(order);
        }
        book
    }

    /// Held by a writer of order `id` across its transaction and `put`.
    pub fn writing(&self, id: OrderId) -> MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic elsewhere leaves nothing torn.
        self.stripes[(id.0 % STRIPES as u64) as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `writing` for several orders at once (a batched checkout). Stripes
    /// are taken once each, in index order, so two batch writers cannot
    /// deadlock and a stripe two orders share is not locked twice.
    pub fn writing_all(&self, ids: impl IntoIterator<Item = OrderId>) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = ids
            .into_iter()
            .map(|id| (id.0 % STRIPES as u64) as usize)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|s| {
                self.stripes[s]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            })
            .collect()
    }

    /// Records an order as a committed transaction wrote it.
    pub fn put(&self, order: Order) {
        let mut book = self.book.write().unwrap_or_else(PoisonError::into_inner);
        book.by_user
            .entry(order.user_id)
            .or_default()
            .insert(order.id);
        book.by_id.insert(order.id, Arc::new(order));
    }

    pub fn get(&self, id: OrderId) -> Option<Order> {
        let book = self.book.read().unwrap_or_else(PoisonError::into_inner);
        book.by_id.get(&id).map(|o| Order::clone(o))
    }

    /// A page of a user's orders, newest first, and how many they have.
    pub fn of_user(&self, user: UserId, offset: usize, limit: usize) -> (usize, Vec<Order>) {
        let book = self.book.read().unwrap_or_else(PoisonError::into_inner);
        let Some(ids) = book.by_user.get(&user) else {
            return (0, Vec::new());
        };
        let page = ids
            .iter()
            .rev()
            .skip(offset)
            .take(limit)
            .filter_map(|id| book.by_id.get(id))
            .map(|o| Order::clone(o))
            .collect();
        (ids.len(), page)
    }

    /// Every order for which `keep` is true, newest first.
    pub fn matching(&self, keep: impl Fn(&Order) -> bool) -> Vec<Order> {
        let book = self.book.read().unwrap_or_else(PoisonError::into_inner);
        book.by_id
            .values()
            .rev()
            .filter(|o| keep(o))
            .map(|o| Order::clone(o))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use crate::domain::order::{OrderStatus, PaymentStatus, ShippingAddress};

    fn order(id: u64, user: u64, status: OrderStatus) -> Order {
        Order {
            id: OrderId(id),
            user_id: UserId(user),
            status,
            payment_status: PaymentStatus::Unpaid,
            items: Vec::new(),
            total: 0,
            currency: Currency::USD,
            shipping_address: ShippingAddress {
                name: "Ada".into(),
                address: "1 Market Street".into(),
                city: "Springfield".into(),
                postal_code: "12345".into(),
                country: "US".into(),
                phone: String::new(),
            },
            created_at: id as i64,
            updated_at: id as i64,
        }
    }

    #[test]
    fn pages_are_newest_first_per_user_and_a_put_replaces_the_order() {
        let book = OrderBook::new([
            order(1, 7, OrderStatus::Pending),
            order(2, 8, OrderStatus::Pending),
            order(3, 7, OrderStatus::Pending),
            order(4, 7, OrderStatus::Pending),
        ]);
        let (count, page) = book.of_user(UserId(7), 1, 5);
        assert_eq!(count, 3);
        assert_eq!(page.iter().map(|o| o.id.0).collect::<Vec<_>>(), [3, 1]);
        assert_eq!(book.of_user(UserId(9), 0, 5), (0, Vec::new()));
        book.put(order(3, 7, OrderStatus::Cancelled));
        assert_eq!(book.get(OrderId(3)).unwrap().status, OrderStatus::Cancelled);
        assert_eq!(book.of_user(UserId(7), 0, 5).0, 3, "no duplicate");
        let pending: Vec<u64> = book
            .matching(|o| o.status == OrderStatus::Pending)
            .iter()
            .map(|o| o.id.0)
            .collect();
        assert_eq!(pending, [4, 2, 1]);
    }
}
