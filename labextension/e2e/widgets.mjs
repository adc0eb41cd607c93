// Widgets from the document, end to end (npm run build first; needs ipywidgets and
// jupyterlab_widgets): a slider and a button made by a cell; a second window opens while
// the kernel is busy with a long cell and must render the slider at once, at its current
// value; the long cell then changes the slider, shows a new widget and closes the button
// (all while the second window's manager still waits for the kernel); dragging the slider
// in the second window reaches the kernel once it is free, and a value set by the kernel
// reaches both windows. Run: node e2e/widgets.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { notebook, sleep, startLab } from './lab.mjs';

const SHOTS = process.env.SCREENSHOTS ?? '/tmp/crdtsync-widgets';
fs.mkdirSync(SHOTS, { recursive: true });

// The long cell waits for files the test creates, so the steps do not race the clock.
const waitFile = name =>
  `_t0 = time.time()\nwhile not os.path.exists(${JSON.stringify(name)}) and time.time() - _t0 < 90:\n    time.sleep(0.05)`;
// CONTROL=1: the same without our widgets plugin (expected to fail: "Loading widget...").
const lab = await startLab({
  disabled: process.env.CONTROL ? ['jupyter-crdt-sync:widgets'] : [],
  files: {
    'nb.ipynb': notebook([
      ['make', "import ipywidgets as w\ns = w.IntSlider(value=7, description='slider')\nb = w.Button(description='closes later')\ndisplay(s, b)"],
      ['set42', 's.value = 42'],
      ['busy', ['import os, time', waitFile('go1'), 's.value = 50', "t = w.Text(value='made while busy')", 'display(t)', 'b.close()', waitFile('go2')].join('\n')],
      ['show', 'print(s.value)'],
      ['set77', 's.value = 77']
    ])
  }
});

const readout = page =>
  page.evaluate(() => document.querySelector('.widget-slider .widget-readout')?.textContent ?? null);
const outputsOf = (page, index) =>
  page.evaluate(i => document.querySelectorAll('.jp-Notebook .jp-Cell')[i]?.querySelector('.jp-OutputArea')?.textContent ?? '', index);

let failed = false;
try {
  const p1 = await lab.openNotebook('nb.ipynb');
  await lab.waitFor('a kernel', async () => (await (await lab.api('api/sessions')).json()).length > 0);
  // Outputs that come from the document are rendered as untrusted (no widgets) unless
  // the cell is trusted: what running the cell in JupyterLab does.
  await p1.evaluate(() => {
    for (const cell of window.jupyterapp.shell.currentWidget.content.widgets) cell.model.trusted = true;
  });
  await lab.execute('nb.ipynb', ['make', 'set42']);
  await lab.waitFor('the slider at 42 in window 1', async () => (await readout(p1)) === '42');

  await lab.execute('nb.ipynb', ['busy']);
  await lab.waitFor('the long cell running', async () => (await lab.status())[0]?.kernel?.running === 'busy');
  // Window 2's kernel websocket can be stalled (kernel -> window messages held back), so
  // that only the document tells it what the kernel did.
  const stall = { on: false, held: [] };
  const routeKernel = page =>
    page.routeWebSocket(/\/api\/kernels\//, ws => {
      const server = ws.connectToServer();
      server.onMessage(message => (stall.on ? stall.held.push(message) : ws.send(message)));
      ws.onMessage(message => server.send(message));
    });
  const opened = Date.now();
  const p2 = await lab.openNotebook('nb.ipynb', routeKernel);
  const notebookShownMs = Date.now() - opened;
  await lab.waitFor('the slider in window 2 while the kernel is busy', async () => (await readout(p2)) === '42', 15000);
  const sliderShownMs = Date.now() - opened;
  console.log(`window 2: notebook shown after ${notebookShownMs} ms, slider at 42 after ${sliderShownMs} ms (kernel busy)`);
  assert.equal((await lab.status())[0].kernel.running, 'busy', 'the kernel was busy all along');
  assert.ok(await p2.$('.jupyter-button'), 'the button shows in window 2');
  await p2.screenshot({ path: path.join(SHOTS, 'window2-kernel-busy.png') });

  // The long cell changes the slider, shows a new widget and closes the button, while
  // window 2 hears nothing from the kernel: it learns all of it from the document.
  stall.on = true;
  fs.writeFileSync(path.join(lab.root, 'go1'), '');
  await lab.waitFor('50 in window 2', async () => (await readout(p2)) === '50');
  await lab.waitFor('the new widget in window 2', () =>
    p2.evaluate(() => [...document.querySelectorAll('.widget-text input')].some(i => i.value === 'made while busy')));
  await lab.waitFor('the button closed in window 2', async () => !(await p2.$('.jupyter-button')));
  assert.equal(stall.on, true);
  console.log(`window 2 followed the document (${stall.held.length} kernel messages held back): slider 50, new text widget, button gone`);
  // The held messages are lost, as on a broken connection; new ones flow again.
  stall.on = false;
  stall.held.length = 0;

  // Drag the slider in window 2 while the kernel is still busy.
  const handle = await p2.$('.widget-slider .noUi-handle');
  const box = await handle.boundingBox();
  await p2.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await p2.mouse.down();
  await p2.mouse.move(box.x + box.width / 2 + 60, box.y + box.height / 2, { steps: 5 });
  await p2.mouse.up();
  const dragged = await readout(p2);
  assert.notEqual(dragged, '50', 'the drag moved the slider');
  console.log(`dragged to ${dragged} in window 2 (kernel busy)`);
  assert.equal(await readout(p1), '50', 'window 1 waits for the kernel');

  fs.writeFileSync(path.join(lab.root, 'go2'), '');
  await lab.waitFor(`window 1 at ${dragged} once the kernel is free`, async () => (await readout(p1)) === dragged);
  await lab.execute('nb.ipynb', ['show']);
  await lab.waitFor('the kernel to print the dragged value', async () => (await outputsOf(p1, 3)).trim() === dragged);
  await lab.execute('nb.ipynb', ['set77']);
  await lab.waitFor('77 in both windows', async () => (await readout(p1)) === '77' && (await readout(p2)) === '77');
  await p2.screenshot({ path: path.join(SHOTS, 'window2-after.png') });

  // A third window opens with the kernel idle: the document and the kernel both answer.
  const p3 = await lab.openNotebook('nb.ipynb');
  await lab.waitFor('77 in window 3', async () => (await readout(p3)) === '77', 15000);
  await p3.focus('.widget-slider .noUi-handle');
  await p3.keyboard.press('ArrowRight');
  await lab.waitFor('78 from window 3 in windows 1 and 2', async () => (await readout(p1)) === '78' && (await readout(p2)) === '78');
  const errors = [...p1.logs, ...p2.logs, ...p3.logs].filter(l => /jupyter-crdt-sync|model not found|pageerror/i.test(l));
  console.log('console:', JSON.stringify(errors.slice(0, 10), null, 1));
  assert.deepEqual(errors.filter(l => /model not found|pageerror/.test(l)), []);
} catch (e) {
  failed = true;
  console.error(e);
  fs.copyFileSync(lab.logPath, path.join(SHOTS, 'server.log'));
  console.error(`server log: ${path.join(SHOTS, 'server.log')}`);
} finally {
  await lab.stop();
}
console.log(failed ? 'e2e widgets: FAILED' : `e2e widgets: 1 passed, 0 failed (screenshots in ${SHOTS})`);
process.exit(failed ? 1 : 0);
