// Starts the real storefront binary on a free port with a temporary data
// directory (the demo shop, so there are products and a staff login).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** The server binary: STOREFRONT_BIN, or the debug build of this checkout. */
export function binary() {
  return process.env.STOREFRONT_BIN ?? join(root, 'target', 'debug', 'storefront');
}

export function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/**
 * A running server. `restart()` stops it and starts it again on the same
 * port and data directory (what a deploy or a crash looks like to a browser).
 */
export class Server {
  constructor(dataDir, port) {
    this.dataDir = dataDir;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
  }

  static async start() {
    const dataDir = mkdtempSync(join(tmpdir(), 'storefront-js-'));
    const server = new Server(dataDir, await freePort());
    await server.launch();
    return server;
  }

  launch() {
    return new Promise((done, fail) => {
      const child = spawn(binary(), ['serve', '--demo', '--addr', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir], {
        env: { ...process.env, RUST_LOG: process.env.TEST_LOG ? 'info' : 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.child = child;
      let output = '';
      const timer = setTimeout(() => fail(new Error(`server did not start:\n${output}`)), 60000);
      const watch = (chunk) => {
        output += chunk;
        if (process.env.TEST_LOG) process.stderr.write(chunk);
        if (output.includes('listening on')) {
          clearTimeout(timer);
          done();
        }
      };
      child.stdout.on('data', watch);
      child.stderr.on('data', watch);
      child.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`server exited with ${code}:\n${output}`));
      });
    });
  }

  /**
   * Which routes of later features this server has (404 means absent), so
   * tests of those parts can say why they did not run.
   */
  async has(path) {
    const response = await fetch(this.url + path);
    return response.status !== 404;
  }

  /** The demo logins: {shopper: [user, password], staff: [user, password]}. */
  logins() {
    const text = readFileSync(join(this.dataDir, 'demo-credentials.txt'), 'utf8');
    const logins = {};
    for (const line of text.trim().split('\n')) {
      const [role, user, password] = line.split(' ');
      logins[role] = [user, password];
    }
    return logins;
  }

  /** SIGTERM and wait for the exit (the server flushes first). */
  stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((done) => {
      child.removeAllListeners('exit');
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
  }

  async restart() {
    await this.stop();
    await this.launch();
  }

  async close() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
