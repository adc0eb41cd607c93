// What a window shows about the room and the others in it: the connection status and
// the other windows' cursors.
import assert from 'node:assert/strict';

import { pending, Suite } from './harness/suite.mjs';

const suite = new Suite('presence');

suite.test(
  'the status indicator shows connected in every window',
  { skip: pending('the status bar item with a data-crdtsync-status attribute') },
  async run => {
    const nb = run.notebook(['x = 1']);
    const windows = await run.openMany(nb, 2);
    for (const window of windows) {
      await window.page.waitForSelector('[data-crdtsync-status="connected"]', { timeout: 10_000 });
      assert.equal(await window.connectionStatus(), 'connected');
    }
  }
);

suite.test(
  "a window shows another window's cursor in the cell it is in",
  { skip: pending('remote cursors (.crdtsync-remote-cursor) drawn from the awareness') },
  async run => {
    const nb = run.notebook(['first = 1', 'second = 2']);
    const [a, b] = await run.openMany(nb, 2);
    await a.focusCell(0, 'end');
    await b.cell(0).locator('.crdtsync-remote-cursor').first().waitFor({ state: 'visible', timeout: 10_000 });
    await a.focusCell(1, 'end');
    await b.cell(1).locator('.crdtsync-remote-cursor').first().waitFor({ state: 'visible', timeout: 10_000 });
    await b.cell(0).locator('.crdtsync-remote-cursor').waitFor({ state: 'detached', timeout: 10_000 });
    // The cursor is drawn, not typed: the cell's text is unchanged in both windows.
    assert.equal(await b.cellText(1), 'second = 2');
    assert.equal(await a.cellText(1), 'second = 2');
  }
);
