// Windows on one notebook share its room: typing, concurrent typing, reloads, late
// windows, saving. Each test has its own notebook.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { sleep } from './harness/lab.mjs';
import { BUILT_EXTENSION, USE_INSTALLED } from './harness/paths.mjs';
import { Suite } from './harness/suite.mjs';

const suite = new Suite('sync');

/** Whether `part`'s characters appear in `text` in order (other characters between). */
function isSubsequence(part, text) {
  let i = 0;
  for (const char of text) if (char === part[i]) i++;
  return i === part.length;
}

/** Waits until every window shows `expected` in cell `index` and the file has it too. */
async function expectEverywhere(run, notebookPath, index, expected) {
  for (const window of run.windows.filter(w => !w.closed)) {
    await window.waitForCellText(index, expected);
    assert.equal(await window.modelSource(index), expected, `window ${window.name}'s model`);
  }
  await run.lab.waitForFileCellSource(notebookPath, index, expected);
}

suite.test('typing in one window shows in the other, and the file gets it', {}, async run => {
  const nb = run.notebook(['x = 1', '']);
  const [a, b] = await run.openMany(nb, 2);
  await a.typeInCell(0, ' + 2');
  await b.waitForCellText(0, 'x = 1 + 2');
  await b.typeInCell(1, 'y = x * 3');
  await a.waitForCellText(1, 'y = x * 3');
  await expectEverywhere(run, nb, 0, 'x = 1 + 2');
  await expectEverywhere(run, nb, 1, 'y = x * 3');
});

suite.test('two windows typing at once in one cell converge to the same text', {}, async run => {
  const nb = run.notebook(['start:']);
  const [a, b] = await run.openMany(nb, 2);
  const fromA = 'aaaaaaaaaaAAAAAAAAAA';
  const fromB = 'bbbbbbbbbbBBBBBBBBBB';
  await Promise.all([a.focusCell(0, 'end'), b.focusCell(0, 'end')]);
  await Promise.all([a.page.keyboard.type(fromA, { delay: 15 }), b.page.keyboard.type(fromB, { delay: 15 })]);
  const length = 'start:'.length + fromA.length + fromB.length;
  const text = await a.waitForCellText(0, t => t.length === length);
  assert.ok(text.startsWith('start:'), text);
  assert.ok(isSubsequence(fromA, text) && isSubsequence(fromB, text), `both edits kept in ${text}`);
  await expectEverywhere(run, nb, 0, text);
});

suite.test('three windows typing at once: every window and the file agree', {}, async run => {
  const nb = run.notebook(['shared = ""', 'a = ""', 'b = ""', 'c = ""']);
  const windows = await run.openMany(nb, 3);
  // Each window types into its own cell and into the shared cell, all at the same time.
  await Promise.all(
    windows.map(async (w, i) => {
      const name = 'abc'[i];
      await w.typeInCell(i + 1, ` + "${name.repeat(8)}"`, { delay: 10 });
      await w.typeInCell(0, `#${name.repeat(8)}`, { delay: 10 });
    })
  );
  const length = 'shared = ""'.length + 3 * 9;
  const shared = await windows[0].waitForCellText(0, t => t.length === length);
  for (const name of 'abc') assert.ok(isSubsequence(`#${name.repeat(8)}`, shared), shared);
  await expectEverywhere(run, nb, 0, shared);
  for (const [i, name] of [...'abc'].entries()) {
    await expectEverywhere(run, nb, i + 1, `${name} = "" + "${name.repeat(8)}"`);
  }
});

suite.test('reloading a window mid-edit loses nothing', {}, async run => {
  const nb = run.notebook(['text = ""']);
  const [a, b] = await run.openMany(nb, 2);
  const first = 'the quick brown fox ';
  const second = 'jumps over the lazy dog';
  // b reloads while a types: b must catch up with what it missed.
  await a.focusCell(0, 'end');
  await Promise.all([a.page.keyboard.type(first, { delay: 40 }), sleep(150).then(() => b.reload())]);
  // a reloads right after its last keystroke, with no pause to let it send.
  await a.page.keyboard.type(second, { delay: 5 });
  await a.reload();
  const expected = `text = ""${first}${second}`;
  await expectEverywhere(run, nb, 0, expected);
  await run.lab.waitForRoom(nb, room => room.peers === 2, { what: 'both windows back in the room' });
});

suite.test('a window opened later shows the document at once', {}, async run => {
  const nb = run.notebook(['early = 1', '']);
  const [a] = await run.openMany(nb, 1);
  await a.typeInCell(1, 'late = 2');
  await run.lab.waitForFileCellSource(nb, 1, 'late = 2');
  await a.typeInCell(0, '0');
  const c = await run.open(nb, 'late');
  // The very first time the cells show, they already hold everything: no later catch-up.
  assert.equal(await c.cellText(0), 'early = 10');
  assert.equal(await c.cellText(1), 'late = 2');
  await c.typeInCell(1, '0');
  await a.waitForCellText(1, 'late = 20');
});

suite.test('the extension is active, and Ctrl+S saves through the room without a dialog', {}, async run => {
  const nb = run.notebook(['saved = False']);
  const [a, b] = await run.openMany(nb, 2);
  assert.equal(await a.pluginActive(), true, 'jupyter-crdt-sync:plugin is active');
  assert.equal(await b.pluginActive(), true, 'jupyter-crdt-sync:plugin is active');
  if (!USE_INSTALLED) {
    // This checkout's build, not a copy installed in the environment.
    const built = JSON.parse(fs.readFileSync(path.join(BUILT_EXTENSION, 'package.json'), 'utf8'));
    assert.equal(await a.extensionLoadPath(), built.jupyterlab._build.load);
  }
  await a.focusCell(0, 'end');
  await a.page.keyboard.press('Backspace');
  await a.page.keyboard.press('Backspace');
  await a.page.keyboard.press('Backspace');
  await a.page.keyboard.press('Backspace');
  await a.page.keyboard.press('Backspace');
  await a.page.keyboard.type('True');
  assert.equal(await a.save(), 'completed');
  // The save is done when the room has written the file: it must hold the edit now.
  assert.equal(await run.lab.fileCellSource(nb, 0), 'saved = True');
  await b.waitForCellText(0, 'saved = True');
  await b.typeInCell(0, '  # by b');
  assert.equal(await b.save(), 'completed');
  assert.equal(await run.lab.fileCellSource(nb, 0), 'saved = True  # by b');
  assert.equal(await a.save(), 'completed');
  await sleep(1500);
  assert.deepEqual(await a.dialogs(), [], 'no dialog in a');
  assert.deepEqual(await b.dialogs(), [], 'no dialog in b');
});
