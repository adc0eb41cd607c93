/**
 * The provider's state machine against in-memory sockets, a fake clock and a fake room
 * that speaks the y-websocket protocol the way the crdtsync server does (it sends its
 * sync step 1 first, answers step 1 with step 2, relays updates and awareness).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import * as syncProtocol from 'y-protocols/sync';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';

import {
  ConnectionStatus,
  IMove,
  IStatusChange,
  IWebSocketLike,
  MessageType,
  NotAppliedError,
  parseMove,
  RoomProvider,
  STABLE_CONNECTION_MS
} from '../src/provider';

class FakeClock {
  now = 0;
  private timers: { id: number; at: number; fn: () => void }[] = [];
  private nextId = 1;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.nextId++;
    this.timers.push({ id, at: this.now + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.timers = this.timers.filter(t => t.id !== h);
  };
  get pending(): number {
    return this.timers.length;
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const t = this.timers[0];
      if (!t || t.at > end) {
        break;
      }
      this.timers.shift();
      this.now = t.at;
      t.fn();
    }
    this.now = end;
  }
}

class FakeSocket implements IWebSocketLike {
  constructor(
    readonly url: string,
    readonly room: FakeRoom
  ) {}
  binaryType = 'blob';
  readyState = 0;
  bufferedAmount = 0;
  onopen: ((ev: any) => any) | null = null;
  onmessage: ((ev: { data: any }) => any) | null = null;
  onclose: ((ev: { code: number; reason: string }) => any) | null = null;
  onerror: ((ev: any) => any) | null = null;
  closedWith: number | undefined;
  send(data: Uint8Array): void {
    assert.equal(this.readyState, 1, 'send on a socket that is not open');
    this.room.receive(this, data);
  }
  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
    this.room.drop(this);
  }
  /** Server side: accept the connection. */
  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
    this.room.greet(this);
  }
  /** Server side: close with a code. */
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.room.drop(this);
    this.onclose?.({ code, reason });
  }
  deliver(data: Uint8Array): void {
    // Browsers hand over an ArrayBuffer.
    this.onmessage?.({ data: data.slice().buffer });
  }
}

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach(f => f()));

class FakeRoom {
  doc = new Y.Doc();
  awareness = new awarenessProtocol.Awareness(this.doc);
  sockets: FakeSocket[] = [];
  created: FakeSocket[] = [];
  /** Accept sockets at once (else the test calls accept()). */
  autoAccept = true;
  constructor() {
    cleanups.push(() => this.awareness.destroy());
    this.awareness.setLocalState(null);
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, 0);
      syncProtocol.writeUpdate(e, update);
      const frame = encoding.toUint8Array(e);
      for (const s of this.sockets) {
        if (s !== origin) {
          s.deliver(frame);
        }
      }
    });
  }
  factory = (url: string): IWebSocketLike => {
    const s = new FakeSocket(url, this);
    this.created.push(s);
    // The browser opens asynchronously; a microtask is close enough.
    queueMicrotask(() => {
      if (this.autoAccept && s.readyState === 0) {
        s.accept();
      }
    });
    return s;
  };
  greet(s: FakeSocket): void {
    this.sockets.push(s);
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 0);
    syncProtocol.writeSyncStep1(e, this.doc);
    s.deliver(encoding.toUint8Array(e));
  }
  /** Hold incoming frames (a slow server) until release(). */
  paused = false;
  private held: [FakeSocket, Uint8Array][] = [];
  release(count = Infinity): void {
    while (count-- > 0 && this.held.length > 0) {
      const [s, data] = this.held.shift()!;
      this.handle(s, data);
    }
  }
  receive(s: FakeSocket, data: Uint8Array): void {
    if (this.paused) {
      this.held.push([s, data]);
      return;
    }
    this.handle(s, data);
  }
  private handle(s: FakeSocket, data: Uint8Array): void {
    const d = decoding.createDecoder(data);
    const type = decoding.readVarUint(d);
    if (type === 0) {
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, 0);
      syncProtocol.readSyncMessage(d, e, this.doc, s);
      if (encoding.length(e) > 1) {
        s.deliver(encoding.toUint8Array(e));
      }
    } else if (type === 1) {
      for (const o of this.sockets) {
        if (o !== s) {
          o.deliver(data);
        }
      }
    }
  }
  drop(s: FakeSocket): void {
    this.sockets = this.sockets.filter(o => o !== s);
  }
  get last(): FakeSocket {
    return this.created[this.created.length - 1];
  }
}

const flush = () => new Promise<void>(resolve => setImmediate(resolve));

function setup(opts: Partial<RoomProvider.IOptions> = {}) {
  const room = new FakeRoom();
  const clock = new FakeClock();
  const doc = new Y.Doc();
  const statuses: IStatusChange[] = [];
  const provider = new RoomProvider({
    url: 'ws://x/api/crdtsync/room/a.ipynb',
    doc,
    createWebSocket: room.factory,
    timers: clock,
    random: () => 0,
    ...opts
  });
  provider.statusChanged.connect((_, c) => statuses.push(c));
  cleanups.push(() => provider.dispose());
  const seen = () => statuses.map(s => s.status);
  return { room, clock, doc, provider, statuses, seen };
}

test('connects, syncs both ways, resolves ready', async () => {
  const { room, doc, provider, seen } = setup();
  room.doc.getArray<string>('cells').push(['from room']);
  doc.getArray<string>('cells').push(['from window']);
  assert.equal(provider.status, 'connecting');
  await provider.ready;
  assert.deepEqual(seen(), ['syncing', 'connected']);
  assert.equal(provider.status, 'connected');
  assert.equal(provider.hasSynced, true);
  assert.equal(room.last.binaryType, 'arraybuffer');
  assert.deepEqual(doc.getArray('cells').toArray().sort(), [
    'from room',
    'from window'
  ]);
  assert.deepEqual(room.doc.getArray('cells').toArray().sort(), [
    'from room',
    'from window'
  ]);
  // Live updates both ways.
  doc.getText('t').insert(0, 'abc');
  assert.equal(room.doc.getText('t').toString(), 'abc');
  room.doc.getText('t').insert(3, 'd');
  assert.equal(doc.getText('t').toString(), 'abcd');
  provider.dispose();
});

test('network loss: offline with capped exponential backoff, reset after sync', async () => {
  const { room, clock, provider, statuses } = setup();
  await provider.ready;
  room.autoAccept = false;
  room.last.serverClose(1006);
  let last = statuses[statuses.length - 1];
  assert.equal(last.status, 'offline');
  assert.equal(last.retryInMs, 500);
  assert.equal(last.closeCode, 1006);
  // Each failed attempt (socket refused) doubles the delay, up to 30 s.
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    clock.advance(last.retryInMs!);
    assert.equal(provider.status, 'connecting');
    room.last.onclose?.({ code: 1006, reason: '' });
    last = statuses[statuses.length - 1];
    assert.equal(last.status, 'offline');
    delays.push(last.retryInMs!);
  }
  assert.deepEqual(
    delays,
    [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
  );
  assert.equal(provider.attempt, 9);
  // The server comes back: the next attempt syncs, and once the connection has lasted
  // the backoff starts over.
  room.autoAccept = true;
  clock.advance(30000);
  await flush();
  assert.equal(provider.status, 'connected');
  clock.advance(STABLE_CONNECTION_MS);
  assert.equal(provider.attempt, 0);
  room.last.serverClose(1013);
  assert.equal(statuses[statuses.length - 1].retryInMs, 500);
  provider.dispose();
  assert.equal(clock.pending, 0);
});

test('dropped right after each sync: the backoff keeps growing', async () => {
  const { room, clock, provider, statuses } = setup();
  await provider.ready;
  // As when the server refuses an edit this window re-sends at every sync (1009).
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    room.last.serverClose(1009);
    const last = statuses[statuses.length - 1];
    assert.equal(last.status, 'offline');
    delays.push(last.retryInMs!);
    clock.advance(last.retryInMs!);
    await flush();
    assert.equal(provider.status, 'connected');
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000]);
  provider.dispose();
  assert.equal(clock.pending, 0);
});

test('4001 room closed: reconnect at once, then back off if it keeps failing', async () => {
  const { room, clock, provider, statuses } = setup();
  await provider.ready;
  room.last.serverClose(4001);
  assert.equal(statuses[statuses.length - 1].retryInMs, 0);
  room.autoAccept = false;
  clock.advance(0);
  assert.equal(provider.status, 'connecting');
  room.last.serverClose(4001);
  assert.equal(statuses[statuses.length - 1].retryInMs, 1000);
  room.autoAccept = true;
  clock.advance(1000);
  await flush();
  assert.equal(provider.status, 'connected');
  assert.equal(room.created.length, 3);
  provider.dispose();
});

for (const [code, status] of [
  [4404, 'deleted'],
  [4409, 'stale']
] as [number, ConnectionStatus][]) {
  test(`${code}: terminal status ${status}, no reconnect`, async () => {
    const { room, clock, provider, doc } = setup();
    await provider.ready;
    room.last.serverClose(code);
    assert.equal(provider.status, status);
    assert.equal(clock.pending, 0);
    provider.connect();
    provider.reconnect();
    assert.equal(room.created.length, 1);
    // Local edits are not sent anywhere any more.
    doc.getText('t').insert(0, 'x');
    assert.equal(room.doc.getText('t').toString(), '');
    provider.dispose();
  });

  test(`${code} before the first sync rejects ready`, async () => {
    const { room, provider } = setup();
    room.autoAccept = false;
    await flush();
    // Open, but the room never answers: no sync yet.
    room.last.send = () => undefined;
    room.last.readyState = 1;
    room.last.onopen?.({});
    assert.equal(provider.status, 'syncing');
    room.last.serverClose(code);
    await assert.rejects(provider.ready);
    assert.equal(provider.status, status);
  });
}

test('a socket that never opens is abandoned after connectTimeoutMs', async () => {
  const { room, clock, provider, statuses } = setup({ connectTimeoutMs: 5000 });
  room.autoAccept = false;
  await flush();
  clock.advance(4999);
  assert.equal(provider.status, 'connecting');
  clock.advance(1);
  assert.equal(provider.status, 'offline');
  assert.equal(statuses[statuses.length - 1].closeReason, 'connect timeout');
  assert.equal(room.created[0].readyState, 3);
  room.autoAccept = true;
  clock.advance(500);
  await flush();
  assert.equal(provider.status, 'connected');
  provider.dispose();
});

test('edits made while offline reach the room on reconnect', async () => {
  const { room, clock, provider, doc } = setup();
  await provider.ready;
  room.last.serverClose(1006);
  doc.getText('t').insert(0, 'offline edit');
  room.doc.getText('u').insert(0, 'room edit');
  clock.advance(500);
  await flush();
  assert.equal(provider.status, 'connected');
  assert.equal(room.doc.getText('t').toString(), 'offline edit');
  assert.equal(doc.getText('u').toString(), 'room edit');
  provider.dispose();
});

test('awareness: local state is announced, others are forgotten on disconnect', async () => {
  const a = setup();
  const b = new RoomProvider({
    url: 'ws://x/api/crdtsync/room/a.ipynb',
    doc: new Y.Doc(),
    createWebSocket: a.room.factory,
    timers: a.clock,
    random: () => 0
  });
  await a.provider.ready;
  await b.ready;
  a.provider.awareness.setLocalStateField('user', {
    name: 'Ada',
    color: '#f00'
  });
  const seen = b.awareness.getStates().get(a.doc.clientID);
  assert.deepEqual(seen, { user: { name: 'Ada', color: '#f00' } });
  // b loses its connection: a's cursor must not linger in b.
  const bSocket = a.room.created[1];
  bSocket.serverClose(1006);
  assert.equal(b.awareness.getStates().has(a.doc.clientID), false);
  // a leaves: b (reconnected) learns it at once.
  a.clock.advance(500);
  await flush();
  assert.equal(b.status, 'connected');
  a.provider.dispose();
  assert.equal(b.awareness.getStates().has(a.doc.clientID), false);
  b.dispose();
});

test('dispose closes with 1000 and never reconnects', async () => {
  const { room, clock, provider, seen } = setup();
  await provider.ready;
  const s = room.last;
  provider.dispose();
  assert.equal(s.closedWith, 1000);
  assert.equal(provider.status, 'disposed');
  assert.equal(provider.isDisposed, true);
  clock.advance(60000);
  provider.connect();
  assert.equal(room.created.length, 1);
  assert.deepEqual(seen().slice(-1), ['disposed']);
});

test('dispose before the first sync rejects ready', async () => {
  const { room, provider } = setup();
  room.autoAccept = false;
  provider.dispose();
  await assert.rejects(provider.ready);
});

/** Whether a promise has settled, and how. */
function track(p: Promise<void>) {
  const state = { settled: false, error: undefined as unknown };
  p.then(
    () => (state.settled = true),
    e => {
      state.settled = true;
      state.error = e;
    }
  );
  return state;
}

test('whenApplied resolves once the room has applied the edits made before it', async () => {
  const { room, provider, doc } = setup();
  await provider.ready;
  room.paused = true;
  doc.getText('t').insert(0, 'typed');
  const applied = track(provider.whenApplied());
  await flush();
  assert.equal(applied.settled, false);
  assert.equal(room.doc.getText('t').toString(), '');
  room.release(1); // the edit only: the answer is still to come
  await flush();
  assert.equal(room.doc.getText('t').toString(), 'typed');
  assert.equal(applied.settled, false);
  room.release();
  await flush();
  assert.deepEqual(applied, { settled: true, error: undefined });
  provider.dispose();
});

test('whenApplied: answers are matched in order, a timed-out one consumes its own', async () => {
  const { room, clock, provider, doc } = setup();
  await provider.ready;
  room.paused = true;
  const first = track(provider.whenApplied(100));
  clock.advance(100);
  await flush();
  assert.ok(first.error instanceof NotAppliedError);
  doc.getText('t').insert(0, 'late');
  const second = track(provider.whenApplied());
  room.release(1); // the first step 1: its answer must not count for the second
  await flush();
  assert.equal(second.settled, false);
  room.release();
  await flush();
  assert.deepEqual(second, { settled: true, error: undefined });
  assert.equal(room.doc.getText('t').toString(), 'late');
  provider.dispose();
});

test('whenApplied waits for a connection being opened, rejects when offline', async () => {
  const { room, clock, provider, doc } = setup();
  const early = track(provider.whenApplied());
  doc.getText('t').insert(0, 'before the first sync');
  await provider.ready;
  await flush();
  assert.deepEqual(early, { settled: true, error: undefined });
  assert.equal(room.doc.getText('t').toString(), 'before the first sync');

  room.autoAccept = false;
  room.last.serverClose(1006);
  await assert.rejects(provider.whenApplied(), (e: unknown) => {
    assert.ok(e instanceof NotAppliedError);
    assert.equal(e.status, 'offline');
    assert.match(e.message, /offline/);
    return true;
  });
  clock.advance(500); // a reconnect attempt is under way
  const during = track(provider.whenApplied());
  room.last.accept();
  await flush();
  assert.deepEqual(during, { settled: true, error: undefined });
  provider.dispose();
});

test('whenApplied rejects when the socket closes before the answer, or on dispose', async () => {
  const { room, provider } = setup();
  await provider.ready;
  room.paused = true;
  const pending = track(provider.whenApplied());
  room.last.serverClose(1006);
  await flush();
  assert.ok(pending.error instanceof NotAppliedError);
  assert.match((pending.error as Error).message, /lost/);

  const other = setup();
  await other.provider.ready;
  other.room.paused = true;
  const disposed = track(other.provider.whenApplied());
  other.provider.dispose();
  await flush();
  assert.ok(disposed.error instanceof NotAppliedError);
  await assert.rejects(other.provider.whenApplied(), NotAppliedError);
});

test('moveTo: the open socket stays, the next connection uses the new URL', async () => {
  const { room, clock, provider } = setup();
  await provider.ready;
  provider.moveTo('ws://x/api/crdtsync/room/b.ipynb');
  assert.equal(provider.status, 'connected');
  assert.equal(room.created.length, 1);
  room.last.serverClose(4001);
  clock.advance(0);
  await flush();
  assert.equal(room.last.url, 'ws://x/api/crdtsync/room/b.ipynb');
  assert.equal(provider.status, 'connected');
  provider.dispose();
});

test('moved messages are announced; malformed ones and unknown types are skipped', async () => {
  const { room, provider } = setup();
  await provider.ready;
  const moves: IMove[] = [];
  provider.moved.connect((_, move) => moves.push(move));
  const send = (type: number, body?: string) => {
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, type);
    if (body !== undefined) {
      encoding.writeVarString(e, body);
    }
    room.last.deliver(encoding.toUint8Array(e));
  };
  send(MessageType.moved, JSON.stringify({ type: 'renamed', path: 'new.py' }));
  send(MessageType.moved, 'not json');
  send(MessageType.moved, JSON.stringify({ type: 'exploded', path: 'x' }));
  send(MessageType.moved);
  send(99, 'anything');
  send(MessageType.moved, JSON.stringify({ type: 'deleted', path: 'new.py' }));
  assert.deepEqual(moves, [
    { type: 'renamed', path: 'new.py' },
    { type: 'deleted', path: 'new.py' }
  ]);
  assert.equal(provider.status, 'connected');
  assert.deepEqual(parseMove('{"type": "renamed", "path": 3}'), null);
});
