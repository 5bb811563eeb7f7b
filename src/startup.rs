//! The one app factory that `main` and every test call: opens the store,
//! loads secrets, seeds the demo shop if asked, binds the listener and
//! builds the HTTP server.

use crate::actors::hub::{Event, Publish};
use crate::actors::registry::StopRegistry;
use crate::actors::{CartActor, EventHub, InventoryActor, Registry};
use crate::api::{self, extract, metrics::Metrics, AppState};
use crate::auth::{secret, Accounts};
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::demo;
use crate::domain::{CartId, ProductId};
use crate::mail::{MailSender, Mailer};
use crate::payments::Providers;
use crate::services::dashboard::Dashboard;
use crate::services::Shop;
use crate::store::Store;
use crate::telemetry;
use actix::{Actor, Arbiter};
use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpMessage, HttpServer};
use anyhow::Context;
use futures_util::future::{ready, Either};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing_actix_web::{RequestId, TracingLogger};

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    demo_login: Option<demo::DemoLogins>,
    arbiters: Vec<Arbiter>,
    mail_sender: MailSender,
    /// Kept so the shop can be reopened on the same socket (see `run_until_stopped`).
    listener: TcpListener,
    /// Set by the storage watcher when the server stopped to reopen the store.
    reopen: Arc<AtomicBool>,
    watcher: actix_web::rt::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

/// Cancels orders left unpaid past `ttl`, every `every`, until aborted.
fn start_sweeper(shop: Shop, ttl: Duration, every: Duration) -> tokio::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = shop.expire_unpaid_orders(ttl).await {
                tracing::error!(error = %e, "sweeping unpaid orders failed");
            }
        }
    })
}

/// Starts the event hub and the cart and inventory registries, whose actors
/// run on their own arbiter threads, sharded by key.
fn start_actors(
    settings: &Settings,
    store: Store,
    catalog: Catalog,
    payments: Providers,
) -> (Shop, Vec<Arbiter>) {
    let arbiters: Vec<Arbiter> = (0..settings.actor_threads.max(1))
        .map(|_| Arbiter::new())
        .collect();
    let handles: Vec<_> = arbiters.iter().map(Arbiter::handle).collect();
    let hub = EventHub::default().start();
    let inventory = {
        let (store, index, hub) = (store.clone(), catalog.index().clone(), hub.clone());
        Registry::new(
            handles.clone(),
            settings.actor_idle_timeout,
            move |key, arbiter| {
                let (store, index, hub) = (store.clone(), index.clone(), hub.clone());
                InventoryActor::start_in_arbiter(arbiter, move |_| {
                    InventoryActor::new(ProductId(key), store, index, hub)
                })
            },
        )
        .start()
    };
    let carts = {
        let (store, inventory) = (store.clone(), inventory.clone());
        Registry::new(handles, settings.actor_idle_timeout, move |key, arbiter| {
            let (store, inventory) = (store.clone(), inventory.clone());
            CartActor::start_in_arbiter(arbiter, move |_| {
                CartActor::new(CartId(key), store, inventory)
            })
        })
        .start()
    };
    let dashboard = Dashboard::new(
        store.clone(),
        catalog.clone(),
        hub.clone(),
        settings.live.dashboard_interval,
        settings.live.low_stock_threshold,
    )
    .start();
    let shop = Shop {
        store,
        catalog,
        hub,
        carts,
        inventory,
        dashboard,
        payments,
    };
    (shop, arbiters)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.addr)
            .with_context(|| format!("binding {}", settings.addr))?;
        Self::build_on(settings, listener).await
    }

    async fn build_on(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let store = Store::open(&settings.data_dir)?;
        let secret = secret::load_or_create(&settings.data_dir, settings.jwt_secret.as_deref())
            .context("loading the JWT secret")?;
        let accounts = Accounts::new(store.clone(), &secret, &settings)?;
        let demo_login = if settings.demo {
            Some(demo::seed(&store, settings.currency).await?)
        } else {
            None
        };
        // Built after the demo seed so the index holds the seeded catalog.
        let catalog = Catalog::open(store.clone(), settings.currency)?;
        let payments = Providers::from_settings(&settings.payments, &settings.data_dir)
            .context("setting up the payment providers")?;
        let (shop, arbiters) = start_actors(&settings, store.clone(), catalog.clone(), payments);
        let sweeper = start_sweeper(
            shop.clone(),
            settings.unpaid_order_ttl,
            settings.unpaid_order_sweep,
        );
        let port = listener.local_addr()?.port();
        let workers = settings.workers;
        let rate_limits = settings.rate_limits.clone();
        let (header_timeout, keep_alive) = (settings.header_timeout, settings.keep_alive);
        let (check_interval, reserve) = (settings.storage_check_interval, settings.storage_reserve);
        let (mailer, mail_sender) =
            MailSender::start(store.clone(), &settings.mail, &settings.data_dir)
                .context("starting the mail sender")?;
        let live_sockets = crate::ws::limits::UserSockets::new(settings.live.max_sessions_per_user);
        let state = web::Data::new(AppState {
            live_sockets,
            settings,
            store,
            accounts,
            catalog,
            shop,
            metrics: Metrics::new()?,
            mailer,
            limiter: api::limits::RateLimiter::new(rate_limits),
        });
        let server_state = state.clone();
        let mut server = HttpServer::new(move || {
            let state = server_state.clone();
            App::new()
                .app_data(state.clone())
                .app_data(extract::json_config(state.settings.json_limit))
                .app_data(extract::query_config())
                .app_data(extract::path_config())
                .configure(api::configure)
                .default_service(web::to(api::not_found))
                // Over-budget requests on expensive routes never reach a handler.
                .wrap_fn(|req, srv| match api::limits::check(&req) {
                    Ok(()) => Either::Left(srv.call(req)),
                    Err(refusal) => Either::Right(ready(Ok(req.error_response(refusal)))),
                })
                .wrap(api::json_error_pages())
                .wrap_fn(|req, srv| {
                    let started = Instant::now();
                    let state = req.app_data::<web::Data<AppState>>().cloned();
                    let call = srv.call(req);
                    async move {
                        let mut res = call.await?;
                        let request = res.request();
                        let route = request
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".into());
                        let method = request.method().to_string();
                        let request_id = request.extensions().get::<RequestId>().copied();
                        if let Some(state) = state {
                            let status = res.status().as_u16();
                            state
                                .metrics
                                .observe(&method, &route, status, started.elapsed());
                        }
                        if let Some(id) = request_id {
                            if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
                                res.headers_mut()
                                    .insert(HeaderName::from_static("x-request-id"), value);
                            }
                        }
                        Ok(res)
                    }
                })
                .wrap(TracingLogger::<telemetry::RequestSpan>::new())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
        })
        // Slow or silent clients must not hold connections (slowloris):
        // the request head must arrive within the header timeout.
        .client_request_timeout(header_timeout)
        .client_disconnect_timeout(Duration::from_secs(2))
        .keep_alive(keep_alive)
        .shutdown_timeout(10);
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener.try_clone()?)?.run();
        let reopen = Arc::new(AtomicBool::new(false));
        let watcher = actix_web::rt::spawn(watch_storage(
            state.store.clone(),
            server.handle(),
            reopen.clone(),
            check_interval,
            reserve,
        ));
        Ok(Self {
            port,
            server,
            state,
            demo_login,
            arbiters,
            mail_sender,
            listener,
            reopen,
            watcher,
            sweeper,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The open store, for tests that need to arrange state (for example a
    /// staff account) that no HTTP route may create.
    pub fn store(&self) -> crate::store::Store {
        self.state.store.clone()
    }

    /// Queues mail and wakes the sender (tests and callers outside handlers).
    pub fn mailer(&self) -> Mailer {
        self.state.mailer.clone()
    }

    pub fn demo_logins(&self) -> Option<&demo::DemoLogins> {
        self.demo_login.as_ref()
    }

    /// Serves until stopped (SIGINT/SIGTERM or the handle), then flushes.
    /// When the store stopped accepting writes (a full disk) and space came
    /// back, the shop is reopened in-process on the same socket instead.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut app = self;
        loop {
            let settings = app.state.settings.clone();
            let reopen = app.reopen.clone();
            let (listener, result) = app.shut_down().await;
            if !reopen.load(Ordering::SeqCst) {
                return result;
            }
            if let Err(e) = result {
                // Expected: the final flush of a store that cannot write fails.
                tracing::warn!(error = %e, "closing the store that failed to write");
            }
            tracing::warn!("space is back: reopening the store");
            app = Self::reopen(settings, listener).await?;
            tracing::info!("store reopened: writes resume");
        }
    }

    /// Stops serving and releases every handle on the store, so the data
    /// directory is free for the next process or the next `build`.
    async fn shut_down(self) -> (TcpListener, anyhow::Result<()>) {
        // The server handles the signal itself and then waits for open
        // requests; live sockets are told to close so it need not wait long.
        let hub = self.state.shop.hub.clone();
        let notice = actix_web::rt::spawn(async move {
            if stop_signal().await {
                hub.do_send(Publish(Event::ShuttingDown));
            }
        });
        let served = self.server.await;
        notice.abort();
        // The watcher and the sweeper hold the store too; they must end
        // before the data dir is free.
        self.watcher.abort();
        let _ = self.watcher.await;
        self.sweeper.abort();
        let _ = self.sweeper.await;
        // Stop the sender even if the server failed, so it releases the store.
        self.mail_sender.stop().await;
        let flushed = self.state.store.durable().await;
        // Every handle on the store must go so the data directory is free
        // for the next process (or the next server in the same process).
        let _ = self.state.shop.carts.send(StopRegistry).await;
        let _ = self.state.shop.inventory.send(StopRegistry).await;
        let _ = self
            .state
            .shop
            .dashboard
            .send(crate::services::dashboard::StopDashboard)
            .await;
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        let result = served
            .map_err(anyhow::Error::from)
            .and_then(|()| flushed.map_err(anyhow::Error::from));
        (self.listener, result)
    }

    /// Builds the shop again on `listener` once the old store's handles are
    /// gone (actors stop asynchronously on their arbiters).
    async fn reopen(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Self::build_on(settings.clone(), listener.try_clone()?).await {
                Ok(app) => return Ok(app),
                Err(e) if Instant::now() < deadline && still_held(&e) => {
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.context("reopening the store")),
            }
        }
    }
}

/// True when opening failed only because the previous store is not yet closed.
fn still_held(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<crate::store::StoreError>()
        .is_some_and(|e| {
            matches!(
                e,
                crate::store::StoreError::Locked(_) | crate::store::StoreError::Sled(_)
            )
        })
}

/// Watches for a store that sled stopped writing to. sled keeps such an
/// error forever, so once `reserve` bytes can be written in the data
/// directory again, the server is stopped and `run_until_stopped` reopens
/// the store; until then writes answer 503 and reads keep working.
async fn watch_storage(
    store: Store,
    server: ServerHandle,
    reopen: Arc<AtomicBool>,
    interval: Duration,
    reserve: u64,
) {
    loop {
        actix_web::rt::time::sleep(interval).await;
        if !store.is_broken() {
            continue;
        }
        let probe = store.clone();
        let room = web::block(move || probe.has_room(reserve))
            .await
            .unwrap_or(false);
        if room {
            reopen.store(true, Ordering::SeqCst);
            // The store handle must not outlive the server it belongs to.
            drop(store);
            server.stop(true).await;
            return;
        }
    }
}

/// Resolves when SIGINT or SIGTERM arrives (false if they cannot be watched).
async fn stop_signal() -> bool {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        return false;
    };
    tokio::select! {
        interrupted = actix_web::rt::signal::ctrl_c() => interrupted.is_ok(),
        _ = terminate.recv() => true,
    }
}
