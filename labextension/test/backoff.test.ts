import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  backoffDelay,
  closeAction,
  CloseCode,
  DEFAULT_BACKOFF
} from '../src/backoff';
import { roomUrl } from '../src/provider';

const noJitter = { jitter: 0 };

test('backoff grows exponentially from initialMs and is capped at maxMs', () => {
  const delays = [0, 1, 2, 3, 4, 5, 6, 7, 8].map(a =>
    backoffDelay(a, noJitter)
  );
  assert.deepEqual(
    delays,
    [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
  );
  assert.equal(backoffDelay(1e9, noJitter), DEFAULT_BACKOFF.maxMs);
  assert.equal(backoffDelay(-3, noJitter), 500);
  assert.equal(
    backoffDelay(2, { initialMs: 100, factor: 3, maxMs: 1000, jitter: 0 }),
    900
  );
  assert.equal(
    backoffDelay(3, { initialMs: 100, factor: 3, maxMs: 1000, jitter: 0 }),
    1000
  );
});

test('jitter draws the delay from [d * (1 - jitter), d]', () => {
  assert.equal(
    backoffDelay(3, {}, () => 0),
    4000
  );
  assert.equal(
    backoffDelay(3, {}, () => 0.999999),
    2000
  );
  assert.equal(
    backoffDelay(3, {}, () => 0.5),
    3000
  );
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(10, {});
    assert.ok(d >= 15000 && d <= 30000, `delay ${d}`);
  }
  // Out-of-range inputs are clamped.
  assert.equal(
    backoffDelay(0, { jitter: 5 }, () => 2),
    0
  );
});

test('close codes map to actions', () => {
  assert.equal(closeAction(CloseCode.roomClosed), 'reconnect-now');
  assert.equal(closeAction(CloseCode.tooSlow), 'reconnect');
  assert.equal(closeAction(CloseCode.deleted), 'deleted');
  assert.equal(closeAction(CloseCode.stale), 'stale');
  assert.equal(closeAction(1006), 'reconnect');
  assert.equal(closeAction(1011), 'reconnect');
  assert.equal(closeAction(1000), 'reconnect');
});

test('roomUrl percent-encodes each path segment and keeps /', () => {
  assert.equal(
    roomUrl('ws://h:8888/base/', 'dir a/nb#1?.ipynb'),
    'ws://h:8888/base/api/crdtsync/room/dir%20a/nb%231%3F.ipynb'
  );
  assert.equal(
    roomUrl('ws://h/', '/x/ü.ipynb', 't&k'),
    'ws://h/api/crdtsync/room/x/%C3%BC.ipynb?token=t%26k'
  );
  assert.equal(
    roomUrl('ws://h', 'a.ipynb'),
    'ws://h/api/crdtsync/room/a.ipynb'
  );
});
