//! Catalog index benchmark (figures are printed, not asserted): builds
//! 100,000 generated products in a temporary store, then times the index
//! rebuild, searches, filtered listings and a single product update.
//!
//! Run: `cargo bench --bench catalog` (set CATALOG_BENCH_PRODUCTS to change the size).

use std::time::{Duration, Instant};
use storefront::catalog::generate::{self, Seq};
use storefront::catalog::index::{CatalogIndex, Query, SortOrder};
use storefront::domain::money::Currency;
use storefront::store::Store;

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    (at(0.50), at(0.99))
}

fn main() -> anyhow::Result<()> {
    let count: u64 = std::env::var("CATALOG_BENCH_PRODUCTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let started = Instant::now();
    let skeleton = generate::create_skeleton(&store)?;
    let mut seq = Seq::new(7);
    for n in 1..=count {
        store.create_product(generate::product(n, &mut seq, &skeleton, Currency::USD))?;
    }
    store.durable_blocking()?;
    println!("stored {count} products in {:.1?}", started.elapsed());

    let started = Instant::now();
    let index = CatalogIndex::build(&store)?;
    println!("index rebuild from sled: {:.1?}", started.elapsed());

    let searches = [
        "mug",
        "coffee mug",
        "blue",
        "creme",
        "crème teapot",
        "acme",
        "deluxe red",
        "kitchen knife",
        "eco",
        "heavy duty spade",
        "nordic",
        "s",
        "toy train",
        "garden hose green",
        "lumen lamp",
    ];
    let mut samples = Vec::new();
    let mut total = 0usize;
    for round in 0..100 {
        for (i, search) in searches.iter().enumerate() {
            let snapshot = index.snapshot();
            let t = Instant::now();
            let (n, page) = snapshot.query(&Query {
                search: Some((*search).into()),
                limit: 20,
                offset: ((round + i) % 3) * 20,
                ..Query::default()
            });
            samples.push(t.elapsed());
            total += n + page.len();
        }
    }
    let (p50, p99) = percentiles(samples);
    println!(
        "search ({} queries): p50 {p50:.1?}, p99 {p99:.1?}",
        searches.len() * 100
    );

    let snapshot = index.snapshot();
    let kitchen = snapshot.category_by_slug("kitchen").map(|c| c.id);
    let orders = [
        None,
        Some(SortOrder::Price),
        Some(SortOrder::PriceDesc),
        Some(SortOrder::Name),
        Some(SortOrder::Rating),
    ];
    let mut samples = Vec::new();
    for round in 0..300 {
        let t = Instant::now();
        let (n, _) = snapshot.query(&Query {
            category: (round % 2 == 0).then_some(kitchen).flatten(),
            min_price: Some(1000),
            max_price: Some(5000),
            in_stock: true,
            ordering: orders[round % orders.len()],
            search: (round % 3 == 0).then(|| "classic".to_string()),
            offset: (round % 5) * 20,
            limit: 20,
            ..Query::default()
        });
        samples.push(t.elapsed());
        total += n;
    }
    let (p50, p99) = percentiles(samples);
    println!("filtered listing (300 queries): p50 {p50:.1?}, p99 {p99:.1?}");

    // The shape of the storefront's category pages: all products or one
    // category, one of four orderings, pages 1-20 of 20.
    let categories: Vec<_> = snapshot
        .categories()
        .into_iter()
        .map(|(c, _)| c.id)
        .collect();
    let listing_orders = [
        SortOrder::Price,
        SortOrder::PriceDesc,
        SortOrder::Name,
        SortOrder::Newest,
    ];
    let mut samples = Vec::new();
    for round in 0..2000 {
        let t = Instant::now();
        let (n, page) = snapshot.query(&Query {
            category: (round % 2 == 0).then(|| categories[round / 2 % categories.len()]),
            ordering: Some(listing_orders[round % 4]),
            offset: (round % 20) * 20,
            limit: 20,
            ..Query::default()
        });
        samples.push(t.elapsed());
        total += n + page.len();
    }
    let (p50, p99) = percentiles(samples);
    println!("category/all listing (2000 queries): p50 {p50:.1?}, p99 {p99:.1?}");

    let mut samples = Vec::new();
    for id in snapshot_ids(&index, 50) {
        store.update_product(id, |p| p.price.minor += 1)?;
        let t = Instant::now();
        index.refresh_products(&store, &[id])?;
        samples.push(t.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    println!("index update after one product write: p50 {p50:.1?}, p99 {p99:.1?}");

    let t = Instant::now();
    let ids = snapshot_ids(&index, 1000);
    for _ in 0..100 {
        for (i, id) in ids.iter().enumerate() {
            index.publish_stock(*id, i as i64);
        }
    }
    println!("publish_stock: {:.0?} per call", t.elapsed() / 100_000);
    println!("(checksum {total})");
    Ok(())
}

fn snapshot_ids(index: &CatalogIndex, n: usize) -> Vec<storefront::domain::ProductId> {
    let snapshot = index.snapshot();
    let (_, docs) = snapshot.query(&Query {
        limit: n,
        ..Query::default()
    });
    docs.iter().map(|d| d.product.id).collect()
}
