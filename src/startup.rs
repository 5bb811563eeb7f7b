//! The one app factory that `main` and every test call: opens the store,
//! loads secrets, seeds the demo shop if asked, binds the listener and
//! builds the HTTP server.

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
use crate::services::Shop;
use crate::store::Store;
use actix::{Actor, Arbiter};
use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpMessage, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tracing_actix_web::{RequestId, TracingLogger};

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    demo_login: Option<demo::DemoLogins>,
    arbiters: Vec<Arbiter>,
    mail_sender: MailSender,
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
    let shop = Shop {
        store,
        catalog,
        hub,
        carts,
        inventory,
        payments,
    };
    (shop, arbiters)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
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
        let listener = TcpListener::bind(&settings.addr)
            .with_context(|| format!("binding {}", settings.addr))?;
        let port = listener.local_addr()?.port();
        let workers = settings.workers;
        let (mailer, mail_sender) =
            MailSender::start(store.clone(), &settings.mail, &settings.data_dir)
                .context("starting the mail sender")?;
        let state = web::Data::new(AppState {
            settings,
            store,
            accounts,
            catalog,
            shop,
            metrics: Metrics::new()?,
            mailer,
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
                .wrap(TracingLogger::default())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
        })
        // Slow or silent clients must not hold workers (slowloris).
        .client_request_timeout(Duration::from_secs(10))
        .client_disconnect_timeout(Duration::from_secs(2))
        .keep_alive(Duration::from_secs(30))
        .shutdown_timeout(10);
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Self {
            port,
            server,
            state,
            demo_login,
            arbiters,
            mail_sender,
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
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        // The sweeper holds the store too; it must end before the data dir is free.
        self.sweeper.abort();
        let _ = self.sweeper.await;
        // Stop the sender even if the server failed, so it releases the store.
        self.mail_sender.stop().await;
        let flushed = self.state.store.durable().await;
        // Every handle on the store must go so the data directory is free
        // for the next process (or the next server in the same process).
        let _ = self.state.shop.carts.send(StopRegistry).await;
        let _ = self.state.shop.inventory.send(StopRegistry).await;
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        served?;
        flushed?;
        Ok(())
    }
}
