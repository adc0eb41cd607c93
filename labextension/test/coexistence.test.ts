/**
 * The notice shown when jupyter-collaboration is installed too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { coexistenceNotice } from '../src/coexistence';

test('no notice without jupyter-collaboration', () => {
  assert.equal(
    coexistenceNotice({
      frontEnd: false,
      serverExtension: false,
      oursBindsNotebooks: true
    }),
    null
  );
});

test('the notice says which one binds notebooks, and the details how to keep one', () => {
  const ours = coexistenceNotice({
    frontEnd: true,
    serverExtension: true,
    oursBindsNotebooks: true
  })!;
  assert.equal(
    ours.summary,
    'jupyter-collaboration is installed too. Notebooks open with jupyter-crdt-sync, not jupyter-collaboration.'
  );
  // JupyterLab cuts notifications at 140 characters.
  assert.ok(ours.summary.length <= 140);
  // jupyter-collaboration 3+ is a metapackage: uninstalling it alone leaves its parts.
  assert.match(
    ours.details,
    /`pip uninstall jupyter-collaboration jupyter-collaboration-ui jupyter-docprovider jupyter-server-ydoc`/
  );
  assert.match(
    ours.details,
    /`@jupyter\/docprovider-extension @jupyter\/collaboration-extension`/
  );
  assert.match(
    ours.details,
    /`jupyter labextension disable` and `jupyter server extension disable`/
  );
  assert.match(ours.details, /`jupyter_server_ydoc`/);
  const theirs = coexistenceNotice({
    frontEnd: true,
    serverExtension: false,
    oursBindsNotebooks: false
  })!;
  assert.match(
    theirs.summary,
    /Notebooks open with jupyter-collaboration, not jupyter-crdt-sync/
  );
  assert.ok(theirs.summary.length <= 140);
  // Its server extension alone (front-end disabled) is worth a word too.
  assert.notEqual(
    coexistenceNotice({
      frontEnd: false,
      serverExtension: true,
      oursBindsNotebooks: true
    }),
    null
  );
});
