// End-to-end: real chromium against the real server (demo shop, free port,
// temporary data directory). The tests share one story and run in order:
// a shopper buys and pays, a second device follows the cart, staff see the
// order arrive and ship it, and a server restart shows the reconnect banner
// and leaves the cart right.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Api } from '../js/api.js';
import { Server } from '../js/test/server.js';
import { launch, shopContext, shotPath } from './browser.js';

const PASSWORD = 'correct horse battery';
const LIVE_WITHIN = 1000;

let server;
let browser;
let product;
let other;
const problems = [];
const shopper = { username: `e2e${process.pid}`, email: `e2e${process.pid}@example.com` };
/** @type {{shop?: import('playwright-core').Page, twin?: import('playwright-core').Page, admin?: import('playwright-core').Page}} */
const pages = {};
let orderId;
// The browser story needs the live endpoint and the payment routes.
const started = Server.start();
const missing = [];
if (!(await (await started).has('/api/ws/'))) missing.push('/api/ws/');
if (!(await (await started).has('/api/payment/providers/'))) missing.push('/api/payment/');
const skip = missing.length ? `this server lacks ${missing.join(' and ')}` : false;

before(async () => {
  server = await started;
  const staff = new Api({ baseUrl: server.url });
  await staff.login(...server.logins().staff);
  const categories = await staff.categories();
  const created = await staff.request('POST', '/api/products/', {
    body: { name: `Copper Teapot ${process.pid}`, price: '24.50', category: (categories.results ?? categories)[0].id, stock: 7, description: 'Hand hammered.' },
  });
  product = created;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

afterEach(async (t) => {
  // A failing test leaves a picture of every page it had open.
  if (t.passed === false || problems.length) {
    for (const [name, page] of Object.entries(pages)) {
      await page?.screenshot({ path: shotPath(`failed-${t.name}-${name}`), fullPage: true }).catch(() => {});
    }
  }
  const seen = problems.splice(0);
  assert.deepEqual(seen, [], 'no page errors and no requests to other hosts');
});

async function newPage() {
  const context = await shopContext(browser, server.url, problems);
  return context.newPage();
}

async function ready(page, path) {
  await page.goto(path);
  await page.waitForSelector('body[data-ready="true"]');
}

test('a shopper registers, searches, adds to cart, checks out and sees the order turn paid without reloading', { skip }, async () => {
  const page = (pages.shop = await newPage());
  await ready(page, '/');
  await page.screenshot({ path: shotPath('storefront'), fullPage: false });

  await page.getByRole('link', { name: 'Create account' }).click();
  await page.getByLabel('Username').fill(shopper.username);
  await page.getByLabel('Email').fill(shopper.email);
  await page.getByLabel('Password (8 characters or more)').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor();

  await page.getByLabel('Search products').fill('copper teapot');
  // Debounced search as you type: the list narrows to the one teapot.
  await page.locator('#result-count', { hasText: /^1 product$/ }).waitFor();
  const card = page.locator(`#products li[data-product-id="${product.id}"]`);
  assert.equal(await page.locator('#products li').count(), 1, 'search narrows to the teapot');
  await card.getByRole('button', { name: /Add .* to cart/ }).click();
  await page.locator('#cart-count', { hasText: '1' }).waitFor();

  // Staff open the dashboard before the order exists: it must arrive live.
  const admin = (pages.admin = await newPage());
  await ready(admin, '/admin/');
  await admin.getByLabel('Username or email').fill(server.logins().staff[0]);
  await admin.getByLabel('Password').fill(server.logins().staff[1]);
  await admin.getByRole('button', { name: 'Log in' }).click();
  await admin.locator('#order-feed').waitFor();
  await admin.waitForFunction(() => document.body.dataset.live === 'live');

  await page.locator('#cart-button').click();
  await page.getByRole('button', { name: 'Check out' }).click();
  await page.getByLabel('Full name').fill('Ada Shopper');
  await page.getByLabel('Address').fill('1 Market Street');
  await page.getByLabel('City').fill('Springfield');
  await page.getByLabel('Postal code').fill('12345');
  await page.getByLabel('Country (2 letters)').fill('US');
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.waitForURL(/#\/orders\/\d+$/);
  orderId = Number(page.url().split('/').pop());
  await page.locator('.order-status', { hasText: 'pending' }).waitFor();

  // Marks this document: a reload would lose it.
  await page.evaluate(() => (window.__notReloaded = true));
  const [payPage] = await Promise.all([
    page.context().waitForEvent('page'),
    page.getByRole('button', { name: 'Pay with test card' }).click(),
  ]);
  await payPage.waitForURL(/\/pay\/test\//);
  await payPage.locator('button[value="pay"]').click();
  await page.locator('.payment-status', { hasText: 'paid' }).waitFor({ timeout: 10000 });
  await page.locator('.order-status', { hasText: 'paid' }).waitFor();
  assert.equal(await page.evaluate(() => window.__notReloaded), true, 'the order page was not reloaded');
  await payPage.close();
});

test('the staff dashboard shows the order live, and shipping it reaches the shopper without a reload', { skip }, async () => {
  const admin = pages.admin;
  const row = admin.locator(`#order-feed tr[data-order-id="${orderId}"]`);
  await row.waitFor({ timeout: 5000 });
  await row.locator('.order-status', { hasText: 'paid' }).waitFor({ timeout: 5000 });
  await admin.screenshot({ path: shotPath('dashboard'), fullPage: false });

  await row.getByLabel(`New status for order ${orderId}`).selectOption('shipped');
  await row.getByRole('button', { name: 'Update' }).click();
  await admin.locator(`#order-feed tr[data-order-id="${orderId}"] .order-status`, { hasText: 'shipped' }).waitFor();
  await pages.shop.locator('.order-status', { hasText: 'shipped' }).waitFor({ timeout: 5000 });
  assert.equal(await pages.shop.evaluate(() => window.__notReloaded), true);
});

test('a cart change on one device appears on another within a second', { skip }, async () => {
  const twin = (pages.twin = await newPage());
  await ready(twin, '/#/login');
  await twin.getByLabel('Username or email').fill(shopper.username);
  await twin.getByLabel('Password').fill(PASSWORD);
  await twin.getByRole('button', { name: 'Log in' }).click();
  await twin.getByRole('button', { name: 'Log out' }).waitFor();
  await twin.waitForFunction(() => document.body.dataset.live === 'live');
  await twin.locator('#cart-count', { hasText: /^0$/ }).waitFor();

  const shop = pages.shop;
  await shop.goto('/#/');
  await shop.waitForFunction(() => document.body.dataset.live === 'live');
  const card = shop.locator(`#products li[data-product-id="${product.id}"]`);
  await card.getByRole('button', { name: /Add .* to cart/ }).click();
  await shop.locator('#cart-count', { hasText: /^1$/ }).waitFor();
  const started = Date.now();
  await twin.locator('#cart-count', { hasText: /^1$/ }).waitFor({ timeout: LIVE_WITHIN });
  assert.ok(Date.now() - started <= LIVE_WITHIN);

  // And back: a quantity change in the twin's drawer reaches the first tab.
  await twin.locator('#cart-button').click();
  await twin.getByLabel(`Quantity of ${product.name}`).fill('3');
  await twin.getByLabel(`Quantity of ${product.name}`).press('Enter');
  await shop.locator('#cart-count', { hasText: /^3$/ }).waitFor({ timeout: LIVE_WITHIN });
});

test('a server restart shows the reconnect banner, and after reconnecting the cart is right', { skip }, async () => {
  const shop = pages.shop;
  const banner = shop.locator('#live-banner');
  assert.equal(await banner.isVisible(), false);
  await server.stop();
  await banner.waitFor({ state: 'visible', timeout: 5000 });
  await shop.screenshot({ path: shotPath('storefront-reconnecting') });
  await server.launch();
  // Changed elsewhere while this page was cut off.
  other = new Api({ baseUrl: server.url });
  await other.login(shopper.username, PASSWORD);
  await other.setQuantity(product.id, 2);
  await banner.waitFor({ state: 'hidden', timeout: 20000 });
  await shop.locator('#cart-count', { hasText: /^2$/ }).waitFor({ timeout: 5000 });
  await shop.locator('#cart-button').click();
  assert.equal(await shop.getByLabel(`Quantity of ${product.name}`).inputValue(), '2');
});
