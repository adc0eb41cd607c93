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
