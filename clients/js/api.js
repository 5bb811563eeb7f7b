// REST client for the Storefront API: one method per route, the server's
// error shape turned into ApiError exceptions, and access tokens refreshed
// transparently (refresh tokens are single use, so concurrent callers share
// one refresh instead of racing and logging each other out).

/**
 * @typedef {{access: string, refresh: string}} Tokens
 * @typedef {{get(key: string): (string|null), set(key: string, value: string): void, remove(key: string): void}} KeyValue
 * @typedef {{code: string, message: string, fields?: Record<string, string>}} ErrorDetail
 */

/** An error answered by the server (or a network failure, status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {string} code stable machine-readable code, e.g. `validation_failed`
   * @param {string} message human-readable explanation
   * @param {Record<string, string>} [fields] per-field problems
   */
  constructor(status, code, message, fields = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

/** Storage that lives as long as the object (node, tests, private windows). */
export class MemoryStorage {
  constructor() {
    /** @type {Map<string, string>} */
    this.map = new Map();
  }
  get(key) {
    return this.map.has(key) ? /** @type {string} */ (this.map.get(key)) : null;
  }
  set(key, value) {
    this.map.set(key, value);
  }
  remove(key) {
    this.map.delete(key);
  }
}

/** Browser localStorage behind the KeyValue interface, shared by tabs. */
export function browserStorage(prefix = 'storefront.') {
  try {
    const ls = globalThis.localStorage;
    ls.setItem(prefix + 'probe', '1');
    ls.removeItem(prefix + 'probe');
    return {
      get: (k) => ls.getItem(prefix + k),
      set: (k, v) => ls.setItem(prefix + k, v),
      remove: (k) => ls.removeItem(prefix + k),
    };
  } catch {
    return new MemoryStorage();
  }
}

/** A random key for Idempotency-Key headers. */
export function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function query(params) {
  if (!params) return '';
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export class Api {
  /**
   * @param {{baseUrl?: string, storage?: KeyValue, fetch?: typeof fetch}} [options]
   *   baseUrl: origin of the server ('' in a page served by it)
   */
  constructor(options = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/$/, '');
    this.storage = options.storage ?? new MemoryStorage();
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** @type {Promise<boolean>|null} */
    this.refreshing = null;
    /** @type {Set<(tokens: Tokens|null) => void>} */
    this.authListeners = new Set();
  }

  /** @returns {Tokens|null} */
  get tokens() {
    const access = this.storage.get('access');
    const refresh = this.storage.get('refresh');
    return access && refresh ? { access, refresh } : null;
  }

  /**
   * @param {Tokens|null} tokens
   * @param {'login'|'logout'|'refresh'} [reason] what changed: a refresh keeps the same user
   */
  setTokens(tokens, reason = tokens ? 'login' : 'logout') {
    if (tokens) {
      this.storage.set('access', tokens.access);
      this.storage.set('refresh', tokens.refresh);
    } else {
      this.storage.remove('access');
      this.storage.remove('refresh');
    }
    for (const listener of this.authListeners) listener(tokens, reason);
  }

  /** Called with (tokens or null, reason) whenever the session's tokens change. */
  onAuthChange(listener) {
    this.authListeners.add(listener);
    return () => this.authListeners.delete(listener);
  }

  get loggedIn() {
    return this.tokens !== null;
  }

  /** The anonymous cart token, until a login merges that cart. */
  get cartToken() {
    return this.storage.get('cart_token');
  }

  /**
   * One HTTP call. Throws ApiError for any non-2xx answer.
   * @param {string} method
   * @param {string} path e.g. `/api/cart/`
   * @param {{body?: any, params?: Record<string, any>, auth?: boolean, idempotencyKey?: string}} [options]
   */
  async request(method, path, options = {}) {
    const send = async () => {
      /** @type {Record<string, string>} */
      const headers = { accept: 'application/json' };
      const tokens = this.tokens;
      if (tokens && options.auth !== false) headers.authorization = `Bearer ${tokens.access}`;
      const cartToken = this.cartToken;
      if (cartToken) headers['x-cart-token'] = cartToken;
      if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
      let body;
      if (options.body !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(options.body);
      }
      try {
        return await this.fetchImpl(this.baseUrl + path + query(options.params), {
          method,
          headers,
          body,
          credentials: 'same-origin',
        });
      } catch (e) {
        throw new ApiError(0, 'network_error', `cannot reach the shop: ${e?.message ?? e}`);
      }
    };
    const usedToken = this.tokens?.access;
    let response = await send();
    if (response.status === 401 && usedToken && options.auth !== false) {
      // Another call may have refreshed already; otherwise refresh once.
      if (this.tokens?.access !== usedToken || (await this.refresh())) {
        response = await send();
      }
    }
    return this.parse(response);
  }

  /** @param {Response} response */
  async parse(response) {
    const cartToken = response.headers.get('x-cart-token');
    if (cartToken && !this.loggedIn) this.storage.set('cart_token', cartToken);
    const text = response.status === 204 ? '' : await response.text();
    let value = null;
    if (text) {
      try {
        value = JSON.parse(text);
      } catch {
        if (response.ok) {
          throw new ApiError(response.status, 'bad_response', 'the server sent something that is not JSON');
        }
      }
    }
    if (!response.ok) {
      const detail = value?.error;
      if (detail && typeof detail.code === 'string') {
        throw new ApiError(response.status, detail.code, detail.message ?? detail.code, detail.fields ?? {});
      }
      throw new ApiError(response.status, 'http_error', `HTTP ${response.status}`);
    }
    return value;
  }

  /**
   * Trades the refresh token for a new pair. Concurrent callers share one
   * attempt. A refused refresh ends the session locally.
   * @returns {Promise<boolean>} whether new tokens were obtained
   */
  refresh() {
    if (this.refreshing) return this.refreshing;
    const tokens = this.tokens;
    if (!tokens) return Promise.resolve(false);
    this.refreshing = (async () => {
      try {
        const fresh = await this.request('POST', '/api/auth/refresh/', {
          body: { refresh: tokens.refresh },
          auth: false,
        });
        this.setTokens({ access: fresh.access, refresh: fresh.refresh }, 'refresh');
        return true;
      } catch (e) {
        if (e instanceof ApiError && e.status >= 400 && e.status < 500) this.setTokens(null);
        return false;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  // --- accounts ---

  register(fields) {
    return this.request('POST', '/api/auth/register/', { body: fields, auth: false });
  }

  /** Logs in (merging the anonymous cart into the user's) and keeps the tokens. */
  async login(username, password) {
    const tokens = await this.request('POST', '/api/auth/login/', {
      body: { username, password },
      auth: false,
    });
    this.storage.remove('cart_token');
    this.setTokens({ access: tokens.access, refresh: tokens.refresh });
    return tokens;
  }

  async logout() {
    const tokens = this.tokens;
    try {
      if (tokens) {
        await this.request('POST', '/api/auth/logout/', { body: { refresh: tokens.refresh }, auth: false });
      }
    } finally {
      this.setTokens(null);
    }
  }

  profile() {
    return this.request('GET', '/api/profile/');
  }

  updateProfile(fields) {
    return this.request('PATCH', '/api/profile/', { body: fields });
  }

  // --- catalog ---

  /** @param {{search?: string, category?: string|number, brand?: string|number, min_price?: string, max_price?: string, in_stock?: boolean, ordering?: string, page?: number, page_size?: number}} [params] */
  products(params) {
    return this.request('GET', '/api/products/', { params });
  }

  product(idOrSlug) {
    return this.request('GET', `/api/products/${encodeURIComponent(idOrSlug)}/`);
  }

  categories() {
    return this.request('GET', '/api/categories/', { params: { page_size: 100 } });
  }

  brands() {
    return this.request('GET', '/api/brands/', { params: { page_size: 100 } });
  }

  reviews(productId, params) {
    return this.request('GET', `/api/products/${productId}/reviews/`, { params });
  }

  addReview(productId, rating, comment) {
    return this.request('POST', `/api/products/${productId}/reviews/`, { body: { rating, comment } });
  }

  // --- cart ---

  cart() {
    return this.request('GET', '/api/cart/');
  }

  addToCart(productId, quantity = 1) {
    return this.request('POST', '/api/cart/add/', { body: { product_id: productId, quantity } });
  }

  setQuantity(productId, quantity) {
    return this.request('PATCH', `/api/cart/items/${productId}/`, { body: { quantity } });
  }

  removeFromCart(productId) {
    return this.request('DELETE', `/api/cart/items/${productId}/`);
  }

  clearCart() {
    return this.request('DELETE', '/api/cart/');
  }

  // --- orders and payment ---

  /** @param {Record<string, string>} [shippingAddress] @param {string} [idempotencyKey] */
  checkout(shippingAddress, idempotencyKey = newIdempotencyKey()) {
    const body = shippingAddress ? { shipping_address: shippingAddress } : {};
    return this.request('POST', '/api/checkout/', { body, idempotencyKey });
  }

  orders(params) {
    return this.request('GET', '/api/orders/', { params });
  }

  order(id) {
    return this.request('GET', `/api/orders/${id}/`);
  }

  cancelOrder(id) {
    return this.request('POST', `/api/orders/${id}/cancel/`);
  }

  paymentProviders() {
    return this.request('GET', '/api/payment/providers/');
  }

  createPayment(orderId, provider, idempotencyKey = newIdempotencyKey()) {
    return this.request('POST', '/api/payment/', { body: { order_id: orderId, provider }, idempotencyKey });
  }

  // --- wishlist ---

  wishlist() {
    return this.request('GET', '/api/wishlist/');
  }

  addToWishlist(productId) {
    return this.request('POST', '/api/wishlist/', { body: { product_id: productId } });
  }

  removeFromWishlist(productId) {
    return this.request('DELETE', `/api/wishlist/${productId}/`);
  }

  moveToCart(productId) {
    return this.request('POST', `/api/wishlist/${productId}/move-to-cart/`);
  }

  // --- staff ---

  adminOrders(params) {
    return this.request('GET', '/api/admin/orders/', { params });
  }

  setOrderStatus(id, status) {
    return this.request('PATCH', `/api/admin/orders/${id}/`, { body: { status } });
  }

  restock(productId, quantity, reason) {
    const body = reason ? { quantity, reason } : { quantity };
    return this.request('POST', `/api/admin/products/${productId}/restock/`, { body });
  }

  inventory(params) {
    return this.request('GET', '/api/admin/inventory/', { params });
  }

  analytics(params) {
    return this.request('GET', '/api/admin/analytics/', { params });
  }

  adminUsers(params) {
    return this.request('GET', '/api/admin/users/', { params });
  }

  updateUser(id, flags) {
    return this.request('PATCH', `/api/admin/users/${id}/`, { body: flags });
  }

  updateProduct(id, fields) {
    return this.request('PATCH', `/api/products/${id}/`, { body: fields });
  }
}
