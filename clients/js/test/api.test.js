// The REST client against the real server: tokens, refresh, the error shape
// as exceptions, anonymous carts and their merge at login.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Api, ApiError } from '../api.js';
import { Server, freePort } from './server.js';

let server;
let product;

before(async () => {
  server = await Server.start();
  const anyone = new Api({ baseUrl: server.url });
  const page = await anyone.products({ in_stock: true, page_size: 1 });
  product = page.results[0];
});

after(async () => {
  await server?.close();
});

let n = 0;
async function shopper() {
  const api = new Api({ baseUrl: server.url });
  const username = `jsuser${process.pid}x${n++}`;
  await api.register({ username, email: `${username}@example.com`, password: 'correct horse battery' });
  await api.login(username, 'correct horse battery');
  return { api, username };
}

test('login keeps the tokens and authenticated calls use them', async () => {
  const { api, username } = await shopper();
  assert.ok(api.loggedIn);
  const profile = await api.profile();
  assert.equal(profile.username, username);
});

test('an error answer becomes an ApiError with status, code and fields', async () => {
  const api = new Api({ baseUrl: server.url });
  await assert.rejects(
    api.register({ username: 'x', email: 'not-an-email', password: 'short' }),
    (e) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 400);
      assert.equal(e.code, 'validation_failed');
      assert.ok(e.fields.email, 'email field problem named');
      assert.ok(e.fields.password, 'password field problem named');
      return true;
    },
  );
  await assert.rejects(api.product(999999999), (e) => e.status === 404 && e.code === 'not_found');
  await assert.rejects(api.profile(), (e) => e.status === 401 && e.code === 'not_authenticated');
});

test('a rejected access token is refreshed once and the call retried', async () => {
  const { api, username } = await shopper();
  const old = api.tokens;
  api.storage.set('access', 'not-a-token');
  // Concurrent calls share one refresh: refresh tokens are single use, so
  // racing refreshes would end the session.
  const profiles = await Promise.all([api.profile(), api.profile(), api.profile()]);
  for (const p of profiles) assert.equal(p.username, username);
  assert.ok(api.loggedIn);
  assert.notEqual(api.tokens.refresh, old.refresh, 'refresh token rotated');
  assert.notEqual(api.tokens.access, 'not-a-token');
});

test('a refused refresh ends the session locally and surfaces the 401', async () => {
  const { api } = await shopper();
  const seen = [];
  api.onAuthChange((tokens, reason) => seen.push([tokens, reason]));
  api.setTokens({ access: 'not-a-token', refresh: 'not-a-refresh-token' });
  await assert.rejects(api.profile(), (e) => e instanceof ApiError && e.status === 401);
  assert.equal(api.loggedIn, false);
  assert.deepEqual(seen.at(-1), [null, 'logout']);
});

test('an anonymous cart keeps its token and merges into the account at login', async () => {
  const api = new Api({ baseUrl: server.url });
  const cart = await api.addToCart(product.id, 2);
  assert.ok(api.cartToken, 'cart token kept');
  assert.equal(cart.cart_token, api.cartToken);
  assert.equal((await api.cart()).item_count, 2);
  const username = `jsmerge${process.pid}`;
  await api.register({ username, email: `${username}@example.com`, password: 'correct horse battery' });
  await api.login(username, 'correct horse battery');
  assert.equal(api.cartToken, null, 'token dropped once the cart is the user\'s');
  const merged = await api.cart();
  assert.equal(merged.items.find((i) => i.product_id === product.id)?.quantity, 2);
});

test('checkout with an idempotency key makes one order however often it is sent', async () => {
  const { api } = await shopper();
  await api.addToCart(product.id, 1);
  const address = { name: 'Ada', address: '1 Main St', city: 'Springfield', postal_code: '12345', country: 'US' };
  const first = await api.checkout(address, 'js-key-1');
  const again = await api.checkout(address, 'js-key-1');
  assert.equal(again.id, first.id);
  const orders = await api.orders();
  assert.equal(orders.results.length, 1);
  assert.equal(orders.results[0].status, 'pending');
});

test('an unreachable server is an ApiError with status 0', async () => {
  const api = new Api({ baseUrl: `http://127.0.0.1:${await freePort()}` });
  await assert.rejects(api.products(), (e) => e instanceof ApiError && e.status === 0 && e.code === 'network_error');
});

test('wishlist and reviews round-trip through the library', async () => {
  const { api, username } = await shopper();
  await api.addToWishlist(product.id);
  await api.addToWishlist(product.id);
  const list = await api.wishlist();
  const items = list.results ?? list.items ?? list;
  assert.equal(items.filter((i) => i.product_id === product.id).length, 1, 'adding twice keeps one entry');
  await api.moveToCart(product.id);
  assert.ok((await api.cart()).items.some((i) => i.product_id === product.id));

  const comment = '<img src=x onerror=alert(1)> sturdy';
  await api.addReview(product.id, 4, comment);
  await assert.rejects(api.addReview(product.id, 5, 'again'), (e) => e.status === 409);
  const reviews = await api.reviews(product.id);
  const mine = (reviews.results ?? reviews).find((r) => r.username === username);
  assert.equal(mine.comment, comment, 'stored as text, unchanged');
  assert.equal(mine.rating, 4);
});
