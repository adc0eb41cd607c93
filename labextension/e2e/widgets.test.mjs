// ipywidgets from the document: a window opened later, or while the kernel is busy,
// renders the widgets that exist at once; using a widget still talks to the kernel.
import assert from 'node:assert/strict';

import { pending, Suite } from './harness/suite.mjs';

const suite = new Suite('widgets');
const WIDGETS = pending('cells run through the kernel actor, and widget managers fed from the document');
// ipywidgets' own manager waits 4 s for a kernel that does not answer: render before that.
const AT_ONCE_MS = 3_000;

const SLIDER = 'import ipywidgets as widgets\nslider = widgets.IntSlider(value=7, description="seven")\nslider';
const BUSY = 'import time\ntime.sleep(30)';

/** A notebook with a slider made by window a, shown in a; returns [notebook, a]. */
async function sliderShown(run) {
  const nb = run.notebook([SLIDER, BUSY, 'print(slider.value)']);
  const [a] = await run.openMany(nb, 1);
  await a.runCell(0);
  assert.equal(await a.waitForSlider(0, { timeout: 30_000 }), '7');
  await run.lab.waitForRoom(nb, room => room.widgets >= 1, { what: "the slider in the document's widgets" });
  return [nb, a];
}

suite.test('a window opened later renders an existing slider at once', { skip: WIDGETS }, async run => {
  const [nb] = await sliderShown(run);
  const late = await run.open(nb, 'late');
  assert.equal(await late.waitForSlider(0, { timeout: AT_ONCE_MS }), '7');
});

suite.test('a window opened while the kernel is busy renders the slider at once', { skip: WIDGETS }, async run => {
  const [nb, a] = await sliderShown(run);
  await a.runCell(1);
  await run.lab.waitForRoom(nb, room => room.kernel?.execution_state === 'busy', { what: 'a busy kernel' });
  const busy = await run.open(nb, 'busy');
  assert.equal(await busy.waitForSlider(0, { timeout: AT_ONCE_MS }), '7');
  // Rendered from the document: the kernel could not have answered meanwhile.
  const room = await run.lab.room(nb);
  assert.equal(room.kernel?.execution_state, 'busy');
});

suite.test('moving the slider in one window moves it in the others and in the kernel', { skip: WIDGETS }, async run => {
  const [nb, a] = await sliderShown(run);
  const b = await run.open(nb);
  await b.waitForSlider(0, { timeout: AT_ONCE_MS });
  await b.cell(0).locator('.widget-slider .noUi-handle').first().focus();
  await b.page.keyboard.press('ArrowRight');
  await b.cell(0).locator('.widget-readout', { hasText: '8' }).waitFor({ timeout: 10_000 });
  await a.cell(0).locator('.widget-readout', { hasText: '8' }).waitFor({ timeout: 10_000 });
  await a.runCell(2);
  await a.waitForOutput(2, '8');
  await b.waitForOutput(2, '8');
});
