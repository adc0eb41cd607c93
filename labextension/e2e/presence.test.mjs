// What a window shows about the room and the others in it: the connection status, and
// the other windows' cursors and selections, in their colours and with their names.
import assert from 'node:assert/strict';

import { Suite } from './harness/suite.mjs';

const suite = new Suite('presence');

const only = (carets, cell, pos) => carets.length === 1 && carets[0].cell === cell && carets[0].pos === pos;

suite.test("every window shows it is connected, and the others' cursors and selections where they are", {}, async run => {
  const nb = run.notebook(['alpha = 1\nbeta = 2', 'gamma = 3', 'delta = 4']);
  const [a, b, c] = await run.openMany(nb, 3);
  for (const window of [a, b, c]) {
    await window.page.waitForSelector('[data-crdtsync-status="connected"]', { timeout: 10_000 });
    assert.equal(await window.connectionStatus(), 'connected');
    assert.match(await window.page.locator('[data-crdtsync-status]').innerText(), /Connected/);
  }
  const [idA, idB] = await Promise.all([a.identity(), b.identity()]);
  const nameOf = identity => identity.display_name || identity.name;

  // a puts its cursor after "alpha": b and c see it there, with a's name and colour.
  await a.focusCell(0, 'start');
  for (let i = 0; i < 5; i++) await a.page.keyboard.press('ArrowRight');
  for (const window of [b, c]) {
    const seen = await window.waitForRemoteCursors(r => only(r.carets, 0, 5), `a's caret after "alpha"`);
    assert.equal(seen.carets[0].name, nameOf(idA));
    assert.equal(seen.carets[0].color, idA.color);
    assert.equal(seen.carets[0].nameShown, true, 'the name shows after a move');
  }
  await b.screenshot(run.dir, 'remote-cursor');
  // The name hides after a while.
  await b.waitForRemoteCursors(r => r.carets[0]?.nameShown === false, 'the name to hide', { timeout: 6_000 });

  // b types before a's cursor: it stays after "alpha", and a sees b's cursor where b typed.
  await b.typeInCell(0, '# x\n', { at: 'start' });
  await a.waitForCellText(0, '# x\nalpha = 1\nbeta = 2');
  await b.waitForRemoteCursors(r => only(r.carets, 0, 9), "a's caret following its characters");
  const seenByA = await a.waitForRemoteCursors(r => only(r.carets, 0, 4), "b's caret where it typed");
  assert.equal(seenByA.carets[0].name, nameOf(idB));
  const both = await c.waitForRemoteCursors(
    r => r.carets.length === 2 && r.carets.every(caret => caret.cell === 0),
    'both carets in the first cell'
  );
  assert.deepEqual(both.carets.map(caret => [caret.pos, caret.name]).sort(), [
    [4, nameOf(idB)],
    [9, nameOf(idA)]
  ]);

  // a selects "alpha" backwards: the others see the selection, and a's caret at its start.
  await a.page.keyboard.down('Shift');
  for (let i = 0; i < 5; i++) await a.page.keyboard.press('ArrowLeft');
  await a.page.keyboard.up('Shift');
  for (const window of [b, c]) {
    await window.waitForRemoteCursors(r => r.selections.length === 1 && r.selections[0].text === 'alpha', 'the selection');
  }
  await b.waitForRemoteCursors(r => only(r.carets, 0, 4), "a's caret at the start of its selection");
  await c.screenshot(run.dir, 'remote-selection');

  // b moves to the last cell, a to the second by clicking: the carets follow, the selection goes.
  await b.focusCell(2, 'end');
  await a.focusCell(1, 'end');
  const moved = await c.waitForRemoteCursors(
    r => r.carets.length === 2 && r.selections.length === 0 && r.carets.some(x => x.cell === 1) && r.carets.some(x => x.cell === 2),
    'the carets in the second and last cells'
  );
  for (const caret of moved.carets) {
    assert.equal(caret.pos, 9);
    assert.equal(caret.name, nameOf(caret.cell === 1 ? idA : idB));
  }

  // a leaves its cell in command mode: its caret goes; b's stays.
  await a.page.keyboard.press('Escape');
  await a.page.keyboard.press('ArrowDown');
  await c.waitForRemoteCursors(r => only(r.carets, 2, 9), "only b's caret left");
  await b.waitForRemoteCursors(r => r.carets.length === 0, "a's caret gone");

  // b's window closes: its caret goes from the others.
  await b.close();
  for (const window of [a, c]) await window.waitForRemoteCursors(r => r.carets.length === 0, "b's caret gone");
  // The cursors were drawn, never typed: every cell's text is as edited.
  for (const window of [a, c]) {
    assert.equal(await window.cellText(0), '# x\nalpha = 1\nbeta = 2');
    assert.equal(await window.cellText(1), 'gamma = 3');
    assert.equal(await window.cellText(2), 'delta = 4');
  }
});

const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

suite.test('name labels stack above the line and never cover the text they annotate', {}, async run => {
  const nb = run.notebook(['first = 1\nsecond = 2', 'other = 3']);
  const [a, b, c] = await run.openMany(nb, 3);
  const names = await Promise.all([b, c].map(async w => {
    const identity = await w.identity();
    return identity.display_name || identity.name;
  }));
  // b and c put their carets at one place on the first line: a sees both names, stacked.
  await Promise.all([b.focusCell(0, 'start'), c.focusCell(0, 'start')]);
  const check = async what => {
    const seen = await a._poll(
      () => a.cursorLabels(0),
      // CodeMirror places tooltips in its next measure cycle: wait for the settled layout.
      v =>
        v.labels.length === 2 &&
        v.labels.every(l => v.lines.every(line => l.box.bottom <= line.top + 1)),
      { timeout: 10_000, what }
    );
    assert.deepEqual(seen.labels.map(l => l.name).sort(), [...names].sort());
    const [one, two] = seen.labels;
    assert.ok(!overlap(one.box, two.box), `labels overlap: ${JSON.stringify(seen.labels)}`);
    for (const label of seen.labels) {
      for (const line of seen.lines) {
        assert.ok(!overlap(label.box, line), `label ${JSON.stringify(label)} covers ${JSON.stringify(line)}`);
        assert.ok(label.box.bottom <= line.top + 1, 'the label is above the line');
      }
    }
    return seen;
  };
  await check('both names on the first line');
  await a.screenshot(run.dir, 'stacked-labels');
  // Then both go to the second line: still above it, still stacked, still clear of it.
  await b.page.keyboard.press('ArrowDown');
  await c.page.keyboard.press('ArrowDown');
  await check('both names on the second line');
  // The names hide after a while, and come back on hover.
  await a._poll(() => a.cursorLabels(0), v => v.labels.length === 0, { timeout: 6_000, what: 'the names to hide' });
  await a.cell(0).locator('.jp-crdtsync-cursor').first().hover({ force: true });
  await a._poll(() => a.cursorLabels(0), v => v.labels.length === 2, { timeout: 5_000, what: 'the names on hover' });
});

suite.test("three windows: each shows the other two's avatars in the notebook toolbar", {}, async run => {
  const nb = run.notebook(['x = 1']);
  const windows = await run.openMany(nb, 3);
  const identities = await Promise.all(windows.map(w => w.identity()));
  for (const [i, window] of windows.entries()) {
    const others = identities.filter((_, j) => j !== i);
    const avatars = await window._poll(
      () =>
        window.page.locator('.jp-NotebookPanel-toolbar .jp-crdtsync-avatar').evaluateAll(nodes =>
          nodes.map(node => ({ title: node.title, text: node.textContent, color: getComputedStyle(node).backgroundColor }))
        ),
      found => found.length === 2,
      { timeout: 10_000, what: 'two avatars' }
    );
    assert.deepEqual(
      avatars.map(a => a.title).sort(),
      others.map(o => o.display_name || o.name).sort()
    );
    for (const other of others) {
      assert.ok(avatars.some(a => a.text === other.initials), `initials ${other.initials} in ${JSON.stringify(avatars)}`);
    }
  }
  await windows[0].screenshot(run.dir, 'avatars');
  // A window leaves: the others show one avatar less.
  await windows[2].close();
  await windows[0]._poll(
    () => windows[0].page.locator('.jp-NotebookPanel-toolbar .jp-crdtsync-avatar').count(),
    count => count === 1,
    { timeout: 10_000, what: 'one avatar left' }
  );
});
