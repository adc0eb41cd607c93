/**
 * The settings document as windows write it: per-key merges of concurrent changes, text
 * diffs that keep comments, with real Yjs documents exchanging real updates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';

import {
  isConsistent,
  parseSettings,
  readPlugin,
  textDiff,
  writePlugin
} from '../src/settingsstate';

const THEMES = '@jupyterlab/apputils-extension:themes';
const BASE = '{\n    // mine\n    "theme": "JupyterLab Dark"\n}\n';

function sync(a: Y.Doc, b: Y.Doc): void {
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)));
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)));
}

function twoWindows(): [Y.Doc, Y.Doc] {
  const first = new Y.Doc();
  writePlugin(first, THEMES, BASE, null, 'test');
  const second = new Y.Doc();
  sync(first, second);
  return [first, second];
}

test('a text with comments is kept as it is, with its values', () => {
  const [, second] = twoWindows();
  const state = readPlugin(second, THEMES)!;
  assert.equal(state.raw, BASE);
  assert.deepEqual(state.values, { theme: 'JupyterLab Dark' });
  assert.ok(isConsistent(state));
});

test('two windows changing different settings at once both keep their change', () => {
  const [first, second] = twoWindows();
  writePlugin(first, THEMES, BASE.replace('Dark', 'Light'), BASE, 'a');
  writePlugin(
    second,
    THEMES,
    BASE.replace('Dark"', 'Dark",\n    "theme-scrollbars": true'),
    BASE,
    'b'
  );
  sync(first, second);
  for (const doc of [first, second]) {
    const state = readPlugin(doc, THEMES)!;
    assert.deepEqual(state.values, {
      theme: 'JupyterLab Light',
      'theme-scrollbars': true
    });
    assert.ok(isConsistent(state), state.raw);
    assert.ok(state.raw.includes('// mine'));
  }
});

test('a change made from an older text does not undo what it did not touch', () => {
  const [first, second] = twoWindows();
  const changed = BASE.replace('Dark"', 'Dark",\n    "theme-scrollbars": true');
  writePlugin(first, THEMES, changed, BASE, 'a');
  sync(first, second);
  // The second window's registry still had BASE when its user changed the theme.
  writePlugin(second, THEMES, BASE.replace('Dark', 'Light'), BASE, 'b');
  assert.deepEqual(readPlugin(second, THEMES)!.values, {
    theme: 'JupyterLab Light',
    'theme-scrollbars': true
  });
});

test('the same setting changed twice converges to one value', () => {
  const [first, second] = twoWindows();
  writePlugin(first, THEMES, BASE.replace('Dark', 'Light'), BASE, 'a');
  writePlugin(
    second,
    THEMES,
    BASE.replace('Dark', 'Dark High Contrast'),
    BASE,
    'b'
  );
  sync(first, second);
  const one = readPlugin(first, THEMES)!;
  assert.deepEqual(one.values, readPlugin(second, THEMES)!.values);
  assert.equal(one.raw, readPlugin(second, THEMES)!.raw);
  assert.ok(
    ['JupyterLab Light', 'JupyterLab Dark High Contrast'].includes(
      one.values.theme as string
    )
  );
});

test('text diffs never split a surrogate pair', () => {
  const [start, deleted, inserted] = textDiff('a\u{1F34E}b', 'a\u{1F34F}b');
  assert.deepEqual([start, deleted], [1, 2]);
  assert.equal(inserted, '\u{1F34F}');
  assert.deepEqual(textDiff('same', 'same'), [4, 0, '']);
  assert.deepEqual(textDiff('abc', 'abXc'), [2, 0, 'X']);
});

test('a settings text must be an object; blank reads as {}', () => {
  assert.deepEqual(parseSettings('  '), {});
  assert.throws(() => parseSettings('[1]'), /object/);
  assert.throws(() => parseSettings('{"a": }'));
});
