//! The crash loop (`storefront-bench crashloop`) in CI: ten rounds of a
//! checkout storm with cancels and registrations in flight, each ended by
//! kill -9 at a random moment, restarted on the same data dir and checked:
//! nothing acknowledged lost, stock exact, one order per Idempotency-Key,
//! no order paid twice, a clean start every time.

use storefront_bench::crashloop;
use storefront_bench::server::Binaries;

#[actix_web::test]
async fn ten_kill_9_rounds_lose_nothing_acknowledged_and_keep_every_invariant() {
    let bins = Binaries {
        storefront: env!("CARGO_BIN_EXE_storefront").into(),
        bare_actix: None,
    };
    let seed: u64 = rand::random();
    let result = crashloop::run(&bins, 10, seed, |line| {
        if std::env::var("TEST_LOG").is_ok() {
            eprintln!("{line}");
        }
    })
    .await;
    if let Err(e) = result {
        panic!("crash loop failed (replay with `storefront-bench crashloop --rounds 10 --seed {seed}`): {e:#}");
    }
}
