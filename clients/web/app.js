// The storefront: catalog, product pages, cart drawer, checkout, payment,
// orders and wishlist. Everything works over REST; the live connection
// keeps stock, the cart and order status current without reloads.

import { createClient, browserStorage, ApiError, newIdempotencyKey } from '/js/index.js';
import { h, mount, debounce, money, badge, formatDate, focusFirst, showFieldErrors, field } from './dom.js';

const { api, live, cart } = createClient({ storage: browserStorage() });
const view = /** @type {HTMLElement} */ (document.getElementById('view'));
const PAGE_SIZE = 24;

/** The logged-in user's account, or null. */
let me = null;
/** Cleanups of the current view (listeners, watches), run on navigation. */
let leaving = [];
let taxonomy = null;

// ---------- shared bits ----------

function toast(message, kind = '') {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), 4000);
}

function explain(error) {
  if (error instanceof ApiError) {
    if (error.status === 0) return 'Cannot reach the shop. Check your connection and try again.';
    return error.message;
  }
  return 'Something went wrong.';
}

function errorBox(error, retry) {
  return h(
    'div',
    { class: 'error-box', role: 'alert' },
    h('p', null, explain(error)),
    retry ? h('button', { type: 'button', class: 'secondary', onclick: retry }, 'Try again') : null,
  );
}

function stockLabel(product) {
  const stock = Number(product.stock ?? 0);
  if (stock <= 0) return h('span', { class: 'stock out', dataset: { stock: 'out' } }, 'Sold out');
  if (stock <= 5) return h('span', { class: 'stock low', dataset: { stock: 'low' } }, `Only ${stock} left`);
  return h('span', { class: 'stock in', dataset: { stock: 'in' } }, 'In stock');
}

function productImage(product) {
  return product.image
    ? h('img', { src: product.image, alt: '', loading: 'lazy', width: 400, height: 300 })
    : h('div', { class: 'image-missing', 'aria-hidden': 'true' });
}

function onLeave(fn) {
  leaving.push(fn);
}

async function loadTaxonomy() {
  if (!taxonomy) {
    const [categories, brands] = await Promise.all([
      api.categories().catch(() => ({ results: [] })),
      api.brands().catch(() => ({ results: [] })),
    ]);
    taxonomy = { categories: categories.results ?? categories, brands: brands.results ?? brands };
  }
  return taxonomy;
}

async function addToCart(productId, quantity = 1) {
  try {
    cart.offer(await api.addToCart(productId, quantity));
    toast('Added to your cart');
    return true;
  } catch (e) {
    toast(explain(e), 'error');
    return false;
  }
}

// ---------- header, live banner, cart drawer ----------

function renderNav() {
  const nav = document.getElementById('nav');
  if (me) {
    mount(
      nav,
      h('a', { href: '#/orders' }, 'Orders'),
      h('a', { href: '#/wishlist' }, 'Wishlist'),
      h('span', { class: 'who' }, me.username),
      h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'),
    );
  } else {
    mount(nav, h('a', { href: '#/login' }, 'Log in'), h('a', { href: '#/register' }, 'Create account'));
  }
}

async function logout() {
  await api.logout().catch(() => {});
  me = null;
  renderNav();
  cart.offer(await api.cart().catch(() => null));
  location.hash = '#/';
}

live.on('status', (status) => {
  document.getElementById('live-banner').hidden = status !== 'reconnecting';
  document.body.dataset.live = status;
});

const drawer = document.getElementById('cart-drawer');
const backdrop = document.getElementById('drawer-backdrop');
const cartButton = document.getElementById('cart-button');

function openDrawer() {
  drawer.hidden = false;
  backdrop.hidden = false;
  cartButton.setAttribute('aria-expanded', 'true');
  renderDrawer();
  drawer.querySelector('button, a, input')?.focus();
}

function closeDrawer() {
  if (drawer.hidden) return;
  drawer.hidden = true;
  backdrop.hidden = true;
  cartButton.setAttribute('aria-expanded', 'false');
  cartButton.focus();
}

cartButton.addEventListener('click', () => (drawer.hidden ? openDrawer() : closeDrawer()));
backdrop.addEventListener('click', closeDrawer);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') closeDrawer();
});

function renderDrawer() {
  const current = cart.cart;
  const items = current?.items ?? [];
  const lines = items.map((item) =>
    h(
      'li',
      { class: 'line', dataset: { productId: item.product_id } },
      item.image ? h('img', { src: item.image, alt: '' }) : h('span'),
      h(
        'div',
        null,
        h('a', { href: `#/product/${item.product_id}`, onclick: closeDrawer }, item.name),
        h('div', { class: 'muted' }, `${money(item.unit_price, current.currency)} each`),
        item.available === false ? h('div', { class: 'unavailable' }, 'No longer available in this quantity') : null,
      ),
      h(
        'div',
        null,
        h('label', { class: 'visually-hidden', for: `qty-${item.product_id}` }, `Quantity of ${item.name}`),
        h('input', {
          id: `qty-${item.product_id}`,
          type: 'number',
          min: 0,
          max: 999,
          value: item.quantity,
          inputmode: 'numeric',
          onchange: async (e) => {
            const quantity = Number(e.target.value);
            if (!Number.isInteger(quantity) || quantity < 0) return;
            try {
              cart.offer(await api.setQuantity(item.product_id, quantity));
            } catch (err) {
              toast(explain(err), 'error');
              renderDrawer();
            }
          },
        }),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary small',
            'aria-label': `Remove ${item.name}`,
            onclick: async () => {
              try {
                cart.offer(await api.removeFromCart(item.product_id));
              } catch (err) {
                toast(explain(err), 'error');
              }
            },
          },
          'Remove',
        ),
      ),
    ),
  );
  mount(
    drawer,
    h(
      'header',
      null,
      h('h2', { id: 'cart-title' }, 'Your cart'),
      h('button', { type: 'button', class: 'secondary small', onclick: closeDrawer }, 'Close'),
    ),
    items.length
      ? h('ul', { class: 'lines', 'aria-labelledby': 'cart-title' }, lines)
      : h('div', { class: 'lines' }, h('p', { class: 'empty' }, 'Your cart is empty.')),
    items.length
      ? h(
          'footer',
          null,
          h('div', { class: 'total' }, h('span', null, 'Total'), h('span', { id: 'cart-total' }, money(current.total, current.currency))),
          h(
            'button',
            {
              type: 'button',
              onclick: () => {
                closeDrawer();
                location.hash = '#/checkout';
              },
            },
            'Check out',
          ),
        )
      : null,
  );
}

cart.subscribe((current) => {
  document.getElementById('cart-count').textContent = String(current?.item_count ?? 0);
  if (!drawer.hidden) {
    // Keep focus on the quantity being edited while the drawer re-renders.
    const focusedId = document.activeElement?.id;
    renderDrawer();
    if (focusedId) document.getElementById(focusedId)?.focus();
  }
});

// ---------- catalog ----------

function readParams(query) {
  const params = Object.fromEntries(new URLSearchParams(query));
  return {
    search: params.search ?? '',
    category: params.category ?? '',
    brand: params.brand ?? '',
    min_price: params.min_price ?? '',
    max_price: params.max_price ?? '',
    in_stock: params.in_stock === 'true',
    ordering: params.ordering ?? '',
    page: Number(params.page ?? 1) || 1,
  };
}

function writeParams(params) {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === '' || value === false || (key === 'page' && value === 1)) continue;
    out.set(key, String(value));
  }
  const text = out.toString();
  history.replaceState(null, '', text ? `#/?${text}` : '#/');
}

async function catalogView(query) {
  const params = readParams(query);
  const searchInput = /** @type {HTMLInputElement} */ (document.getElementById('search'));
  if (searchInput.value !== params.search) searchInput.value = params.search;
  const { categories, brands } = await loadTaxonomy();
  const results = h('section', { 'aria-live': 'polite', 'aria-busy': 'true' });
  const select = (name, label, options, value) => {
    const id = `filter-${name}`;
    return h(
      'div',
      { class: 'field' },
      h('label', { for: id }, label),
      h(
        'select',
        { id, name },
        options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value) }, text)),
      ),
    );
  };
  const filters = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter products', onsubmit: (e) => e.preventDefault() },
    h('h2', null, 'Filter'),
    select('category', 'Category', [['', 'All categories'], ...categories.map((c) => [c.slug ?? c.id, c.name])], params.category),
    select('brand', 'Brand', [['', 'All brands'], ...brands.map((b) => [b.slug ?? b.id, b.name])], params.brand),
    h(
      'fieldset',
      { class: 'field' },
      h('legend', null, 'Price'),
      h(
        'div',
        { class: 'price' },
        h('label', { class: 'visually-hidden', for: 'filter-min' }, 'Lowest price'),
        h('input', { id: 'filter-min', name: 'min_price', inputmode: 'decimal', placeholder: 'Min', value: params.min_price }),
        h('label', { class: 'visually-hidden', for: 'filter-max' }, 'Highest price'),
        h('input', { id: 'filter-max', name: 'max_price', inputmode: 'decimal', placeholder: 'Max', value: params.max_price }),
      ),
    ),
    h(
      'div',
      { class: 'check' },
      h('input', { type: 'checkbox', id: 'filter-stock', name: 'in_stock', checked: params.in_stock }),
      h('label', { for: 'filter-stock' }, 'In stock only'),
    ),
    select(
      'ordering',
      'Sort by',
      [
        ['', params.search ? 'Best match' : 'Newest'],
        ['price', 'Price: low to high'],
        ['-price', 'Price: high to low'],
        ['name', 'Name'],
        ['-rating', 'Top rated'],
      ],
      params.ordering,
    ),
  );

  const load = async () => {
    results.setAttribute('aria-busy', 'true');
    writeParams(params);
    let page;
    try {
      page = await api.products({
        search: params.search,
        category: params.category,
        brand: params.brand,
        min_price: params.min_price,
        max_price: params.max_price,
        in_stock: params.in_stock ? 'true' : '',
        ordering: params.ordering,
        page: params.page,
        page_size: PAGE_SIZE,
      });
    } catch (e) {
      results.setAttribute('aria-busy', 'false');
      mount(results, errorBox(e, load));
      return;
    }
    results.setAttribute('aria-busy', 'false');
    if (!page.results.length) {
      mount(
        results,
        h(
          'div',
          { class: 'empty' },
          h('h2', null, 'No products match'),
          h('p', null, params.search ? `Nothing found for “${params.search}”. Try fewer words or clear the filters.` : 'Try clearing some filters.'),
        ),
      );
      return;
    }
    const cards = page.results.map(productCard);
    const pages = Math.max(1, Math.ceil(page.count / PAGE_SIZE));
    mount(
      results,
      h('div', { class: 'results-head' }, h('span', { id: 'result-count' }, `${page.count} product${page.count === 1 ? '' : 's'}`)),
      h('ul', { class: 'grid', id: 'products' }, cards),
      pages > 1
        ? h(
            'nav',
            { class: 'pager', 'aria-label': 'Pages' },
            h('button', { type: 'button', class: 'secondary', disabled: params.page <= 1, onclick: () => go(params.page - 1) }, 'Previous'),
            h('span', null, `Page ${params.page} of ${pages}`),
            h('button', { type: 'button', class: 'secondary', disabled: params.page >= pages, onclick: () => go(params.page + 1) }, 'Next'),
          )
        : null,
    );
  };
  const go = (n) => {
    params.page = n;
    load();
    view.scrollIntoView();
  };
  const refilter = () => {
    const data = new FormData(filters);
    params.category = String(data.get('category') ?? '');
    params.brand = String(data.get('brand') ?? '');
    params.min_price = String(data.get('min_price') ?? '').trim();
    params.max_price = String(data.get('max_price') ?? '').trim();
    params.in_stock = data.get('in_stock') === 'on';
    params.ordering = String(data.get('ordering') ?? '');
    params.page = 1;
    load();
  };
  filters.addEventListener('change', refilter);
  filters.addEventListener('input', debounce((e) => e.target.tagName === 'INPUT' && e.target.type !== 'checkbox' && refilter(), 400));

  searchHandler = (text) => {
    params.search = text;
    params.page = 1;
    load();
  };
  onLeave(() => (searchHandler = null));

  onLeave(
    live.on('stock.changed', (change) => {
      const card = results.querySelector(`[data-product-id="${Number(change.product_id)}"]`);
      if (card) updateCardStock(card, change);
    }),
  );

  mount(
    view,
    h('h1', { class: 'visually-hidden' }, 'Products'),
    h('div', { class: 'shop' }, filters, results),
  );
  await load();
}

function productCard(product) {
  const button = h(
    'button',
    {
      type: 'button',
      class: 'small add',
      disabled: product.stock <= 0,
      'aria-label': `Add ${product.name} to cart`,
      onclick: () => addToCart(product.id),
    },
    'Add to cart',
  );
  return h(
    'li',
    { class: 'card', dataset: { productId: product.id } },
    h('a', { class: 'image', href: `#/product/${product.id}`, tabindex: '-1', 'aria-hidden': 'true' }, productImage(product)),
    h(
      'div',
      { class: 'body' },
      h('a', { class: 'name', href: `#/product/${product.id}` }, product.name),
      product.brand ? h('span', { class: 'brand' }, product.brand.name) : null,
      h('div', { class: 'stock-slot' }, stockLabel(product)),
      h('div', { class: 'foot' }, h('span', { class: 'price-tag' }, money(product.price, product.currency)), button),
    ),
  );
}

function updateCardStock(card, change) {
  const product = { stock: change.stock ?? change.on_hand ?? 0 };
  mount(card.querySelector('.stock-slot'), stockLabel(product));
  const button = card.querySelector('button.add');
  if (button) button.disabled = product.stock <= 0;
}

/** Set by the catalog view so typing in the header search filters in place. */
let searchHandler = null;
const search = /** @type {HTMLInputElement} */ (document.getElementById('search'));
const runSearch = debounce(() => {
  const text = search.value.trim();
  if (searchHandler) searchHandler(text);
  else location.hash = text ? `#/?search=${encodeURIComponent(text)}` : '#/';
}, 250);
search.addEventListener('input', runSearch);
document.getElementById('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  runSearch();
});

// ---------- product page ----------

async function productView(id) {
  let product;
  try {
    product = await api.product(id);
  } catch (e) {
    mount(view, e instanceof ApiError && e.status === 404 ? h('div', { class: 'empty' }, h('h1', null, 'Product not found'), h('a', { href: '#/' }, 'Back to the shop')) : errorBox(e, () => route()));
    return;
  }
  document.title = `${product.name} · Storefront`;
  const stockSlot = h('p', { class: 'stock-slot', id: 'product-stock', 'aria-live': 'polite' }, stockLabel(product));
  const quantity = h('input', { id: 'buy-qty', type: 'number', min: 1, max: 999, value: 1, inputmode: 'numeric' });
  const buy = h(
    'button',
    {
      type: 'submit',
      disabled: product.stock <= 0,
    },
    'Add to cart',
  );
  const setStock = (stock) => {
    product.stock = stock;
    mount(stockSlot, stockLabel(product));
    buy.disabled = stock <= 0;
  };
  live.watchProduct(product.id);
  onLeave(() => live.unwatchProduct(product.id));
  onLeave(
    live.on('stock.changed', (change) => {
      if (Number(change.product_id) === product.id) setStock(Number(change.stock ?? change.on_hand ?? 0));
    }),
  );
  // After a reconnect the pushes we missed are gone: fetch the stock again.
  onLeave(
    live.on('resync', () => {
      api.product(product.id).then((fresh) => setStock(fresh.stock)).catch(() => {});
    }),
  );

  const wish = me
    ? h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          onclick: async () => {
            try {
              await api.addToWishlist(product.id);
              toast('Saved to your wishlist');
            } catch (e) {
              toast(explain(e), 'error');
            }
          },
        },
        'Save to wishlist',
      )
    : null;

  const reviews = h('section', { class: 'reviews', 'aria-labelledby': 'reviews-title' }, h('h2', { id: 'reviews-title' }, 'Reviews'));
  mount(
    view,
    h('nav', { 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, '← All products')),
    h(
      'article',
      { class: 'product', dataset: { productId: product.id } },
      h('div', { class: 'image' }, productImage(product)),
      h(
        'div',
        null,
        h('h1', null, product.name),
        product.brand ? h('p', { class: 'brand' }, product.brand.name) : null,
        h('p', { class: 'price-tag' }, money(product.price, product.currency)),
        product.rating_count ? h('p', null, `${stars(Math.round(Number(product.rating_average)))} ${product.rating_average} (${product.rating_count})`) : null,
        stockSlot,
        h(
          'form',
          {
            class: 'buy',
            onsubmit: async (e) => {
              e.preventDefault();
              const n = Number(quantity.value);
              if (!Number.isInteger(n) || n < 1) {
                toast('Choose a quantity of at least 1', 'error');
                return;
              }
              if (await addToCart(product.id, n)) openDrawer();
            },
          },
          h('div', { class: 'field' }, h('label', { for: 'buy-qty' }, 'Quantity'), quantity),
          buy,
          wish,
        ),
        h('p', { class: 'description' }, product.description),
        product.category ? h('p', { class: 'muted' }, 'Category: ', h('a', { href: `#/?category=${encodeURIComponent(product.category.slug)}` }, product.category.name)) : null,
      ),
    ),
    reviews,
  );
  loadReviews(product, reviews);
}

function stars(n) {
  const k = Math.max(0, Math.min(5, n || 0));
  return h('span', { class: 'stars', 'aria-label': `${k} out of 5 stars` }, '★'.repeat(k) + '☆'.repeat(5 - k));
}

async function loadReviews(product, section) {
  const list = h('div', { 'aria-live': 'polite' });
  section.append(list);
  const refresh = async () => {
    try {
      const page = await api.reviews(product.id, { ordering: '-created_at' });
      const items = page.results ?? page;
      mount(
        list,
        items.length
          ? items.map((r) =>
              h(
                'article',
                { class: 'review' },
                h('div', null, stars(r.rating), r.verified_purchase ? h('span', { class: 'verified' }, 'Verified purchase') : null),
                h('p', null, r.comment ?? ''),
                h('p', { class: 'meta' }, `${r.username ?? r.user ?? 'A shopper'} · ${formatDate(r.created_at)}`),
              ),
            )
          : h('p', { class: 'muted' }, 'No reviews yet.'),
      );
    } catch (e) {
      mount(list, h('p', { class: 'muted' }, e instanceof ApiError && e.status === 404 ? 'Reviews are not available yet.' : explain(e)));
    }
  };
  await refresh();
  if (!me) {
    section.append(h('p', null, h('a', { href: `#/login?next=${encodeURIComponent(location.hash)}` }, 'Log in'), ' to write a review.'));
    return;
  }
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { class: 'form wide', 'aria-label': 'Write a review' },
    h('h3', null, 'Write a review'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'review-rating' }, 'Rating'),
      h('select', { id: 'review-rating', name: 'rating' }, [5, 4, 3, 2, 1].map((n) => h('option', { value: n }, `${n} star${n > 1 ? 's' : ''}`))),
    ),
    h('div', { class: 'field' }, h('label', { for: 'review-comment' }, 'Comment'), h('textarea', { id: 'review-comment', name: 'comment', maxlength: 4000 })),
    error,
    h('button', { type: 'submit' }, 'Post review'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    error.textContent = '';
    try {
      await api.addReview(product.id, Number(data.get('rating')), String(data.get('comment') ?? ''));
      form.reset();
      toast('Thanks for your review');
      refresh();
    } catch (err) {
      showFieldErrors(form, err);
      error.textContent = explain(err);
    }
  });
  section.append(form);
}

// ---------- accounts ----------

function nextFrom(query) {
  const next = new URLSearchParams(query).get('next');
  return next && next.startsWith('#/') ? next : '#/';
}

async function afterLogin(query) {
  me = await api.profile().catch(() => null);
  renderNav();
  cart.offer(await api.cart().catch(() => null));
  location.hash = nextFrom(query);
}

function loginView(query) {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { class: 'form', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Log in'),
    field('Username or email', { name: 'username', autocomplete: 'username', required: true }),
    field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    error,
    h('button', { type: 'submit' }, 'Log in'),
    h('p', null, 'New here? ', h('a', { href: `#/register?${query}` }, 'Create an account')),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    error.textContent = '';
    try {
      await api.login(String(data.get('username')).trim(), String(data.get('password')));
      await afterLogin(query);
    } catch (err) {
      error.textContent = explain(err);
    }
  });
  mount(view, form);
}

function registerView(query) {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { class: 'form', 'aria-labelledby': 'register-title' },
    h('h1', { id: 'register-title' }, 'Create an account'),
    field('Username', { name: 'username', autocomplete: 'username', required: true }),
    field('Email', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
    field('Password (8 characters or more)', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 }),
    error,
    h('button', { type: 'submit' }, 'Create account'),
    h('p', null, 'Have an account? ', h('a', { href: `#/login?${query}` }, 'Log in')),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    error.textContent = '';
    const username = String(data.get('username')).trim();
    const password = String(data.get('password'));
    try {
      await api.register({ username, email: String(data.get('email')).trim(), password });
      await api.login(username, password);
      await afterLogin(query);
    } catch (err) {
      showFieldErrors(form, err);
      error.textContent = explain(err);
    }
  });
  mount(view, form);
}

function requireLogin() {
  if (me) return true;
  location.hash = `#/login?next=${encodeURIComponent(location.hash)}`;
  return false;
}

// ---------- checkout ----------

async function checkoutView() {
  if (!requireLogin()) return;
  const current = await api.cart().catch(() => null);
  if (current) cart.offer(current);
  const items = cart.cart?.items ?? [];
  if (!items.length) {
    mount(view, h('div', { class: 'empty' }, h('h1', null, 'Your cart is empty'), h('a', { href: '#/' }, 'Continue shopping')));
    return;
  }
  const profile = { ...(me?.profile ?? {}), username: me?.username };
  // One key per visit: a double submit or a retried request makes one order.
  const key = newIdempotencyKey();
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { class: 'form wide', 'aria-labelledby': 'checkout-title' },
    h('h1', { id: 'checkout-title' }, 'Checkout'),
    h('h2', null, 'Shipping address'),
    field('Full name', { name: 'name', autocomplete: 'name', required: true, value: profile.username ?? '' }),
    field('Address', { name: 'address', autocomplete: 'street-address', required: true, value: profile.address ?? '' }),
    h(
      'div',
      { class: 'row' },
      field('City', { name: 'city', autocomplete: 'address-level2', required: true, value: profile.city ?? '' }),
      field('Postal code', { name: 'postal_code', autocomplete: 'postal-code', value: profile.postal_code ?? '' }),
    ),
    h(
      'div',
      { class: 'row' },
      field('Country (2 letters)', { name: 'country', autocomplete: 'country', required: true, maxlength: 2, value: profile.country ?? '' }),
      field('Phone', { name: 'phone', type: 'tel', autocomplete: 'tel', value: profile.phone ?? '' }),
    ),
    h(
      'div',
      { class: 'panel' },
      h('h2', null, 'Order summary'),
      h(
        'ul',
        null,
        items.map((i) => h('li', null, `${i.quantity} × ${i.name} — ${money(i.line_total, cart.cart.currency)}`)),
      ),
      h('p', { class: 'total' }, h('span', null, 'Total'), h('span', null, money(cart.cart.total, cart.cart.currency))),
    ),
    error,
    h('button', { type: 'submit' }, 'Place order'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const address = {};
    for (const name of ['name', 'address', 'city', 'postal_code', 'country', 'phone']) {
      const value = String(data.get(name) ?? '').trim();
      if (value) address[name] = name === 'country' ? value.toUpperCase() : value;
    }
    error.textContent = '';
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const order = await api.checkout(address, key);
      cart.offer(await api.cart().catch(() => null));
      location.hash = `#/orders/${order.id}`;
    } catch (err) {
      submit.disabled = false;
      // Checkout reports shipping problems as shipping_address.<field>.
      const fields = {};
      for (const [k, v] of Object.entries(err.fields ?? {})) fields[k.replace(/^shipping_address\./, '')] = v;
      showFieldErrors(form, { fields });
      error.textContent = explain(err);
    }
  });
  mount(view, form);
}

// ---------- orders ----------

function orderFrom(data) {
  return data?.order ?? data;
}

async function ordersView() {
  if (!requireLogin()) return;
  let page;
  try {
    page = await api.orders({ page_size: 50 });
  } catch (e) {
    mount(view, h('h1', null, 'Your orders'), errorBox(e, () => route()));
    return;
  }
  const orders = page.results ?? page;
  if (!orders.length) {
    mount(view, h('h1', null, 'Your orders'), h('div', { class: 'empty' }, h('p', null, 'No orders yet.'), h('a', { href: '#/' }, 'Start shopping')));
    return;
  }
  const rows = new Map();
  const row = (order) =>
    h(
      'li',
      { class: 'order-row', dataset: { orderId: order.id } },
      h('div', null, h('a', { href: `#/orders/${order.id}` }, `Order #${order.id}`), h('div', { class: 'muted' }, formatDate(order.created_at))),
      h('div', null, badge(order.status, 'order-status'), ' ', badge(order.payment_status, 'payment-status')),
      h('strong', null, money(order.total_price, order.currency)),
    );
  const list = h('ul', { class: 'orders' });
  for (const order of orders) {
    const el = row(order);
    rows.set(order.id, el);
    list.append(el);
    live.watchOrder(order.id);
  }
  onLeave(() => orders.forEach((o) => live.unwatchOrder(o.id)));
  onLeave(
    live.on('order.updated', (data) => {
      const order = orderFrom(data);
      const old = rows.get(order.id);
      if (!old) return;
      const fresh = row(order);
      rows.set(order.id, fresh);
      old.replaceWith(fresh);
    }),
  );
  mount(view, h('h1', null, 'Your orders'), list);
}

async function orderView(id) {
  if (!requireLogin()) return;
  let order;
  try {
    order = await api.order(id);
  } catch (e) {
    mount(view, e instanceof ApiError && e.status === 404 ? h('div', { class: 'empty' }, h('h1', null, 'Order not found'), h('a', { href: '#/orders' }, 'Your orders')) : errorBox(e, () => route()));
    return;
  }
  const body = h('div');
  const payment = h('section', { class: 'panel', 'aria-labelledby': 'pay-title' });
  let paying = false;
  const render = () => {
    mount(
      body,
      h(
        'div',
        { class: 'panel', dataset: { orderId: order.id } },
        h('h1', null, `Order #${order.id}`),
        h(
          'p',
          { 'aria-live': 'polite' },
          'Status: ',
          badge(order.status, 'order-status'),
          ' Payment: ',
          badge(order.payment_status, 'payment-status'),
        ),
        h('p', { class: 'muted' }, `Placed ${formatDate(order.created_at)}`),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            null,
            h('thead', null, h('tr', null, h('th', null, 'Product'), h('th', { class: 'num' }, 'Qty'), h('th', { class: 'num' }, 'Price'), h('th', { class: 'num' }, 'Total'))),
            h(
              'tbody',
              null,
              order.items.map((i) =>
                h(
                  'tr',
                  null,
                  h('td', null, i.product_name),
                  h('td', { class: 'num' }, String(i.quantity)),
                  h('td', { class: 'num' }, money(i.price_at_purchase, order.currency)),
                  h('td', { class: 'num' }, money(i.line_total, order.currency)),
                ),
              ),
            ),
          ),
        ),
        h('p', { class: 'total' }, h('span', null, 'Total'), h('span', null, money(order.total_price, order.currency))),
        h('h2', null, 'Ships to'),
        h(
          'address',
          null,
          [order.shipping_address.name, order.shipping_address.address, `${order.shipping_address.postal_code} ${order.shipping_address.city}`.trim(), order.shipping_address.country]
            .filter(Boolean)
            .flatMap((line) => [line, h('br')]),
        ),
        order.status === 'pending'
          ? h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                onclick: async () => {
                  if (!confirm('Cancel this order?')) return;
                  try {
                    order = await api.cancelOrder(order.id);
                    render();
                  } catch (e) {
                    toast(explain(e), 'error');
                  }
                },
              },
              'Cancel order',
            )
          : null,
      ),
    );
    renderPayment();
  };
  const renderPayment = async () => {
    const payable = order.status === 'pending' && order.payment_status !== 'paid';
    payment.hidden = !payable;
    if (!payable || paying) {
      if (!payable) paying = false;
      return;
    }
    const declined = order.payment_status === 'failed';
    let providers;
    try {
      const answer = await api.paymentProviders();
      providers = answer.providers ?? answer.results ?? answer;
    } catch (e) {
      mount(payment, h('h2', { id: 'pay-title' }, 'Payment'), h('p', { class: 'muted' }, e instanceof ApiError && e.status === 404 ? 'Online payment is not available yet.' : explain(e)));
      return;
    }
    const names = providers.map((p) => (typeof p === 'string' ? p : p.name ?? p.id));
    mount(
      payment,
      h('h2', { id: 'pay-title' }, 'Payment'),
      declined ? h('p', { class: 'error-box', role: 'alert' }, 'Your payment was declined. You can try again.') : null,
      names.length
        ? h(
            'div',
            { class: 'providers' },
            names.map((name) =>
              h('button', { type: 'button', class: 'pay', dataset: { provider: name }, onclick: () => pay(name) }, `Pay with ${providerLabel(name)}`),
            ),
          )
        : h('p', { class: 'muted' }, 'No payment method is configured for this shop.'),
    );
  };
  const pay = async (provider) => {
    // Open the window inside the click so popup blockers let it through.
    const popup = window.open('', '_blank');
    try {
      const created = await api.createPayment(order.id, provider);
      const next = created.next_action ?? created;
      if (next.type === 'redirect' && next.url) {
        paying = true;
        if (popup) popup.location.href = next.url;
        mount(
          payment,
          h('h2', { id: 'pay-title' }, 'Payment'),
          h('p', { role: 'status' }, 'Finish paying in the payment page. This page updates by itself.'),
          h('a', { class: 'button secondary', href: next.url, target: '_blank', rel: 'noopener' }, 'Open the payment page'),
        );
      } else {
        popup?.close();
        toast(`${providerLabel(provider)} needs its own checkout script, which this shop does not load.`, 'error');
      }
    } catch (e) {
      popup?.close();
      toast(explain(e), 'error');
    }
  };
  live.watchOrder(order.id);
  onLeave(() => live.unwatchOrder(order.id));
  onLeave(
    live.on('order.updated', (data) => {
      const fresh = orderFrom(data);
      if (fresh?.id !== order.id) return;
      if (fresh.payment_status === 'failed' && order.payment_status !== 'failed') paying = false;
      order = { ...order, ...fresh };
      render();
    }),
  );
  mount(view, h('nav', null, h('a', { href: '#/orders' }, '← Your orders')), body, payment);
  render();
}

function providerLabel(name) {
  return { test: 'test card', stripe: 'Stripe', paypal: 'PayPal', razorpay: 'Razorpay' }[name] ?? name;
}

// ---------- wishlist ----------

async function wishlistView() {
  if (!requireLogin()) return;
  let answer;
  try {
    answer = await api.wishlist();
  } catch (e) {
    mount(view, h('h1', null, 'Wishlist'), e instanceof ApiError && e.status === 404 ? h('div', { class: 'empty' }, 'The wishlist is not available yet.') : errorBox(e, () => route()));
    return;
  }
  const items = answer.results ?? answer.items ?? answer;
  if (!items.length) {
    mount(view, h('h1', null, 'Wishlist'), h('div', { class: 'empty' }, h('p', null, 'Nothing saved yet.'), h('a', { href: '#/' }, 'Browse products')));
    return;
  }
  const cards = items.map((item) => {
    const product = { ...(item.product ?? item) };
    product.id = product.id ?? item.product_id;
    const card = productCard(product);
    card.querySelector('.foot').append(
      h(
        'button',
        {
          type: 'button',
          class: 'secondary small',
          onclick: async () => {
            try {
              await api.removeFromWishlist(product.id);
              card.remove();
            } catch (e) {
              toast(explain(e), 'error');
            }
          },
        },
        'Remove',
      ),
    );
    return card;
  });
  mount(view, h('h1', null, 'Wishlist'), h('ul', { class: 'grid' }, cards));
}

// ---------- router ----------

const routes = [
  [/^#?\/?$/, (q) => catalogView(q)],
  [/^#\/product\/(\d+)$/, (q, id) => productView(Number(id))],
  [/^#\/login$/, (q) => loginView(q)],
  [/^#\/register$/, (q) => registerView(q)],
  [/^#\/checkout$/, () => checkoutView()],
  [/^#\/orders$/, () => ordersView()],
  [/^#\/orders\/(\d+)$/, (q, id) => orderView(Number(id))],
  [/^#\/wishlist$/, () => wishlistView()],
];

async function route() {
  for (const fn of leaving) fn();
  leaving = [];
  document.title = 'Storefront';
  const [path, query = ''] = (location.hash || '#/').split('?');
  for (const [pattern, render] of routes) {
    const match = pattern.exec(path);
    if (match) {
      try {
        await render(query, ...match.slice(1));
      } catch (e) {
        mount(view, errorBox(e, () => route()));
      }
      if (path !== '#/' && path !== '' && path !== '#') focusFirst(view);
      return;
    }
  }
  mount(view, h('div', { class: 'empty' }, h('h1', null, 'Page not found'), h('a', { href: '#/' }, 'Back to the shop')));
}

window.addEventListener('hashchange', route);

async function start() {
  if (api.loggedIn) me = await api.profile().catch(() => null);
  renderNav();
  api.onAuthChange((tokens) => {
    if (!tokens && me) {
      me = null;
      renderNav();
    }
  });
  cart.offer(await api.cart().catch(() => null));
  live.start();
  await route();
  document.body.dataset.ready = 'true';
}

start();
