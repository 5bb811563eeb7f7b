//! `storefront-bench`: load scenarios against the release server and the
//! kill -9 crash loop.
//!
//! ```text
//! cargo run --release -p storefront-bench -- all [--json]
//! cargo run --release -p storefront-bench -- detail|listing|search|cart|checkout|flash-sale|login|ws
//! cargo run --release -p storefront-bench -- reads   # baseline, detail, listing, search
//! cargo run --release -p storefront-bench -- crashloop --rounds 100
//! ```

use clap::{Args, Parser, Subcommand};
use std::time::{Duration, Instant};
use storefront_bench::crashloop;
use storefront_bench::scenarios::{self, Options, Shop};
use storefront_bench::server::Binaries;
use storefront_bench::stats::{table, Row};

#[derive(Parser)]
#[command(
    name = "storefront-bench",
    about = "Load and crash tests against the real server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Concurrent keep-alive connections of the throughput scenarios.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds per throughput scenario (after 1 s of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Registrations and logins in flight (argon2 is the bottleneck).
    #[arg(long, default_value_t = 8)]
    hash_concurrency: usize,
    /// Idle WebSocket sessions held open.
    #[arg(long, default_value_t = 10_000)]
    ws_sessions: usize,
    /// Do not run `cargo build` for the server first.
    #[arg(long)]
    no_build: bool,
    /// The storefront binary to run (default: next to this one).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Every scenario on one seeded shop, one table.
    All(LoadArgs),
    /// The bare actix-web handler alone.
    Baseline(LoadArgs),
    /// Product detail by id.
    Detail(LoadArgs),
    /// Listings with filters, orderings and pages.
    Listing(LoadArgs),
    /// Full-text search.
    Search(LoadArgs),
    /// The read scenarios (detail, listing, search) and the baseline on one
    /// seeded shop, without shoppers.
    Reads(LoadArgs),
    /// Login (argon2 verify) of every shopper.
    Login(LoadArgs),
    /// Add to cart.
    Cart(LoadArgs),
    /// Checkout spread over 1,000 products.
    Checkout(LoadArgs),
    /// 10,000 buyers, one product with 1,000 units.
    FlashSale(LoadArgs),
    /// Idle WebSocket sessions and status-change push latency.
    Ws(LoadArgs),
    /// Checkout storms killed with SIGKILL, restarted, and checked.
    Crashloop {
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Seed of the random kill moments (printed, to replay a failure).
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        no_build: bool,
        /// The storefront binary to run (default: next to this one).
        #[arg(long)]
        server: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    All,
    Baseline,
    Detail,
    Listing,
    Search,
    Reads,
    Login,
    Cart,
    Checkout,
    FlashSale,
    Ws,
}

fn options(args: &LoadArgs) -> Options {
    Options {
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
        products: args.products,
        users: args.users,
        hash_concurrency: args.hash_concurrency,
        ws_sessions: args.ws_sessions,
        ..Options::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crashloop {
            rounds,
            seed,
            no_build,
            server,
        } => run_crashloop(rounds, seed, no_build, server).await,
        Command::All(a) => load(Which::All, a).await,
        Command::Baseline(a) => load(Which::Baseline, a).await,
        Command::Detail(a) => load(Which::Detail, a).await,
        Command::Listing(a) => load(Which::Listing, a).await,
        Command::Search(a) => load(Which::Search, a).await,
        Command::Reads(a) => load(Which::Reads, a).await,
        Command::Login(a) => load(Which::Login, a).await,
        Command::Cart(a) => load(Which::Cart, a).await,
        Command::Checkout(a) => load(Which::Checkout, a).await,
        Command::FlashSale(a) => load(Which::FlashSale, a).await,
        Command::Ws(a) => load(Which::Ws, a).await,
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run_crashloop(
    rounds: usize,
    seed: Option<u64>,
    no_build: bool,
    server: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let mut bins = Binaries::locate(!no_build && server.is_none())?;
    if let Some(server) = server {
        bins.storefront = server;
    }
    let seed = seed.unwrap_or_else(rand::random);
    let started = Instant::now();
    let summary = crashloop::run(&bins, rounds, seed, |line| eprintln!("{line}")).await?;
    println!(
        "crashloop: {rounds} rounds passed in {:.0} s (seed {seed}): {summary}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn load(which: Which, args: LoadArgs) -> anyhow::Result<()> {
    let mut bins = Binaries::locate(!args.no_build && args.server.is_none())?;
    if let Some(server) = &args.server {
        bins.storefront = server.clone();
    }
    let opts = options(&args);
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut read_rows = Vec::new();
    let is = |w: Which| {
        which == Which::All
            || which == w
            || (which == Which::Reads
                && matches!(w, Which::Detail | Which::Listing | Which::Search))
    };

    let baseline = if is(Which::Baseline)
        || matches!(
            which,
            Which::Detail | Which::Listing | Which::Search | Which::Reads
        ) {
        eprintln!("baseline: bare actix-web handler...");
        scenarios::bare_baseline(&bins, &opts).await?
    } else {
        None
    };
    if let Some(row) = &baseline {
        rows.push(row.clone());
    }
    if which != Which::Baseline {
        let needs_products = !matches!(which, Which::Login | Which::Ws | Which::FlashSale);
        let products = if needs_products { opts.products } else { 0 };
        let users = match which {
            Which::Detail | Which::Listing | Which::Search | Which::Reads => 0,
            Which::Cart | Which::Checkout => opts.connections,
            Which::Ws => opts.ws_sessions,
            _ => opts.users,
        };
        let mut shop = Shop::start(&bins, &opts, products, users).await?;
        rows.append(&mut shop.rows);
        for (w, name) in [
            (Which::Detail, "detail"),
            (Which::Listing, "listing"),
            (Which::Search, "search"),
        ] {
            if is(w) {
                eprintln!("{name}...");
                let row = match w {
                    Which::Detail => scenarios::product_detail(&shop, &opts).await,
                    Which::Listing => scenarios::listing(&shop, &opts).await,
                    _ => scenarios::search(&shop, &opts).await,
                };
                read_rows.push(row.scenario.clone());
                rows.push(row);
            }
        }
        if users > 0 {
            let row = shop.login(&opts).await?;
            if is(Which::Login) {
                rows.push(row);
            }
        }
        if is(Which::FlashSale) {
            eprintln!("flash sale...");
            rows.push(scenarios::flash_sale(&shop, &opts).await?);
        }
        if is(Which::Cart) {
            eprintln!("add to cart...");
            rows.push(scenarios::add_to_cart(&shop, &opts).await?);
        }
        if is(Which::Checkout) {
            eprintln!("checkout...");
            rows.push(scenarios::checkout(&shop, &opts).await?);
        }
        if is(Which::Ws) {
            eprintln!("websocket...");
            rows.extend(scenarios::websocket(&mut shop, &bins, &opts).await?);
        }
    }
    scenarios::apply_ratios(&mut rows, baseline.as_ref(), &read_rows);
    let total = started.elapsed();
    if args.json {
        let doc = serde_json::json!({
            "machine": machine(),
            "connections": opts.connections,
            "seconds_per_scenario": opts.duration.as_secs(),
            "total_seconds": total.as_secs_f64(),
            "rows": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "\n{}; {} connections, {} s per throughput scenario; whole run {:.0} s\n",
            machine(),
            opts.connections,
            opts.duration.as_secs(),
            total.as_secs_f64()
        );
        print!("{}", table(&rows));
    }
    Ok(())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    format!("{cores} cores, load average {load} at the end, release server over loopback")
}
