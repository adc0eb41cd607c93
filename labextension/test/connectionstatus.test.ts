/**
 * The status bar's words for each connection state, and when the countdown ticks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  canReconnectNow,
  describeConnection,
  IConnectionState,
  nextRefreshIn
} from '../src/connectionstatus';

const NOW = 1_000_000;

function view(
  state: Partial<IConnectionState> & Pick<IConnectionState, 'status'>
) {
  return describeConnection({ hasSynced: true, ...state }, 'nb.ipynb', NOW);
}

test('connected, connecting, reconnecting, syncing', () => {
  const connected = view({ status: 'connected' });
  assert.equal(connected.text, 'Connected');
  assert.equal(connected.tone, 'ok');
  assert.match(connected.tooltip, /nb\.ipynb is live/);

  assert.equal(
    view({ status: 'connecting', hasSynced: false }).text,
    'Connecting…'
  );
  const reconnecting = view({ status: 'connecting', hasSynced: true });
  assert.equal(reconnecting.text, 'Reconnecting…');
  assert.match(reconnecting.tooltip, /changes are kept in this window/);
  assert.equal(reconnecting.tone, 'busy');

  assert.equal(view({ status: 'syncing' }).text, 'Syncing…');
});

test('offline counts down to the next attempt, rounding up', () => {
  const offline = view({ status: 'offline', retryAt: NOW + 11_200 });
  assert.equal(offline.text, 'Offline · retry in 12 s');
  assert.equal(offline.tone, 'offline');
  assert.match(offline.tooltip, /connection to the server is lost/);
  assert.match(offline.tooltip, /Next attempt in 12 s; click to retry now/);
  assert.equal(
    view({ status: 'offline', retryAt: NOW + 1 }).text,
    'Offline · retry in 1 s'
  );
  // The attempt is due (or its time unknown): it is reconnecting.
  assert.equal(
    view({ status: 'offline', retryAt: NOW }).text,
    'Offline · reconnecting…'
  );
  assert.equal(
    view({ status: 'offline', retryAt: NOW - 5 }).text,
    'Offline · reconnecting…'
  );
  const unknown = view({ status: 'offline' });
  assert.equal(unknown.text, 'Offline · reconnecting…');
  assert.doesNotMatch(unknown.tooltip, /Next attempt/);
});

test('deleted and stale are errors that say what to do', () => {
  const deleted = view({ status: 'deleted' });
  assert.equal(deleted.text, 'Deleted');
  assert.equal(deleted.tone, 'error');
  assert.match(deleted.tooltip, /nb\.ipynb was deleted on the server/);
  const stale = view({ status: 'stale' });
  assert.equal(stale.text, 'Out of date · reload');
  assert.equal(stale.tone, 'error');
  assert.match(stale.tooltip, /Reload the page/);
  assert.equal(view({ status: 'disposed' }).text, '');
});

test('only an offline notebook reconnects on click', () => {
  const statuses = [
    'connecting',
    'syncing',
    'connected',
    'offline',
    'deleted',
    'stale',
    'disposed'
  ] as const;
  assert.deepEqual(
    statuses.filter(status => canReconnectNow({ status, hasSynced: true })),
    ['offline']
  );
});

test('the countdown refreshes when the shown second changes, and only while offline', () => {
  assert.equal(
    nextRefreshIn(
      { status: 'offline', hasSynced: true, retryAt: NOW + 11_200 },
      NOW
    ),
    200
  );
  assert.equal(
    nextRefreshIn(
      { status: 'offline', hasSynced: true, retryAt: NOW + 3_000 },
      NOW
    ),
    1000
  );
  assert.equal(
    nextRefreshIn({ status: 'offline', hasSynced: true, retryAt: NOW }, NOW),
    null
  );
  assert.equal(
    nextRefreshIn({ status: 'offline', hasSynced: true }, NOW),
    null
  );
  assert.equal(
    nextRefreshIn(
      { status: 'connected', hasSynced: true, retryAt: NOW + 5000 },
      NOW
    ),
    null
  );
  // Following the refreshes walks the text down second by second.
  const state: IConnectionState = {
    status: 'offline',
    hasSynced: true,
    retryAt: NOW + 2_500
  };
  const texts: string[] = [];
  let now = NOW;
  for (;;) {
    texts.push(describeConnection(state, 'nb.ipynb', now).text);
    const wait = nextRefreshIn(state, now);
    if (wait === null) {
      break;
    }
    now += wait;
  }
  assert.deepEqual(texts, [
    'Offline · retry in 3 s',
    'Offline · retry in 2 s',
    'Offline · retry in 1 s',
    'Offline · reconnecting…'
  ]);
});
