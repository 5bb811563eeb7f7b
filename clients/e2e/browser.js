// Debian's chromium driven by playwright-core: no browser is downloaded.

import { chromium } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const SHOTS = resolve(fileURLToPath(new URL('../../target/e2e-screenshots', import.meta.url)));

export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  mkdirSync(SHOTS, { recursive: true });
  // Playwright gives every launch a fresh temporary profile (user data dir).
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export function shotPath(name) {
  return join(SHOTS, `${name.replace(/[^a-z0-9-]+/gi, '-').toLowerCase()}.png`);
}

/**
 * A context whose pages fail the test on a page error or a request to any
 * host but the shop's.
 */
export async function shopContext(browser, baseURL, problems) {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 860 } });
  const origin = new URL(baseURL).host;
  context.on('page', (page) => watch(page, origin, problems));
  return context;
}

function watch(page, origin, problems) {
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(m.text())) {
      problems.push(`console error on ${page.url()}: ${m.text()}`);
    }
  });
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) return;
    if (url.host !== origin) problems.push(`request to another host: ${r.url()}`);
  });
}
