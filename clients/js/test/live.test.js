// The live connection against the real server: auth frame, request ids,
// pushes between two sessions of one user, errors as exceptions, and
// reconnect with a fresh cart after the server restarts.
// Run with `node --experimental-websocket` on node 20.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Api, ApiError } from '../api.js';
import { Live } from '../live.js';
import { createClient, CartState } from '../index.js';
import { Server } from './server.js';

let server;
let products;
const started = Server.start();
const noLive = (await (await started).has('/api/ws/')) ? false : 'this server has no /api/ws/ yet';

before(async () => {
  assert.ok(globalThis.WebSocket, 'WebSocket: run node with --experimental-websocket');
  server = await started;
  const page = await new Api({ baseUrl: server.url }).products({ in_stock: true, page_size: 3, ordering: 'price' });
  products = page.results;
});

after(async () => {
  await server?.close();
});

/** Resolves with the first event of `type` that satisfies `check`. */
function next(live, type, check = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} within ${ms} ms`));
    }, ms);
    const off = live.on(type, (data) => {
      if (!check(data)) return;
      clearTimeout(timer);
      off();
      resolve(data);
    });
  });
}

let n = 0;
async function user() {
  const username = `live${process.pid}x${n++}`;
  const api = new Api({ baseUrl: server.url });
  await api.register({ username, email: `${username}@example.com`, password: 'correct horse battery' });
  return { username, password: 'correct horse battery' };
}

async function session(account, options = {}) {
  const client = createClient({ baseUrl: server.url, pollInterval: 0, ...options });
  await client.api.login(account.username, account.password);
  client.live.start();
  if (client.live.status !== 'live') await next(client.live, 'status', (s) => s === 'live');
  return client;
}

test('two sessions of one user see each other\'s cart changes', { skip: noLive }, async () => {
  const account = await user();
  const a = await session(account);
  const b = await session(account);
  try {
    const pushed = next(b.live, 'cart.updated', (c) => c.items.some((i) => i.product_id === products[0].id));
    await a.api.addToCart(products[0].id, 2);
    const cart = await pushed;
    assert.equal(cart.items.find((i) => i.product_id === products[0].id).quantity, 2);
    assert.equal(b.cart.cart.item_count, 2, 'the cart holder took the push');
  } finally {
    a.live.close();
    b.live.close();
  }
});

test('replies are matched to requests by id, and refusals become ApiErrors', { skip: noLive }, async () => {
  const a = await session(await user());
  try {
    const [first, second, pong] = await Promise.all([
      a.live.send('product.watch', { product_id: products[1].id }),
      a.live.send('product.watch', { product_id: products[2].id }),
      a.live.send('ping'),
    ]);
    assert.equal(first.product_id, products[1].id);
    assert.equal(second.product_id, products[2].id);
    assert.equal(typeof pong.now, 'number');
    await assert.rejects(a.live.send('cart.add', { product_id: products[0].id, quantity: 0 }), (e) => e instanceof ApiError && e.code === 'invalid_quantity');
    await assert.rejects(a.live.send('admin.subscribe'), (e) => e.code === 'forbidden');
  } finally {
    a.live.close();
  }
});

test('a watched product pushes stock.changed when someone buys it', { skip: noLive }, async () => {
  const watcher = await session(await user());
  const buyer = await session(await user());
  try {
    watcher.live.watchProduct(products[1].id);
    await watcher.live.send('ping');
    const before = (await buyer.api.product(products[1].id)).stock;
    const pushed = next(watcher.live, 'stock.changed', (c) => c.product_id === products[1].id);
    await buyer.api.addToCart(products[1].id, 1);
    await buyer.api.checkout({ name: 'B', address: '1 St', city: 'X', postal_code: '1', country: 'US' });
    assert.equal((await pushed).stock, before - 1);
  } finally {
    watcher.live.close();
    buyer.live.close();
  }
});

test('after a server restart the client reconnects and shows the cart as it is now', { skip: noLive }, async () => {
  const account = await user();
  // A slow first retry leaves time to change the cart while it is away.
  const a = await session(account, { backoff: { initial: 3000, max: 3000 } });
  const other = new Api({ baseUrl: server.url });
  await other.login(account.username, account.password);
  try {
    const statuses = [];
    a.live.on('status', (s) => statuses.push(s));
    await server.restart();
    // The server closes live sockets as it stops, so the client may already
    // be reconnecting by the time the restart returns.
    if (!statuses.includes('reconnecting')) await next(a.live, 'status', (s) => s === 'reconnecting');
    await other.addToCart(products[2].id, 3);
    const fresh = next(a.live, 'cart.updated', (c) => c.items.some((i) => i.product_id === products[2].id), 15000);
    // On a slow machine the restart can outlast the first retry, so the
    // client may be live again already: only wait if it is not.
    const back = statuses.slice(statuses.indexOf('reconnecting') + 1).includes('live');
    if (!back) await next(a.live, 'status', (s) => s === 'live', 15000);
    await fresh;
    assert.equal(a.cart.cart.items.find((i) => i.product_id === products[2].id).quantity, 3);
    assert.deepEqual(statuses.slice(0, 1), ['reconnecting']);
    // And it is live again: pushes flow.
    const pushed = next(a.live, 'cart.updated', (c) => c.items.length === 0);
    await other.clearCart();
    await pushed;
  } finally {
    a.live.close();
  }
});

test('the cart holder never steps back to an older version', () => {
  const holder = new CartState();
  assert.ok(holder.offer({ id: 1, version: 5, items: [] }));
  assert.equal(holder.offer({ id: 1, version: 4, items: [] }), false);
  assert.ok(holder.offer({ id: 1, version: 6, items: [] }));
  assert.ok(holder.offer({ id: 2, version: 1, items: [] }), 'another cart (after login) is taken');
});

test('Live builds its URL from the API origin', () => {
  const live = new Live(new Api({ baseUrl: 'https://shop.example:8443' }));
  assert.equal(live.url, 'wss://shop.example:8443/api/ws/');
  live.close();
});
