/**
 * Execution requests: their body, their errors, batching and order, and following an
 * execution in a Yjs document laid out as the server writes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';

import {
  ExecutionBatcher,
  executeBody,
  executeErrorMessage,
  executionRecord,
  IExecution,
  waitForExecution
} from '../src/executionclient';
import { encodePath, roomApiUrl } from '../src/roomapi';

const tick = () => new Promise<void>(resolve => setTimeout(resolve, 0));

test('request URL and body', () => {
  assert.equal(
    roomApiUrl('http://h/base/', 'execute', 'dir a/nb #1.ipynb'),
    'http://h/base/api/crdtsync/execute/dir%20a/nb%20%231.ipynb'
  );
  assert.equal(
    roomApiUrl('http://h/', 'save', '/x//y.ipynb'),
    'http://h/api/crdtsync/save/x/y.ipynb'
  );
  assert.equal(encodePath('a/ü?.ipynb'), 'a/%C3%BC%3F.ipynb');
  assert.deepEqual(executeBody(['c1']), { cell_id: 'c1' });
  assert.deepEqual(executeBody(['c1', 'c2']), { cell_ids: ['c1', 'c2'] });
  assert.throws(() => executeBody([]), /no cells/);
});

test('error messages say why the cells did not run', () => {
  assert.match(
    executeErrorMessage(0, 'Failed to fetch'),
    /cannot be reached \(Failed to fetch\)/
  );
  assert.equal(
    executeErrorMessage(
      400,
      "The notebook's kernel 'julia' is not installed on the server"
    ),
    "The cells were not run: The notebook's kernel 'julia' is not installed on the server"
  );
  assert.match(executeErrorMessage(403, 'Forbidden'), /may not run code/);
  assert.match(
    executeErrorMessage(404, "No cell with id 'x'"),
    /No cell with id 'x'/
  );
  assert.match(executeErrorMessage(500, 'boom'), /answered 500 \(boom\)/);
});

function fakeServer() {
  const requests: string[][] = [];
  let next = 0;
  const send = async (cellIds: string[]): Promise<IExecution[]> => {
    requests.push(cellIds);
    await tick();
    return cellIds.map(cell_id => ({ cell_id, msg_id: `m${next++}` }));
  };
  return { requests, send };
}

test('cells asked for together go in one request, in order; later ones wait their turn', async () => {
  const server = fakeServer();
  let applied = 0;
  const batcher = new ExecutionBatcher(server.send, async () => {
    applied++;
  });
  const first = ['a', 'b', 'c'].map(id => batcher.request(id));
  await tick();
  // Asked while the first request is under way: the next request, after it.
  const second = ['d', 'e'].map(id => batcher.request(id));
  const executions = await Promise.all([...first, ...second]);
  assert.deepEqual(server.requests, [
    ['a', 'b', 'c'],
    ['d', 'e']
  ]);
  assert.deepEqual(
    executions.map(e => `${e.cell_id}:${e.msg_id}`),
    ['a:m0', 'b:m1', 'c:m2', 'd:m3', 'e:m4']
  );
  assert.equal(applied, 2);
});

test('a refused request fails every cell of its batch with the same error, and the next goes on', async () => {
  let calls = 0;
  const refusal = new Error('The cells were not run: no kernel');
  const batcher = new ExecutionBatcher(async ids => {
    if (calls++ === 0) {
      throw refusal;
    }
    return ids.map(cell_id => ({ cell_id, msg_id: 'ok' }));
  });
  const failed = await Promise.allSettled([
    batcher.request('a'),
    batcher.request('b')
  ]);
  assert.deepEqual(
    failed.map(r => (r.status === 'rejected' ? r.reason : r.status)),
    [refusal, refusal]
  );
  assert.equal((await batcher.request('c')).msg_id, 'ok');
});

test('nothing is sent when the room cannot confirm the edits first', async () => {
  const server = fakeServer();
  const offline = new Error('offline');
  const batcher = new ExecutionBatcher(server.send, () =>
    Promise.reject(offline)
  );
  await assert.rejects(batcher.request('a'), offline);
  assert.deepEqual(server.requests, []);
});

test('an answer that misses a cell fails that cell only', async () => {
  const batcher = new ExecutionBatcher(async () => [
    { cell_id: 'a', msg_id: 'm' }
  ]);
  const [a, b] = await Promise.allSettled([
    batcher.request('a'),
    batcher.request('b')
  ]);
  assert.equal(a.status, 'fulfilled');
  assert.equal(b.status, 'rejected');
  assert.match(
    (b as PromiseRejectedResult).reason.message,
    /did not queue cell b/
  );
});

/** A notebook document as the server lays it out, with one code cell. */
function notebookDoc() {
  const doc = new Y.Doc();
  const cells = doc.getArray<Y.Map<any>>('cells');
  const cell = new Y.Map<any>();
  cell.set('id', 'c');
  cell.set('cell_type', 'code');
  cell.set('metadata', new Y.Map());
  cells.push([cell]);
  const record = (value: object) =>
    doc.transact(() =>
      (cell.get('metadata') as Y.Map<any>).set('crdtsync', value)
    );
  return { doc, cells, cell, record };
}

test('an execution ends with the status the room records', async () => {
  for (const status of ['ok', 'error', 'aborted'] as const) {
    const { cell, record } = notebookDoc();
    const outcome = waitForExecution(cell, 'm1');
    record({ msg_id: 'm1' });
    cell.set('execution_state', 'running');
    record({ msg_id: 'm1', status });
    assert.equal(await outcome, status);
  }
});

test('the record of an earlier execution is not taken for this one', async () => {
  const { cell, record } = notebookDoc();
  record({ msg_id: 'old', status: 'ok' });
  assert.deepEqual(executionRecord(cell), { msg_id: 'old', status: 'ok' });
  let outcome: string | undefined;
  void waitForExecution(cell, 'new').then(o => (outcome = o));
  cell.set('execution_state', 'queued'); // some other change first
  await tick();
  assert.equal(outcome, undefined);
  record({ msg_id: 'new', status: 'ok' });
  await tick();
  assert.equal(outcome, 'ok');
});

test('run again by another window before this one saw its own: superseded', async () => {
  const { cell, record } = notebookDoc();
  record({ msg_id: 'old', status: 'ok' });
  const outcome = waitForExecution(cell, 'mine');
  record({ msg_id: 'theirs' });
  assert.equal(await outcome, 'superseded');
  // Seen first, then replaced: superseded too.
  const second = notebookDoc();
  const outcome2 = waitForExecution(second.cell, 'mine');
  second.record({ msg_id: 'mine' });
  second.record({ msg_id: 'theirs' });
  assert.equal(await outcome2, 'superseded');
});

test('a deleted cell, and a wait that is stopped, end the wait', async () => {
  const { cells, cell, record } = notebookDoc();
  const outcome = waitForExecution(cell, 'm1');
  record({ msg_id: 'm1' });
  cells.delete(0, 1);
  assert.equal(await outcome, 'deleted');

  const other = notebookDoc();
  let stop!: () => void;
  const stopped = waitForExecution(
    other.cell,
    'm1',
    new Promise<void>(r => (stop = r))
  );
  stop();
  assert.equal(await stopped, 'stopped');
  // A cell that is already gone.
  assert.equal(await waitForExecution(new Y.Map(), 'm1'), 'deleted');
});

test('changes arriving as remote updates are seen too', async () => {
  const server = notebookDoc();
  const window = new Y.Doc();
  Y.applyUpdate(window, Y.encodeStateAsUpdate(server.doc));
  server.doc.on('update', (u: Uint8Array) => Y.applyUpdate(window, u));
  const cell = window.getArray<Y.Map<any>>('cells').get(0);
  const outcome = waitForExecution(cell, 'm1');
  server.record({ msg_id: 'm1' });
  server.record({ msg_id: 'm1', status: 'error' });
  assert.equal(await outcome, 'error');
});
