// One test file = one suite: one JupyterLab server and one browser for all its tests;
// each test has its own notebook and windows, screenshots of every window at its end
// (and on failure) in e2e/artifacts/<suite>/<test>/.
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { Window, launchBrowser } from './browser.mjs';
import { Lab } from './lab.mjs';
import { ARTIFACTS } from './paths.mjs';

const slug = text => text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);

export class Suite {
  /** @param {string} name @param {{crdtsync?: object}} [options] server settings */
  constructor(name, options = {}) {
    this.name = name;
    this.dir = path.join(ARTIFACTS, name);
    this._options = options;
    this._started = null;
    this.lab = null;
    this.browser = null;
    // Started by the first test that runs: a file whose tests are all filtered out
    // (--test-name-pattern) costs nothing.
    after(
      async () => {
        await this._started?.catch(() => {});
        await this.browser?.close();
        await this.lab?.dispose(this.dir);
      },
      { timeout: 60_000 }
    );
  }

  start() {
    this._started ??= (async () => {
      this.lab = await Lab.start(this._options);
      this.browser = await launchBrowser();
    })();
    return this._started;
  }

  /**
   * A test with its own notebook and windows.
   * @param {string} name
   * @param {{timeout?: number}} options
   * @param {(run: TestRun) => Promise<void>} body
   */
  test(name, options, body) {
    test(name, { timeout: options.timeout ?? 120_000 }, async () => {
      await this.start();
      const run = new TestRun(this, name);
      let failed = false;
      try {
        await body(run);
      } catch (error) {
        failed = true;
        throw error;
      } finally {
        await run.finish(failed);
      }
    });
  }
}

export class TestRun {
  constructor(suite, name) {
    this.suite = suite;
    this.lab = suite.lab;
    this.slug = slug(name);
    this.dir = path.join(suite.dir, this.slug);
    this.windows = [];
  }

  /** Writes this test's notebook (`<test>.ipynb`) and returns its path. */
  notebook(cells, suffix = '') {
    return this.lab.writeNotebook(`${this.slug}${suffix}.ipynb`, cells);
  }

  /**
   * Opens a window on the notebook; windows are named a, b, c... unless named here.
   * `prepare(page)` runs before the page loads (to route its websockets, say).
   */
  async open(notebookPath, name = String.fromCharCode(97 + this.windows.length), { prepare } = {}) {
    const window = await Window.create(this.suite.browser, this.lab, notebookPath, {
      name,
      workspace: `${this.slug}-${name}`
    });
    this.windows.push(window); // before it loads: a window that fails to load is kept too
    await prepare?.(window.page);
    await window.load();
    return window;
  }

  /** Opens `count` windows at once and waits until all joined the room. */
  async openMany(notebookPath, count) {
    const names = Array.from({ length: count }, (_, i) => String.fromCharCode(97 + this.windows.length + i));
    const opened = await Promise.all(names.map(name => this.open(notebookPath, name)));
    await this.lab.waitForRoom(notebookPath, room => room.peers === this.openCount(notebookPath), {
      what: `${count} peers in the room`
    });
    return opened;
  }

  openCount(notebookPath) {
    return this.windows.filter(w => !w.closed && w.path === notebookPath).length;
  }

  async finish(failed) {
    const errors = this.windows.flatMap(window => window.errors().map(line => `${window.name}: ${line}`));
    const bad = failed || errors.length > 0;
    for (const window of this.windows) {
      await window.screenshot(this.dir, bad ? 'failed' : 'end').catch(error => {
        console.error(`screenshot of ${window.name} failed: ${error.message}`);
      });
    }
    for (const window of this.windows) await window.close().catch(() => {});
    if (bad) {
      fs.mkdirSync(this.dir, { recursive: true });
      fs.writeFileSync(path.join(this.dir, 'server.log'), this.lab.log());
    }
    if (!failed && errors.length > 0) {
      throw new Error(`errors in the windows' consoles:\n${errors.join('\n')}`);
    }
  }
}
