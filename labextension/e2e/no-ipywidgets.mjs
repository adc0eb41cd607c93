// Without ipywidgets' JupyterLab front-end (its extension disabled, as if jupyterlab_widgets
// were not installed): our plugins still load, the widget plugin does nothing, a cell that
// makes a widget shows its text form, and nothing fails. Run: node e2e/no-ipywidgets.mjs
import assert from 'node:assert/strict';
import { notebook, startLab } from './lab.mjs';

const lab = await startLab({
  disabled: ['@jupyter-widgets/jupyterlab-manager'],
  files: { 'nb.ipynb': notebook([['make', 'import ipywidgets as w\nw.IntSlider(value=5)']]) }
});
let failed = false;
try {
  const page = await lab.openNotebook('nb.ipynb');
  const plugins = await page.evaluate(() => {
    const app = window.jupyterapp;
    return {
      manager: app.hasPlugin('@jupyter-widgets/jupyterlab-manager:plugin'),
      ours: ['jupyter-crdt-sync:plugin', 'jupyter-crdt-sync:widgets', 'jupyter-crdt-sync:cursors'].map(id =>
        app.isPluginActivated(id)
      )
    };
  });
  console.log('plugins:', JSON.stringify(plugins));
  assert.deepEqual(plugins, { manager: false, ours: [true, true, true] });
  await page.evaluate(() => {
    for (const cell of window.jupyterapp.shell.currentWidget.content.widgets) cell.model.trusted = true;
  });
  await lab.waitFor('a kernel', async () => (await (await lab.api('api/sessions')).json()).length > 0);
  await lab.execute('nb.ipynb', ['make']);
  await lab.waitFor('the text form of the widget', () =>
    page.evaluate(() => document.querySelector('.jp-OutputArea-output')?.textContent.includes('IntSlider(value=5)')));
  const problems = page.logs.filter(l => /pageerror|jupyter-crdt-sync|jupyter-widgets/i.test(l));
  console.log('console:', JSON.stringify(problems));
  assert.deepEqual(problems, []);
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await lab.stop();
}
console.log(failed ? 'e2e no-ipywidgets: FAILED' : 'e2e no-ipywidgets: 1 passed, 0 failed');
process.exit(failed ? 1 : 0);
