// Text files share a room like notebooks: two windows typing into one .py file, with no
// "File Changed" dialog and no lost character; the modified dot follows the server's
// writes; a rename made elsewhere is followed by a window without a kernel.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { Window, editorText } from './harness/browser.mjs';
import { sleep } from './harness/lab.mjs';
import { Suite } from './harness/suite.mjs';

const suite = new Suite('textfiles');

/** Opens a window on a text file, in JupyterLab's file editor. */
async function openFile(run, filePath, name) {
  const window = await Window.create(run.suite.browser, run.lab, filePath, {
    name,
    workspace: `${run.slug}-${name}`
  });
  run.windows.push(window);
  await window.page.goto(run.lab.notebookUrl(filePath, window.workspace));
  await window.page.waitForSelector('.jp-FileEditor .cm-content', { timeout: 60_000 });
  return window;
}

function editorOf(window) {
  return window.page.locator('.jp-FileEditor .cm-content').first();
}

function shownText(window) {
  return editorOf(window).evaluate(editorText);
}

async function waitForShown(window, expected, { timeout = 15_000 } = {}) {
  const matches = typeof expected === 'function' ? expected : text => text === expected;
  const deadline = Date.now() + timeout;
  let text;
  for (;;) {
    text = await shownText(window).catch(() => undefined);
    if (text !== undefined && matches(text)) return text;
    if (Date.now() > deadline) {
      throw new Error(`window ${window.name} shows ${JSON.stringify(text)}`);
    }
    await sleep(50);
  }
}

async function waitForFile(run, filePath, expected, { timeout = 15_000 } = {}) {
  const deadline = Date.now() + timeout;
  let text;
  for (;;) {
    text = fs.readFileSync(path.join(run.lab.root, filePath), 'utf8');
    if (text === expected) return;
    if (Date.now() > deadline) throw new Error(`${filePath} holds ${JSON.stringify(text)}`);
    await sleep(100);
  }
}

/** Whether the file editor's tab shows the "modified" dot. */
function tabDirty(window) {
  return window.page.evaluate(() => {
    const tab = document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current');
    return tab?.classList.contains('jp-mod-dirty') ?? null;
  });
}

suite.test('two windows type into a .py file at once: no dialog, no lost character', {}, async run => {
  const file = `${run.slug}.py`;
  fs.writeFileSync(path.join(run.lab.root, file), 'x = 1\n');
  const a = await openFile(run, file, 'a');
  const b = await openFile(run, file, 'b');
  await run.lab.waitForRoom(file, room => room.peers === 2, { what: 'both windows' });
  const fromA = '# aaaaaaaaaa AAAAAAAAAA\n';
  const fromB = 'y = "bbbbbbbbbb BBBBBBBBBB"';
  await editorOf(a).click();
  await a.page.keyboard.press('Control+Home');
  await editorOf(b).click();
  await b.page.keyboard.press('Control+End');
  await Promise.all([
    a.page.keyboard.type(fromA, { delay: 15 }),
    b.page.keyboard.type(fromB, { delay: 15 })
  ]);
  const expected = `${fromA}x = 1\n${fromB}`;
  await waitForShown(a, expected);
  await waitForShown(b, expected);
  await waitForFile(run, file, expected);
  // Saving from both windows: the room writes; JupyterLab never sees a conflict.
  await a.page.keyboard.press('Control+s');
  await b.page.keyboard.press('Control+s');
  await sleep(1500);
  for (const window of [a, b]) {
    assert.equal(await window.page.locator('.jp-Dialog').count(), 0, `no dialog in ${window.name}`);
  }
  await waitForFile(run, file, expected);
  assert.equal(await shownText(a), expected);
});

suite.test('the modified dot clears in every window once the server writes, with no Save', {}, async run => {
  const file = `${run.slug}.md`;
  fs.writeFileSync(path.join(run.lab.root, file), '# title\n');
  const a = await openFile(run, file, 'a');
  const b = await openFile(run, file, 'b');
  await run.lab.waitForRoom(file, room => room.peers === 2, { what: 'both windows' });
  assert.equal(await tabDirty(a), false);
  await editorOf(a).click();
  await a.page.keyboard.press('Control+End');
  await a.page.keyboard.type('more text');
  // Modified at once (JupyterLab marks its own edit), in the shared state for b as well.
  assert.equal(await tabDirty(a), true, 'the dot shows after an edit');
  await waitForShown(b, '# title\nmore text');
  await waitForFile(run, file, '# title\nmore text');
  for (const window of [a, b]) {
    await window.page.waitForFunction(
      () => !document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current.jp-mod-dirty'),
      null,
      { timeout: 15_000, polling: 100 }
    );
  }
  const room = await run.lab.room(file);
  assert.equal(room.dirty, false);
});

suite.test('a rename made elsewhere is followed by a window without a kernel', {}, async run => {
  const file = `${run.slug}.py`;
  const renamed = `${run.slug}-renamed.py`;
  fs.writeFileSync(path.join(run.lab.root, file), 'before = 1\n');
  const a = await openFile(run, file, 'a');
  await run.lab.waitForRoom(file, room => room.peers === 1, { what: 'the window' });
  const response = await run.lab.api(`api/contents/${file}`, {
    method: 'PATCH',
    body: JSON.stringify({ path: renamed })
  });
  assert.equal(response.status, 200);
  await a.page.waitForFunction(
    target => [...window.jupyterapp.shell.widgets('main')].some(w => w.context?.path === target),
    renamed,
    { timeout: 10_000, polling: 100 }
  );
  const title = await a.page.locator('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current').innerText();
  assert.ok(title.includes(renamed), `tab title ${JSON.stringify(title)}`);
  // Typing goes on into the renamed file; Save writes it there, with no dialog.
  await editorOf(a).click();
  await a.page.keyboard.press('Control+End');
  await a.page.keyboard.type('after = 2');
  await waitForFile(run, renamed, 'before = 1\nafter = 2');
  await a.page.keyboard.press('Control+s');
  await sleep(1000);
  assert.equal(await a.page.locator('.jp-Dialog').count(), 0, 'no dialog');
  assert.equal(fs.existsSync(path.join(run.lab.root, file)), false, 'the old path stays free');
});
