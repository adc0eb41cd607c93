/**
 * The notice shown when jupyter-collaboration is installed too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { coexistenceMessage } from '../src/coexistence';

test('no notice without jupyter-collaboration', () => {
  assert.equal(
    coexistenceMessage({ frontEnd: false, serverExtension: false, oursBindsNotebooks: true }),
    null
  );
});

test('the notice says which one binds notebooks and how to keep one', () => {
  const ours = coexistenceMessage({ frontEnd: true, serverExtension: true, oursBindsNotebooks: true })!;
  assert.match(ours, /Notebooks open with jupyter-crdt-sync; jupyter-collaboration is not used/);
  assert.match(ours, /`pip uninstall jupyter-collaboration`/);
  assert.match(ours, /`jupyter labextension disable` and `jupyter server extension disable`/);
  const theirs = coexistenceMessage({ frontEnd: true, serverExtension: false, oursBindsNotebooks: false })!;
  assert.match(theirs, /Notebooks open with jupyter-collaboration; jupyter-crdt-sync is not used/);
  // Its server extension alone (front-end disabled) is worth a word too.
  assert.notEqual(
    coexistenceMessage({ frontEnd: false, serverExtension: true, oursBindsNotebooks: true }),
    null
  );
});
