// The screenshots of docs/user-guide.md, taken from a real JupyterLab with
// jupyter-crdt-sync in Debian's headless Chromium.
//
//   cd labextension && npm run build && node ../docs/screenshots/take.mjs [settings-theme]
//
// (With `settings-theme` or `history-panel`, only that screenshot.)
// Starts `jupyter lab` on a small demo notebook (the e2e harness: temporary root, this
// checkout's build and Python package), opens windows on it, each a browser context of
// its own (a separate anonymous user), and writes the PNGs to docs/images/. Every step
// waits for what it shows, so a screenshot never shows a state the code did not reach.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Window, launchBrowser } from '../../labextension/e2e/harness/browser.mjs';
import { Lab, sleep } from '../../labextension/e2e/harness/lab.mjs';

const IMAGES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'images');
const VIEWPORT = { width: 1000, height: 640 };
const ONLY = process.argv[2];

const DEMO = [
  'regions = {"north": 120, "south": 95, "east": 143, "west": 88}\ntotal = sum(regions.values())\ntotal',
  'for name, amount in sorted(regions.items()):\n    print(f"{name:>6} {amount:4d} " + "#" * (amount // 10))',
  'import ipywidgets as widgets\nthreshold = widgets.IntSlider(value=100, max=200, description="threshold")\nthreshold',
  '[name for name, amount in regions.items() if amount > threshold.value]'
];

const lab = await Lab.start();
const browser = await launchBrowser();
const windows = [];
try {
  fs.mkdirSync(IMAGES, { recursive: true });
  const nb = lab.writeNotebook('regions.ipynb', DEMO);
  const a = await openWindow(nb, 'a');
  const b = await openWindow(nb, 'b', { blockable: true });
  await lab.waitForRoom(nb, room => room.peers === 2, { what: 'two windows in the room' });

  if (!ONLY) {
    await collaboratorsCursor(a, b);
    await statusStates(b, a);
    await runInOneShowInOther(a, b);
    await widgetInLateWindow(nb, a);
    await deletedNotice();
  }
  if (!ONLY || ONLY === 'history-panel') await historyPanel(nb, a, b);
  if (!ONLY || ONLY === 'settings-theme') await themeTogether(a, b);
  console.log(`screenshots in ${IMAGES}:`);
  for (const file of fs.readdirSync(IMAGES).filter(f => f.endsWith('.png')).sort()) {
    console.log(`  ${file}  ${(fs.statSync(path.join(IMAGES, file)).size / 1024).toFixed(0)} KiB`);
  }
} catch (error) {
  console.error(error);
  console.error(`server log:\n${lab.log().split('\n').slice(-40).join('\n')}`);
  process.exitCode = 1;
} finally {
  for (const window of windows) await window.close().catch(() => {});
  await browser.close();
  await lab.dispose();
}

/**
 * A window on `notebookPath` with the left sidebar closed. With `blockable`, its room
 * websocket can be cut (`window.blockRoom(true)`): new connections are refused at once, as
 * when the server is out of reach, without stopping the server.
 */
async function openWindow(notebookPath, name, { blockable = false } = {}) {
  const window = await Window.create(browser, lab, notebookPath, { name, workspace: `shots-${name}` });
  windows.push(window);
  await window.page.setViewportSize(VIEWPORT);
  if (blockable) await makeBlockable(window);
  await window.load();
  await window.page.evaluate(async () => {
    const app = window.jupyterapp;
    if (!app.shell.leftCollapsed) await app.commands.execute('application:toggle-left-area');
  });
  await window.page.locator('.jp-crdtsync-StatusItem[data-crdtsync-status="connected"]').waitFor();
  window.user = await window.page.evaluate(() => window.jupyterapp.serviceManager.user.identity.display_name);
  return window;
}

async function makeBlockable(window) {
  let blocked = false;
  const open = new Set();
  await window.page.routeWebSocket(/\/api\/crdtsync\/room\//, route => {
    if (blocked) {
      route.close({ code: 1011, reason: 'blocked for a screenshot' });
      return;
    }
    const server = route.connectToServer();
    const pair = { route, server };
    open.add(pair);
    route.onClose(() => open.delete(pair));
  });
  window.blockRoom = on => {
    blocked = on;
    if (on) {
      for (const { route, server } of open) {
        route.close({ code: 1011, reason: 'blocked for a screenshot' });
        server.close();
      }
      open.clear();
    }
  };
}

async function collaboratorsCursor(a, b) {
  // Window a selects `total` in the first cell: window b shows the selection, the caret
  // and, for two seconds after a move, a's name.
  await a.cell(0).locator('.cm-content').click();
  await a.page.keyboard.press('Control+End');
  await a.page.keyboard.press('Shift+Control+ArrowLeft');
  const caret = b.cell(0).locator('.jp-crdtsync-cursor.jp-mod-recent');
  await caret.waitFor({ timeout: 10_000 });
  await b.cell(0).locator('.jp-crdtsync-selection').first().waitFor();
  const shotB = await cellsShot(b, 0, 1);
  const shotA = await cellsShot(a, 0, 1);
  await compose('two-windows-cursor.png', [
    [`Window A (${a.user}) selects "total"`, shotA],
    [`Window B (${b.user}) sees A's selection and cursor, with A's name`, shotB]
  ]);
  await a.page.keyboard.press('Escape');
}

async function statusStates(b, a) {
  const connected = await statusShot(b);
  b.blockRoom(true);
  // Let a few attempts fail, so that the countdown has grown to several seconds.
  const item = b.page.locator('.jp-crdtsync-StatusItem');
  await b.page.waitForFunction(
    () => /retry in [4-9] s/.test(document.querySelector('.jp-crdtsync-StatusItem')?.textContent ?? ''),
    null,
    { timeout: 30_000, polling: 50 }
  );
  const offline = await statusShot(b);
  // Offline edits stay in the window and merge on reconnect.
  await b.typeInCell(3, '  # typed offline');
  b.blockRoom(false);
  await item.click(); // "click to retry now"
  await b.page.locator('.jp-crdtsync-StatusItem[data-crdtsync-status="connected"]').waitFor({ timeout: 10_000 });
  await a.waitForCellText(3, text => text.endsWith('  # typed offline'));
  await b.page.keyboard.press('Escape');
  await compose(
    'status-states.png',
    [
      ['Connected: this window and the room are in sync', connected],
      ['Offline: the connection is lost; edits are kept and merged on reconnect (click to retry now)', offline]
    ],
    { width: 620 }
  );
}

async function runInOneShowInOther(a, b) {
  await a.runCell(0);
  await a.runCell(1);
  for (const window of [a, b]) {
    await window.waitForOutput(1, 'west');
    await window.waitForPrompt(1, text => /^\[\d+\]:$/.test(text));
  }
  await b.page.mouse.move(0, 0);
  const shotA = await cellsShot(a, 0, 1);
  const shotB = await cellsShot(b, 0, 1);
  await compose('run-in-other-window.png', [
    ['Window A runs the two cells (Shift+Enter)', shotA],
    ['Window B shows their outputs and execution counts too', shotB]
  ]);
}

async function widgetInLateWindow(nb, a) {
  await a.runCell(2);
  await a.waitForSlider(2, { timeout: 30_000 });
  await lab.waitForRoom(nb, room => room.widgets >= 1, { what: "the slider in the document's widgets" });
  const late = await openWindow(nb, 'late');
  await late.waitForSlider(2, { timeout: 5_000 });
  await late.page.mouse.move(0, 0);
  await compose('widget-late-window.png', [
    [`A window opened later (${late.user}) renders the slider at once`, await cellsShot(late, 2, 2)]
  ]);
  await late.close();
}

async function deletedNotice() {
  const scratch = lab.writeNotebook('scratch.ipynb', ['draft = "not needed any more"']);
  const keeper = await openWindow(scratch, 'keeper');
  const other = await openWindow(scratch, 'other');
  // Deleted from another window, as its file browser does.
  await keeper.page.evaluate(p => window.jupyterapp.serviceManager.contents.delete(p), scratch);
  await other.page.locator('.jp-crdtsync-StatusItem[data-crdtsync-status="deleted"]').waitFor({ timeout: 10_000 });
  await other.page.locator('.Toastify__toast', { hasText: 'was deleted on the server' }).waitFor();
  await other.page.mouse.move(0, 0);
  await sleep(500); // the toast's entrance animation
  const full = await other.page.screenshot();
  await compose('deleted-notice.png', [
    ['Deleted in another window: struck-through tab, read-only cells, "Deleted" in the status bar, a notice', full]
  ], { width: 1016 });
}

async function historyVersions(nb) {
  const response = await lab.api(`api/crdtsync/history/${encodeURIComponent(nb)}`);
  return (await response.json()).versions;
}

async function historyPanel(nb, a, b) {
  // Window A runs two cells, then edits one and deletes another; window B opens the
  // History panel (notebook toolbar) and selects the version from before.
  await a.runCell(0);
  await a.runCell(1);
  await b.waitForOutput(1, 'west');
  await b.waitForPrompt(1, text => /^\[\d+\]:$/.test(text));
  await sleep(3000); // the kernel's last records written back
  const ran = await waitForVersion(nb, v => v.authors.includes('server'));
  await a.typeInCell(3, '  # only the big ones');
  await a.page.keyboard.press('Escape');
  await a.cell(2).locator('.jp-InputPrompt').click();
  await a.page.keyboard.press('d');
  await a.page.keyboard.press('d');
  for (let i = 0; (await lab.readNotebook(nb)).cells.length !== 3; i++) {
    if (i > 100) throw new Error('the deletion never reached the file');
    await sleep(100);
  }
  await waitForVersion(nb, v => v.version > ran.version);
  await b.page.locator('.jp-crdtsync-HistoryButton').click();
  const panel = b.page.locator('#jupyter-crdt-sync-history');
  await panel.locator(`.jp-crdtsync-HistoryItem[data-version="${ran.version}"]`).click();
  await panel.locator('.jp-crdtsync-HistoryCell[data-change="removed"]').waitFor({ timeout: 10_000 });
  await panel.locator('.jp-crdtsync-HistoryCell[data-change="changed"]').first().waitFor({ timeout: 10_000 });
  await panel.locator('.jp-crdtsync-HistoryDiff').first().evaluate(details => (details.open = true));
  await panel
    .locator('.jp-crdtsync-HistoryCell[data-change="removed"]')
    .evaluate(cell => cell.scrollIntoView({ block: 'start' }));
  await dismissToasts(b);
  await b.page.mouse.move(0, 0);
  await compose('history-panel.png', [
    ["Window B's History panel: the version before A's edits, its deleted and changed cells marked", await b.page.screenshot()]
  ], { width: 1016 });
  await b.page.evaluate(() => window.jupyterapp.shell.collapseRight());
}

async function waitForVersion(nb, predicate, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const versions = await historyVersions(nb);
    const found = versions.filter(predicate).pop();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no such version of ${nb}: ${JSON.stringify(versions)}`);
    await sleep(200);
  }
}

async function dismissToasts(window) {
  // JupyterLab's "notified about official Jupyter news?" question, and any other toast.
  const no = window.page.locator('.Toastify__toast button', { hasText: /^No$/ });
  if (await no.count()) await no.first().click().catch(() => {});
  for (const close of await window.page.locator('.Toastify__close-button').all()) await close.click().catch(() => {});
  await sleep(500);
}

async function themeTogether(a, b) {
  // Window A picks a theme (Settings > Theme, the same command): B follows, no reload.
  const bSwitched = b.page.waitForFunction(() => document.body.dataset.jpThemeLight === 'false', null, {
    timeout: 15_000
  });
  await a.page.evaluate(() =>
    window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Dark' })
  );
  await a.page.waitForFunction(() => document.body.dataset.jpThemeLight === 'false', null, { timeout: 15_000 });
  await bSwitched;
  await sleep(800); // the theme's transition
  const top = { x: 0, y: 0, width: VIEWPORT.width, height: 300 };
  await compose('settings-theme.png', [
    ['Window A: Settings › Theme › JupyterLab Dark', await a.page.screenshot({ clip: top })],
    ['Window B switches to the dark theme at the same moment, without a reload', await b.page.screenshot({ clip: top })]
  ]);
  await a.page.evaluate(() =>
    window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Light' })
  );
}

/** A PNG of cells `from`..`to` (indices) of a window, as shown now. */
async function cellsShot(window, from, to) {
  const first = await window.cell(from).boundingBox();
  const last = await window.cell(to).boundingBox();
  const x = Math.max(0, first.x - 4);
  const clip = {
    x,
    y: Math.max(0, first.y - 4),
    width: Math.min(VIEWPORT.width - x, first.width + 8),
    height: last.y + last.height - first.y + 8
  };
  return window.page.screenshot({ clip });
}

/** A PNG of the left part of the status bar (kernel, connection). */
async function statusShot(window) {
  const bar = await window.page.locator('#jp-main-statusbar').boundingBox();
  return window.page.screenshot({ clip: { x: bar.x, y: bar.y, width: 460, height: bar.height } });
}

/**
 * Writes `name`: the PNGs one under the other, each with its caption, drawn by the
 * browser (no image library needed), at most `width` CSS pixels wide.
 */
async function compose(name, parts, { width = 1000, scale = 1 } = {}) {
  const page = await browser.newPage({ viewport: { width, height: 200 }, deviceScaleFactor: scale });
  const figures = parts
    .map(
      ([caption, png]) =>
        `<figure><figcaption>${escapeHtml(caption)}</figcaption>` +
        `<img src="data:image/png;base64,${png.toString('base64')}"></figure>`
    )
    .join('');
  await page.setContent(
    `<html><body style="margin:0;background:#fff"><div id="shot" style="display:inline-block;padding:6px">
     <style>
       figure { margin: 0 0 8px 0; }
       figcaption { font: 13px/1.4 sans-serif; color: #333; margin: 0 0 3px 2px; }
       img { display: block; max-width: ${width - 14}px; border: 1px solid #bbb; }
     </style>${figures}</div></body></html>`
  );
  await page.locator('#shot').screenshot({ path: path.join(IMAGES, name) });
  await page.close();
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}
