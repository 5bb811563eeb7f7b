// DOM helpers shared by the storefront and the dashboard. Every string
// becomes a text node or an attribute value, never parsed HTML, so names,
// reviews and addresses typed by people cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Builds an element. `attrs` keys starting with `on` are listeners; `class`,
 * `for`, boolean and string attributes are set as attributes; children are
 * nodes or strings (strings become text nodes).
 * @param {string} tag
 * @param {Record<string, any>|null} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Same as h() for SVG elements (charts). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Calls fn after `wait` ms without another call (search as you type). */
export function debounce(fn, wait) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}

/** "2026-12-01T10:00:00Z" -> a short local date and time. */
export function formatDate(text) {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Decimal string + ISO currency -> "$19.99" (amounts stay strings: no float maths). */
export function money(amount, currency) {
  const symbols = { USD: '$', EUR: '€', GBP: '£', INR: '₹', JPY: '¥' };
  const symbol = symbols[currency];
  return symbol ? `${symbol}${amount}` : `${amount} ${currency ?? ''}`.trim();
}

/** A status pill: `pending`, `paid`, `shipped`, `delivered`, `cancelled`. */
export function badge(status, extra = '') {
  return h('span', { class: `badge badge-${status} ${extra}`.trim(), dataset: { status } }, status);
}

/** Focus the first focusable element inside `root` (after navigation). */
export function focusFirst(root) {
  const target = root.querySelector('h1, [autofocus], input, button, a[href]');
  if (target) {
    if (target.tagName === 'H1') target.setAttribute('tabindex', '-1');
    target.focus({ preventScroll: false });
  }
}

/** Turns an ApiError's per-field problems into messages under the inputs. */
export function showFieldErrors(form, error) {
  for (const old of form.querySelectorAll('.field-error')) old.remove();
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  const fields = error?.fields ?? {};
  for (const [name, message] of Object.entries(fields)) {
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!input) continue;
    input.setAttribute('aria-invalid', 'true');
    const note = h('p', { class: 'field-error', id: `${input.id}-error` }, message);
    input.setAttribute('aria-describedby', note.id);
    input.after(note);
  }
}

/** A labelled input inside a wrapper. */
export function field(label, attrs) {
  const id = attrs.id ?? `f-${attrs.name}`;
  return h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { ...attrs, id }));
}
