/**
 * Saving through the room and running cells on its kernel actor, against a real
 * `jupyter server` with jupyter-crdt-sync and a real ipykernel (skipped without
 * `jupyter` on PATH). The server never writes a file on its own here (long save
 * delays): only the save request does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import WebSocket from 'ws';
import * as Y from 'yjs';

import {
  ExecutionBatcher,
  ExecutionOutcome,
  requestExecution,
  waitForExecution
} from '../src/executionclient';
import { IWebSocketLike, RoomProvider, roomUrl } from '../src/provider';
import { RoomApiError } from '../src/roomapi';
import { saveThroughRoom } from '../src/roomsave';
import { hasJupyter, JupyterServer, notebook, until } from './jupyter';

const server = new JupyterServer();
const KERNEL_TIMEOUT = 90000;

before(async () => {
  if (hasJupyter) {
    await server.start([
      '--CRDTSync.save_delay=600',
      '--CRDTSync.save_max_delay=600'
    ]);
  }
});

after(() => server.stop());

const providers: RoomProvider[] = [];
after(() => providers.forEach(p => p.dispose()));

async function open(
  path: string
): Promise<{ provider: RoomProvider; cells: Y.Array<Y.Map<any>> }> {
  const doc = new Y.Doc();
  const provider = new RoomProvider({
    url: roomUrl(`ws://127.0.0.1:${server.port}/`, path, server.token),
    doc,
    createWebSocket: url => new WebSocket(url) as unknown as IWebSocketLike
  });
  providers.push(provider);
  await provider.ready;
  return { provider, cells: doc.getArray<Y.Map<any>>('cells') };
}

function sources(file: string): string[] {
  return JSON.parse(fs.readFileSync(file, 'utf8')).cells.map((c: any) =>
    Array.isArray(c.source) ? c.source.join('') : c.source
  );
}

function source(cell: Y.Map<any>): Y.Text {
  return cell.get('source') as Y.Text;
}

const skip = !hasJupyter;

test(
  'save: the edits made just before reach the file, the answer has its hash',
  { skip },
  async () => {
    const file = server.write(
      'dir a/save #1.ipynb',
      notebook(['a = 1', 'b = 2'])
    );
    const { provider, cells } = await open('dir a/save #1.ipynb');
    for (let i = 0; i < 50; i++) {
      source(cells.get(1)).insert(source(cells.get(1)).length, `${i % 10}`);
    }
    source(cells.get(0)).insert(0, '# edited\n');
    // No wait: the save itself makes sure the room has every edit first.
    const model = await saveThroughRoom({
      path: 'dir a/save #1.ipynb',
      provider,
      serverSettings: server.settings
    });
    assert.deepEqual(sources(file), [
      '# edited\na = 1',
      'b = 2' + '0123456789'.repeat(5)
    ]);
    assert.equal(model.path, 'dir a/save #1.ipynb');
    assert.equal(model.name, 'save #1.ipynb');
    assert.equal(model.type, 'notebook');
    assert.equal(model.content, null);
    assert.equal(model.hash_algorithm, 'sha256');
    assert.equal(
      model.hash,
      createHash('sha256').update(fs.readFileSync(file)).digest('hex')
    );
    const contents = await (
      await server.fetch('api/contents/dir%20a/save%20%231.ipynb?content=0')
    ).json();
    assert.equal(model.last_modified, contents.last_modified);
  }
);

test(
  'save: a cell the file cannot hold is left out, the rest is saved; fixed, it is saved',
  { skip },
  async () => {
    const file = server.write('invalid.ipynb', notebook(['x', 'z']));
    const { provider, cells } = await open('invalid.ipynb');
    const cell = cells.get(0);
    source(cell).insert(1, 'y');
    source(cells.get(1)).insert(1, 'w');
    // Valid for the CRDT, refused by nbformat's schema: that cell cannot be written, the
    // others are (the room keeps it and the server's status names it).
    (cell.get('metadata') as Y.Map<any>).set('collapsed', 'not a boolean');
    const save = () =>
      saveThroughRoom({
        path: 'invalid.ipynb',
        provider,
        serverSettings: server.settings
      });
    await save();
    assert.deepEqual(sources(file), ['zw']);
    (cell.get('metadata') as Y.Map<any>).delete('collapsed');
    await save();
    assert.deepEqual(sources(file), ['xy', 'zw']);
  }
);

test(
  'save: offline, it fails at once and says the changes are kept',
  { skip },
  async () => {
    // A room URL where nothing listens: the provider stays offline.
    const provider = new RoomProvider({
      url: roomUrl('ws://127.0.0.1:9/', 'x.ipynb'),
      doc: new Y.Doc(),
      createWebSocket: url => new WebSocket(url) as unknown as IWebSocketLike
    });
    providers.push(provider);
    await until('offline', () => provider.status === 'offline');
    const started = Date.now();
    await assert.rejects(
      saveThroughRoom({
        path: 'x.ipynb',
        provider,
        serverSettings: server.settings
      }),
      /^Error: Not saved: the notebook is offline .*changes are kept in this window/
    );
    assert.ok(Date.now() - started < 1000);
  }
);

async function outcomes(
  cells: Y.Array<Y.Map<any>>,
  executions: { cell_id: string; msg_id: string }[]
): Promise<ExecutionOutcome[]> {
  const byId = new Map(cells.toArray().map(c => [c.get('id') as string, c]));
  return Promise.all(
    executions.map(e => waitForExecution(byId.get(e.cell_id)!, e.msg_id))
  );
}

function outputText(cell: Y.Map<any>): string {
  return (cell.get('outputs') as Y.Array<any>)
    .toArray()
    .map(o => {
      const output = o instanceof Y.Map ? o.toJSON() : o;
      return output.text ?? output.data?.['text/plain'] ?? output.ename;
    })
    .join('|');
}

test(
  'execute: the cells run in order on the kernel actor, outputs come through the document',
  { skip, timeout: KERNEL_TIMEOUT },
  async () => {
    server.write('run.ipynb', notebook(['print("one")', 'x = 41', 'x + 1']));
    const { provider, cells } = await open('run.ipynb');
    // As JupyterLab's Run All asks: every cell in the same turn.
    const batcher = new ExecutionBatcher(
      ids => requestExecution(server.settings, 'run.ipynb', ids),
      () => provider.whenApplied()
    );
    const executions = await Promise.all(
      ['cell-0', 'cell-1', 'cell-2'].map(id => batcher.request(id))
    );
    assert.deepEqual(await outcomes(cells, executions), ['ok', 'ok', 'ok']);
    const all = cells.toArray();
    assert.deepEqual(
      all.map(c => c.get('execution_count')),
      [1, 2, 3]
    );
    assert.deepEqual(
      all.map(c => c.get('execution_state')),
      ['idle', 'idle', 'idle']
    );
    assert.equal(outputText(all[0]), 'one\n');
    assert.equal(outputText(all[2]), '42');
    const status = await (await server.fetch('api/crdtsync/status')).json();
    const room = status.rooms.find((r: any) => r.path === 'run.ipynb');
    assert.equal(room.kernel.name, 'python3');
  }
);

test(
  'execute: the source that runs is the one just typed; an error stops the rest',
  { skip, timeout: KERNEL_TIMEOUT },
  async () => {
    server.write('edit-run.ipynb', notebook(['', 'print("never")']));
    const { provider, cells } = await open('edit-run.ipynb');
    const batcher = new ExecutionBatcher(
      ids => requestExecution(server.settings, 'edit-run.ipynb', ids),
      () => provider.whenApplied()
    );
    source(cells.get(0)).insert(0, 'print("typed"); 1 / 0');
    const executions = await Promise.all([
      batcher.request('cell-0'),
      batcher.request('cell-1')
    ]);
    assert.deepEqual(await outcomes(cells, executions), ['error', 'aborted']);
    assert.equal(outputText(cells.get(0)), 'typed\n|ZeroDivisionError');
    assert.equal(outputText(cells.get(1)), '');
    assert.equal(cells.get(1).get('execution_count'), null);
  }
);

test("execute: refusals carry the server's reason", { skip }, async () => {
  server.write('refuse.ipynb', notebook(['# Title'], 'markdown'));
  await assert.rejects(
    requestExecution(server.settings, 'refuse.ipynb', ['cell-0']),
    (error: unknown) => {
      assert.ok(error instanceof RoomApiError);
      assert.equal(error.status, 400);
      assert.match(
        error.message,
        /^The cells were not run: Cell 'cell-0' is a markdown cell/
      );
      return true;
    }
  );
  await assert.rejects(
    requestExecution(server.settings, 'refuse.ipynb', ['no-such-cell']),
    /No cell with id 'no-such-cell'/
  );
  await assert.rejects(
    requestExecution(server.settings, 'missing.ipynb', ['cell-0']),
    (error: unknown) => {
      assert.ok(error instanceof RoomApiError);
      assert.equal(error.status, 404);
      return true;
    }
  );
});
