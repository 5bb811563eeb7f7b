//! The checkout committer: one thread that writes every placed order, as
//! many as are waiting at once in one sled transaction.
//!
//! sled 0.34 runs one write transaction at a time (a process-wide lock), and
//! a checkout's transaction over eleven trees costs far more to set up and
//! commit than its writes; orders that queue while a transaction runs share
//! the next one. Each order is still checked on its own against the stock
//! the orders before it left (`orders::commit_checkouts`), so batching
//! changes no outcome. Replies come after the transaction, not the flush:
//! callers await `Store::durable` before acknowledging, as for every write.

use super::commit::JoinOnDrop;
use super::order_book::OrderBook;
use super::orders::{commit_checkouts, CheckoutCommit, CheckoutWrite};
use super::{StoreError, Trees};
use crate::domain::cart::Cart;
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Most orders one transaction takes: bounds how long the orders at the
/// front of a burst wait for those behind them.
const MAX_BATCH: usize = 128;

/// The write comes back with its outcome, so the caller need not keep a copy.
type Placement = Result<(CheckoutWrite, CheckoutCommit), StoreError>;
type Reply = oneshot::Sender<Placement>;

/// What callers queue: a checkout, or a cart's first line (written with
/// the day's "carts started" count, which checkouts also move: in one
/// transaction with them instead of contending with them for sled's lock).
enum Job {
    // Boxed: a write is ten times the size of a cart start.
    Checkout(Box<CheckoutWrite>, Reply),
    CartStart(Cart, oneshot::Sender<Result<(), StoreError>>),
}

#[derive(Clone)]
pub(crate) struct CheckoutCommitter {
    // Declared first so it drops first: the last sender going away ends
    // the thread that `_thread` then joins.
    requests: mpsc::Sender<Job>,
    /// Joined when the last handle goes, so the trees it holds are released
    /// before the store's flush thread closes the database.
    _thread: Arc<JoinOnDrop>,
}

impl CheckoutCommitter {
    pub(crate) fn start(trees: Trees, book: Arc<OrderBook>) -> Result<Self, StoreError> {
        let (requests, inbox) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("storefront-checkout".into())
            .spawn(move || commit_loop(&trees, &book, inbox))?;
        Ok(Self {
            requests,
            _thread: Arc::new(JoinOnDrop::new(thread)),
        })
    }

    pub(crate) async fn place(&self, write: CheckoutWrite) -> Placement {
        let (reply, outcome) = oneshot::channel();
        self.requests
            .send(Job::Checkout(Box::new(write), reply))
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn start_cart(&self, cart: Cart) -> Result<(), StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.requests
            .send(Job::CartStart(cart, reply))
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }
}

fn commit_loop(trees: &Trees, book: &OrderBook, inbox: mpsc::Receiver<Job>) {
    let mut writes = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    let mut carts = Vec::new();
    let mut cart_replies = Vec::new();
    while let Ok(first) = inbox.recv() {
        for job in std::iter::once(first).chain(inbox.try_iter().take(MAX_BATCH - 1)) {
            match job {
                Job::Checkout(write, reply) => {
                    writes.push(*write);
                    replies.push(reply);
                }
                Job::CartStart(cart, reply) => {
                    carts.push(cart);
                    cart_replies.push(reply);
                }
            }
        }
        let (outcomes, carts_written) = commit_checkouts(trees, book, &writes, &carts);
        carts.clear();
        // A caller that gave up (actor stopped) is not an error: its write
        // is in the store (an order is found by id if the request is retried).
        for (reply, written) in cart_replies.drain(..).zip(carts_written) {
            let _ = reply.send(written);
        }
        for ((write, reply), outcome) in writes.drain(..).zip(replies.drain(..)).zip(outcomes) {
            let _ = reply.send(outcome.map(|commit| (write, commit)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;
    use crate::domain::cart::{Cart, CartOwner};
    use crate::domain::catalog::NewProduct;
    use crate::domain::money::{Currency, Money};
    use crate::domain::order::{Order, OrderItem, OrderStatus, PaymentStatus, ShippingAddress};
    use crate::domain::{CartId, OrderId, ProductId, UserId};
    use crate::mail::{MailMessage, PreparedMail};

    fn product(store: &Store, slug: &str, stock: i64) -> ProductId {
        let category = store
            .create_category(format!("C {slug}"), format!("c-{slug}"), None)
            .unwrap();
        let (product, _) = store
            .create_product(NewProduct {
                name: slug.into(),
                slug: slug.into(),
                description: String::new(),
                price: Money::new(500, Currency::USD),
                category: category.id,
                brand: None,
                image: None,
                is_active: true,
                stock,
            })
            .unwrap();
        product.id
    }

    fn write(
        store: &Store,
        user: u64,
        lines: &[(ProductId, i64)],
        key: Option<&str>,
    ) -> CheckoutWrite {
        let id = OrderId(store.next_id().unwrap());
        let items: Vec<OrderItem> = lines
            .iter()
            .map(|(product_id, quantity)| OrderItem {
                product_id: *product_id,
                product_name: "p".into(),
                quantity: *quantity,
                price_at_purchase: 500,
            })
            .collect();
        let order = Order {
            id,
            user_id: UserId(user),
            status: OrderStatus::Pending,
            payment_status: PaymentStatus::Unpaid,
            total: items.iter().map(|i| i.quantity * 500).sum(),
            items,
            currency: Currency::USD,
            shipping_address: ShippingAddress {
                name: "A".into(),
                address: "1 Road".into(),
                city: "Town".into(),
                postal_code: "1".into(),
                country: "US".into(),
                phone: String::new(),
            },
            created_at: 1_700_000_000,
            updated_at: 1_700_000_000,
        };
        let mail = PreparedMail::new(
            store.next_id().unwrap(),
            &MailMessage {
                to: "a@example.com".into(),
                subject: format!("order {}", id.0),
                text_body: "thanks".into(),
            },
            1_700_000_000,
        )
        .unwrap();
        CheckoutWrite {
            order,
            emptied_cart: Cart::new(CartId(user + 1000), CartOwner::User(UserId(user)), 0),
            idempotency: key.map(|k| (k.to_owned(), [user as u8; 32])),
            confirmation: Some(mail),
        }
    }

    /// One transaction, five orders: each is judged against the stock the
    /// ones before it left, and a refused one writes nothing of its own.
    #[test]
    fn a_batch_judges_each_order_after_the_ones_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (hot, other) = (product(&store, "hot", 3), product(&store, "other", 10));
        let batch = vec![
            write(&store, 1, &[(hot, 2), (other, 1)], Some("k1")),
            // Needs 2 of the 1 left: short, and takes no `other` either.
            write(&store, 2, &[(other, 4), (hot, 2)], None),
            // The same user and key as the first: a replay of it.
            write(&store, 1, &[(other, 1)], Some("k1")),
            write(&store, 3, &[(hot, 1)], None),
            write(&store, 4, &[(hot, 1)], None),
        ];
        let ids: Vec<OrderId> = batch.iter().map(|w| w.order.id).collect();
        let (outcomes, _) = commit_checkouts(&store.trees, &store.order_book, &batch, &[]);
        let outcomes: Vec<CheckoutCommit> = outcomes.into_iter().map(Result::unwrap).collect();
        assert!(matches!(outcomes[0], CheckoutCommit::Placed { .. }));
        assert_eq!(
            outcomes[1],
            CheckoutCommit::Short {
                product_id: hot,
                available: 1
            }
        );
        assert_eq!(
            outcomes[2],
            CheckoutCommit::Replayed {
                order_id: ids[0],
                same_request: true
            }
        );
        assert!(matches!(outcomes[3], CheckoutCommit::Placed { .. }));
        assert_eq!(
            outcomes[4],
            CheckoutCommit::Short {
                product_id: hot,
                available: 0
            }
        );
        assert_eq!(store.stock_level(hot).unwrap().unwrap().on_hand, 0);
        assert_eq!(store.stock_level(other).unwrap().unwrap().on_hand, 9);
        let placed: Vec<bool> = ids
            .iter()
            .map(|id| store.trees.orders_by_id.contains_key(id.to_key()).unwrap())
            .collect();
        assert_eq!(placed, [true, false, false, true, false]);
        assert_eq!(store.order(ids[3]).unwrap().unwrap().id, ids[3]);
        assert!(store.order(ids[1]).unwrap().is_none());
        // Mail only for the two placed orders; the ledger agrees with the stock.
        assert_eq!(store.outbox().unwrap().len(), 2);
        assert_eq!(store.ledger_sums(hot).unwrap(), (0, 3));
    }

    /// The committer thread answers each caller with its own outcome.
    #[test]
    fn concurrent_callers_get_their_own_outcome_from_the_committer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hot = product(&store, "hot", 10);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let writes: Vec<CheckoutWrite> = (0..40)
            .map(|u| write(&store, u + 1, &[(hot, 1)], None))
            .collect();
        let outcomes = runtime.block_on(futures_util::future::join_all(
            writes.into_iter().map(|w| store.place_checkout(w)),
        ));
        let mut placed = 0;
        for outcome in outcomes {
            let (write, commit) = outcome.unwrap();
            match commit {
                CheckoutCommit::Placed { .. } => {
                    placed += 1;
                    assert!(store.order(write.order.id).unwrap().is_some());
                }
                CheckoutCommit::Short { available: 0, .. } => {
                    assert!(store.order(write.order.id).unwrap().is_none());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(placed, 10);
        assert_eq!(store.stock_level(hot).unwrap().unwrap().on_hand, 0);
    }
}
