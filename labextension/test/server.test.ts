/**
 * RoomProvider against a real `jupyter server` running jupyter-crdt-sync (needs the
 * Python package installed: `pip install -e .` at the repository root).
 *
 * Skipped when `jupyter` is not on PATH.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import WebSocket from 'ws';
import * as Y from 'yjs';

import { IWebSocketLike, RoomProvider, roomUrl } from '../src/provider';
import { hasJupyter, JupyterServer, notebook, sleep, until } from './jupyter';

const server = new JupyterServer();
let nb1 = '';

const wsFactory = (url: string) =>
  new WebSocket(url) as unknown as IWebSocketLike;

before(async () => {
  if (!hasJupyter) {
    return;
  }
  await server.start([
    '--CRDTSync.save_delay=0.2',
    '--CRDTSync.save_max_delay=1'
  ]);
  nb1 = server.write('dir a/nb 1.ipynb', notebook(['x = 1', 'y = 2']));
  server.write('gone.ipynb', notebook(['z']));
});

after(() => server.stop());

test(
  'syncs a notebook with the room, edits reach the file',
  { skip: !hasJupyter },
  async () => {
    const doc = new Y.Doc();
    const provider = new RoomProvider({
      url: roomUrl(
        `ws://127.0.0.1:${server.port}/`,
        'dir a/nb 1.ipynb',
        server.token
      ),
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
        const nb = JSON.parse(fs.readFileSync(nb1, 'utf8'));
        const src = nb.cells[0].source;
        return (
          (Array.isArray(src) ? src.join('') : src) === 'x = 100' || undefined
        );
      });
      const status = await (await server.fetch('api/crdtsync/status')).json();
      const room = status.rooms.find((r: any) => r.path === 'dir a/nb 1.ipynb');
      assert.ok(room, JSON.stringify(status));
      assert.equal(room.peers, 1);
    } finally {
      provider.dispose();
    }
  }
);

test(
  'a deleted notebook ends in status deleted (4404), no reconnect',
  { skip: !hasJupyter },
  async () => {
    const doc = new Y.Doc();
    const provider = new RoomProvider({
      url: roomUrl(
        `ws://127.0.0.1:${server.port}/`,
        'gone.ipynb',
        server.token
      ),
      doc,
      createWebSocket: wsFactory
    });
    const seen: string[] = [];
    provider.statusChanged.connect((_, c) =>
      seen.push(`${c.status}:${c.closeCode ?? ''}`)
    );
    try {
      await provider.ready;
      const r = await server.fetch('api/contents/gone.ipynb', {
        method: 'DELETE'
      });
      assert.equal(r.status, 204);
      await until(
        'status deleted',
        () => provider.status === 'deleted' || undefined
      );
      assert.deepEqual(seen.slice(-1), ['deleted:4404']);
      await sleep(1500);
      assert.equal(provider.status, 'deleted');
    } finally {
      provider.dispose();
    }
  }
);

test(
  'a missing notebook is refused before any sync, and retried with backoff',
  { skip: !hasJupyter },
  async () => {
    const provider = new RoomProvider({
      url: roomUrl(
        `ws://127.0.0.1:${server.port}/`,
        'missing.ipynb',
        server.token
      ),
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
      await until(
        'three failed attempts',
        () => delays.length >= 4 || undefined
      );
      assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 400]);
      assert.equal(provider.hasSynced, false);
    } finally {
      provider.dispose();
    }
  }
);
