// ipywidgets from the document: a window opened later, or while the kernel is busy,
// renders the widgets that exist at once, and follows the document until the kernel
// answers; using a widget still talks to the kernel.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { KernelLink } from './harness/kernellink.mjs';
import { sleep } from './harness/lab.mjs';
import { Suite } from './harness/suite.mjs';

const suite = new Suite('widgets');
// ipywidgets' own manager waits 4 s for a kernel that does not answer, and a busy kernel
// answers only when its cell ends: rendering before 3 s means rendering from the document.
const AT_ONCE_MS = 3_000;

const SLIDER = 'import ipywidgets as widgets\nslider = widgets.IntSlider(value=7, description="seven")\nslider';

suite.test('a slider made in one window shows in the others, at once in one opened later, and moves everywhere', {}, async run => {
  const nb = run.notebook([SLIDER, 'print(slider.value)']);
  const [a, b] = await run.openMany(nb, 2);
  // b had the cell open, untrusted, before a ran it: the cell becomes trusted in b too
  // (the kernel actor marks the cells it runs trusted), else b would show the slider as text.
  await a.runCell(0);
  await a.waitForSlider(0, { value: '7', timeout: 30_000 });
  await b.waitForSlider(0, { value: '7' });
  await run.lab.waitForRoom(nb, room => room.widgets >= 1, { what: "the slider in the document's widgets" });

  const late = await run.open(nb, 'late');
  await late.waitForSlider(0, { value: '7', timeout: AT_ONCE_MS });
  // The late window moves it: the others and the kernel follow.
  await late.nudgeSlider(0);
  for (const window of [a, b, late]) await window.waitForSlider(0, { value: '8' });
  await b.runCell(1);
  for (const window of [a, b, late]) await window.waitForOutput(1, '8');
});

async function waitUntil(condition, what, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Python that waits (at most a minute) until the test creates `file` in the notebook's directory. */
const waitForFile = file =>
  `_t0 = time.time()\nwhile not os.path.exists(${JSON.stringify(file)}) and time.time() - _t0 < 60:\n    time.sleep(0.05)`;

suite.test('a window opened while the kernel is busy renders the widgets at once and follows the document', {}, async run => {
  // The long cell waits for files the test creates, so that its steps never race the clock.
  const [go1, go2] = [`${run.slug}-go1`, `${run.slug}-go2`];
  const busy = [
    'import os, time',
    waitForFile(go1),
    's.value = 50',
    't = w.Text(value="made while busy")',
    'display(t)',
    'button.close()',
    waitForFile(go2)
  ].join('\n');
  const nb = run.notebook([
    'import ipywidgets as w\ns = w.IntSlider(value=7, description="slider")\nbutton = w.Button(description="closes later")\ndisplay(s, button)',
    's.value = 42',
    busy,
    'print(s.value)',
    's.value = 77'
  ]);
  const [a] = await run.openMany(nb, 1);
  await a.runCell(0);
  await a.runCell(1);
  await a.waitForSlider(0, { value: '42', timeout: 30_000 });
  await a.runCell(2);
  await run.lab.waitForRoom(nb, room => room.kernel?.running === 'cell-2', { what: 'the long cell running' });

  // b opens now, its kernel connection routed through the test.
  let link;
  const b = await run.open(nb, 'busy', { prepare: async page => (link = await KernelLink.route(page)) });
  await b.waitForSlider(0, { value: '42', timeout: AT_ONCE_MS });
  await b.cell(0).locator('.jupyter-button').waitFor({ state: 'visible', timeout: 1_000 });
  assert.equal((await run.lab.room(nb)).kernel?.running, 'cell-2', 'the kernel was busy all along');
  await b.screenshot(run.dir, 'kernel-busy');

  // The long cell changes the slider, shows a new widget and closes the button, while b
  // hears nothing from the kernel: b learns all of it from the document.
  // (A busy kernel answers b's kernel_info request only when the cell ends: b's kernel
  // connection is open, but JupyterLab does not call it connected before that.)
  await waitUntil(() => link.sockets > 0, 'b to open its kernel websocket');
  link.hold();
  fs.writeFileSync(path.join(run.lab.root, go1), '');
  await a.waitForSlider(0, { value: '50' });
  await b.waitForSlider(0, { value: '50' });
  await b.cell(2).locator('.widget-text input').waitFor({ state: 'visible', timeout: 10_000 });
  assert.equal(await b.cell(2).locator('.widget-text input').inputValue(), 'made while busy');
  await b.cell(0).locator('.jupyter-button').waitFor({ state: 'detached', timeout: 10_000 });
  assert.ok(link.held > 0, 'the kernel sent messages that b never got');
  await b.screenshot(run.dir, 'kernel-held-back');
  link.release();

  // Dragging the slider in b while the kernel is busy: the kernel gets it once the cell ends.
  await b.dragSlider(0, 60);
  const [dragged] = await b.sliderValues(0);
  assert.notEqual(dragged, '50', 'the drag moved the slider');
  assert.deepEqual(await a.sliderValues(0), ['50'], 'a waits for the kernel');
  fs.writeFileSync(path.join(run.lab.root, go2), '');
  await a.waitForSlider(0, { value: dragged, timeout: 15_000 });
  await a.runCell(3);
  for (const window of [a, b]) await window.waitForOutput(3, dragged);
  // A value the kernel sets reaches both windows.
  await b.runCell(4);
  for (const window of [a, b]) await window.waitForSlider(0, { value: '77' });
});

/** How often `text` shows in cell `index`, and how often inside an Output widget there. */
function shownInCell(window, index, text) {
  return window.cell(index).evaluate((cell, wanted) => {
    const count = s => s.split(wanted).length - 1;
    // The outputs only: the cell's source may hold the same text.
    const node = cell.querySelector('.jp-Cell-outputWrapper') ?? cell;
    const inWidgets = [...node.querySelectorAll('.widget-output')]
      // Nested Output widgets would be counted twice: only the outermost.
      .filter(el => !el.parentElement.closest('.widget-output'))
      .reduce((sum, el) => sum + count(el.innerText), 0);
    return { total: count(node.innerText), inWidgets };
  }, text);
}

async function waitShownOnce(window, index, text, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let seen;
  for (;;) {
    seen = await shownInCell(window, index, text);
    if (seen.total === 1 && seen.inWidgets === 1) {
      // Still once a moment later: no second copy on its way.
      await sleep(500);
      seen = await shownInCell(window, index, text);
      assert.deepEqual(seen, { total: 1, inWidgets: 1 }, `${window.name}: "${text}" once, in the widget`);
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`${window.name}: "${text}" shown ${JSON.stringify(seen)}, expected once inside the widget`);
    }
    await sleep(100);
  }
}

suite.test('an interact slider moved in one window shows its output once, inside the widget, in every window, and it stays when that window closes', {}, async run => {
  const nb = run.notebook([
    'import ipywidgets as w\ndef f(x):\n    print(f"x is {x}")\nw.interact(f, x=w.IntSlider(value=3, max=10))'
  ]);
  const [a, b] = await run.openMany(nb, 2);
  await a.runCell(0);
  for (const window of [a, b]) {
    await window.waitForSlider(0, { value: '3', timeout: 30_000 });
    await waitShownOnce(window, 0, 'x is 3');
  }
  // b moves the slider: the callback runs under b's own request, which b's kernel
  // connection sees; the server captures it, and b does not show it a second time.
  await b.nudgeSlider(0);
  for (const window of [a, b]) {
    await window.waitForSlider(0, { value: '4' });
    await waitShownOnce(window, 0, 'x is 4');
    assert.equal((await shownInCell(window, 0, 'x is 3')).total, 0, `${window.name}: cleared`);
  }
  await b.close();
  await waitShownOnce(a, 0, 'x is 4');
  const late = await run.open(nb, 'late');
  await late.waitForSlider(0, { value: '4', timeout: AT_ONCE_MS });
  await waitShownOnce(late, 0, 'x is 4');
  await waitUntilAsync(
    async () => /x is 4/.test(JSON.stringify((await run.lab.readNotebook(nb)).metadata.widgets ?? {})),
    'the captured output in the file'
  );
});

async function waitUntilAsync(condition, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

suite.test('what an Output widget captures while its cell still runs shows at once in every window, inside the widget', {}, async run => {
  const go = `${run.slug}-go`;
  const nb = run.notebook([
    [
      'import os, time, ipywidgets as w',
      'out = w.Output()',
      'display(out)',
      'with out:',
      '    print("captured while running")',
      waitForFile(go),
      'print("the cell is done")'
    ].join('\n')
  ]);
  const [a, b] = await run.openMany(nb, 2);
  await a.runCell(0);
  // The kernel is busy with the cell: only the document can bring the captured output.
  for (const window of [a, b]) await waitShownOnce(window, 0, 'captured while running');
  assert.equal((await shownInCell(a, 0, 'the cell is done')).total, 0, 'the cell still runs');
  fs.writeFileSync(path.join(run.lab.root, go), '');
  for (const window of [a, b]) {
    await window.waitForOutput(0, 'the cell is done');
    await waitShownOnce(window, 0, 'captured while running');
  }
});
