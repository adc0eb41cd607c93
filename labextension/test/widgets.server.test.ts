/**
 * The document's `widgets` map as a real server fills it (a real kernel with ipywidgets,
 * cells run by the kernel actor), read through the room the way the front-end reads it:
 * entries make the state ipywidgets' manager takes, and changes arrive per attribute.
 *
 * Skipped when `jupyter` or ipywidgets is not installed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
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

const canRun =
  spawnSync('jupyter', ['server', '--version']).status === 0 &&
  spawnSync('python', ['-c', 'import ipywidgets, ipykernel']).status === 0;
const TOKEN = 'crdtsync-widgets-test';

let server: ChildProcess | null = null;
let root = '';
let port = 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

async function until<T>(what: string, f: () => T | undefined | false, ms = 60000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) {
      return v as T;
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(50);
  }
}

function api(p: string, init: { method?: string; body?: string } = {}) {
  return fetch(`http://127.0.0.1:${port}/${p}`, {
    ...init,
    headers: { Authorization: `token ${TOKEN}` }
  });
}

async function execute(nbPath: string, cellIds: string[]) {
  const r = await api(`api/crdtsync/execute/${encodeURIComponent(nbPath)}`, {
    method: 'POST',
    body: JSON.stringify({ cell_ids: cellIds })
  });
  assert.equal(r.status, 202, await r.text());
}

const CELLS: [string, string][] = [
  ['make', "import ipywidgets as w\ns = w.IntSlider(value=42, max=200, description='slider')\nimg = w.Image(value=bytes([137, 80, 78, 71, 0, 255]), format='png')\ndisplay(s, img)"],
  ['move', 's.value = 77'],
  ['close', 's.close()']
];

before(async () => {
  if (!canRun) {
    return;
  }
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'crdtsync-widgets-'));
  fs.writeFileSync(
    path.join(root, 'w.ipynb'),
    JSON.stringify({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
      cells: CELLS.map(([id, source]) => ({ cell_type: 'code', id, metadata: {}, source, outputs: [], execution_count: null }))
    })
  );
  port = await freePort();
  server = spawn(
    'jupyter',
    [
      'server',
      '--no-browser',
      '--allow-root',
      `--port=${port}`,
      '--ip=127.0.0.1',
      `--ServerApp.root_dir=${root}`,
      `--IdentityProvider.token=${TOKEN}`,
      '--ServerApp.jpserver_extensions=jupyter_crdt_sync=True',
      `--CRDTSync.store_path=${path.join(root, '.store.sqlite')}`
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, JUPYTER_CONFIG_DIR: path.join(root, '.cfg') } }
  );
  let log = '';
  server.stderr!.on('data', d => (log += d));
  const start = Date.now();
  for (;;) {
    if (server.exitCode !== null) {
      throw new Error(`the server exited\n${log}`);
    }
    try {
      if ((await api('api/crdtsync/status')).ok) {
        break;
      }
    } catch {
      // not up yet
    }
    if (Date.now() - start > 60000) {
      throw new Error(`no server\n${log}`);
    }
    await sleep(200);
  }
});

after(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise(r => server!.once('exit', r));
  }
  if (root) {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('widgets made by a real kernel read as ipywidgets state, changes per attribute', { skip: !canRun }, async () => {
  const doc = new Y.Doc();
  const provider = new RoomProvider({
    url: roomUrl(`ws://127.0.0.1:${port}/`, 'w.ipynb', TOKEN),
    doc,
    createWebSocket: (url: string) => new WebSocket(url) as unknown as IWebSocketLike
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
    const ids = await until('the slider and the image', () => {
      const found = byName();
      return found.IntSliderModel && found.ImageModel ? found : undefined;
    });
    const slider = readWidgetEntry(widgets.get(ids.IntSliderModel))!;
    assert.equal(slider.model_module, '@jupyter-widgets/controls');
    assert.match(slider.model_module_version, /^\d+\.\d+\.\d+$/);
    assert.equal(slider.state.value, 42);
    assert.equal(typeof slider.state.value, 'number');
    assert.equal(slider.state.description, 'slider');
    assert.match(String(slider.state.layout), /^IPY_MODEL_/);
    // The slider's layout and style are models of their own, in the map too.
    const layoutId = String(slider.state.layout).slice('IPY_MODEL_'.length);
    assert.equal(readWidgetEntry(widgets.get(layoutId))?.model_name, 'LayoutModel');

    const image = readWidgetEntry(widgets.get(ids.ImageModel))!;
    const state = serializedState(image);
    assert.ok(state.value instanceof DataView, `image bytes: ${JSON.stringify(image.buffers)}`);
    const view = state.value as DataView;
    assert.deepEqual(Array.from(new Uint8Array(view.buffer, view.byteOffset, view.byteLength)), [137, 80, 78, 71, 0, 255]);

    // The kernel moves the slider: one attribute changes.
    seen.length = 0;
    await execute('w.ipynb', ['move']);
    await until('77', () => readWidgetEntry(widgets.get(ids.IntSliderModel))?.state.value === 77);
    const changed = seen.flatMap(c => [...(c.changedKeys.get(ids.IntSliderModel) ?? [])]);
    assert.deepEqual([...new Set(changed)], ['value']);
    assert.ok(seen.every(c => c.added.size === 0 && c.removed.size === 0));

    // The kernel closes it: its entry goes.
    seen.length = 0;
    await execute('w.ipynb', ['close']);
    await until('the slider removed', () => !widgets.has(ids.IntSliderModel));
    assert.ok(seen.some(c => c.removed.has(ids.IntSliderModel)));
    assert.ok(widgets.has(ids.ImageModel), 'the image stays');
  } finally {
    provider.dispose();
  }
});
