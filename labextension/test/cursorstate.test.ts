/**
 * Cursor state in the awareness: relative positions on a cell's Y.Text that stay on
 * their characters under concurrent edits, and the awareness state other windows read,
 * with real Yjs documents and y-protocols awareness exchanging real updates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';

import {
  DEFAULT_COLOR,
  displayName,
  remoteSelections,
  resolvePosition,
  safeColor,
  sameSelection,
  SELECTION_FIELD,
  selectionState
} from '../src/cursorstate';

/** A notebook-like document: cells as Maps with an id and a source Text. */
function notebookDoc(
  sources: Record<string, string>,
  clientID?: number
): Y.Doc {
  const doc = new Y.Doc();
  if (clientID !== undefined) {
    doc.clientID = clientID;
  }
  const cells = doc.getArray<Y.Map<unknown>>('cells');
  doc.transact(() => {
    for (const [id, source] of Object.entries(sources)) {
      const cell = new Y.Map<unknown>();
      cell.set('id', id);
      cell.set('source', new Y.Text(source));
      cells.push([cell]);
    }
  });
  return doc;
}

function sourceOf(doc: Y.Doc, id: string): Y.Text {
  const cell = doc
    .getArray<Y.Map<unknown>>('cells')
    .toArray()
    .find(c => c.get('id') === id);
  assert.ok(cell, `cell ${id}`);
  return cell.get('source') as Y.Text;
}

/** Two replicas of one document, kept apart until `sync`. */
function replicas(sources: Record<string, string>) {
  const a = notebookDoc(sources, 1);
  const b = new Y.Doc();
  b.clientID = 2;
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  const sync = () => {
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)));
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)));
  };
  return { a, b, sync };
}

/** The awareness state JSON goes through the wire as other windows receive it. */
function relay(
  from: awarenessProtocol.Awareness,
  to: awarenessProtocol.Awareness
) {
  awarenessProtocol.applyAwarenessUpdate(
    to,
    awarenessProtocol.encodeAwarenessUpdate(from, [from.clientID]),
    'remote'
  );
}

test('a position stays on its character while another replica edits before and after it', () => {
  const { a, b, sync } = replicas({ c1: 'alpha = 1\nbeta = 2' });
  const state = selectionState(sourceOf(a, 'c1'), 'c1', [
    { anchor: 5, head: 5 }
  ]);
  const json = JSON.parse(JSON.stringify(state)); // as sent in the awareness
  sourceOf(b, 'c1').insert(0, '# x\n'); // concurrent, before the cursor
  sourceOf(a, 'c1').insert(sourceOf(a, 'c1').length, '\ngamma'); // after it
  sync();
  assert.equal(sourceOf(a, 'c1').toString(), '# x\nalpha = 1\nbeta = 2\ngamma');
  for (const doc of [a, b]) {
    const text = sourceOf(doc, 'c1');
    const at = resolvePosition(text, json.ranges[0].head);
    assert.equal(at, 9);
    assert.equal(text.toString().slice(at! - 5, at!), 'alpha');
  }
});

test('a position whose characters were deleted lands where they were', () => {
  const { a, b, sync } = replicas({ c1: 'abcdef' });
  const json = selectionState(sourceOf(a, 'c1'), 'c1', [
    { anchor: 1, head: 4 }
  ]);
  sourceOf(b, 'c1').delete(2, 3); // "cde" goes: "abf"
  sync();
  const text = sourceOf(a, 'c1');
  assert.equal(text.toString(), 'abf');
  assert.equal(resolvePosition(text, json.ranges[0].anchor), 1);
  assert.equal(resolvePosition(text, json.ranges[0].head), 2);
});

test('the end of the text stays the end as text is appended', () => {
  const doc = notebookDoc({ c1: 'x = 1' });
  const text = sourceOf(doc, 'c1');
  const json = selectionState(text, 'c1', [{ anchor: 5, head: 5 }]);
  text.insert(5, '00');
  assert.equal(resolvePosition(text, json.ranges[0].head), 7);
});

test('a position in another cell, or garbage, resolves to nothing', () => {
  const doc = notebookDoc({ c1: 'one', c2: 'two' });
  const inC2 = selectionState(sourceOf(doc, 'c2'), 'c2', [
    { anchor: 1, head: 1 }
  ]);
  assert.equal(resolvePosition(sourceOf(doc, 'c1'), inC2.ranges[0].head), null);
  for (const bad of [
    null,
    'x',
    42,
    {},
    { type: 'nope' },
    { item: { client: 'a', clock: -1 } }
  ]) {
    assert.equal(
      resolvePosition(sourceOf(doc, 'c1'), bad),
      null,
      JSON.stringify(bad)
    );
  }
});

test("other windows' selections come through the awareness, in their cell only", () => {
  const { a, b, sync } = replicas({ c1: 'alpha = 1', c2: 'beta = 2' });
  const awA = new awarenessProtocol.Awareness(a);
  const awB = new awarenessProtocol.Awareness(b);
  try {
    awA.setLocalStateField('user', {
      name: 'ada',
      display_name: 'Ada L.',
      color: 'var(--jp-collaborator-color3)'
    });
    awA.setLocalStateField(
      SELECTION_FIELD,
      selectionState(sourceOf(a, 'c1'), 'c1', [
        { anchor: 0, head: 5 },
        { anchor: 8, head: 8 }
      ])
    );
    awB.setLocalStateField(
      SELECTION_FIELD,
      selectionState(sourceOf(b, 'c1'), 'c1', [{ anchor: 1, head: 1 }])
    );
    relay(awA, awB);
    sync();
    const seen = remoteSelections(
      awB.getStates(),
      awB.clientID,
      'c1',
      sourceOf(b, 'c1')
    );
    assert.deepEqual(seen, [
      {
        clientID: awA.clientID,
        name: 'Ada L.',
        color: 'var(--jp-collaborator-color3)',
        ranges: [
          { anchor: 0, head: 5 },
          { anchor: 8, head: 8 }
        ]
      }
    ]);
    // Not in the other cell, and never our own.
    assert.deepEqual(
      remoteSelections(awB.getStates(), awB.clientID, 'c2', sourceOf(b, 'c2')),
      []
    );
    assert.deepEqual(
      remoteSelections(awA.getStates(), awA.clientID, 'c1', sourceOf(a, 'c1')),
      []
    );

    // Moving to another cell replaces the selection: gone from the first cell.
    awA.setLocalStateField(
      SELECTION_FIELD,
      selectionState(sourceOf(a, 'c2'), 'c2', [{ anchor: 2, head: 2 }])
    );
    relay(awA, awB);
    assert.deepEqual(
      remoteSelections(awB.getStates(), awB.clientID, 'c1', sourceOf(b, 'c1')),
      []
    );
    assert.equal(
      remoteSelections(
        awB.getStates(),
        awB.clientID,
        'c2',
        sourceOf(b, 'c2')
      )[0].ranges[0].head,
      2
    );

    // The window leaves (its provider removes its state, the server relays that).
    awarenessProtocol.removeAwarenessStates(awA, [awA.clientID], 'dispose');
    relay(awA, awB);
    assert.deepEqual(
      remoteSelections(awB.getStates(), awB.clientID, 'c2', sourceOf(b, 'c2')),
      []
    );
  } finally {
    awA.destroy();
    awB.destroy();
  }
});

test('a selection received before the text it points into is left out until the text arrives', () => {
  const { a, b, sync } = replicas({ c1: 'abc' });
  sourceOf(a, 'c1').insert(3, 'defgh');
  const states = new Map<number, Record<string, any>>([
    [
      1,
      {
        user: { name: 'a' },
        [SELECTION_FIELD]: selectionState(sourceOf(a, 'c1'), 'c1', [
          { anchor: 6, head: 6 }
        ])
      }
    ]
  ]);
  assert.deepEqual(remoteSelections(states, 2, 'c1', sourceOf(b, 'c1')), []);
  sync();
  assert.deepEqual(
    remoteSelections(states, 2, 'c1', sourceOf(b, 'c1'))[0].ranges,
    [{ anchor: 6, head: 6 }]
  );
});

test('a cell moved (deleted and inserted again with the same id) drops old positions', () => {
  const doc = notebookDoc({ c1: 'abc', c2: 'xyz' });
  const old = selectionState(sourceOf(doc, 'c1'), 'c1', [
    { anchor: 1, head: 1 }
  ]);
  const cells = doc.getArray<Y.Map<unknown>>('cells');
  doc.transact(() => {
    cells.delete(0, 1);
    const moved = new Y.Map<unknown>();
    moved.set('id', 'c1');
    moved.set('source', new Y.Text('abc'));
    cells.push([moved]);
  });
  const states = new Map<number, Record<string, any>>([
    [7, { [SELECTION_FIELD]: old }]
  ]);
  assert.deepEqual(remoteSelections(states, 1, 'c1', sourceOf(doc, 'c1')), []);
});

test('malformed awareness states are skipped, not thrown on', () => {
  const doc = notebookDoc({ c1: 'abc' });
  const text = sourceOf(doc, 'c1');
  const good = selectionState(text, 'c1', [{ anchor: 1, head: 2 }]);
  const states = new Map<number, any>([
    [10, null],
    [11, { [SELECTION_FIELD]: 'c1' }],
    [12, { [SELECTION_FIELD]: { cell: 'c1', ranges: 'all' } }],
    [
      13,
      {
        [SELECTION_FIELD]: {
          cell: 'c1',
          ranges: [null, { anchor: 1 }, { anchor: {}, head: [] }]
        }
      }
    ],
    [14, { [SELECTION_FIELD]: null }],
    [
      15,
      {
        user: { color: 'red; background: url(http://x)', name: '' },
        [SELECTION_FIELD]: good
      }
    ],
    [
      16,
      {
        user: 'nobody',
        [SELECTION_FIELD]: {
          ...good,
          ranges: [...good.ranges, { anchor: 'x', head: 1 }]
        }
      }
    ]
  ]);
  const seen = remoteSelections(states, 1, 'c1', text);
  assert.deepEqual(
    seen.map(s => [s.clientID, s.name, s.color, s.ranges]),
    [
      [15, 'Anonymous', DEFAULT_COLOR, [{ anchor: 1, head: 2 }]],
      [16, 'Anonymous', DEFAULT_COLOR, [{ anchor: 1, head: 2 }]]
    ]
  );
});

test('colours: plain CSS colours pass, anything else gets the default', () => {
  for (const ok of [
    '#abc',
    '#a1b2c3d4',
    'teal',
    'var(--jp-collaborator-color7)',
    'rgb(1, 2, 3)',
    'hsl(120 50% 50%)'
  ]) {
    assert.equal(safeColor(ok), ok);
  }
  for (const bad of [
    'red;x:y',
    'url(http://a)',
    'var(--a); color: red',
    'expression(alert(1))',
    '',
    7,
    null
  ]) {
    assert.equal(safeColor(bad), DEFAULT_COLOR, String(bad));
  }
});

test('names: display name, else name, trimmed and bounded', () => {
  assert.equal(displayName({ display_name: ' Ada ', name: 'ada' }), 'Ada');
  assert.equal(displayName({ display_name: '', name: 'ada' }), 'ada');
  assert.equal(displayName({}), 'Anonymous');
  assert.equal(displayName({ name: 'x'.repeat(200) }).length, 80);
});

test('sameSelection compares the JSON', () => {
  const doc = notebookDoc({ c1: 'abc' });
  const text = sourceOf(doc, 'c1');
  const one = selectionState(text, 'c1', [{ anchor: 1, head: 1 }]);
  assert.equal(
    sameSelection(one, selectionState(text, 'c1', [{ anchor: 1, head: 1 }])),
    true
  );
  assert.equal(
    sameSelection(one, selectionState(text, 'c1', [{ anchor: 1, head: 2 }])),
    false
  );
  assert.equal(sameSelection(null, undefined), true);
});
