//! The storage layer's ceiling for checkouts, without HTTP or actors
//! (figures are printed, not asserted). Opens a store in a fresh directory,
//! creates 1,000 products, then 64 threads loop: `commit_checkout` (the
//! one sled transaction a checkout writes: order, stock and its ledger,
//! item index, emptied cart, pending index, analytics buckets, outbox
//! mail) and `durable_blocking` (the group-commit flush it waits for).
//! Compare with `cargo bench --bench checkout`, which adds HTTP, the
//! actors and the add-to-cart before each checkout.
//!
//! Run: `cargo bench --bench commit` (COMMIT_BENCH_SECS, default 10).

mod common;

use common::process_cpu_seconds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storefront::domain::cart::{Cart, CartOwner};
use storefront::domain::catalog::NewProduct;
use storefront::domain::money::{Currency, Money};
use storefront::domain::order::{Order, OrderItem, OrderStatus, PaymentStatus, ShippingAddress};
use storefront::domain::{CartId, OrderId, ProductId, UserId};
use storefront::mail::{MailMessage, PreparedMail};
use storefront::store::orders::{CheckoutCommit, CheckoutWrite};
use storefront::store::Store;

const WRITERS: u64 = 64;
const PRODUCTS: usize = 1_000;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("COMMIT_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // "single": each writer runs its own transaction (the pre-batching path).
    let batched = std::env::var("COMMIT_BENCH_MODE").as_deref() != Ok("single");
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let category = store.create_category("Bench".into(), "bench".into(), None)?;
    let mut products = Vec::with_capacity(PRODUCTS);
    for n in 0..PRODUCTS {
        let (product, _) = store.create_product(NewProduct {
            name: format!("Bench product {n}"),
            slug: format!("bench-product-{n}"),
            description: String::new(),
            price: Money::new(999, Currency::USD),
            category: category.id,
            brand: None,
            image: None,
            is_active: true,
            stock: 1_000_000_000,
        })?;
        products.push(product.id);
    }
    store.durable_blocking()?;
    let products = Arc::new(products);
    let flushes_before = store.commit_stats().flushes();
    let placed = Arc::new(AtomicU64::new(0));
    let cpu_before = process_cpu_seconds("self");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, products, placed) = (store.clone(), products.clone(), placed.clone());
            std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
                let mut latencies = Vec::new();
                let runtime = tokio::runtime::Builder::new_current_thread().build()?;
                let mut pick = writer * 7919 + 1;
                while Instant::now() < deadline {
                    pick = pick
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let product = products[(pick >> 33) as usize % products.len()];
                    let began = Instant::now();
                    commit_one(&store, &runtime, batched, writer, product)?;
                    store.durable_blocking()?;
                    latencies.push(began.elapsed());
                    placed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for writer in writers {
        latencies.extend(
            writer
                .join()
                .map_err(|_| anyhow::anyhow!("writer panicked"))??,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds("self") - cpu_before;
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    let flushes = store.commit_stats().flushes() - flushes_before;
    let commits = placed.load(Ordering::Relaxed);
    println!(
        "{WRITERS} writer threads, {PRODUCTS} products, {seconds} s, in-process, 2-core machine, {}\n",
        if batched { "batched through the checkout committer" } else { "one transaction per order" }
    );
    println!("| durable checkout commits/s | p50 | p99 | commits per flush | CPU per commit |");
    println!("|---|---|---|---|---|");
    println!(
        "| {:.0} | {:.2} ms | {:.2} ms | {:.1} | {:.3} ms |",
        commits as f64 / elapsed,
        at(0.5),
        at(0.99),
        commits as f64 / flushes.max(1) as f64,
        cpu * 1e3 / commits.max(1) as f64
    );
    Ok(())
}

/// One checkout's transaction: a one-line order, the emptied cart and the
/// confirmation mail, as the CartActor writes them.
fn commit_one(
    store: &Store,
    runtime: &tokio::runtime::Runtime,
    batched: bool,
    writer: u64,
    product: ProductId,
) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let user = UserId(1_000_000 + writer);
    let order = Order {
        id: OrderId(store.next_id()?),
        user_id: user,
        status: OrderStatus::Pending,
        payment_status: PaymentStatus::Unpaid,
        items: vec![OrderItem {
            product_id: product,
            product_name: "Bench product".into(),
            quantity: 1,
            price_at_purchase: 999,
        }],
        total: 999,
        currency: Currency::USD,
        shipping_address: ShippingAddress {
            name: "Bench Shopper".into(),
            address: "1 Bench Road".into(),
            city: "Loadville".into(),
            postal_code: "12345".into(),
            country: "US".into(),
            phone: String::new(),
        },
        created_at: now,
        updated_at: now,
    };
    let cart = Cart::new(CartId(2_000_000 + writer), CartOwner::User(user), now);
    let mail = PreparedMail::new(
        store.next_id()?,
        &MailMessage {
            to: "bench@example.com".into(),
            subject: format!("Your order {}", order.id.0),
            text_body: "Thank you for your order.\n".repeat(20),
        },
        now,
    )?;
    let write = CheckoutWrite {
        order,
        emptied_cart: cart,
        idempotency: None,
        confirmation: Some(mail),
    };
    let outcome = if batched {
        runtime.block_on(store.place_checkout(write))?.1
    } else {
        store.commit_checkout(write)?
    };
    match outcome {
        CheckoutCommit::Placed { .. } => Ok(()),
        other => anyhow::bail!("checkout not placed: {other:?}"),
    }
}
