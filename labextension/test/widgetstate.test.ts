/**
 * Reading the document's `widgets` map the way the server lays it out (per model a Map
 * with `model_name`, `model_module`, `model_module_version`, `state` as a Map and
 * `buffers`), and the changes of one observeDeep call, on real Yjs documents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';

import {
  IWidgetChanges,
  KeyOwnership,
  readWidgetEntry,
  serializedState,
  updatedKeys,
  widgetChanges,
  WIDGETS_ROOT
} from '../src/widgetstate';

function entryMap(
  state: Record<string, unknown>,
  buffers: unknown[] = [],
  name = 'IntSliderModel'
): Y.Map<unknown> {
  const entry = new Y.Map<unknown>();
  entry.set('model_name', name);
  entry.set('model_module', '@jupyter-widgets/controls');
  entry.set('model_module_version', '2.0.0');
  entry.set('state', new Y.Map(Object.entries(state)));
  entry.set('buffers', buffers);
  return entry;
}

function b64(bytes: number[]): string {
  return Buffer.from(bytes).toString('base64');
}

function bytesOf(view: unknown): number[] {
  assert.ok(view instanceof DataView, `a DataView, got ${String(view)}`);
  return Array.from(
    new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
  );
}

test('reads an entry as the server writes it', () => {
  const doc = new Y.Doc();
  const widgets = doc.getMap<unknown>(WIDGETS_ROOT);
  widgets.set(
    'm1',
    entryMap({ value: 42, description: 'slider', layout: 'IPY_MODEL_l1' })
  );
  const entry = readWidgetEntry(widgets.get('m1'));
  assert.deepEqual(entry, {
    model_name: 'IntSliderModel',
    model_module: '@jupyter-widgets/controls',
    model_module_version: '2.0.0',
    state: { value: 42, description: 'slider', layout: 'IPY_MODEL_l1' },
    buffers: []
  });
  // Plain JSON (a saved widget state) reads the same.
  assert.deepEqual(readWidgetEntry(widgets.toJSON().m1), entry);
});

test('entries that cannot make a model read as null', () => {
  const doc = new Y.Doc();
  const widgets = doc.getMap<unknown>(WIDGETS_ROOT);
  widgets.set('no-name', entryMap({}, [], ''));
  const noState = entryMap({});
  widgets.set('no-state', noState);
  noState.set('state', 'oops');
  widgets.set('string', 'x');
  widgets.set('null', null);
  for (const id of ['no-name', 'no-state', 'string', 'null', 'missing']) {
    assert.equal(readWidgetEntry(widgets.get(id)), null, id);
  }
});

test('serialized state: a copy, with base64 and hex buffers put back at their paths', () => {
  const doc = new Y.Doc();
  const widgets = doc.getMap<unknown>(WIDGETS_ROOT);
  widgets.set(
    'img',
    entryMap(
      { value: null, format: 'png', nested: { parts: [0, null] } },
      [
        { path: ['value'], encoding: 'base64', data: b64([137, 80, 78, 71]) },
        { path: ['nested', 'parts', 1], encoding: 'hex', data: '00ff10' },
        { path: ['fresh', 'x'], encoding: 'base64', data: b64([1]) },
        { path: [], encoding: 'base64', data: '' }, // malformed: no path
        { path: ['bad'], encoding: 'rot13', data: 'x' } // unknown encoding
      ],
      'ImageModel'
    )
  );
  const entry = readWidgetEntry(widgets.get('img'))!;
  assert.equal(entry.buffers.length, 3);
  const state = serializedState(entry);
  assert.deepEqual(bytesOf(state.value), [137, 80, 78, 71]);
  assert.deepEqual(bytesOf((state.nested as any).parts[1]), [0, 255, 16]);
  assert.equal((state.nested as any).parts[0], 0);
  assert.deepEqual(bytesOf((state.fresh as any).x), [1]);
  assert.equal(state.format, 'png');
  (state.nested as any).parts[0] = 99;
  assert.equal(
    readWidgetEntry(widgets.get('img'))!.state.nested,
    entry.state.nested
  );
  assert.deepEqual((widgets.toJSON().img as any).state.nested.parts, [0, null]);

  // Only some attributes: their buffers come along, nothing else.
  assert.deepEqual(
    Object.keys(serializedState(entry, ['format', 'value'])).sort(),
    ['format', 'value']
  );
  assert.deepEqual(Object.keys(serializedState(entry, ['nope'])), []);
});

test('a broken base64 buffer leaves the attribute as the state has it', () => {
  const entry = readWidgetEntry({
    model_name: 'M',
    model_module: 'm',
    model_module_version: '1',
    state: { value: 'as-is' },
    buffers: [{ path: ['value'], encoding: 'base64', data: '***' }]
  })!;
  assert.equal(serializedState(entry).value, 'as-is');
});

/** Run `change` in one transaction; what the observeDeep call saw. */
function observe(widgets: Y.Map<unknown>, change: () => void): IWidgetChanges {
  let seen: IWidgetChanges | null = null;
  const observer = (events: Y.YEvent<any>[]) => {
    seen = widgetChanges(events, widgets);
  };
  widgets.observeDeep(observer);
  widgets.doc!.transact(change);
  widgets.unobserveDeep(observer);
  assert.ok(seen, 'an event');
  return seen;
}

const sorted = (s: Set<string>) => [...s].sort();

test('changes: added, removed, attributes changed', () => {
  const doc = new Y.Doc();
  const widgets = doc.getMap<unknown>(WIDGETS_ROOT);
  let changes = observe(widgets, () => {
    widgets.set('a', entryMap({ value: 1 }));
    widgets.set('b', entryMap({ value: 2 }));
  });
  assert.deepEqual(sorted(changes.added), ['a', 'b']);
  assert.equal(changes.changedKeys.size, 0);

  changes = observe(widgets, () => {
    const state = (widgets.get('a') as Y.Map<unknown>).get(
      'state'
    ) as Y.Map<unknown>;
    state.set('value', 10);
    state.set('description', 'x');
    (widgets.get('b') as Y.Map<unknown>).set('buffers', [
      { path: ['data'], encoding: 'base64', data: '' }
    ]);
  });
  assert.deepEqual(changes.added.size + changes.removed.size, 0);
  assert.deepEqual(sorted(changes.changedKeys.get('a')!), [
    'description',
    'value'
  ]);
  assert.deepEqual(sorted(changes.changedKeys.get('b')!), ['data']);

  changes = observe(widgets, () => {
    (widgets.get('b') as Y.Map<unknown>).set(
      'state',
      new Y.Map(Object.entries({ value: 3, max: 9 }))
    );
    widgets.delete('a');
  });
  assert.deepEqual(sorted(changes.removed), ['a']);
  assert.deepEqual(sorted(changes.changedKeys.get('b')!), ['max', 'value']);
  assert.equal(changes.changedKeys.has('a'), false);
});

test('changes: a widget added and changed in one transaction is only added; re-added after removal too', () => {
  const doc = new Y.Doc();
  const widgets = doc.getMap<unknown>(WIDGETS_ROOT);
  let changes = observe(widgets, () => {
    const entry = entryMap({ value: 1 });
    widgets.set('a', entry);
    (entry.get('state') as Y.Map<unknown>).set('value', 5);
  });
  assert.deepEqual(sorted(changes.added), ['a']);
  assert.equal(changes.changedKeys.size, 0);
  changes = observe(widgets, () => {
    widgets.delete('a');
    widgets.set('a', entryMap({ value: 7 }));
  });
  assert.deepEqual(sorted(changes.added), ['a']);
  assert.deepEqual(sorted(changes.removed), []);
});

test('changes from a remote replica (as the server sends them) read the same', () => {
  const server = new Y.Doc();
  const window = new Y.Doc();
  const widgets = window.getMap<unknown>(WIDGETS_ROOT);
  const seen: IWidgetChanges[] = [];
  widgets.observeDeep(events => seen.push(widgetChanges(events, widgets)));
  const send = (f: () => void) => {
    const before = Y.encodeStateVector(window);
    server.transact(f);
    Y.applyUpdate(window, Y.encodeStateAsUpdate(server, before));
  };
  const remote = server.getMap<unknown>(WIDGETS_ROOT);
  send(() => remote.set('s', entryMap({ value: 7 })));
  send(() =>
    ((remote.get('s') as Y.Map<unknown>).get('state') as Y.Map<unknown>).set(
      'value',
      42
    )
  );
  send(() => remote.delete('s'));
  assert.deepEqual(
    seen.map(c => [
      sorted(c.added),
      sorted(c.removed),
      [...c.changedKeys].map(([k, v]) => [k, sorted(v)])
    ]),
    [
      [['s'], [], []],
      [[], [], [['s', ['value']]]],
      [[], ['s'], []]
    ]
  );
});

test('updatedKeys: the attributes of update and echo_update messages', () => {
  assert.deepEqual(
    updatedKeys({
      method: 'update',
      state: { value: 1, max: 2 },
      buffer_paths: [['data', 0]]
    }),
    ['value', 'max', 'data']
  );
  assert.deepEqual(
    updatedKeys({ method: 'echo_update', state: { value: 3 } }),
    ['value']
  );
  assert.deepEqual(updatedKeys({ method: 'custom', content: {} }), []);
  assert.deepEqual(updatedKeys({ method: 'update' }), []);
  assert.deepEqual(updatedKeys(null), []);
});

test('ownership: the document drives an attribute until the kernel or the window claims it', () => {
  const ownership = new KeyOwnership();
  assert.equal(ownership.documentDrives('m', 'value'), true);
  ownership.claim('m', ['value']);
  assert.equal(ownership.documentDrives('m', 'value'), false);
  assert.equal(ownership.documentDrives('m', 'description'), true);
  assert.equal(ownership.documentDrives('other', 'value'), true);
  ownership.forget('m');
  assert.equal(ownership.documentDrives('m', 'value'), true);
});
