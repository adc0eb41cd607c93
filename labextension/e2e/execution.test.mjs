// Cells run through the server's kernel actor: every window sees the run and its output,
// whichever window asked and whether it is still there.
import assert from 'node:assert/strict';

import { Suite } from './harness/suite.mjs';

const suite = new Suite('execution');

/** The text of a cell's outputs in the file (stream text and text/plain). */
function fileOutputText(cell) {
  return (cell.outputs ?? [])
    .map(output => {
      const text = output.text ?? output.data?.['text/plain'] ?? '';
      return Array.isArray(text) ? text.join('') : text;
    })
    .join('');
}

/** Waits until the file's cell `index` has the output and the kernel actor's record. */
async function waitForFileOutput(lab, nb, index, substring) {
  const deadline = Date.now() + 15_000;
  let cell;
  while (Date.now() < deadline) {
    cell = (await lab.readNotebook(nb)).cells[index];
    if (fileOutputText(cell).includes(substring) && cell.metadata?.crdtsync?.status === 'ok') return cell;
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  throw new Error(`the file's cell ${index} never got ${JSON.stringify(substring)} from the kernel actor: ${JSON.stringify(cell)}`);
}

suite.test('running a cell in one window shows it running, then its output, in every window', {}, async run => {
  const nb = run.notebook(['import time\ntime.sleep(2)\nprint("hello from " + "a")', 'print("and from " + "b")']);
  const windows = await run.openMany(nb, 3);
  const [a, b] = windows;
  await a.runCell(0);
  for (const window of windows) await window.waitForPrompt(0, '[*]:', { timeout: 20_000 });
  for (const window of windows) await window.waitForOutput(0, 'hello from a');
  // The kernel actor ran it (JupyterLab's own executor would leave no such record).
  const cell = await waitForFileOutput(run.lab, nb, 0, 'hello from a');
  assert.ok(Number.isInteger(cell.execution_count), `execution_count ${cell.execution_count}`);
  for (const window of windows) await window.waitForPrompt(0, `[${cell.execution_count}]:`);
  // One kernel for the notebook: the windows (opened at once, each asking for one) are
  // connected to the kernel the room runs cells on, so its widgets and the toolbar's
  // interrupt and restart reach it.
  const room = await run.lab.room(nb);
  assert.ok(room.kernel, 'the room has a kernel actor');
  for (const window of windows) assert.equal(await window.kernelId(), room.kernel.id, `window ${window.name}'s kernel`);
  // Another window runs the next cell on the same kernel.
  await b.runCell(1);
  for (const window of windows) await window.waitForOutput(1, 'and from b');
  for (const window of windows) await window.waitForPrompt(1, `[${cell.execution_count + 1}]:`);
  await waitForFileOutput(run.lab, nb, 1, 'and from b');
});

suite.test('the window that ran a cell closes before the output comes; the others get it', {}, async run => {
  const nb = run.notebook(['import time\ntime.sleep(3)\nprint("done")']);
  const [a, b, c] = await run.openMany(nb, 3);
  await a.runCell(0);
  // Every window sees the cell running ([*]), then the one that asked goes away.
  await b.waitForPrompt(0, '[*]:', { timeout: 20_000 });
  await c.waitForPrompt(0, '[*]:', { timeout: 5_000 });
  await a.close();
  assert.equal(await b.outputText(0), '', 'the output had not come yet when a closed');
  await run.lab.waitForRoom(nb, room => room.peers === 2, { what: 'a gone from the room' });
  await b.waitForOutput(0, 'done');
  await c.waitForOutput(0, 'done');
  await b.waitForPrompt(0, text => /^\[\d+\]:$/.test(text));
  await waitForFileOutput(run.lab, nb, 0, 'done');
});
