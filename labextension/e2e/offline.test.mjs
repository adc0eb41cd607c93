// A window that loses its room connection keeps working and merges on reconnect; a
// notebook deleted while open is not brought back by saving the window's copy.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { sleep } from './harness/lab.mjs';
import { RoomLink } from './harness/roomlink.mjs';
import { Suite } from './harness/suite.mjs';

const suite = new Suite('offline');

/** Waits until the window's status item says `status` (`data-crdtsync-status`). */
function waitForStatus(window, status, { timeout = 10_000 } = {}) {
  return window._poll(() => window.connectionStatus(), shown => shown === status, {
    timeout,
    what: `connection status ${status}`
  });
}

suite.test('edits made offline merge with the other window’s on reconnect, without a dialog', {}, async run => {
  const nb = run.notebook(['text = "start"']);
  let link;
  const a = await run.open(nb, 'a', { prepare: async page => (link = await RoomLink.route(page)) });
  const b = await run.open(nb, 'b');
  await run.lab.waitForRoom(nb, room => room.peers === 2, { what: 'both windows in the room' });
  await waitForStatus(a, 'connected');

  link.cut();
  await waitForStatus(a, 'offline');
  await run.lab.waitForRoom(nb, room => room.peers === 1, { what: 'a gone from the room' });
  // Both type in the same cell meanwhile: a at its end, b at its start.
  const fromA = '  # typed in a while offline';
  const fromB = '# typed in b meanwhile\n';
  await a.typeInCell(0, fromA, { at: 'end' });
  await b.typeInCell(0, fromB, { at: 'start' });
  await run.lab.waitForFileCellSource(nb, 0, `${fromB}text = "start"`);
  // Still apart: neither window has the other's edit, and a keeps trying to reconnect.
  assert.equal(await a.cellText(0), `text = "start"${fromA}`);
  assert.equal(await b.cellText(0), `${fromB}text = "start"`);
  assert.notEqual(await a.connectionStatus(), 'connected');

  link.restore();
  const merged = `${fromB}text = "start"${fromA}`;
  await waitForStatus(a, 'connected', { timeout: 15_000 });
  for (const window of [a, b]) {
    await window.waitForCellText(0, merged);
    assert.equal(await window.modelSource(0), merged, `window ${window.name}'s model`);
  }
  await run.lab.waitForFileCellSource(nb, 0, merged);
  assert.ok(link.refused > 0, `a tried to reconnect while cut (${link.refused} refused)`);
  assert.deepEqual(await a.dialogs(), [], 'no dialog in a');
  assert.deepEqual(await b.dialogs(), [], 'no dialog in b');
});

suite.test('a notebook deleted while open is not brought back by saving it', {}, async run => {
  const nb = run.notebook(['doomed = 1']);
  const file = path.join(run.lab.root, nb);
  const a = await run.open(nb);
  await a.typeInCell(0, '0');
  await run.lab.waitForFileCellSource(nb, 0, 'doomed = 10');
  // JupyterLab rethrows the refused save as an uncaught error: that one is expected.
  a.expectErrors(/was deleted on the server; this window no longer follows it/);

  const response = await run.lab.api(`api/contents/${encodeURIComponent(nb)}`, { method: 'DELETE' });
  assert.equal(response.status, 204, 'the contents API deleted the notebook');
  await waitForStatus(a, 'deleted');
  assert.equal(fs.existsSync(file), false);

  // Ctrl+S, as a user would: the file stays deleted, and the save error says why (the
  // notification shown at the deletion has the same words: look for the dialog only).
  const why = `${nb} was deleted on the server; this window no longer follows it.`;
  await a.cell(0).click();
  await a.page.keyboard.press('Control+s');
  const dialog = await a
    ._poll(
      () => a.dialogs(),
      shown => shown.some(text => text.includes('File Save Error') && text.includes(why)),
      { timeout: 10_000, what: 'a File Save Error dialog saying the notebook was deleted' }
    )
    .catch(error => error);
  assert.equal(fs.existsSync(file), false, 'Ctrl+S brought the deleted notebook back');
  if (dialog instanceof Error) throw dialog;
  await a.page.keyboard.press('Escape');

  // A save that reaches the content provider (as "Save All" or a script's would) is refused.
  const refused = await a.page.evaluate(path => {
    const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
    return panel.context.save().then(
      () => 'saved',
      error => error.message
    );
  }, nb);
  assert.equal(refused, why);

  await sleep(1500); // longer than the room's write-back delay (0.2 s, at most 1 s)
  assert.equal(fs.existsSync(file), false, 'the deleted notebook was not written back');
  const contents = await run.lab.api(`api/contents/${encodeURIComponent(nb)}?content=0`);
  assert.equal(contents.status, 404, 'the contents API does not have it either');
});
