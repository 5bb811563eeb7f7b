//! One actor per WebSocket. It authenticates the first frame, answers
//! requests through the same services as REST, forwards the hub's events
//! for its cart, its user's orders, watched products and (for staff) the
//! order feed, and keeps the socket honest: heartbeat, rate limit, frame
//! cap, bounded outbound queue, token expiry.
//!
//! The outbound queue is the actor's mailbox: the hub only `try_send`s into
//! it, and the actor runs only when the connection can take more bytes, so a
//! client that stops reading fills the mailbox, loses pushes and is told
//! `resync` (or closed if it keeps falling behind) without ever slowing a
//! publisher.

use super::frames::{self, Auth, Hello, Request, WsError, PROTOCOL_VERSION};
use super::limits::{SocketPermit, TokenBucket};
use crate::actors::hub::{Deliver, Disconnect, Event, Lagged, Subscribe, Topic, Unsubscribe};
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::config::LiveSettings;
use crate::domain::{ProductId, SessionId, UserId};
use crate::services::carts::{check_add_quantity, CartRef};
use crate::services::dashboard::{StatsUpdate, UnwatchStats, WatchStats};
use crate::services::{Shop, ShopError};
use actix::prelude::*;
use actix_web::web;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Close codes of protocol/README.md.
pub mod close {
    pub const HEARTBEAT_TIMEOUT: u16 = 4000;
    pub const AUTH_TIMEOUT: u16 = 4001;
    pub const AUTH_FAILED: u16 = 4002;
    pub const TOKEN_EXPIRED: u16 = 4003;
    pub const SESSION_ENDED: u16 = 4004;
    pub const TOO_SLOW: u16 = 4008;
    pub const TOO_MANY_SESSIONS: u16 = 4009;
    pub const RATE_LIMIT: u16 = 4029;
}

const MAX_FAILED_AUTHS: u8 = 3;
/// Consecutive refused frames after which a flooding client is closed.
const MAX_REFUSED_IN_ROW: u32 = 50;
/// Falling behind this often within `LAG_WINDOW` closes the socket.
const MAX_LAGS: usize = 3;
const LAG_WINDOW: Duration = Duration::from_secs(30);

/// Who the socket speaks for.
#[derive(Debug, Clone)]
enum Who {
    /// No successful `auth` yet.
    Nobody,
    Guest,
    User {
        id: UserId,
        username: String,
        is_staff: bool,
        session: SessionId,
        /// Unix seconds when the access token expires.
        expires_at: i64,
    },
}

pub struct WsSession {
    /// The hub's and the dashboard's name for this socket.
    id: u64,
    state: web::Data<AppState>,
    who: Who,
    cart: Option<CartRef>,
    /// Holds this socket's place in the per-user cap while logged in.
    permit: Option<SocketPermit>,
    last_heard: Instant,
    failed_auths: u8,
    bucket: TokenBucket,
    refused_in_row: u32,
    in_flight: usize,
    watches: HashSet<ProductId>,
    staff_feed: bool,
    lags: VecDeque<Instant>,
    expiry_timers: Vec<SpawnHandle>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl WsSession {
    pub fn new(state: web::Data<AppState>) -> Self {
        let live = &state.settings.live;
        let bucket = TokenBucket::new(live.rate_per_sec, live.rate_burst);
        Self {
            id: crate::actors::hub::next_subscriber_id(),
            state,
            who: Who::Nobody,
            cart: None,
            permit: None,
            last_heard: Instant::now(),
            failed_auths: 0,
            bucket,
            refused_in_row: 0,
            in_flight: 0,
            watches: HashSet::new(),
            staff_feed: false,
            lags: VecDeque::new(),
            expiry_timers: Vec::new(),
        }
    }

    fn live(&self) -> &LiveSettings {
        &self.state.settings.live
    }

    fn shop(&self) -> &Shop {
        &self.state.shop
    }

    fn user(&self) -> Option<UserId> {
        match &self.who {
            Who::User { id, .. } => Some(*id),
            _ => None,
        }
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        tracing::debug!(socket = self.id, code, reason, "closing live socket");
        ctx.close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(reason.into()),
        }));
        ctx.stop();
    }

    fn reply_ok(
        &self,
        ctx: &mut ws::WebsocketContext<Self>,
        id: &Value,
        data: &impl serde::Serialize,
    ) {
        ctx.text(frames::ok(id, data));
    }

    fn reply_error(&self, ctx: &mut ws::WebsocketContext<Self>, id: &Value, error: WsError) {
        ctx.text(frames::error(id, &error));
    }

    fn subscribe(&self, ctx: &mut ws::WebsocketContext<Self>, topic: Topic) {
        self.shop().hub.do_send(Subscribe {
            id: self.id,
            topic,
            deliver: ctx.address().recipient(),
            lagged: ctx.address().recipient(),
        });
    }

    fn unsubscribe(&self, topic: Topic) {
        self.shop().hub.do_send(Unsubscribe { id: self.id, topic });
    }

    /// Follows a cart: pushes of the old one stop, the new one's start.
    fn bind_cart(&mut self, ctx: &mut ws::WebsocketContext<Self>, cart: Option<CartRef>) {
        let old = self.cart.as_ref().map(|c| c.id);
        let new = cart.as_ref().map(|c| c.id);
        if old != new {
            if let Some(old) = old {
                self.unsubscribe(Topic::Cart(old));
            }
            if let Some(new) = new {
                self.subscribe(ctx, Topic::Cart(new));
            }
        }
        self.cart = cart;
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let (id, parsed) = frames::parse(text);
        if let Err(wait) = self.bucket.take(Instant::now()) {
            self.refused_in_row += 1;
            if self.refused_in_row >= MAX_REFUSED_IN_ROW {
                return self.close(ctx, close::RATE_LIMIT, "rate limit exceeded");
            }
            return self.reply_error(ctx, &id, WsError::RateLimited(wait));
        }
        self.refused_in_row = 0;
        let request = match parsed {
            Ok(request) => request,
            Err(e) => return self.reply_error(ctx, &id, e.into()),
        };
        if matches!(self.who, Who::Nobody) && !matches!(request, Request::Auth(_)) {
            return self.reply_error(ctx, &id, WsError::NotAuthenticated);
        }
        match request {
            Request::Auth(auth) => self.authenticate(auth, id, ctx),
            Request::Ping => self.reply_ok(ctx, &id, &json!({ "now": now_ms() })),
            Request::CartGet
            | Request::CartAdd { .. }
            | Request::CartSetQuantity { .. }
            | Request::CartRemove { .. }
            | Request::CartClear => self.cart_request(request, id, ctx),
            Request::ProductWatch { product_id } => self.watch(ProductId(product_id), id, ctx),
            Request::ProductUnwatch { product_id } => {
                if self.watches.remove(&ProductId(product_id)) {
                    self.unsubscribe(Topic::Product(ProductId(product_id)));
                }
                self.reply_ok(ctx, &id, &json!({ "product_id": product_id }));
            }
            Request::AdminSubscribe | Request::AdminUnsubscribe => {
                self.staff_request(matches!(request, Request::AdminSubscribe), id, ctx)
            }
        }
    }

    fn authenticate(&mut self, auth: Auth, id: Value, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(version) = auth.protocol.filter(|&v| v != PROTOCOL_VERSION) {
            return self.reply_error(ctx, &id, WsError::UnsupportedVersion(version));
        }
        let outcome = match (&auth.token, &auth.cart_token) {
            (Some(token), _) => self.authenticate_user(token, ctx),
            (None, cart_token) => self.authenticate_guest(cart_token.as_ref(), ctx),
        };
        match outcome {
            Ok(()) => {
                self.failed_auths = 0;
                self.reply_authenticated(id, ctx);
            }
            Err(WsError::TooManySessions(max)) => {
                self.reply_error(ctx, &id, WsError::TooManySessions(max));
                self.close(ctx, close::TOO_MANY_SESSIONS, "too many sessions");
            }
            Err(error @ (WsError::UserMismatch | WsError::Api(ApiError::Internal(_)))) => {
                self.reply_error(ctx, &id, error);
            }
            Err(error) => {
                self.reply_error(ctx, &id, error);
                self.failed_auths += 1;
                if self.failed_auths >= MAX_FAILED_AUTHS {
                    self.close(ctx, close::AUTH_FAILED, "auth failed");
                }
            }
        }
    }

    fn authenticate_user(
        &mut self,
        token: &str,
        ctx: &mut ws::WebsocketContext<Self>,
    ) -> Result<(), WsError> {
        let identity = self
            .state
            .accounts
            .authenticate(token)
            .map_err(ApiError::from)?;
        let user = identity.user.id;
        match &self.who {
            Who::User { id, .. } if *id != user => return Err(WsError::UserMismatch),
            Who::User { .. } => {}
            Who::Nobody | Who::Guest => {
                let sockets = &self.state.live_sockets;
                let permit = sockets
                    .admit(user)
                    .ok_or(WsError::TooManySessions(self.live().max_sessions_per_user))?;
                let cart = self
                    .shop()
                    .resolve_cart(Some(user), None, true)
                    .map_err(ApiError::from)?;
                self.permit = Some(permit);
                self.bind_cart(ctx, cart);
                self.subscribe(ctx, Topic::User(user));
            }
        }
        self.who = Who::User {
            id: user,
            username: identity.user.username.as_str().to_owned(),
            is_staff: identity.user.is_staff,
            session: identity.session,
            expires_at: identity.expires_at,
        };
        self.schedule_expiry(identity.expires_at, ctx);
        Ok(())
    }

    fn authenticate_guest(
        &mut self,
        cart_token: Option<&String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) -> Result<(), WsError> {
        if matches!(self.who, Who::User { .. }) {
            return Err(WsError::UserMismatch);
        }
        if let Some(token) = cart_token {
            let cart = self
                .shop()
                .resolve_cart(None, Some(token), false)
                .map_err(ApiError::from)?
                .ok_or(WsError::UnknownCartToken)?;
            self.bind_cart(ctx, Some(cart));
        }
        // Without a token a guest keeps the cart it has, if any.
        self.who = Who::Guest;
        Ok(())
    }

    fn reply_authenticated(&mut self, id: Value, ctx: &mut ws::WebsocketContext<Self>) {
        let (user, expires_at) = match &self.who {
            Who::User {
                id,
                username,
                is_staff,
                expires_at,
                ..
            } => (
                json!({"id": id.0, "username": username, "is_staff": is_staff}),
                json!(expires_at),
            ),
            _ => (Value::Null, Value::Null),
        };
        let shop = self.shop().clone();
        let cart = self.cart.clone();
        self.spawn_request(id, ctx, async move {
            let cart = match cart {
                Some(cart) => Some(shop.cart(&cart).await?),
                None => None,
            };
            // A user's cart may have just been created; answer after the flush.
            shop.store.durable().await?;
            Ok(json!({
                "user": user,
                "cart": cart,
                "expires_at": expires_at,
                "protocol": PROTOCOL_VERSION,
            }))
        });
    }
}

impl WsSession {
    /// Runs a request's async part and replies when it is done. Other
    /// frames and pushes are handled meanwhile; the reply carries the `id`.
    fn spawn_request<T, F>(&mut self, id: Value, ctx: &mut ws::WebsocketContext<Self>, work: F)
    where
        T: serde::Serialize + 'static,
        F: std::future::Future<Output = Result<T, ShopError>> + 'static,
    {
        if self.in_flight >= self.live().max_in_flight {
            return self.reply_error(ctx, &id, WsError::Busy);
        }
        self.in_flight += 1;
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            act.in_flight -= 1;
            match result {
                Ok(data) => act.reply_ok(ctx, &id, &data),
                Err(e) => act.reply_error(ctx, &id, ApiError::from(e).into()),
            }
        }));
    }

    fn cart_request(&mut self, request: Request, id: Value, ctx: &mut ws::WebsocketContext<Self>) {
        let shop = self.shop().clone();
        let Some(cart) = self.cart.clone() else {
            // A guest without a cart: answer as REST does for "no cart yet".
            return match request {
                Request::CartGet | Request::CartClear => {
                    let empty = shop.empty_cart_view();
                    self.reply_ok(ctx, &id, &empty)
                }
                Request::CartAdd {
                    product_id,
                    quantity,
                } => self.first_add(ProductId(product_id), quantity, id, ctx),
                _ => self.reply_error(ctx, &id, ApiError::not_found("cart").into()),
            };
        };
        self.spawn_request(id, ctx, async move {
            let product = |id: u64| ProductId(id);
            match request {
                Request::CartGet => shop.cart(&cart).await,
                Request::CartAdd {
                    product_id,
                    quantity,
                } => shop.add_to_cart(&cart, product(product_id), quantity).await,
                Request::CartSetQuantity {
                    product_id,
                    quantity,
                } => {
                    shop.set_cart_quantity(&cart, product(product_id), quantity)
                        .await
                }
                Request::CartRemove { product_id } => {
                    shop.remove_from_cart(&cart, product(product_id)).await
                }
                _ => shop.clear_cart(&cart).await,
            }
        });
    }

    /// A guest's first add creates its anonymous cart, as over REST.
    fn first_add(
        &mut self,
        product: ProductId,
        quantity: i64,
        id: Value,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let cart = check_add_quantity(quantity)
            .and_then(|()| self.shop().resolve_cart(None, None, true))
            .map_err(ApiError::from);
        let cart = match cart {
            Ok(Some(cart)) => cart,
            Ok(None) => return self.reply_error(ctx, &id, ApiError::not_found("cart").into()),
            Err(e) => return self.reply_error(ctx, &id, e.into()),
        };
        self.bind_cart(ctx, Some(cart.clone()));
        let shop = self.shop().clone();
        self.spawn_request(id, ctx, async move {
            shop.add_to_cart(&cart, product, quantity).await
        });
    }

    fn watch(&mut self, product: ProductId, id: Value, ctx: &mut ws::WebsocketContext<Self>) {
        let is_staff = matches!(self.who, Who::User { is_staff: true, .. });
        let snapshot = self.shop().catalog.index().snapshot();
        let Some(doc) = snapshot
            .product(product)
            .filter(|doc| doc.product.is_active || is_staff)
        else {
            return self.reply_error(ctx, &id, ApiError::not_found("product").into());
        };
        if !self.watches.contains(&product) {
            let max = self.live().max_watches;
            if self.watches.len() >= max {
                return self.reply_error(ctx, &id, WsError::TooManyWatches(max));
            }
            self.watches.insert(product);
            self.subscribe(ctx, Topic::Product(product));
        }
        let stock = doc.on_hand();
        self.reply_ok(ctx, &id, &json!({"product_id": product.0, "stock": stock}));
    }

    fn staff_request(&mut self, subscribe: bool, id: Value, ctx: &mut ws::WebsocketContext<Self>) {
        if !matches!(self.who, Who::User { is_staff: true, .. }) {
            return self.reply_error(ctx, &id, WsError::Forbidden);
        }
        if subscribe && !self.staff_feed {
            self.subscribe(ctx, Topic::Staff);
            self.staff_feed = true;
        } else if !subscribe && self.staff_feed {
            self.unsubscribe(Topic::Staff);
            self.shop().dashboard.do_send(UnwatchStats { id: self.id });
            self.staff_feed = false;
        }
        self.reply_ok(ctx, &id, &json!({ "subscribed": subscribe }));
        if subscribe {
            // Sent after the reply so the figures follow the `ok`; a repeated
            // subscribe just gets fresh figures.
            self.shop().dashboard.do_send(WatchStats {
                id: self.id,
                recipient: ctx.address().recipient(),
            });
        }
    }

    /// Warns before the access token expires and closes the socket at expiry
    /// unless a re-auth brought a later token.
    fn schedule_expiry(&mut self, expires_at: i64, ctx: &mut ws::WebsocketContext<Self>) {
        for handle in self.expiry_timers.drain(..) {
            ctx.cancel_future(handle);
        }
        let left_ms = (expires_at.saturating_mul(1000) - now_ms()).max(0) as u64;
        let left = Duration::from_millis(left_ms);
        let warn_in = left.saturating_sub(self.live().expiry_warning);
        let warn = ctx.run_later(warn_in, move |_, ctx| {
            let expires_in_ms = (expires_at.saturating_mul(1000) - now_ms()).max(0);
            ctx.text(frames::push(
                "session.expiring",
                &json!({"expires_at": expires_at, "expires_in_ms": expires_in_ms}),
            ));
        });
        let expire = ctx.run_later(left, move |act, ctx| {
            if matches!(act.who, Who::User { expires_at: current, .. } if current <= expires_at) {
                act.close(ctx, close::TOKEN_EXPIRED, "token expired");
            }
        });
        self.expiry_timers = vec![warn, expire];
    }

    fn heartbeat(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.last_heard.elapsed() > self.live().client_timeout {
            return self.close(ctx, close::HEARTBEAT_TIMEOUT, "heartbeat timeout");
        }
        ctx.ping(b"");
    }

    /// The socket missed pushes: say so, send the cart as it is now, and
    /// give up on a client that keeps falling behind.
    fn lagged(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let now = Instant::now();
        while self
            .lags
            .front()
            .is_some_and(|at| now.duration_since(*at) > LAG_WINDOW)
        {
            self.lags.pop_front();
        }
        self.lags.push_back(now);
        if self.lags.len() >= MAX_LAGS {
            return self.close(ctx, close::TOO_SLOW, "too slow");
        }
        ctx.text(frames::push("resync", &json!({"reason": "lagged"})));
        let Some(cart) = self.cart.clone() else {
            return;
        };
        let shop = self.shop().clone();
        ctx.spawn(
            async move { shop.cart(&cart).await }
                .into_actor(self)
                .map(|result, _, ctx| {
                    if let Ok(mut view) = result {
                        view.cart_token = None;
                        ctx.text(frames::push("cart.updated", &view));
                    }
                }),
        );
    }

    fn deliver(&mut self, event: &Event, ctx: &mut ws::WebsocketContext<Self>) {
        match event {
            Event::CartUpdated { cart_id, payload } => {
                if self.cart.as_ref().is_some_and(|c| c.id == *cart_id) {
                    ctx.text(frames::push("cart.updated", payload));
                }
            }
            Event::StockChanged {
                product_id,
                on_hand,
            } => {
                if self.watches.contains(product_id) {
                    ctx.text(frames::push(
                        "stock.changed",
                        &json!({"product_id": product_id.0, "stock": on_hand}),
                    ));
                }
            }
            // Watchers already get the stock.changed that comes with it.
            Event::BackInStock { .. } => {}
            Event::WishlistBackInStock {
                owner,
                product_id,
                on_hand,
            } => {
                if self.user() == Some(*owner) {
                    ctx.text(frames::push(
                        "wishlist.back_in_stock",
                        &json!({"product_id": product_id.0, "stock": on_hand}),
                    ));
                }
            }
            Event::OrderCreated { owner, payload } | Event::OrderUpdated { owner, payload } => {
                if self.user() == Some(*owner) || self.staff_feed {
                    ctx.text(frames::push(event.name(), payload));
                }
            }
            Event::SessionsEnded {
                user,
                session,
                except,
            } => {
                if let Who::User {
                    id, session: mine, ..
                } = &self.who
                {
                    let ended = match session {
                        Some(ended) => ended == mine,
                        None => *except != Some(*mine),
                    };
                    if id == user && ended {
                        self.close(ctx, close::SESSION_ENDED, "session ended");
                    }
                }
            }
            Event::ShuttingDown => {
                ctx.close(Some(CloseReason {
                    code: CloseCode::Away,
                    description: Some("server shutting down".into()),
                }));
                ctx.stop();
            }
        }
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.live().outbound_queue);
        let live = self.live().clone();
        ctx.text(frames::hello(&Hello {
            kind: "hello",
            protocol: PROTOCOL_VERSION,
            auth_timeout_ms: live.auth_timeout.as_millis() as u64,
            heartbeat_ms: live.heartbeat.as_millis() as u64,
            max_frame_bytes: live.max_frame,
        }));
        self.subscribe(ctx, Topic::Everyone);
        ctx.run_interval(live.heartbeat, |act, ctx| act.heartbeat(ctx));
        ctx.run_later(live.auth_timeout, |act, ctx| {
            if matches!(act.who, Who::Nobody) {
                act.close(ctx, close::AUTH_TIMEOUT, "auth timeout");
            }
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.shop().hub.do_send(Disconnect { id: self.id });
        if self.staff_feed {
            self.shop().dashboard.do_send(UnwatchStats { id: self.id });
        }
        self.permit = None;
        Running::Stop
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Binary(_)) => self.reply_error(ctx, &Value::Null, WsError::Binary),
            Ok(ws::Message::Continuation(item)) => {
                // One error per fragmented message, not one per fragment.
                if matches!(
                    item,
                    actix_http::ws::Item::FirstText(_) | actix_http::ws::Item::FirstBinary(_)
                ) {
                    self.reply_error(ctx, &Value::Null, WsError::Fragmented);
                }
            }
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => {
                let limit = self.live().max_frame;
                self.reply_error(ctx, &Value::Null, WsError::FrameTooLarge(limit));
                ctx.close(Some(CloseReason {
                    code: CloseCode::Size,
                    description: Some("frame too large".into()),
                }));
                ctx.stop();
            }
            Err(e) => {
                tracing::debug!(socket = self.id, error = %e, "websocket protocol error");
                ctx.stop();
            }
        }
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        self.deliver(&msg.0, ctx);
    }
}

impl Handler<Lagged> for WsSession {
    type Result = ();

    fn handle(&mut self, _: Lagged, ctx: &mut Self::Context) {
        self.lagged(ctx);
    }
}

impl Handler<StatsUpdate> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: StatsUpdate, ctx: &mut Self::Context) {
        if self.staff_feed {
            ctx.text(frames::push("dashboard.stats", &*msg.0));
        }
    }
}
