// One WebSocket to the shop's live endpoint (/api/ws/): authenticates with
// the first frame, correlates requests and replies by id, reconnects with
// exponential backoff, and after every reconnect fetches fresh snapshots of
// the cart and of every watched order, because pushes sent while the
// connection was down are gone. While it is down the same snapshots are
// polled over REST, so a page is never left stale.

import { ApiError } from './api.js';

/**
 * @typedef {'idle'|'connecting'|'live'|'reconnecting'|'stopped'} LiveStatus
 * @typedef {{initial?: number, max?: number, factor?: number}} Backoff
 */

/** Reasons the server gives when the access token no longer works. */
const EXPIRED_CODES = new Set(['invalid_token', 'token_expired', 'not_authenticated', 'unauthorized']);

export function webSocketUrl(baseUrl) {
  const origin = baseUrl || globalThis.location?.origin;
  if (!origin) throw new Error('no base URL for the live connection');
  const url = new URL('/api/ws/', origin);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

export class Live {
  /**
   * @param {import('./api.js').Api} api the REST client whose session and cart token are used
   * @param {{url?: string, WebSocket?: typeof WebSocket, backoff?: Backoff, requestTimeout?: number, pollInterval?: number}} [options]
   */
  constructor(api, options = {}) {
    this.api = api;
    this.url = options.url ?? webSocketUrl(api.baseUrl);
    this.WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    this.backoff = { initial: 500, max: 10000, factor: 2, ...options.backoff };
    this.requestTimeout = options.requestTimeout ?? 10000;
    this.pollInterval = options.pollInterval ?? 5000;
    /** @type {LiveStatus} */
    this.status = 'idle';
    /** Set once a connection has authenticated, so later drops read as "reconnecting". */
    this.wasLive = false;
    this.attempt = 0;
    this.nextId = 1;
    /** @type {Map<string, {resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** @type {Set<number>} */
    this.watchedProducts = new Set();
    /** @type {Set<number>} */
    this.watchedOrders = new Set();
    this.staffFeed = false;
    this.socket = null;
    this.retryTimer = null;
    this.pollTimer = null;
    this.unsubscribeAuth = api.onAuthChange((tokens, reason) => {
      // A refreshed token is the same user: re-authenticate on the open
      // socket instead of dropping it. A login or logout is a new session.
      if (reason === 'refresh' && tokens && this.status === 'live') {
        this.send('auth', { token: tokens.access, protocol: 1 }).catch(() => this.restart());
      } else if (reason !== 'refresh') {
        this.restart();
      }
    });
  }

  /**
   * Listens for a pushed frame type (`cart.updated`, `stock.changed`,
   * `order.updated`, `order.created`, `dashboard.stats`, ...) or for the
   * client's own `status` and `resync` events.
   * @returns {() => void} unsubscribe
   */
  on(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
    return () => this.listeners.get(type)?.delete(listener);
  }

  emit(type, data) {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        listener(data);
      } catch (e) {
        console.error(`listener for ${type} failed`, e);
      }
    }
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', status);
  }

  start() {
    if (this.status !== 'idle' && this.status !== 'stopped') return;
    this.startPolling();
    this.connect();
  }

  stop() {
    this.setStatus('stopped');
    clearTimeout(this.retryTimer);
    clearInterval(this.pollTimer);
    this.pollTimer = null;
    this.failPending(new ApiError(0, 'connection_closed', 'the live connection was stopped'));
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, 'client stopped');
    }
  }

  /** Closes and reopens at once, e.g. after a login or logout. */
  restart() {
    if (this.status === 'idle' || this.status === 'stopped') return;
    clearTimeout(this.retryTimer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, 'session changed');
    }
    this.failPending(new ApiError(0, 'connection_closed', 'the session changed'));
    this.attempt = 0;
    this.connect();
  }

  connect() {
    this.setStatus(this.wasLive ? 'reconnecting' : 'connecting');
    let socket;
    try {
      socket = new this.WebSocketImpl(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => this.authenticate(socket);
    socket.onmessage = (event) => this.receive(socket, event.data);
    socket.onclose = () => this.closed(socket);
    socket.onerror = () => {
      // A close event always follows; reconnecting happens there.
    };
  }

  async authenticate(socket, retried = false) {
    const tokens = this.api.tokens;
    const cartToken = this.api.cartToken;
    const frame = tokens ? { token: tokens.access } : cartToken ? { cart_token: cartToken } : {};
    let session;
    try {
      session = await this.send('auth', { ...frame, protocol: 1 }, socket);
    } catch (e) {
      if (socket !== this.socket) return;
      if (e instanceof ApiError && EXPIRED_CODES.has(e.code) && tokens && !retried) {
        // The access token expired while we were away: refresh and try once more.
        if (await this.api.refresh()) {
          if (socket === this.socket) await this.authenticate(socket, true);
          return;
        }
      }
      socket.close(4000, 'authentication failed');
      return;
    }
    if (socket !== this.socket) return;
    this.attempt = 0;
    this.wasLive = true;
    this.user = session?.user ?? null;
    this.setStatus('live');
    if (session?.cart) this.emit('cart.updated', session.cart);
    this.resubscribe();
    await this.resync();
  }

  /** Watches and the staff feed live on the socket: ask again on a new one. */
  resubscribe() {
    for (const id of this.watchedProducts) this.send('product.watch', { product_id: id }).catch(() => {});
    if (this.staffFeed) this.send('admin.subscribe', {}).catch(() => {});
  }

  /** Fresh snapshots of everything the page shows live, over REST. */
  async resync() {
    const work = [];
    work.push(
      this.api
        .cart()
        .then((cart) => this.emit('cart.updated', cart))
        .catch(() => {}),
    );
    if (this.api.loggedIn) {
      for (const id of this.watchedOrders) {
        work.push(
          this.api
            .order(id)
            .then((order) => this.emit('order.updated', order))
            .catch(() => {}),
        );
      }
    }
    await Promise.all(work);
    this.emit('resync', null);
  }

  startPolling() {
    if (this.pollTimer || !this.pollInterval) return;
    this.pollTimer = setInterval(() => {
      if (this.status !== 'live' && this.status !== 'stopped') this.resync();
    }, this.pollInterval);
  }

  closed(socket) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.failPending(new ApiError(0, 'connection_closed', 'the live connection closed'));
    if (this.status === 'stopped') return;
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.setStatus(this.wasLive ? 'reconnecting' : 'connecting');
    const { initial, max, factor } = this.backoff;
    const base = Math.min(max, initial * factor ** this.attempt);
    this.attempt += 1;
    // Jitter spreads the reconnects of many clients after a server restart.
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  failPending(error) {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this.pending.clear();
  }

  receive(socket, data) {
    if (socket !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    if (frame.id !== undefined && frame.id !== null && this.pending.has(String(frame.id))) {
      const { resolve, reject, timer } = this.pending.get(String(frame.id));
      this.pending.delete(String(frame.id));
      clearTimeout(timer);
      if (frame.type === 'error') {
        const detail = frame.error ?? {};
        reject(new ApiError(0, detail.code ?? 'error', detail.message ?? 'request refused', detail.fields ?? {}));
      } else {
        resolve(frame.data ?? null);
      }
      return;
    }
    if (frame.type === 'resync') {
      // Pushes were dropped: re-read everything, stats included.
      this.resubscribe();
      this.resync();
      return;
    }
    if (frame.type === 'session.expiring') {
      // The refresh re-authenticates this socket through onAuthChange.
      this.api.refresh();
      return;
    }
    this.emit(frame.type, frame.data ?? frame);
  }

  /**
   * Sends a request frame and resolves with the `ok` reply's data.
   * @param {string} type
   * @param {Record<string, any>} [fields]
   */
  send(type, fields = {}, socket = this.socket) {
    return new Promise((resolve, reject) => {
      if (!socket || socket.readyState !== 1) {
        reject(new ApiError(0, 'not_connected', 'the live connection is not open'));
        return;
      }
      const id = String(this.nextId++);
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError(0, 'timeout', `no reply to ${type}`));
      }, this.requestTimeout);
      this.pending.set(id, { resolve, reject, timer });
      socket.send(JSON.stringify({ ...fields, type, id }));
    });
  }

  /** Live stock for a product page; kept across reconnects. */
  watchProduct(id) {
    this.watchedProducts.add(id);
    if (this.status === 'live') this.send('product.watch', { product_id: id }).catch(() => {});
  }

  unwatchProduct(id) {
    this.watchedProducts.delete(id);
    if (this.status === 'live') this.send('product.unwatch', { product_id: id }).catch(() => {});
  }

  /** Orders whose snapshot is refetched after a reconnect (their pushes come unasked). */
  watchOrder(id) {
    this.watchedOrders.add(id);
  }

  unwatchOrder(id) {
    this.watchedOrders.delete(id);
  }

  /** The staff feed: order.created, order.updated for all orders, dashboard.stats. */
  subscribeStaffFeed() {
    this.staffFeed = true;
    if (this.status === 'live') this.send('admin.subscribe', {}).catch(() => {});
  }

  close() {
    this.unsubscribeAuth();
    this.stop();
  }
}
