/**
 * The History panel's client (src/historyclient.ts) against a real `jupyter server` with
 * jupyter-crdt-sync (skipped without `jupyter` on PATH): list, read with `diff=now`,
 * restore a deleted cell seen by a window's document and the file, and the server's
 * messages in the errors. Plus the list line's formatting.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import WebSocket from 'ws';
import * as Y from 'yjs';

import {
  describeVersion,
  formatTime,
  listVersions,
  readVersion,
  restoreVersion
} from '../src/historyclient';
import { IWebSocketLike, RoomProvider, roomUrl } from '../src/provider';
import { RoomApiError } from '../src/roomapi';
import { hasJupyter, JupyterServer, notebook, until } from './jupyter';

const server = new JupyterServer();
const skip = !hasJupyter;

before(async () => {
  if (hasJupyter) {
    await server.start([
      '--CRDTSync.save_delay=0.2',
      '--CRDTSync.save_max_delay=1'
    ]);
  }
});

after(() => server.stop());

const providers: RoomProvider[] = [];
after(() => providers.forEach(p => p.dispose()));

async function open(path: string): Promise<Y.Array<Y.Map<any>>> {
  const doc = new Y.Doc();
  const provider = new RoomProvider({
    url: roomUrl(`ws://127.0.0.1:${server.port}/`, path, server.token),
    doc,
    createWebSocket: url => new WebSocket(url) as unknown as IWebSocketLike
  });
  providers.push(provider);
  await provider.ready;
  return doc.getArray<Y.Map<any>>('cells');
}

const ids = (cells: Y.Array<Y.Map<any>>) =>
  cells.toArray().map(c => c.get('id') as string);

function fileSources(file: string): string[] {
  return JSON.parse(fs.readFileSync(file, 'utf8')).cells.map((c: any) =>
    Array.isArray(c.source) ? c.source.join('') : c.source
  );
}

test(
  'a deleted cell: listed, marked removed against now, restored to the document and the file',
  { skip },
  async () => {
    const path = 'dir x/hist #1.ipynb';
    const file = server.write(path, notebook(['a = 1', 'b = 2', 'c = 3']));
    const cells = await open(path);
    const first = await until('the first version', async () => {
      const h = await listVersions(path, server.settings);
      return h.versions.length >= 1 && h;
    });
    assert.equal(first.path, path);
    assert.equal(first.versions[0].cells_changed, 3);
    const before = first.versions[first.versions.length - 1].version;
    const deletedId = ids(cells)[1];
    cells.delete(1, 1);
    await until(
      'the deletion in the file',
      () => fileSources(file).length === 2
    );
    const after = await until('a version without the cell', async () => {
      const h = await listVersions(path, server.settings);
      return h.versions[h.versions.length - 1].version > before && h;
    });
    assert.ok(after.versions.length >= 2);

    const read = await readVersion(path, before, server.settings, 'now');
    assert.equal(read.version, before);
    assert.deepEqual(
      read.content.cells.map((c: any) => c.source),
      ['a = 1', 'b = 2', 'c = 3']
    );
    assert.deepEqual(read.cell_ids, ['cell-0', 'cell-1', 'cell-2']);
    assert.equal(read.diff?.to, 'now');
    assert.deepEqual(
      read.diff?.cells.map(c => [c.id, c.change]),
      [[deletedId, 'removed']]
    );
    // Without the query: no comparison.
    assert.equal(
      (await readVersion(path, before, server.settings)).diff,
      undefined
    );

    const result = await restoreVersion(path, before, server.settings, [
      deletedId
    ]);
    assert.equal(result.restored_from, before);
    assert.deepEqual(ids(cells), ['cell-0', 'cell-1', 'cell-2']);
    assert.equal((cells.get(1).get('source') as Y.Text).toString(), 'b = 2');
    await until(
      'the restored cell in the file',
      () => fileSources(file).length === 3
    );
    assert.deepEqual(fileSources(file), ['a = 1', 'b = 2', 'c = 3']);
    const listed = await listVersions(path, server.settings);
    const newest = listed.versions[listed.versions.length - 1];
    assert.equal(newest.version, result.version);
    assert.equal(newest.restored_from, before);
    // Against now, the restored version no longer differs.
    assert.deepEqual(
      (await readVersion(path, before, server.settings, 'now')).diff?.cells,
      []
    );
  }
);

test("errors carry the server's status and message", { skip }, async () => {
  const path = 'hist-errors.ipynb';
  server.write(path, notebook(['x = 1']));
  await open(path);
  const { versions } = await until('a version', async () => {
    const h = await listVersions(path, server.settings);
    return h.versions.length > 0 && h;
  });
  const version = versions[0].version;
  await assert.rejects(
    readVersion(path, 9999, server.settings, 'now'),
    (error: RoomApiError) => {
      assert.equal(error.status, 404);
      assert.ok(error.serverMessage.length > 0);
      assert.ok(error.message.includes(error.serverMessage), error.message);
      return true;
    }
  );
  await assert.rejects(
    restoreVersion(path, version, server.settings, ['no-such-cell']),
    (error: RoomApiError) => {
      assert.equal(error.status, 400);
      assert.match(error.message, /restore the cell from version/);
      assert.ok(error.message.includes(error.serverMessage), error.message);
      return true;
    }
  );
  await assert.rejects(
    listVersions('nowhere.ipynb', server.settings),
    (error: RoomApiError) => {
      assert.equal(error.status, 404);
      return true;
    }
  );
});

test('a list line: time, authors, cells changed, what a restore brought back', () => {
  const now = new Date(2026, 11, 3, 9, 0, 0);
  const today = new Date(2026, 11, 3, 8, 10, 40).toISOString();
  const earlier = new Date(2026, 10, 30, 7, 5, 1).toISOString();
  assert.equal(formatTime(today, now), '08:10:40');
  assert.equal(formatTime(earlier, now), '2026-11-30 07:05:01');
  assert.equal(formatTime('not a time', now), 'not a time');
  assert.equal(
    describeVersion(
      { version: 1, time: today, authors: [], cells_changed: 4 },
      now
    ),
    '08:10:40 · — · 4 cells changed'
  );
  assert.equal(
    describeVersion(
      {
        version: 3,
        time: today,
        authors: ['alice', 'server'],
        cells_changed: 1,
        restored_from: 1,
        restored_cells: ['c1']
      },
      now
    ),
    '08:10:40 · alice, server · 1 cell changed · restored a cell from 1'
  );
  assert.equal(
    describeVersion(
      {
        version: 5,
        time: today,
        authors: ['dd88fefdac3d4a3e82ddf01dbec4b1f2', 'carol'],
        cells_changed: 1
      },
      now
    ),
    '08:10:40 · dd88fefd…, carol · 1 cell changed'
  );
  assert.equal(
    describeVersion(
      {
        version: 4,
        time: earlier,
        authors: ['bob'],
        cells_changed: 2,
        restored_from: 2
      },
      now
    ),
    '2026-11-30 07:05:01 · bob · 2 cells changed · restored from 2'
  );
});
