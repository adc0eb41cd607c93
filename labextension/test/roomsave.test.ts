/**
 * What a window says when its notebook is no longer at its path on the server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { missingNotebookMessage } from '../src/roomsave';

test('a deleted notebook: the message says so, and nothing about renames', () => {
  const message = missingNotebookMessage('gone.ipynb', true);
  assert.equal(
    message,
    'gone.ipynb was deleted on the server; this window no longer follows it.'
  );
});

test('a notebook gone from its path without a delete: renamed or moved, changes kept', () => {
  const message = missingNotebookMessage('old name.ipynb', false);
  assert.match(
    message,
    /^old name\.ipynb is no longer at this path on the server/
  );
  assert.match(message, /renamed, moved or deleted elsewhere/);
  assert.match(message, /your changes are kept/);
});
