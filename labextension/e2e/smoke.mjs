import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// End-to-end smoke test in Debian's headless Chromium (apt-get install -y chromium):
// JupyterLab with the built extension (npm run build first) opens a notebook, the
// notebook joins its room, typing reaches the file through the room, saving shows no
// dialog. Run: npm run test:e2e (CHROMIUM=/path/to/chromium to override).
const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUILT = path.resolve(HERE, '..', '..', 'jupyter_crdt_sync', 'labextension');
assert.ok(fs.existsSync(path.join(BUILT, 'package.json')), `build the extension first (${BUILT})`);
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'crdtsync-e2e-'));
const ROOT = path.join(TMP, 'root');
const JP = path.join(TMP, 'jupyter-path');
fs.mkdirSync(ROOT);
fs.mkdirSync(path.join(JP, 'labextensions'), { recursive: true });
fs.symlinkSync(BUILT, path.join(JP, 'labextensions', 'jupyter-crdt-sync'));
const PORT = await new Promise(resolve => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const TOKEN = 'e2e-token';
const nb = { nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
  cells: [{ cell_type: 'code', id: 'c0', metadata: {}, source: 'a = 1', outputs: [], execution_count: null }] };
fs.writeFileSync(`${ROOT}/nb.ipynb`, JSON.stringify(nb));
const server = spawn('jupyter', ['lab', '--no-browser', '--allow-root', `--port=${PORT}`, '--ip=127.0.0.1', `--ServerApp.root_dir=${ROOT}`,
  `--IdentityProvider.token=${TOKEN}`, `--CRDTSync.store_path=${ROOT}/.store.sqlite`, '--CRDTSync.save_delay=0.2', '--CRDTSync.save_max_delay=1', '--LabApp.expose_app_in_browser=True'],
  { env: { ...process.env, JUPYTER_PATH: JP }, stdio: ['ignore', 'ignore', fs.openSync(path.join(TMP, 'server.log'), 'w')] });
const sleep = ms => new Promise(r => setTimeout(r, ms));
const api = p => fetch(`http://127.0.0.1:${PORT}/${p}`, { headers: { Authorization: `token ${TOKEN}` } });
let browser;
try {
  for (let i = 0; ; i++) { try { if ((await api('api/crdtsync/status')).ok) break; } catch {} if (i > 100) throw new Error('no server'); await sleep(300); }
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', // playwright's launch() always uses a fresh temporary --user-data-dir.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const page = await browser.newPage();
  const logs = [];
  page.on('console', m => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', e => logs.push(`pageerror: ${e}`));
  await page.goto(`http://127.0.0.1:${PORT}/lab/tree/nb.ipynb?token=${TOKEN}`);
  await page.waitForSelector('.jp-Notebook .jp-Cell .cm-content', { timeout: 60000 });
  const pluginLoaded = await page.evaluate(() => !!window.jupyterapp?.hasPlugin?.('jupyter-crdt-sync:plugin'));
  console.log('plugin loaded:', pluginLoaded);
  assert.equal(pluginLoaded, true);
  let room;
  for (let i = 0; i < 50; i++) { const s = await (await api('api/crdtsync/status')).json(); room = s.rooms.find(r => r.path === 'nb.ipynb'); if (room && room.peers > 0) break; await sleep(200); }
  console.log('room:', JSON.stringify(room));
  assert.ok(room && room.peers === 1, 'the notebook joined its room');
  await page.click('.jp-Notebook .jp-Cell .cm-content');
  await page.keyboard.press('End');
  await page.keyboard.type('23');
  let src;
  for (let i = 0; i < 50; i++) { src = JSON.parse(fs.readFileSync(`${ROOT}/nb.ipynb`, 'utf8')).cells[0].source; src = Array.isArray(src) ? src.join('') : src; if (src === 'a = 123') break; await sleep(200); }
  console.log('file source after typing:', JSON.stringify(src));
  assert.equal(src, 'a = 123');
  await page.keyboard.press('Control+s');
  await sleep(3000);
  const dialogs = await page.$$eval('.jp-Dialog', ds => ds.map(d => d.textContent));
  console.log('dialogs after save:', JSON.stringify(dialogs));
  assert.deepEqual(dialogs, []);
  console.log('relevant console:', JSON.stringify(logs.filter(l => /crdt|error|Error|warn/i.test(l)).slice(0, 15), null, 1));
} finally {
  if (browser) await browser.close();
  server.kill('SIGTERM');
  await new Promise(r => server.once('exit', r));
  fs.rmSync(TMP, { recursive: true, force: true });
}
console.log('e2e smoke: 1 passed, 0 failed');
