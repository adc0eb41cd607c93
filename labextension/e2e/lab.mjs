// A JupyterLab with the built extension (npm run build first), a real kernel, and Debian's
// headless Chromium, for the widget and cursor end-to-end checks (e2e/widgets.mjs,
// e2e/cursors.mjs). Everything started here is stopped by `stop()`.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUILT = path.resolve(HERE, '..', '..', 'jupyter_crdt_sync', 'labextension');

export const sleep = ms => new Promise(r => setTimeout(r, ms));

function freePort() {
  return new Promise(resolve => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

export function notebook(cells) {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: cells.map(([id, source]) => ({ cell_type: 'code', id, metadata: {}, source, outputs: [], execution_count: null }))
  };
}

/**
 * Start JupyterLab on a fresh root holding `files` ({name: notebook JSON}).
 * `extraArgs` go to `jupyter lab`; `disable` lists lab plugins to disable (page config).
 */
export async function startLab({ files, extraArgs = [], disabled = [], keep = false } = {}) {
  assert.ok(fs.existsSync(path.join(BUILT, 'package.json')), `build the extension first (${BUILT})`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crdtsync-e2e-'));
  const root = path.join(tmp, 'root');
  const jp = path.join(tmp, 'jupyter-path');
  fs.mkdirSync(root);
  fs.mkdirSync(path.join(jp, 'labextensions'), { recursive: true });
  fs.symlinkSync(BUILT, path.join(jp, 'labextensions', 'jupyter-crdt-sync'));
  for (const [name, content] of Object.entries(files ?? {})) {
    fs.writeFileSync(path.join(root, name), JSON.stringify(content));
  }
  // Lab plugins to disable, through a page_config.json on an extra config path.
  const config = path.join(tmp, 'config');
  fs.mkdirSync(path.join(config, 'labconfig'), { recursive: true });
  fs.writeFileSync(path.join(config, 'labconfig', 'page_config.json'),
    JSON.stringify({ disabledExtensions: Object.fromEntries(disabled.map(id => [id, true])) }));
  const port = await freePort();
  const token = 'e2e-token';
  const logPath = path.join(tmp, 'server.log');
  const server = spawn(
    'jupyter',
    ['lab', '--no-browser', '--allow-root', `--port=${port}`, '--ip=127.0.0.1', `--ServerApp.root_dir=${root}`,
      `--IdentityProvider.token=${token}`, `--CRDTSync.store_path=${tmp}/store.sqlite`, '--CRDTSync.save_delay=0.2',
      '--CRDTSync.save_max_delay=1', '--LabApp.expose_app_in_browser=True',
      // Enabled here too, in case the package's jupyter-config is not installed.
      '--ServerApp.jpserver_extensions=jupyter_crdt_sync=True', ...extraArgs],
    { env: { ...process.env, JUPYTER_PATH: jp, JUPYTER_CONFIG_PATH: config }, stdio: ['ignore', 'ignore', fs.openSync(logPath, 'w')] }
  );
  const base = `http://127.0.0.1:${port}`;
  const api = (p, init = {}) =>
    fetch(`${base}/${p}`, { ...init, headers: { Authorization: `token ${token}`, ...(init.headers ?? {}) } });
  let browser;
  const stop = async () => {
    if (browser) await browser.close().catch(() => undefined);
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise(r => server.once('exit', r));
    }
    if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await api('api/crdtsync/status')).ok) break;
      } catch {
        // not up yet
      }
      if (server.exitCode !== null || i > 150) throw new Error(`no server; see ${logPath}`);
      await sleep(200);
    }
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run']
    });
  } catch (e) {
    await stop();
    throw e;
  }
  /**
   * A new page with its console kept in `page.logs`, opened on `nbPath`; `prepare(page)`
   * runs before it loads (to route its websockets, say).
   */
  const openNotebook = async (nbPath, prepare) => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    if (prepare) await prepare(page);
    page.logs = [];
    page.on('console', m => page.logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', e => page.logs.push(`pageerror: ${e}`));
    await page.goto(`${base}/lab/tree/${nbPath}?token=${token}&reset`);
    await page.waitForSelector('.jp-Notebook .jp-Cell .cm-content', { timeout: 60000 });
    return page;
  };
  const status = async () => (await (await api('api/crdtsync/status')).json()).rooms;
  /** Ask the room's kernel actor to run cells; resolves on the 202. */
  const execute = async (nbPath, cellIds) => {
    const r = await api(`api/crdtsync/execute/${nbPath}`, { method: 'POST', body: JSON.stringify({ cell_ids: cellIds }) });
    const text = await r.text();
    assert.equal(r.status, 202, text);
    return JSON.parse(text);
  };
  const waitFor = async (what, fn, timeoutMs = 30000) => {
    const start = Date.now();
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  };
  return { base, token, root, tmp, logPath, api, browser, openNotebook, status, execute, waitFor, stop };
}
