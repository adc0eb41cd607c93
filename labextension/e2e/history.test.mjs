// The History panel: a cell deleted in one window comes back through the other window's
// History panel (opened from the command palette, driven by the keyboard alone), and
// both windows and the file show it again.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { notebookSource } from './harness/notebook.mjs';
import { Suite } from './harness/suite.mjs';

const suite = new Suite('history');

/** Writes the test's notebook with outputs in its first cell. */
function notebookWithOutputs(run, cells) {
  const name = `${run.slug}.ipynb`;
  const content = notebookSource(cells);
  content.cells[0].outputs = [
    { output_type: 'stream', name: 'stdout', text: 'printed 42\n' },
    { output_type: 'display_data', metadata: {}, data: { 'text/markdown': 'some **bold** words', 'text/plain': 'plain' } }
  ];
  content.cells[0].execution_count = 7;
  fs.writeFileSync(path.join(run.lab.root, name), JSON.stringify(content, null, 1));
  return name;
}

async function versions(lab, nb) {
  const response = await lab.api(`api/crdtsync/history/${encodeURIComponent(nb)}`);
  assert.equal(response.status, 200);
  return (await response.json()).versions;
}

async function cellSources(window) {
  return window.page.evaluate(p => {
    const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === p);
    return panel ? [...panel.content.model.cells].map(c => c.sharedModel.getSource()) : null;
  }, window.path);
}

async function waitForSources(window, expected, what) {
  await window._poll(
    () => cellSources(window),
    sources => JSON.stringify(sources) === JSON.stringify(expected),
    { timeout: 15_000, what: `${what} in window ${window.name}` }
  );
}

/** Presses Tab until the focused element matches `selector` (at most `max` times). */
async function tabTo(page, selector, max = 15) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(s => document.activeElement?.matches(s) ?? false, selector)) return;
  }
  throw new Error(`Tab never reached ${selector}`);
}

suite.test('a cell deleted in one window comes back through the History panel of the other', {}, async run => {
  const cells = ['first = 1', 'second = 2', { source: '# A heading\n\nsome text', cell_type: 'markdown' }];
  const nb = notebookWithOutputs(run, cells);
  const [a, b] = await run.openMany(nb, 2);
  const sources = ['first = 1', 'second = 2', '# A heading\n\nsome text'];
  await waitForSources(b, sources, 'the notebook');
  const listed = await a._poll(() => versions(run.lab, nb), v => v.length > 0, { timeout: 15_000, what: 'a first version' });
  const before = listed[listed.length - 1].version;

  // a deletes the second cell (command mode, d d).
  await a.focusCell(1);
  await a.page.keyboard.press('Escape');
  await a.page.keyboard.press('d');
  await a.page.keyboard.press('d');
  const without = [sources[0], sources[2]];
  await waitForSources(a, without, 'the deletion');
  await waitForSources(b, without, 'the deletion');
  await a._poll(
    () => run.lab.readNotebook(nb),
    file => file.cells.length === 2,
    { timeout: 15_000, what: 'the deletion in the file' }
  );
  await a._poll(
    () => versions(run.lab, nb),
    v => v[v.length - 1].version > before,
    { timeout: 15_000, what: 'a version without the cell' }
  );

  // b opens the History panel from the command palette, with the keyboard.
  await b.cell(0).locator('.cm-content').click();
  await b.page.keyboard.press('Escape');
  await b.page.keyboard.press('Control+Shift+C');
  await b.page.waitForSelector('.lm-CommandPalette-input:focus', { timeout: 10_000 });
  await b.page.keyboard.type('Show Notebook History');
  await b.page.waitForSelector('.lm-CommandPalette-item[data-command="crdtsync:open-history"]', { timeout: 10_000 });
  await b.page.keyboard.press('Enter');
  const history = b.page.locator('#jupyter-crdt-sync-history');
  await history.waitFor({ state: 'visible', timeout: 10_000 });
  await history.locator(`.jp-crdtsync-HistoryItem[data-version="${before}"]`).waitFor({ timeout: 15_000 });
  // Newest first, and the focus lands in the list: arrows down to the version before
  // the deletion, Enter selects it.
  const numbers = await history.locator('.jp-crdtsync-HistoryItem').evaluateAll(items => items.map(i => Number(i.dataset.version)));
  assert.deepEqual(numbers, [...numbers].sort((x, y) => y - x), 'newest first');
  await b._poll(
    () => b.page.evaluate(() => document.activeElement?.classList.contains('jp-crdtsync-HistoryItem') ?? false),
    focused => focused,
    { timeout: 5_000, what: 'the focus in the list' }
  );
  for (let i = 0; i < numbers.length; i++) {
    if ((await b.page.evaluate(() => document.activeElement?.dataset.version)) === String(before)) break;
    await b.page.keyboard.press('ArrowDown');
  }
  assert.equal(await b.page.evaluate(() => document.activeElement?.dataset.version), String(before));
  await b.page.keyboard.press('Enter');

  // The version, read-only and rendered: the deleted cell marked, the others not.
  const deleted = history.locator('.jp-crdtsync-HistoryCell[data-cell-id="cell-1"]');
  await deleted.waitFor({ timeout: 15_000 });
  assert.equal(await deleted.getAttribute('data-change'), 'removed');
  assert.match(await deleted.locator('.jp-crdtsync-HistorySource').innerText(), /second = 2/);
  assert.equal(await history.locator('.jp-crdtsync-HistoryCell.jp-crdtsync-mod-differs').count(), 1);
  const firstCell = history.locator('.jp-crdtsync-HistoryCell[data-cell-id="cell-0"]');
  assert.match(await firstCell.locator('.jp-crdtsync-HistoryOutput').first().innerText(), /printed 42/);
  assert.equal(await firstCell.locator('.jp-crdtsync-HistoryOutput strong').innerText(), 'bold');
  const heading = history.locator('.jp-crdtsync-HistoryCell[data-cell-id="cell-2"] .jp-crdtsync-HistoryMarkdown h1');
  assert.match(await heading.innerText(), /A heading/);
  assert.equal(await history.locator('.jp-crdtsync-HistoryCell [contenteditable="true"], .jp-crdtsync-HistoryCell textarea').count(), 0);
  await b.screenshot(run.dir, 'version-selected');

  // Tab to the deleted cell's "Restore this cell", Enter.
  await tabTo(b.page, '.jp-crdtsync-HistoryCell[data-cell-id="cell-1"] button[data-action="restore-cell"]');
  await b.page.keyboard.press('Enter');
  await waitForSources(b, sources, 'the restored cell');
  await waitForSources(a, sources, 'the restored cell');
  for (const window of [a, b]) await window.waitForCellText(1, 'second = 2');
  await run.lab.waitForFileCellSource(nb, 1, 'second = 2');
  assert.equal((await run.lab.readNotebook(nb)).cells.length, 3);

  // The panel says so, lists the restore as the newest version, and nothing differs now.
  await history.locator('.jp-crdtsync-HistoryNotice', { hasText: /Restored the cell from version/ }).waitFor({ timeout: 10_000 });
  const top = history.locator('.jp-crdtsync-HistoryItem').first();
  await b._poll(() => top.innerText(), text => /restored a cell from/.test(text), { timeout: 10_000, what: 'the restore listed' });
  await b._poll(
    () => history.locator('.jp-crdtsync-HistoryCell.jp-crdtsync-mod-differs').count(),
    count => count === 0,
    { timeout: 10_000, what: 'no cell differing from now' }
  );
  assert.equal(await history.locator('.jp-crdtsync-HistoryError').isVisible(), false);
});

suite.test("the toolbar button opens the panel, which follows new versions while shown", {}, async run => {
  const nb = run.notebook(['x = 1']);
  const [a, b] = await run.openMany(nb, 2);
  await b.page.locator('.jp-crdtsync-HistoryButton').first().click();
  const history = b.page.locator('#jupyter-crdt-sync-history');
  await history.waitFor({ state: 'visible', timeout: 10_000 });
  await history.locator('.jp-crdtsync-HistoryItem').first().waitFor({ timeout: 15_000 });
  const count = await history.locator('.jp-crdtsync-HistoryItem').count();
  // a edits: its version appears in b's open panel without any action in b.
  await a.typeInCell(0, ' + 41');
  await run.lab.waitForFileCellSource(nb, 0, 'x = 1 + 41');
  await b._poll(
    () => history.locator('.jp-crdtsync-HistoryItem').count(),
    n => n > count,
    { timeout: 15_000, what: 'the new version listed' }
  );
  const identity = await a.identity();
  assert.match(await history.locator('.jp-crdtsync-HistoryItem').first().innerText(), new RegExp(identity.username.slice(0, 8)));
});
