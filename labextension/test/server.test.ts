/**
 * RoomProvider against a real `jupyter server` running jupyter-crdt-sync (needs the
 * Python package installed: `pip install -e .` at the repository root).
 *
 * Skipped when `jupyter` is not on PATH.
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

const hasJupyter = spawnSync('jupyter', ['server', '--version']).status === 0;
const TOKEN = 'crdtsync-labextension-test';

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

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) {
        return v as T;
      }
    } catch {
      // not yet
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(100);
  }
}

function api(p: string, init: { method?: string; body?: string } = {}) {
  return fetch(`http://127.0.0.1:${port}/${p}`, {
    ...init,
    headers: { Authorization: `token ${TOKEN}` }
  });
}

function notebook(sources: string[]) {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: sources.map((s, i) => ({
      cell_type: 'code',
      id: `cell-${i}`,
      metadata: {},
      source: s,
      outputs: [],
      execution_count: null
    }))
  };
}

const wsFactory = (url: string) => new WebSocket(url) as unknown as IWebSocketLike;

before(async () => {
  if (!hasJupyter) {
    return;
  }
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'crdtsync-lab-'));
  fs.mkdirSync(path.join(root, 'dir a'));
  fs.writeFileSync(path.join(root, 'dir a', 'nb 1.ipynb'), JSON.stringify(notebook(['x = 1', 'y = 2'])));
  fs.writeFileSync(path.join(root, 'gone.ipynb'), JSON.stringify(notebook(['z'])));
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
      // Enabled here, whether or not the package's config file is installed.
      '--ServerApp.jpserver_extensions=jupyter_crdt_sync=True',
      `--CRDTSync.store_path=${path.join(root, '.store.sqlite')}`,
      '--CRDTSync.save_delay=0.2',
      '--CRDTSync.save_max_delay=1'
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, JUPYTER_CONFIG_DIR: path.join(root, '.cfg') } }
  );
  let log = '';
  server.stderr!.on('data', d => (log += d));
  let exited = false;
  server.once('exit', () => (exited = true));
  await until('the server', async () => {
    if (exited) {
      throw new Error('the server exited');
    }
    return (await api('api/crdtsync/status')).ok;
  }, 60000).catch(e => {
    throw new Error(`${e}\n${log}`);
  });
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

test('syncs a notebook with the room, edits reach the file', { skip: !hasJupyter }, async () => {
  const doc = new Y.Doc();
  const provider = new RoomProvider({
    url: roomUrl(`ws://127.0.0.1:${port}/`, 'dir a/nb 1.ipynb', TOKEN),
    doc,
    createWebSocket: wsFactory
  });
  try {
    await provider.ready;
    assert.equal(provider.status, 'connected');
    const cells = doc.getArray<Y.Map<any>>('cells');
    assert.equal(cells.length, 2);
    const source = cells.get(0).get('source') as Y.Text;
    assert.equal(source.toString(), 'x = 1');
    source.insert(5, '00');
    await until('the write-back', () => {
      const nb = JSON.parse(fs.readFileSync(path.join(root, 'dir a', 'nb 1.ipynb'), 'utf8'));
      const src = nb.cells[0].source;
      return (Array.isArray(src) ? src.join('') : src) === 'x = 100' || undefined;
    });
    const status = await (await api('api/crdtsync/status')).json();
    const room = status.rooms.find((r: any) => r.path === 'dir a/nb 1.ipynb');
    assert.ok(room, JSON.stringify(status));
    assert.equal(room.peers, 1);
  } finally {
    provider.dispose();
  }
});

test('a deleted notebook ends in status deleted (4404), no reconnect', { skip: !hasJupyter }, async () => {
  const doc = new Y.Doc();
  const provider = new RoomProvider({
    url: roomUrl(`ws://127.0.0.1:${port}/`, 'gone.ipynb', TOKEN),
    doc,
    createWebSocket: wsFactory
  });
  const seen: string[] = [];
  provider.statusChanged.connect((_, c) => seen.push(`${c.status}:${c.closeCode ?? ''}`));
  try {
    await provider.ready;
    const r = await api('api/contents/gone.ipynb', { method: 'DELETE' });
    assert.equal(r.status, 204);
    await until('status deleted', () => provider.status === 'deleted' || undefined);
    assert.deepEqual(seen.slice(-1), ['deleted:4404']);
    await sleep(1500);
    assert.equal(provider.status, 'deleted');
  } finally {
    provider.dispose();
  }
});

test('a missing notebook is refused before any sync, and retried with backoff', { skip: !hasJupyter }, async () => {
  const provider = new RoomProvider({
    url: roomUrl(`ws://127.0.0.1:${port}/`, 'missing.ipynb', TOKEN),
    doc: new Y.Doc(),
    createWebSocket: wsFactory,
    backoff: { initialMs: 100, maxMs: 400, jitter: 0 }
  });
  const delays: number[] = [];
  provider.statusChanged.connect((_, c) => {
    if (c.status === 'offline') {
      delays.push(c.retryInMs!);
    }
  });
  try {
    await until('three failed attempts', () => delays.length >= 4 || undefined);
    assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 400]);
    assert.equal(provider.hasSynced, false);
  } finally {
    provider.dispose();
  }
});
