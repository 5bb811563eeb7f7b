//! The embedded store: sled trees holding every durable record.
//!
//! Layout: `<data_dir>/db/` is the sled database, `<data_dir>/storefront.lock`
//! keeps a second process out. Values are bincode 2 (serde) behind a format
//! version byte (see `codec`). Secondary indexes are written in the same sled
//! transaction as their record, so a reader never sees one without the other.
//!
//! Invariant kept here: a write is acknowledged only after `durable()` returns,
//! and `durable()` returns only after a sled flush plus an fsync that started
//! after the write (group commit, see `commit`).

pub mod audit;
pub mod carts;
pub mod catalog;
mod checkouts;
mod codec;
mod commit;
mod error;
pub mod inventory;
pub mod ledger;
mod lock;
pub mod meta;
mod order_book;
pub mod orders;
pub mod payments;
pub mod reviews;
pub mod sessions;
pub mod stats;
pub mod users;
pub mod wishlists;

pub use codec::{decode, encode};
pub use commit::CommitStats;
pub use error::StoreError;

use checkouts::CheckoutCommitter;
use commit::GroupCommit;
use lock::DirLock;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Every sled tree the shop uses, opened once at start.
#[derive(Clone)]
pub struct Trees {
    /// `meta`: small named values (schema version, demo-seeded flag).
    pub meta: sled::Tree,
    /// `users_by_id`: UserId (u64 BE) -> User.
    pub users_by_id: sled::Tree,
    /// `users_by_username`: lowercased username -> UserId.
    pub users_by_username: sled::Tree,
    /// `users_by_email`: lowercased email -> UserId.
    pub users_by_email: sled::Tree,
    /// `profiles_by_user`: UserId -> Profile.
    pub profiles_by_user: sled::Tree,
    /// `sessions_by_id`: SessionId -> Session.
    pub sessions_by_id: sled::Tree,
    /// `sessions_by_user`: UserId ++ SessionId -> () (to revoke every session of a user).
    pub sessions_by_user: sled::Tree,
    /// `products_by_id`: ProductId -> Product (no stock: see `stock_by_product`).
    pub products_by_id: sled::Tree,
    /// `products_by_slug`: slug -> ProductId (unique).
    pub products_by_slug: sled::Tree,
    /// `products_by_category`: CategoryId ++ ProductId -> () (counts, delete checks).
    pub products_by_category: sled::Tree,
    /// `products_by_brand`: BrandId ++ ProductId -> ().
    pub products_by_brand: sled::Tree,
    /// `categories_by_id`: CategoryId -> Category.
    pub categories_by_id: sled::Tree,
    /// `categories_by_slug`: slug -> CategoryId (unique).
    pub categories_by_slug: sled::Tree,
    /// `brands_by_id`: BrandId -> Brand.
    pub brands_by_id: sled::Tree,
    /// `brands_by_slug`: slug -> BrandId (unique).
    pub brands_by_slug: sled::Tree,
    /// `stock_by_product`: ProductId -> StockLevel; changed only through
    /// `apply_stock_delta` (the per-product inventory owner).
    pub stock_by_product: sled::Tree,
    /// `stock_ledger_by_product`: ProductId ++ seq (u64 BE) -> LedgerEntry,
    /// appended in the same transaction as every stock write.
    pub stock_ledger_by_product: sled::Tree,
    /// `order_items_by_product`: ProductId ++ OrderId -> (); written by
    /// checkout. A product with any entry is only ever soft-deleted.
    pub order_items_by_product: sled::Tree,
    /// `carts_by_id`: CartId -> Cart (written only by that cart's CartActor).
    pub carts_by_id: sled::Tree,
    /// `carts_by_user`: UserId -> CartId.
    pub carts_by_user: sled::Tree,
    /// `carts_by_token`: SHA-256 of an anonymous cart token -> CartId.
    pub carts_by_token: sled::Tree,
    /// `orders_by_id`: OrderId -> Order.
    pub orders_by_id: sled::Tree,
    /// `checkouts_by_key`: UserId ++ Idempotency-Key -> body SHA-256 ++ OrderId.
    pub checkouts_by_key: sled::Tree,
    /// `pending_orders_by_created`: created_at (u64 BE) ++ OrderId -> (), one
    /// entry per order still pending; the unpaid-order sweeper reads only the
    /// expired prefix instead of every order.
    pub pending_orders_by_created: sled::Tree,
    /// `payments_by_id`: PaymentId -> Payment.
    pub payments_by_id: sled::Tree,
    /// `payments_by_order`: OrderId ++ PaymentId -> () (every attempt of an order).
    pub payments_by_order: sled::Tree,
    /// `payments_by_transaction`: "provider:provider id" -> PaymentId, for the
    /// transaction id and, once known, the settlement id (capture, payment).
    pub payments_by_transaction: sled::Tree,
    /// `webhook_events_by_id`: "provider:event id" -> SeenEvent (webhook dedupe).
    pub webhook_events_by_id: sled::Tree,
    /// `payment_requests_by_key`: UserId ++ Idempotency-Key -> PaymentRequest.
    pub payment_requests_by_key: sled::Tree,
    /// `stats_by_day`: day (u32 BE) -> DayStats (see `stats`).
    pub stats_by_day: sled::Tree,
    /// `product_sales_by_day`: day (u32 BE) ++ ProductId -> ProductSales.
    pub product_sales_by_day: sled::Tree,
    /// `customers_by_user`: UserId -> day (u32 BE) of the first order.
    pub customers_by_user: sled::Tree,
    /// `audit_by_id`: entry id (u64 BE) -> AuditEntry (append-only).
    pub audit_by_id: sled::Tree,
    /// `wishlist_by_user`: UserId ++ ProductId -> added at (i64 BE).
    pub wishlist_by_user: sled::Tree,
    /// `wishlist_by_product`: ProductId ++ UserId -> () (who to tell when it is back).
    pub wishlist_by_product: sled::Tree,
    /// `reviews_by_id`: ReviewId -> Review.
    pub reviews_by_id: sled::Tree,
    /// `reviews_by_product`: ProductId ++ ReviewId -> () (newest last).
    pub reviews_by_product: sled::Tree,
    /// `reviews_by_product_user`: ProductId ++ UserId -> ReviewId (one each).
    pub reviews_by_product_user: sled::Tree,
    /// `outbox_by_id`: mail id (u64 BE) -> OutboxEntry, awaiting delivery (see `mail`).
    pub outbox_by_id: sled::Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            meta: db.open_tree("meta")?,
            users_by_id: db.open_tree("users_by_id")?,
            users_by_username: db.open_tree("users_by_username")?,
            users_by_email: db.open_tree("users_by_email")?,
            profiles_by_user: db.open_tree("profiles_by_user")?,
            sessions_by_id: db.open_tree("sessions_by_id")?,
            sessions_by_user: db.open_tree("sessions_by_user")?,
            products_by_id: db.open_tree("products_by_id")?,
            products_by_slug: db.open_tree("products_by_slug")?,
            products_by_category: db.open_tree("products_by_category")?,
            products_by_brand: db.open_tree("products_by_brand")?,
            categories_by_id: db.open_tree("categories_by_id")?,
            categories_by_slug: db.open_tree("categories_by_slug")?,
            brands_by_id: db.open_tree("brands_by_id")?,
            brands_by_slug: db.open_tree("brands_by_slug")?,
            stock_by_product: db.open_tree("stock_by_product")?,
            stock_ledger_by_product: db.open_tree("stock_ledger_by_product")?,
            order_items_by_product: db.open_tree("order_items_by_product")?,
            carts_by_id: db.open_tree("carts_by_id")?,
            carts_by_user: db.open_tree("carts_by_user")?,
            carts_by_token: db.open_tree("carts_by_token")?,
            orders_by_id: db.open_tree("orders_by_id")?,
            checkouts_by_key: db.open_tree("checkouts_by_key")?,
            pending_orders_by_created: db.open_tree("pending_orders_by_created")?,
            payments_by_id: db.open_tree("payments_by_id")?,
            payments_by_order: db.open_tree("payments_by_order")?,
            payments_by_transaction: db.open_tree("payments_by_transaction")?,
            webhook_events_by_id: db.open_tree("webhook_events_by_id")?,
            payment_requests_by_key: db.open_tree("payment_requests_by_key")?,
            stats_by_day: db.open_tree("stats_by_day")?,
            product_sales_by_day: db.open_tree("product_sales_by_day")?,
            customers_by_user: db.open_tree("customers_by_user")?,
            audit_by_id: db.open_tree("audit_by_id")?,
            wishlist_by_user: db.open_tree("wishlist_by_user")?,
            wishlist_by_product: db.open_tree("wishlist_by_product")?,
            reviews_by_id: db.open_tree("reviews_by_id")?,
            reviews_by_product: db.open_tree("reviews_by_product")?,
            reviews_by_product_user: db.open_tree("reviews_by_product_user")?,
            outbox_by_id: db.open_tree("outbox_by_id")?,
        })
    }
}

/// A handle on the open store; cheap to clone and shared by every worker.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// Kept to read sled's sticky I/O error (see `is_broken`).
    config: sled::Config,
    pub trees: Trees,
    /// Before `commit`: its thread holds trees, and must end first.
    checkouts: CheckoutCommitter,
    commit: GroupCommit,
    /// Every order, read from memory (see `order_book`).
    order_book: Arc<order_book::OrderBook>,
    data_dir: Arc<PathBuf>,
    _lock: Arc<DirLock>,
}

impl Store {
    /// Opens (or creates) the store in `data_dir`, failing fast with
    /// `StoreError::Locked` if another process holds it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let lock = DirLock::acquire(data_dir)?;
        let sled_dir = data_dir.join("db");
        let config = sled::Config::new()
            .path(&sled_dir)
            .cache_capacity(256 * 1024 * 1024);
        let db = config.open()?;
        let trees = Trees::open(&db)?;
        orders::index_pending_orders(&trees)?;
        let order_book = Arc::new(orders::load_book(&trees)?);
        let commit = GroupCommit::start(db.clone(), &sled_dir)?;
        let checkouts = CheckoutCommitter::start(trees.clone(), order_book.clone())?;
        Ok(Self {
            db,
            config,
            trees,
            checkouts,
            commit,
            order_book,
            data_dir: Arc::new(data_dir.to_path_buf()),
            _lock: Arc::new(lock),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A fresh id, unique for the life of the database (never reused after a crash).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()? + 1)
    }

    /// Waits until every write made before this call is on disk. Concurrent
    /// callers share one flush and one fsync.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.commit.durable().await
    }

    /// The same as `durable` for code outside the async runtime (CLI, shutdown).
    pub fn durable_blocking(&self) -> Result<(), StoreError> {
        self.commit.durable_blocking()
    }

    /// True once sled failed to write its log (a full disk, a failing
    /// device). sled then refuses every later write and never clears the
    /// error, so only opening the database again brings writes back. Reads
    /// keep working from the cache meanwhile, except those that meet a
    /// B-tree split or merge the last writes left unfinished: sled finishes
    /// it on the way and fails (orders are read from memory for that reason).
    pub fn is_broken(&self) -> bool {
        // `global_error` is hidden from sled's docs but is the only way to see
        // the sticky error without attempting a write.
        self.config.global_error().is_err()
    }

    /// True when `bytes` more can be written and synced in the data directory,
    /// found by writing (then removing) a probe file: free-space figures do
    /// not tell whether a write will actually succeed (quotas, reserved blocks).
    pub fn has_room(&self, bytes: u64) -> bool {
        let probe = self.data_dir.join("space-probe");
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::File::create(&probe)?;
            let chunk = vec![0u8; 64 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                file.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            file.sync_all()
        })();
        let _ = std::fs::remove_file(&probe);
        written.is_ok()
    }

    /// CRC32 of every key and value of every tree, for tests that check a
    /// request wrote nothing. O(N), and writers wait while it runs.
    pub fn checksum(&self) -> Result<u32, StoreError> {
        Ok(self.db.checksum()?)
    }

    /// Counters of the group commit, for benchmarks and /metrics.
    pub fn commit_stats(&self) -> &CommitStats {
        self.commit.stats()
    }
}

/// Turns the result of a sled transaction whose closure aborts with a
/// `StoreError` back into a plain `StoreError`.
pub(crate) fn from_tx<T>(result: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Abort(inner) => inner,
        TransactionError::Storage(inner) => StoreError::Sled(inner),
    })
}

/// Aborts a transaction with a store error.
pub(crate) fn abort<T>(error: StoreError) -> Result<T, ConflictableTransactionError<StoreError>> {
    Err(ConflictableTransactionError::Abort(error))
}
