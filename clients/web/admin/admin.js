// The staff dashboard: live order feed, tiles from dashboard.stats, a
// 30-day revenue chart, and product, inventory and user tables. The staff
// session is kept apart from any shopper session in the same browser.

import { createClient, browserStorage, ApiError } from '/js/index.js';
import { h, s, mount, money, badge, formatDate, focusFirst, field, debounce } from '../dom.js';

const { api, live } = createClient({ storage: browserStorage('storefront-staff.') });
const view = /** @type {HTMLElement} */ (document.getElementById('view'));
const NEXT_STATUSES = { pending: ['cancelled'], paid: ['shipped', 'cancelled'], shipped: ['delivered'], delivered: [], cancelled: [] };

let me = null;
let leaving = [];
let currency = 'USD';

function toast(message, kind = '') {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), 4000);
}

function explain(error) {
  if (error instanceof ApiError) return error.status === 0 ? 'Cannot reach the shop.' : error.message;
  return 'Something went wrong.';
}

function unavailable(e, what) {
  return h('p', { class: 'muted' }, e instanceof ApiError && e.status === 404 ? `${what} is not available on this server yet.` : explain(e));
}

/** Sums decimal strings exactly, in minor units. */
function toMinor(amount) {
  const [whole, frac = ''] = String(amount ?? '0').split('.');
  const sign = whole.startsWith('-') ? -1 : 1;
  return sign * (Math.abs(Number(whole)) * 100 + Number((frac + '00').slice(0, 2)));
}

function fromMinor(minor) {
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

live.on('status', (status) => {
  document.getElementById('live-banner').hidden = status !== 'reconnecting';
  document.body.dataset.live = status;
});

function renderNav() {
  const nav = document.getElementById('nav');
  if (!me) {
    mount(nav);
    return;
  }
  mount(
    nav,
    h('span', null, me.username),
    h(
      'button',
      {
        type: 'button',
        class: 'link',
        onclick: async () => {
          await api.logout().catch(() => {});
          me = null;
          live.stop();
          renderNav();
          route();
        },
      },
      'Log out',
    ),
  );
}

function loginView() {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { class: 'form', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Staff login'),
    field('Username or email', { name: 'username', autocomplete: 'username', required: true }),
    field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    error,
    h('button', { type: 'submit' }, 'Log in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    error.textContent = '';
    try {
      await api.login(String(data.get('username')).trim(), String(data.get('password')));
      const profile = await api.profile();
      if (!profile.is_staff) {
        await api.logout().catch(() => {});
        error.textContent = 'This account is not a staff account.';
        return;
      }
      me = profile;
      renderNav();
      startLive();
      location.hash = '#/orders';
      route();
    } catch (err) {
      error.textContent = explain(err);
    }
  });
  mount(view, form);
  focusFirst(view);
}

function tabs(current) {
  const tab = (hash, label) => h('a', { href: hash, 'aria-current': current === hash ? 'page' : false }, label);
  return h(
    'nav',
    { class: 'tabs', 'aria-label': 'Sections' },
    tab('#/orders', 'Orders'),
    tab('#/products', 'Products'),
    tab('#/inventory', 'Inventory'),
    tab('#/users', 'Users'),
  );
}

// ---------- orders: tiles, chart, live feed ----------

function tile(id, label) {
  return h('div', { class: 'tile' }, h('div', { class: 'label', id: `${id}-label` }, label), h('div', { class: 'value', id, 'aria-labelledby': `${id}-label` }, '—'));
}

function setTile(id, value) {
  const el = document.getElementById(id);
  if (el) el.textContent = value;
}

/** Set once dashboard.stats arrived: its figures beat the REST estimate. */
let liveStats = false;
let lastStats = null;

function applyStats(stats, fromRest = false) {
  if (fromRest && liveStats) return;
  if (!fromRest) {
    liveStats = true;
    lastStats = stats;
  }
  const data = stats.stats ?? stats;
  if (data.revenue_today !== undefined) setTile('tile-revenue', money(data.revenue_today, data.currency ?? currency));
  if (data.orders_today !== undefined) setTile('tile-orders', String(data.orders_today));
  if (data.pending_orders !== undefined) setTile('tile-pending', String(data.pending_orders));
  if (data.low_stock_count !== undefined) setTile('tile-low', String(data.low_stock_count));
  if (Array.isArray(data.low_stock)) {
    const names = data.low_stock.slice(0, 5).map((p) => `${p.name} (${p.stock})`).join(', ');
    const el = document.getElementById('tile-low');
    if (el) el.title = names;
  }
}

/** Tiles from REST until the live feed sends dashboard.stats. */
async function statsOverRest() {
  const today = new Date();
  const from = `${today.getFullYear()}-${String(today.getMonth() + 1).padStart(2, '0')}-${String(today.getDate()).padStart(2, '0')}`;
  try {
    let page = 1;
    let count = 0;
    let revenue = 0;
    for (;;) {
      const answer = await api.adminOrders({ from, page, page_size: 100 });
      for (const order of answer.results) {
        count += 1;
        currency = order.currency;
        if (order.status !== 'cancelled') revenue += toMinor(order.total_price);
      }
      if (!answer.next) break;
      page += 1;
    }
    const pending = await api.adminOrders({ status: 'pending', page_size: 1 });
    applyStats({ revenue_today: fromMinor(revenue), orders_today: count, pending_orders: pending.count, currency }, true);
  } catch {
    // Tiles keep their dashes; the feed below shows the error.
  }
  try {
    const inventory = await api.inventory({ low_stock: true, page_size: 100 });
    applyStats({ low_stock_count: inventory.count }, true);
  } catch {
    // No inventory route yet: the tile waits for dashboard.stats.
  }
}

function orderRow(order) {
  const choices = NEXT_STATUSES[order.status] ?? [];
  const selectId = `status-${order.id}`;
  return h(
    'tr',
    { dataset: { orderId: order.id } },
    h('td', null, `#${order.id}`),
    h('td', null, formatDate(order.created_at)),
    h('td', null, order.username ?? `user ${order.user}`),
    h('td', { class: 'num' }, money(order.total_price, order.currency)),
    h('td', null, badge(order.status, 'order-status')),
    h('td', null, badge(order.payment_status, 'payment-status')),
    h(
      'td',
      null,
      choices.length
        ? h(
            'form',
            {
              class: 'inline-form',
              onsubmit: async (e) => {
                e.preventDefault();
                const status = /** @type {HTMLSelectElement} */ (e.target.querySelector('select')).value;
                try {
                  const updated = await api.setOrderStatus(order.id, status);
                  feedUpdate(updated);
                } catch (err) {
                  toast(explain(err), 'error');
                }
              },
            },
            h('label', { class: 'visually-hidden', for: selectId }, `New status for order ${order.id}`),
            h('select', { id: selectId }, choices.map((c) => h('option', { value: c }, c))),
            h('button', { type: 'submit', class: 'small' }, 'Update'),
          )
        : null,
    ),
  );
}

let feedBody = null;

function feedUpdate(order, fresh = false) {
  if (!feedBody) return;
  const old = feedBody.querySelector(`tr[data-order-id="${Number(order.id)}"]`);
  const row = orderRow(order);
  if (old) {
    row.classList.add('changed');
    old.replaceWith(row);
  } else if (fresh) {
    row.classList.add('fresh');
    feedBody.prepend(row);
    feedBody.closest('section')?.querySelector('.empty')?.remove();
  }
}

async function ordersView() {
  const filter = h(
    'select',
    { id: 'feed-filter' },
    ['', 'pending', 'paid', 'shipped', 'delivered', 'cancelled'].map((v) => h('option', { value: v }, v || 'All statuses')),
  );
  feedBody = h('tbody');
  const feed = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'feed-title' },
    h(
      'div',
      { class: 'results-head' },
      h('h2', { id: 'feed-title' }, 'Live orders'),
      h('div', { class: 'inline-form' }, h('label', { for: 'feed-filter' }, 'Show'), filter),
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'feed', id: 'order-feed' },
        h(
          'thead',
          null,
          h('tr', null, ['Order', 'Placed', 'Customer', 'Total', 'Status', 'Payment', 'Change'].map((t) => h('th', { class: t === 'Total' ? 'num' : '' }, t))),
        ),
        feedBody,
      ),
    ),
  );
  const chart = h('section', { class: 'panel', 'aria-labelledby': 'chart-title' }, h('h2', { id: 'chart-title' }, 'Revenue, last 30 days'), h('p', { class: 'loading' }, 'Loading…'));
  mount(
    view,
    tabs('#/orders'),
    h('h1', { class: 'visually-hidden' }, 'Orders'),
    h('div', { class: 'tiles' }, tile('tile-revenue', 'Revenue today'), tile('tile-orders', 'Orders today'), tile('tile-pending', 'Pending orders'), tile('tile-low', 'Low-stock products')),
    h('div', { class: 'dash' }, feed, chart),
  );
  const load = async () => {
    try {
      const answer = await api.adminOrders({ status: filter.value, page_size: 50 });
      mount(feedBody, answer.results.map(orderRow));
      feed.querySelector('.empty')?.remove();
      if (!answer.results.length) feed.append(h('p', { class: 'empty' }, 'No orders yet. New orders appear here as they are placed.'));
    } catch (e) {
      mount(feedBody, h('tr', null, h('td', { colspan: 7 }, h('div', { class: 'error-box' }, explain(e)))));
    }
  };
  filter.addEventListener('change', load);
  leaving.push(
    live.on('order.created', (data) => {
      const order = data.order ?? data;
      if (!filter.value || filter.value === order.status) feedUpdate(order, true);
    }),
    live.on('order.updated', (data) => feedUpdate(data.order ?? data)),
    live.on('dashboard.stats', (stats) => applyStats(stats)),
    // Pushes missed while disconnected are gone: reload the list.
    live.on('resync', () => load()),
    () => (feedBody = null),
  );
  if (lastStats) applyStats(lastStats);
  await load();
  statsOverRest();
  renderChart(chart);
}

async function renderChart(section) {
  const to = new Date();
  const from = new Date(to.getTime() - 29 * 86400000);
  const day = (d) => d.toISOString().slice(0, 10);
  let answer;
  try {
    answer = await api.analytics({ from: day(from), to: day(to), interval: 'day' });
  } catch (e) {
    mount(section, h('h2', { id: 'chart-title' }, 'Revenue, last 30 days'), unavailable(e, 'Analytics'));
    return;
  }
  if (answer.currency) currency = answer.currency;
  const points = (answer.series ?? []).map((p) => ({
    label: String(p.period ?? ''),
    minor: toMinor(p.figures?.revenue ?? '0'),
    orders: p.figures?.orders ?? 0,
  }));
  const width = 600;
  const height = 220;
  const pad = { left: 44, right: 8, top: 10, bottom: 24 };
  const max = Math.max(100, ...points.map((p) => p.minor));
  const barWidth = points.length ? (width - pad.left - pad.right) / points.length : 0;
  const y = (minor) => pad.top + (height - pad.top - pad.bottom) * (1 - minor / max);
  const total = points.reduce((sum, p) => sum + p.minor, 0);
  const svg = s(
    'svg',
    { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': 'chart-title chart-desc' },
    s('desc', { id: 'chart-desc' }, `Daily revenue; ${fromMinor(total)} in total over ${points.length} days.`),
    s('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }),
    s('text', { x: pad.left - 6, y: y(max) + 4, 'text-anchor': 'end' }, fromMinor(max).replace(/\.00$/, '')),
    s('text', { x: pad.left - 6, y: y(0), 'text-anchor': 'end' }, '0'),
    points.map((p, i) =>
      s(
        'rect',
        { class: 'bar', x: pad.left + i * barWidth + 1, y: y(p.minor), width: Math.max(1, barWidth - 2), height: y(0) - y(p.minor) },
        s('title', null, `${p.label.slice(0, 10)}: ${money(fromMinor(p.minor), currency)}, ${p.orders} orders`),
      ),
    ),
    points.length ? s('text', { x: pad.left, y: height - 6 }, points[0].label.slice(5, 10)) : null,
    points.length ? s('text', { x: width - pad.right, y: height - 6, 'text-anchor': 'end' }, points[points.length - 1].label.slice(5, 10)) : null,
  );
  mount(section, h('h2', { id: 'chart-title' }, 'Revenue, last 30 days'), points.length ? svg : h('p', { class: 'empty' }, 'No sales in the last 30 days.'));
}

// ---------- products ----------

async function productsView() {
  const searchBox = h('input', { id: 'product-search', type: 'search', placeholder: 'Search products' });
  const body = h('tbody');
  const load = async () => {
    try {
      const page = await api.products({ search: searchBox.value.trim(), page_size: 100 });
      mount(
        body,
        page.results.map((p) => {
          const price = h('input', { id: `price-${p.id}`, value: p.price, inputmode: 'decimal', size: 7 });
          return h(
            'tr',
            { dataset: { productId: p.id } },
            h('td', null, String(p.id)),
            h('td', null, p.name),
            h(
              'td',
              null,
              h(
                'form',
                {
                  class: 'inline-form',
                  onsubmit: async (e) => {
                    e.preventDefault();
                    try {
                      await api.updateProduct(p.id, { price: price.value.trim() });
                      toast(`Price of ${p.name} saved`);
                    } catch (err) {
                      toast(explain(err), 'error');
                    }
                  },
                },
                h('label', { class: 'visually-hidden', for: `price-${p.id}` }, `Price of ${p.name}`),
                price,
                h('button', { type: 'submit', class: 'small secondary' }, 'Save'),
              ),
            ),
            h('td', { class: 'num' }, String(p.stock)),
            h(
              'td',
              null,
              h('input', {
                type: 'checkbox',
                id: `active-${p.id}`,
                checked: p.is_active,
                'aria-label': `${p.name} is on sale`,
                onchange: async (e) => {
                  try {
                    await api.updateProduct(p.id, { is_active: e.target.checked });
                  } catch (err) {
                    e.target.checked = !e.target.checked;
                    toast(explain(err), 'error');
                  }
                },
              }),
            ),
          );
        }),
      );
    } catch (e) {
      mount(body, h('tr', null, h('td', { colspan: 5 }, explain(e))));
    }
  };
  searchBox.addEventListener('input', debounce(load, 300));
  mount(
    view,
    tabs('#/products'),
    h(
      'section',
      { class: 'panel' },
      h('h1', null, 'Products'),
      h('div', { class: 'field' }, h('label', { for: 'product-search' }, 'Search'), searchBox),
      h('div', { class: 'table-wrap' }, h('table', null, h('thead', null, h('tr', null, ['Id', 'Name', 'Price', 'Stock', 'On sale'].map((t) => h('th', null, t)))), body)),
    ),
  );
  await load();
}

// ---------- inventory ----------

async function inventoryView() {
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  const rowFor = (item) => {
    const id = item.product_id ?? item.id;
    const qty = h('input', { id: `restock-${id}`, type: 'number', min: 1, max: 1000000, required: true, inputmode: 'numeric' });
    const reason = h('input', { id: `reason-${id}`, class: 'reason', placeholder: 'e.g. delivery', maxlength: 200 });
    const stockCell = h('td', { class: 'num' }, String(item.stock ?? item.on_hand));
    const low = item.low_stock ?? Number(item.stock ?? item.on_hand) <= 5;
    return h(
      'tr',
      { dataset: { productId: id } },
      h('td', null, item.name ?? item.product_name ?? `#${id}`),
      stockCell,
      h('td', { class: 'num' }, item.reserved !== undefined ? String(item.reserved) : '—'),
      h('td', { class: 'num' }, item.sold !== undefined ? String(item.sold) : '—'),
      h('td', null, low ? h('span', { class: 'low-stock' }, 'Low') : 'OK'),
      h(
        'td',
        null,
        h(
          'form',
          {
            class: 'inline-form',
            onsubmit: async (e) => {
              e.preventDefault();
              const n = Number(qty.value);
              if (!Number.isInteger(n) || n < 1) {
                toast('Enter a whole number of units', 'error');
                return;
              }
              try {
                const result = await api.restock(id, n, reason.value.trim());
                stockCell.textContent = String(result.on_hand ?? result.stock ?? Number(stockCell.textContent) + n);
                qty.value = '';
                reason.value = '';
                toast('Restocked');
              } catch (err) {
                toast(explain(err), 'error');
              }
            },
          },
          h('label', { class: 'visually-hidden', for: `restock-${id}` }, `Units received of ${item.name ?? id}`),
          qty,
          h('label', { class: 'visually-hidden', for: `reason-${id}` }, 'Reason'),
          reason,
          h('button', { type: 'submit', class: 'small' }, 'Restock'),
        ),
      ),
    );
  };
  mount(
    view,
    tabs('#/inventory'),
    h(
      'section',
      { class: 'panel' },
      h('h1', null, 'Inventory'),
      note,
      h('div', { class: 'table-wrap' }, h('table', null, h('thead', null, h('tr', null, ['Product', 'On hand', 'Reserved', 'Sold', 'Level', 'Restock'].map((t) => h('th', null, t)))), body)),
    ),
  );
  try {
    const answer = await api.inventory({ page_size: 100 });
    mount(body, (answer.results ?? answer).map(rowFor));
  } catch (e) {
    // Without the inventory route, stock comes from the catalog.
    note.textContent = 'Showing stock from the catalog.';
    try {
      const page = await api.products({ ordering: 'name', page_size: 100 });
      mount(body, page.results.map(rowFor));
    } catch (err) {
      mount(body, h('tr', null, h('td', { colspan: 6 }, explain(err))));
    }
  }
  leaving.push(
    live.on('stock.changed', (change) => {
      const cell = body.querySelector(`tr[data-product-id="${Number(change.product_id)}"] td.num`);
      if (cell) cell.textContent = String(change.stock ?? change.on_hand);
    }),
  );
}

// ---------- users ----------

async function usersView() {
  const searchBox = h('input', { id: 'user-search', type: 'search', placeholder: 'Username or email' });
  const body = h('tbody');
  const flag = (user, name, label) =>
    h('input', {
      type: 'checkbox',
      checked: user[name],
      'aria-label': `${user.username}: ${label}`,
      onchange: async (e) => {
        try {
          await api.updateUser(user.id, { [name]: e.target.checked });
          toast(`${user.username} updated`);
        } catch (err) {
          e.target.checked = !e.target.checked;
          toast(explain(err), 'error');
        }
      },
    });
  const load = async () => {
    try {
      const page = await api.adminUsers({ search: searchBox.value.trim(), page_size: 100 });
      const users = page.results ?? page;
      mount(
        body,
        users.length
          ? users.map((u) =>
              h(
                'tr',
                null,
                h('td', null, u.username),
                h('td', null, u.email),
                h('td', null, formatDate(u.date_joined ?? u.created_at)),
                h('td', null, flag(u, 'is_active', 'active')),
                h('td', null, flag(u, 'is_staff', 'staff')),
              ),
            )
          : h('tr', null, h('td', { colspan: 5 }, 'No users match.')),
      );
    } catch (e) {
      mount(body, h('tr', null, h('td', { colspan: 5 }, explain(e))));
    }
  };
  searchBox.addEventListener('input', debounce(load, 300));
  mount(
    view,
    tabs('#/users'),
    h(
      'section',
      { class: 'panel' },
      h('h1', null, 'Users'),
      h('div', { class: 'field' }, h('label', { for: 'user-search' }, 'Search'), searchBox),
      h('div', { class: 'table-wrap' }, h('table', null, h('thead', null, h('tr', null, ['Username', 'Email', 'Joined', 'Active', 'Staff'].map((t) => h('th', null, t)))), body)),
    ),
  );
  await load();
}

// ---------- router ----------

const routes = { '#/orders': ordersView, '#/products': productsView, '#/inventory': inventoryView, '#/users': usersView };

async function route() {
  for (const fn of leaving) fn();
  leaving = [];
  if (!me) {
    loginView();
    return;
  }
  const render = routes[location.hash] ?? ordersView;
  try {
    await render();
  } catch (e) {
    mount(view, h('div', { class: 'error-box', role: 'alert' }, explain(e)));
  }
}

function startLive() {
  live.subscribeStaffFeed();
  live.start();
}

window.addEventListener('hashchange', route);

async function start() {
  if (api.loggedIn) {
    const profile = await api.profile().catch(() => null);
    me = profile?.is_staff ? profile : null;
  }
  renderNav();
  if (me) startLive();
  await route();
  document.body.dataset.ready = 'true';
}

start();
