// Without ipywidgets' JupyterLab front-end (its extension disabled, as if jupyterlab_widgets
// were not installed): our plugins still load, the widget plugin does nothing, a cell that
// makes a widget shows its text form, and the windows log no error.
import assert from 'node:assert/strict';

import { Lab } from './harness/lab.mjs';
import { Suite } from './harness/suite.mjs';

const WIDGET_MANAGER = '@jupyter-widgets/jupyterlab-manager';
const suite = new Suite('no-ipywidgets', { disabledExtensions: [WIDGET_MANAGER] });

/**
 * What JupyterLab itself (`@jupyterlab/services`, kernel `_handleCommOpen`) logs in any
 * window without ipywidgets when the kernel opens a widget's comm: no target is
 * registered for `jupyter.widget`. Not ours, and expected here.
 */
const JUPYTERLAB_NO_COMM_TARGET = 'error: Exception opening new comm';
const SLOW_ACTIVATION = /^warning: Plugin \S+ \(with \d+ dependants\) took [\d.]+ms to activate\.$/;

const OUR_PLUGINS = [
  Lab.pluginId,
  'jupyter-crdt-sync:cell-executor',
  'jupyter-crdt-sync:status',
  'jupyter-crdt-sync:widgets',
  'jupyter-crdt-sync:cursors'
];

suite.test('without ipywidgets in JupyterLab the extension works, and widgets show as text', {}, async run => {
  const nb = run.notebook(['import ipywidgets as w\nw.IntSlider(value=5)', '']);
  const [a, b] = await run.openMany(nb, 2);
  const plugins = await a.page.evaluate(
    ({ manager, ours }) => ({
      manager: window.jupyterapp.hasPlugin(`${manager}:plugin`),
      ours: ours.filter(id => !window.jupyterapp.isPluginActivated(id))
    }),
    { manager: WIDGET_MANAGER, ours: OUR_PLUGINS }
  );
  assert.deepEqual(plugins, { manager: false, ours: [] }, "no widget manager; all of our plugins active");
  assert.equal(await a.connectionStatus(), 'connected');

  await a.runCell(0);
  for (const window of [a, b]) await window.waitForOutput(0, 'IntSlider(value=5)');
  await b.typeInCell(1, 'still = "live"');
  await a.waitForCellText(1, 'still = "live"');

  for (const window of [a, b]) {
    const problems = window.logs.filter(
      line =>
        (/^(error|warning|pageerror):/.test(line) || /jupyter-widgets|jupyter-crdt-sync/i.test(line)) &&
        line !== JUPYTERLAB_NO_COMM_TARGET &&
        // JupyterLab's note on a busy machine (a plugin slower than 5 s), not a problem.
        !SLOW_ACTIVATION.test(line)
    );
    assert.deepEqual(problems, [], `window ${window.name}'s console`);
  }
});
