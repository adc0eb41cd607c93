// Collaborators' cursors, end to end (npm run build first): two windows on one notebook.
// A cursor and a selection placed in window 1 show in the same cell of window 2, in the
// collaborator's colour, with the name shown for a while; they stay on their characters
// while window 2 types before them; moving to another cell (by clicking, or in command
// mode) moves or removes them; closing window 1 removes them. Run: node e2e/cursors.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { notebook, sleep, startLab } from './lab.mjs';

const SHOTS = process.env.SCREENSHOTS ?? '/tmp/crdtsync-cursors';
fs.mkdirSync(SHOTS, { recursive: true });
const lab = await startLab({
  files: { 'nb.ipynb': notebook([['first', 'alpha = 1\nbeta = 2'], ['second', 'gamma = 3'], ['third', 'delta = 4']]) }
});

/** The remote carets in a window: cell index, document position, name, colour, shown. */
const remoteCarets = page =>
  page.evaluate(() => {
    const cells = window.jupyterapp.shell.currentWidget.content.widgets;
    const carets = [];
    cells.forEach((cell, index) => {
      const view = cell.editor?.editor;
      for (const caret of cell.node.querySelectorAll('.jp-crdtsync-cursor')) {
        carets.push({
          cell: index,
          pos: view.posAtDOM(caret),
          name: caret.querySelector('.jp-crdtsync-cursor-name')?.textContent,
          color: caret.style.getPropertyValue('--jp-crdtsync-cursor-color'),
          nameShown: caret.classList.contains('jp-mod-recent')
        });
      }
    });
    const selections = [...document.querySelectorAll('.jp-crdtsync-selection')].map(s => s.textContent);
    return { carets, selections };
  });
const source = (page, index) =>
  page.evaluate(i => window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel.getSource(), index);
const editorOf = (page, index) => page.locator('.jp-Notebook .jp-Cell').nth(index).locator('.cm-content');

let failed = false;
try {
  const p1 = await lab.openNotebook('nb.ipynb');
  const p2 = await lab.openNotebook('nb.ipynb');
  const identity = await p1.evaluate(() => window.jupyterapp.serviceManager.user.identity);
  console.log('identity:', JSON.stringify(identity));

  // Window 1: cursor after "alpha" (line 1, column 5).
  await editorOf(p1, 0).click();
  await p1.keyboard.press('Control+Home');
  for (let i = 0; i < 5; i++) await p1.keyboard.press('ArrowRight');
  let seen = await lab.waitFor('the caret in window 2, after "alpha"', async () => {
    const r = await remoteCarets(p2);
    return r.carets.length === 1 && r.carets[0].cell === 0 && r.carets[0].pos === 5 ? r : null;
  }, 10000);
  console.log('window 2 sees:', JSON.stringify(seen));
  assert.equal(seen.carets[0].name, identity.display_name || identity.name);
  assert.equal(seen.carets[0].nameShown, true, 'the name shows after a move');
  assert.ok(seen.carets[0].color, 'drawn in a colour');
  await p2.screenshot({ path: path.join(SHOTS, 'remote-cursor.png') });

  // The name hides after a while (and shows again on hover).
  await lab.waitFor('the name to hide', async () => (await remoteCarets(p2)).carets[0]?.nameShown === false, 6000);

  // Window 2 types before it: the caret stays after "alpha".
  await editorOf(p2, 0).click();
  await p2.keyboard.press('Control+Home');
  await p2.keyboard.type('# x\n');
  await lab.waitFor('the text in window 1', async () => (await source(p1, 0)).startsWith('# x\n'));
  await lab.waitFor('the caret to follow its characters', async () => {
    const r = await remoteCarets(p2);
    return r.carets.length === 1 && r.carets[0].pos === 9;
  }, 5000);
  // And window 1 sees window 2's caret where it typed.
  await lab.waitFor('window 2\'s caret in window 1, where it typed', async () => {
    const r = await remoteCarets(p1);
    return r.carets.length === 1 && r.carets[0].cell === 0 && r.carets[0].pos === 4;
  }, 5000);

  // A selection: "alpha" selected backwards in window 1.
  await p1.keyboard.down('Shift');
  for (let i = 0; i < 5; i++) await p1.keyboard.press('ArrowLeft');
  await p1.keyboard.up('Shift');
  seen = await lab.waitFor('the selection in window 2', async () => {
    const r = await remoteCarets(p2);
    return r.selections.join('') === 'alpha' ? r : null;
  }, 5000);
  assert.deepEqual(seen.carets.map(c => [c.cell, c.pos]), [[0, 4]]);
  await p2.screenshot({ path: path.join(SHOTS, 'remote-selection.png') });

  // Window 1 clicks into the second cell: the caret moves there.
  await editorOf(p1, 1).click();
  await p1.keyboard.press('End');
  seen = await lab.waitFor('the caret in the second cell', async () => {
    const r = await remoteCarets(p2);
    return r.carets.length === 1 && r.carets[0].cell === 1 && r.carets[0].pos === 'gamma = 3'.length ? r : null;
  }, 5000);
  assert.deepEqual(seen.selections, []);
  await p2.screenshot({ path: path.join(SHOTS, 'remote-cursor-one-line.png') });

  // Command mode, down to the third cell: no caret any more.
  await p1.keyboard.press('Escape');
  await p1.keyboard.press('ArrowDown');
  await lab.waitFor('no caret after moving in command mode', async () => (await remoteCarets(p2)).carets.length === 0, 5000);

  // Back into the first cell, then close window 1: its caret goes.
  await editorOf(p1, 0).click();
  await lab.waitFor('the caret back in the first cell', async () => (await remoteCarets(p2)).carets.length === 1, 5000);
  await p1.close();
  const closedAt = Date.now();
  await lab.waitFor('no caret once window 1 closed', async () => (await remoteCarets(p2)).carets.length === 0, 10000);
  console.log(`caret gone ${Date.now() - closedAt} ms after window 1 closed`);
  const errors = p2.logs.filter(l => /pageerror|jupyter-crdt-sync/i.test(l));
  assert.deepEqual(errors, []);
} catch (e) {
  failed = true;
  console.error(e);
  fs.copyFileSync(lab.logPath, path.join(SHOTS, 'server.log'));
} finally {
  await lab.stop();
}
console.log(failed ? 'e2e cursors: FAILED' : `e2e cursors: 1 passed, 0 failed (screenshots in ${SHOTS})`);
process.exit(failed ? 1 : 0);
