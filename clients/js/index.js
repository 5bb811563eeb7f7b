// The Storefront client library: REST (api.js), the live connection
// (live.js) and a cart holder that merges both sources without going back
// in time.

import { Api, ApiError, MemoryStorage, browserStorage, newIdempotencyKey } from './api.js';
import { Live, webSocketUrl } from './live.js';

export { Api, ApiError, MemoryStorage, browserStorage, newIdempotencyKey, Live, webSocketUrl };

/**
 * Holds the latest cart snapshot. REST replies and `cart.updated` pushes can
 * arrive in either order; a snapshot older than the one held (same cart,
 * lower version) is ignored so the page never steps backwards.
 */
export class CartState {
  constructor() {
    this.cart = null;
    /** @type {Set<(cart: any) => void>} */
    this.listeners = new Set();
  }

  /** @returns {boolean} whether the snapshot was taken */
  offer(cart) {
    if (!cart || typeof cart !== 'object') return false;
    const held = this.cart;
    if (held && held.id === cart.id && typeof held.version === 'number' && cart.version < held.version) {
      return false;
    }
    this.cart = cart;
    for (const listener of this.listeners) listener(cart);
    return true;
  }

  reset() {
    this.cart = null;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * A REST client, its live connection and the cart they both feed.
 * @param {{baseUrl?: string, storage?: import('./api.js').KeyValue, WebSocket?: typeof WebSocket, backoff?: import('./live.js').Backoff, pollInterval?: number, fetch?: typeof fetch}} [options]
 */
export function createClient(options = {}) {
  const api = new Api(options);
  const live = new Live(api, options);
  const cart = new CartState();
  live.on('cart.updated', (snapshot) => cart.offer(snapshot.cart ?? snapshot));
  api.onAuthChange(() => cart.reset());
  return { api, live, cart };
}
