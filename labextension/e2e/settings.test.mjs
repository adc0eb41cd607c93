// JupyterLab's settings shared live between windows through the settings room: a theme
// changed in one window, a PUT to lab/api/settings, an edit of the settings file, and a
// broken file (refused, nothing changes). The tests share one server, in order.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { sleep } from './harness/lab.mjs';
import { Suite } from './harness/suite.mjs';

const suite = new Suite('settings');
const THEMES = '@jupyterlab/apputils-extension:themes';

function themesFile(lab) {
  return path.join(lab.settingsDir, '@jupyterlab', 'apputils-extension', 'themes.jupyterlab-settings');
}

/** Waits until `read(window)` is `expected` in every window; how long it took (ms). */
async function waitEverywhere(windows, read, expected, { timeout = 10_000, what = 'the setting' } = {}) {
  const start = Date.now();
  for (const window of windows) {
    let value;
    while ((value = await read(window)) !== expected) {
      if (Date.now() - start > timeout) {
        throw new Error(`window ${window.name}: ${what} is ${JSON.stringify(value)}, expected ${JSON.stringify(expected)}`);
      }
      await sleep(50);
    }
  }
  return Date.now() - start;
}

const themeLight = window => window.page.evaluate(() => document.body.dataset.jpThemeLight);
const codeFontSize = window =>
  window.page.evaluate(() =>
    getComputedStyle(document.documentElement).getPropertyValue('--jp-code-font-size').trim()
  );

async function settingsBound(window) {
  await window.page.waitForFunction(
    () => window.jupyterapp?.isPluginActivated?.('jupyter-crdt-sync:settings'),
    null,
    { timeout: 30_000 }
  );
}

async function openTwo(run) {
  const nb = run.notebook(['x = 1']);
  const windows = await run.openMany(nb, 2);
  await Promise.all(windows.map(settingsBound));
  const status = await run.lab.status();
  assert.ok(status.settings, 'the server has a settings room');
  // Every window is in the settings room before a test changes anything.
  const deadline = Date.now() + 20_000;
  while ((await run.lab.status()).settings.peers < 2) {
    if (Date.now() > deadline) throw new Error('the windows did not join the settings room');
    await sleep(100);
  }
  return windows;
}

/** Records in the page when `data-jp-theme-light` last changed (ms since the epoch). */
async function watchTheme(window) {
  await window.page.evaluate(() => {
    new MutationObserver(() => (window.themeChangedAt = Date.now())).observe(document.body, {
      attributeFilter: ['data-jp-theme-light']
    });
  });
}

const themeChangedAt = window => window.page.evaluate(() => window.themeChangedAt);

// One test, one pair of windows, four steps: opening windows is what costs time here.
suite.test('settings follow in every window: theme, PUT, file edit; a broken file is refused', {}, async run => {
  const windows = await openTwo(run);
  const [a, b] = windows;
  const file = themesFile(run.lab);

  // 1. The theme changed in one window (as the Settings menu does) switches the other.
  await Promise.all(windows.map(watchTheme));
  assert.equal(await themeLight(b), 'true');
  await a.page.evaluate(() => window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Dark' }));
  await waitEverywhere(windows, themeLight, 'false', { what: 'data-jp-theme-light' });
  console.log(`theme: window b followed window a after ${(await themeChangedAt(b)) - (await themeChangedAt(a))} ms`);
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(file) || !fs.readFileSync(file, 'utf8').includes('JupyterLab Dark')) {
    if (Date.now() > deadline) throw new Error('the settings file was not written');
    await sleep(100);
  }

  // 2. A font size PUT to JupyterLab's settings API reaches both windows (and, being the
  // whole text, takes the theme back to the default).
  const put = Date.now();
  const response = await run.lab.api(`lab/api/settings/${THEMES}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ raw: '{\n  "overrides": {"code-font-size": "21px"}\n}\n' })
  });
  assert.equal(response.status, 204);
  await waitEverywhere(windows, codeFontSize, '21px', { what: '--jp-code-font-size' });
  console.log(`PUT: both windows followed after ${Date.now() - put} ms`);
  await waitEverywhere(windows, themeLight, 'true', { what: 'data-jp-theme-light' });

  // 3. An edit of the settings file on disk reaches both windows.
  const edited = '{\n  // edited by hand\n  "theme": "JupyterLab Dark",\n  "overrides": {"code-font-size": "15px"}\n}\n';
  fs.writeFileSync(file, edited);
  await waitEverywhere(windows, themeLight, 'false', { what: 'data-jp-theme-light' });
  await waitEverywhere(windows, codeFontSize, '15px', { what: '--jp-code-font-size' });

  // 4. A broken file shows an error in every window and changes nothing.
  fs.writeFileSync(file, '{\n  "theme": "JupyterLab Light",\n  "overrides": \n}\n');
  for (const window of windows) {
    const toast = window.page.locator('.Toastify__toast', { hasText: 'themes.jupyterlab-settings line 4' });
    await toast.first().waitFor({ timeout: 15_000 });
  }
  const { settings } = await run.lab.status();
  assert.equal(settings.errors[0].line, 4);
  await sleep(1000);
  for (const window of windows) {
    assert.equal(await themeLight(window), 'false', `window ${window.name}'s theme`);
    assert.equal(await codeFontSize(window), '15px', `window ${window.name}'s font size`);
  }
  assert.ok(fs.readFileSync(file, 'utf8').includes('"overrides": \n}'), 'the broken file is left alone');
});
