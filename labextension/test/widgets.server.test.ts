/**
 * The document's `widgets` map as a real server fills it (a real kernel with ipywidgets,
 * cells run by the kernel actor), read through the room the way the front-end reads it:
 * entries make the state ipywidgets' manager takes, and changes arrive per attribute.
 *
 * Skipped when `jupyter` or ipywidgets is not installed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as Y from 'yjs';

import { IWebSocketLike, RoomProvider, roomUrl } from '../src/provider';
import {
  IWidgetChanges,
  readWidgetEntry,
  serializedState,
  widgetChanges,
  WIDGETS_ROOT
} from '../src/widgetstate';
import { hasIpywidgets, JupyterServer, notebook, until } from './jupyter';

const server = new JupyterServer();
const skip = !hasIpywidgets;

async function execute(nbPath: string, cellIds: string[]) {
  const r = await server.fetch(
    `api/crdtsync/execute/${encodeURIComponent(nbPath)}`,
    {
      method: 'POST',
      body: JSON.stringify({ cell_ids: cellIds })
    }
  );
  assert.equal(r.status, 202, await r.text());
}

const CELLS: Record<string, string> = {
  make: "import ipywidgets as w\ns = w.IntSlider(value=42, max=200, description='slider')\nimg = w.Image(value=bytes([137, 80, 78, 71, 0, 255]), format='png')\ndisplay(s, img)",
  move: 's.value = 77',
  close: 's.close()'
};
const KERNEL_TIMEOUT = 60000;

before(async () => {
  if (skip) {
    return;
  }
  await server.start();
  server.write('w.ipynb', {
    ...notebook(CELLS),
    metadata: {
      kernelspec: {
        name: 'python3',
        display_name: 'Python 3',
        language: 'python'
      }
    }
  });
});

after(() => server.stop());

test(
  'widgets made by a real kernel read as ipywidgets state, changes per attribute',
  { skip },
  async () => {
    const doc = new Y.Doc();
    const provider = new RoomProvider({
      url: roomUrl(`ws://127.0.0.1:${server.port}/`, 'w.ipynb', server.token),
      doc,
      createWebSocket: (url: string) =>
        new WebSocket(url) as unknown as IWebSocketLike
    });
    const widgets = doc.getMap<unknown>(WIDGETS_ROOT);
    const seen: IWidgetChanges[] = [];
    widgets.observeDeep(events => seen.push(widgetChanges(events, widgets)));
    try {
      await provider.ready;
      await execute('w.ipynb', ['make']);
      const byName = () => {
        const found: Record<string, string> = {};
        for (const [id, value] of widgets.entries()) {
          const entry = readWidgetEntry(value);
          if (entry) {
            found[entry.model_name] = id;
          }
        }
        return found;
      };
      const ids = await until(
        'the slider and the image',
        () => {
          const found = byName();
          return found.IntSliderModel && found.ImageModel ? found : undefined;
        },
        KERNEL_TIMEOUT
      );
      const slider = readWidgetEntry(widgets.get(ids.IntSliderModel))!;
      assert.equal(slider.model_module, '@jupyter-widgets/controls');
      assert.match(slider.model_module_version, /^\d+\.\d+\.\d+$/);
      assert.equal(slider.state.value, 42);
      assert.equal(typeof slider.state.value, 'number');
      assert.equal(slider.state.description, 'slider');
      assert.match(String(slider.state.layout), /^IPY_MODEL_/);
      // The slider's layout and style are models of their own, in the map too.
      const layoutId = String(slider.state.layout).slice('IPY_MODEL_'.length);
      assert.equal(
        readWidgetEntry(widgets.get(layoutId))?.model_name,
        'LayoutModel'
      );

      const image = readWidgetEntry(widgets.get(ids.ImageModel))!;
      const state = serializedState(image);
      assert.ok(
        state.value instanceof DataView,
        `image bytes: ${JSON.stringify(image.buffers)}`
      );
      const view = state.value as DataView;
      assert.deepEqual(
        Array.from(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
        ),
        [137, 80, 78, 71, 0, 255]
      );

      // The kernel moves the slider: one attribute changes.
      seen.length = 0;
      await execute('w.ipynb', ['move']);
      await until(
        '77',
        () =>
          readWidgetEntry(widgets.get(ids.IntSliderModel))?.state.value === 77,
        KERNEL_TIMEOUT
      );
      const changed = seen.flatMap(c => [
        ...(c.changedKeys.get(ids.IntSliderModel) ?? [])
      ]);
      assert.deepEqual([...new Set(changed)], ['value']);
      assert.ok(seen.every(c => c.added.size === 0 && c.removed.size === 0));

      // The kernel closes it: its entry goes.
      seen.length = 0;
      await execute('w.ipynb', ['close']);
      await until(
        'the slider removed',
        () => !widgets.has(ids.IntSliderModel),
        KERNEL_TIMEOUT
      );
      assert.ok(seen.some(c => c.removed.has(ids.IntSliderModel)));
      assert.ok(widgets.has(ids.ImageModel), 'the image stays');
    } finally {
      provider.dispose();
    }
  }
);
