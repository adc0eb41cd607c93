/** Collaborators from awareness states: JupyterLab's identity, or a stock Yjs client's. */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { collaborators } from '../src/collaborators';

test('the other windows with a user, their initials, colour and avatar', () => {
  const states = new Map<number, Record<string, any>>([
    [1, { user: { name: 'me', color: '#111' } }],
    [
      7,
      {
        user: {
          name: 'ada',
          display_name: 'Ada Lovelace',
          initials: 'AL',
          color: '#f00',
          avatar_url: 'https://example.invalid/a.png'
        }
      }
    ],
    // A stock Yjs client that sets only a name.
    [3, { user: { name: 'grace brewster hopper' } }],
    [4, { cursor: 1 }],
    [5, { user: 'not an object' }]
  ]);
  assert.deepEqual(collaborators(states, 1), [
    {
      clientID: 3,
      name: 'grace brewster hopper',
      initials: 'GH',
      color: '#888888',
      avatarUrl: null
    },
    {
      clientID: 7,
      name: 'Ada Lovelace',
      initials: 'AL',
      color: '#f00',
      avatarUrl: 'https://example.invalid/a.png'
    }
  ]);
});
