/**
 * A room connection: the y-websocket protocol between one Yjs document and
 * `WS {base_url}api/crdtsync/room/{path}`, with reconnects and a typed status signal.
 *
 * No JupyterLab imports here, so that it runs (and is tested) in node as well.
 */

import * as Y from 'yjs';
import * as syncProtocol from 'y-protocols/sync';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import { PromiseDelegate } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  backoffDelay,
  closeAction,
  CloseCode,
  IBackoffOptions
} from './backoff';

/**
 * y-websocket message types, and our own `moved` (docs/design.md, "Moves"): the server
 * tells the room's peers that its file was renamed or deleted.
 */
export const MessageType = { sync: 0, awareness: 1, moved: 100 } as const;

/** What a `moved` message says: the file's new path, or that it was deleted. */
export interface IMove {
  type: 'renamed' | 'deleted';
  path: string;
}

/** The `IMove` of a `moved` message's payload, or null if it is not one. */
export function parseMove(payload: string): IMove | null {
  let move: unknown;
  try {
    move = JSON.parse(payload);
  } catch {
    return null;
  }
  const { type, path } = (move ?? {}) as Partial<IMove>;
  if ((type === 'renamed' || type === 'deleted') && typeof path === 'string') {
    return { type, path };
  }
  return null;
}

/**
 * The state of a room connection.
 *
 * - `connecting`: a socket is being opened.
 * - `syncing`: open, the initial exchange with the room is not complete yet.
 * - `connected`: in sync; edits flow both ways.
 * - `offline`: no socket; a reconnect is scheduled (`retryInMs`).
 * - `deleted`: terminal, the notebook was deleted (close code 4404).
 * - `stale`: terminal, the room refused this replica (4409): the window must reload.
 * - `disposed`: terminal, closed by us.
 */
export type ConnectionStatus =
  | 'connecting'
  | 'syncing'
  | 'connected'
  | 'offline'
  | 'deleted'
  | 'stale'
  | 'disposed';

/** Statuses after which the provider never connects again. */
export const TERMINAL_STATUSES: ReadonlySet<ConnectionStatus> = new Set([
  'deleted',
  'stale',
  'disposed'
]);

export interface IStatusChange {
  status: ConnectionStatus;
  previous: ConnectionStatus;
  /** Failed attempts since a connection last stayed up (`STABLE_CONNECTION_MS`). */
  attempt: number;
  /** For `offline`: the delay before the next attempt. */
  retryInMs?: number;
  /** The close code/reason that caused this change, if any. */
  closeCode?: number;
  closeReason?: string;
}

/** The part of the WebSocket API the provider uses (browser WebSocket and `ws` both fit). */
export interface IWebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: { data: any }) => any) | null;
  onclose: ((ev: { code: number; reason: string }) => any) | null;
  onerror: ((ev: any) => any) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketFactory = (url: string) => IWebSocketLike;

export interface ITimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const WS_OPEN = 1;

/** A connection that lasts this long (ms) after its sync resets the backoff. */
export const STABLE_CONNECTION_MS = 5000;

export namespace RoomProvider {
  export interface IOptions {
    /** The full websocket URL of the room (see `roomUrl`). */
    url: string;
    /** The document to keep in sync (`sharedModel.ydoc` in JupyterLab). */
    doc: Y.Doc;
    /** The awareness to relay (`sharedModel.awareness`); a new one if omitted. */
    awareness?: awarenessProtocol.Awareness;
    /** Reconnect delays. */
    backoff?: Partial<IBackoffOptions>;
    /** A socket that has not opened after this many ms is abandoned and retried. */
    connectTimeoutMs?: number;
    /** Defaults to `new WebSocket(url)` (global). */
    createWebSocket?: WebSocketFactory;
    /** Defaults to the global timers. */
    timers?: ITimers;
    /** Defaults to Math.random (jitter). */
    random?: () => number;
    /** Connect at once (default true). */
    connect?: boolean;
  }
}

/**
 * Build the room URL: `{wsUrl}api/crdtsync/room/{path}`, each path segment
 * percent-encoded, `/` kept, and `?token=` when a token is given.
 */
export function roomUrl(wsUrl: string, path: string, token?: string): string {
  const base = wsUrl.endsWith('/') ? wsUrl : wsUrl + '/';
  const encoded = path
    .split('/')
    .filter(s => s.length > 0)
    .map(encodeURIComponent)
    .join('/');
  const url = `${base}api/crdtsync/room/${encoded}`;
  return token ? `${url}?token=${encodeURIComponent(token)}` : url;
}

/** Why `whenApplied` could not confirm that the room has our changes. */
export class NotAppliedError extends Error {
  constructor(
    /** The connection status when it gave up. */
    readonly status: ConnectionStatus,
    message: string
  ) {
    super(message);
    this.name = 'NotAppliedError';
  }
}

/** A sync step 1 sent to learn when the room has applied everything sent before it. */
interface IRoundTrip {
  ws: IWebSocketLike;
  resolve: () => void;
  reject: (reason: Error) => void;
}

export class RoomProvider implements IDisposable {
  constructor(options: RoomProvider.IOptions) {
    this._url = options.url;
    this.doc = options.doc;
    this._ownsAwareness = options.awareness === undefined;
    this.awareness =
      options.awareness ?? new awarenessProtocol.Awareness(options.doc);
    this._backoff = options.backoff ?? {};
    this._connectTimeoutMs = options.connectTimeoutMs ?? 10000;
    this._createWebSocket =
      options.createWebSocket ??
      ((url: string) => new (globalThis as any).WebSocket(url));
    this._timers = options.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: h => globalThis.clearTimeout(h as any)
    };
    this._random = options.random ?? Math.random;
    this.doc.on('update', this._onDocUpdate);
    this.awareness.on('update', this._onAwarenessUpdate);
    // The ready promise may be rejected with nobody listening (e.g. a notebook deleted
    // before anyone asked): do not let that become an unhandled rejection.
    this._ready.promise.catch(() => undefined);
    if (options.connect ?? true) {
      this.connect();
    }
  }

  /** The room's websocket URL; the next connection uses a new one (after a rename). */
  get url(): string {
    return this._url;
  }

  /**
   * Follow the notebook to a new room URL (it was renamed: the server moved the room and
   * its peers). The open socket stays; reconnects go to the new URL.
   */
  moveTo(url: string): void {
    this._url = url;
  }

  readonly doc: Y.Doc;
  readonly awareness: awarenessProtocol.Awareness;

  /** The current connection status. */
  get status(): ConnectionStatus {
    return this._status;
  }

  /** Emitted on every status change. */
  get statusChanged(): ISignal<this, IStatusChange> {
    return this._statusChanged;
  }

  /** Emitted when the room says its file was renamed or deleted. */
  get moved(): ISignal<this, IMove> {
    return this._moved;
  }

  /** Whether the document has been in sync with the room at least once. */
  get hasSynced(): boolean {
    return this._hasSynced;
  }

  /** Failed attempts since a connection last stayed up (`STABLE_CONNECTION_MS`). */
  get attempt(): number {
    return this._attempt;
  }

  /**
   * Resolves on the first sync with the room; rejects if the provider reaches a
   * terminal status (deleted, stale, disposed) before that.
   */
  get ready(): Promise<void> {
    return this._ready.promise;
  }

  get isDisposed(): boolean {
    return this._status === 'disposed';
  }

  /** Whether every frame handed to the socket has been sent. */
  get flushed(): boolean {
    return (
      this._ws !== null &&
      this._ws.readyState === WS_OPEN &&
      this._ws.bufferedAmount === 0
    );
  }

  /**
   * Resolves once the room has applied every change this document made before the call
   * (and made it durable): a sync step 1 goes out behind them, and the server answers it
   * only after handling the frames that came before. Waits for a connection that is being
   * opened; rejects with `NotAppliedError` when offline, on a terminal status, when the
   * socket closes first, or after `timeoutMs`.
   */
  whenApplied(timeoutMs = 15000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (error?: Error) => {
        if (settled) {
          return;
        }
        settled = true;
        this._timers.clearTimeout(timer);
        this._statusChanged.disconnect(onStatus);
        if (error) {
          reject(error);
        } else {
          resolve();
        }
      };
      const timer = this._timers.setTimeout(
        () =>
          finish(
            new NotAppliedError(
              this._status,
              'the server did not confirm the changes in time'
            )
          ),
        timeoutMs
      );
      const start = (): boolean => {
        const ws = this._ws;
        if (this._status === 'connected' && ws !== null) {
          this._statusChanged.disconnect(onStatus);
          this._sendRoundTrip(ws, {
            ws,
            resolve: () => finish(),
            reject: error => finish(error)
          });
          return true;
        }
        if (this._status === 'connecting' || this._status === 'syncing') {
          return false; // wait for the connection
        }
        finish(
          new NotAppliedError(this._status, notAppliedMessage(this._status))
        );
        return true;
      };
      const onStatus = () => {
        start();
      };
      if (!start()) {
        this._statusChanged.connect(onStatus);
      }
    });
  }

  /**
   * Open a socket now (cancelling a scheduled retry). Does nothing when a socket is
   * already open or opening, or after a terminal status.
   */
  connect(): void {
    if (TERMINAL_STATUSES.has(this._status) || this._ws !== null) {
      return;
    }
    this._clearRetry();
    this._setStatus({ status: 'connecting' });
    let ws: IWebSocketLike;
    try {
      ws = this._createWebSocket(this.url);
    } catch (err) {
      this._onSocketGone(null, 1006, String(err));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    this._connectTimer = this._timers.setTimeout(() => {
      this._connectTimer = null;
      if (this._ws === ws && ws.readyState !== WS_OPEN) {
        this._onSocketGone(ws, 1006, 'connect timeout');
        try {
          ws.close();
        } catch {
          // ignore
        }
      }
    }, this._connectTimeoutMs);
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = ev => this._onMessage(ws, ev.data);
    ws.onclose = ev => this._onSocketGone(ws, ev.code, ev.reason);
    ws.onerror = () => {
      // A close event always follows; nothing to do here.
    };
  }

  /** Drop the current socket (if any) and connect again at once. */
  reconnect(): void {
    if (TERMINAL_STATUSES.has(this._status)) {
      return;
    }
    if (this._closeSocket()) {
      this._afterDisconnect();
    }
    this._clearRetry();
    this.connect();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    // Tell the others that we left before the socket goes.
    awarenessProtocol.removeAwarenessStates(
      this.awareness,
      [this.doc.clientID],
      'dispose'
    );
    this.doc.off('update', this._onDocUpdate);
    this.awareness.off('update', this._onAwarenessUpdate);
    this._clearRetry();
    this._clearStableTimer();
    this._closeSocket();
    this._ws = null;
    this._failRoundTrips('disposed');
    if (this._ownsAwareness) {
      // Its renewal timer would keep node alive.
      this.awareness.destroy();
    }
    this._setStatus({ status: 'disposed' });
    Signal.clearData(this);
  }

  private _onOpen(ws: IWebSocketLike): void {
    if (this._ws !== ws) {
      return;
    }
    this._clearConnectTimer();
    this._setStatus({ status: 'syncing' });
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MessageType.sync);
    syncProtocol.writeSyncStep1(encoder, this.doc);
    ws.send(encoding.toUint8Array(encoder));
    if (this.awareness.getLocalState() !== null) {
      this._sendAwareness(ws, [this.doc.clientID]);
    }
  }

  private _onMessage(ws: IWebSocketLike, data: ArrayBuffer | Uint8Array): void {
    if (this._ws !== ws) {
      return;
    }
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    const decoder = decoding.createDecoder(bytes);
    const encoder = encoding.createEncoder();
    let type: number;
    try {
      type = decoding.readVarUint(decoder);
    } catch {
      return;
    }
    switch (type) {
      case MessageType.sync: {
        encoding.writeVarUint(encoder, MessageType.sync);
        const kind = syncProtocol.readSyncMessage(
          decoder,
          encoder,
          this.doc,
          this
        );
        if (encoding.length(encoder) > 1) {
          ws.send(encoding.toUint8Array(encoder));
        }
        if (kind === syncProtocol.messageYjsSyncStep2) {
          if (this._status === 'syncing') {
            this._hasSynced = true;
            this._resetBackoffWhenStable();
            this._setStatus({ status: 'connected' });
            this._ready.resolve();
          } else {
            // The answer to the oldest round trip (the server answers in order).
            this._roundTrips.shift()?.resolve();
          }
        }
        break;
      }
      case MessageType.awareness:
        awarenessProtocol.applyAwarenessUpdate(
          this.awareness,
          decoding.readVarUint8Array(decoder),
          this
        );
        break;
      case MessageType.moved: {
        let move: IMove | null = null;
        try {
          move = parseMove(decoding.readVarString(decoder));
        } catch {
          move = null;
        }
        if (move) {
          this._moved.emit(move);
        }
        break;
      }
      default:
        // Unknown message types are ignored (room for future server messages).
        break;
    }
  }

  private _onSocketGone(
    ws: IWebSocketLike | null,
    code: number,
    reason: string
  ): void {
    if (ws !== null && this._ws !== ws) {
      return;
    }
    if (ws) {
      this._detach(ws);
    }
    this._afterDisconnect();
    if (TERMINAL_STATUSES.has(this._status)) {
      return;
    }
    const action = closeAction(code);
    if (action === 'deleted' || action === 'stale') {
      // Reject (if still pending) with the reason before _setStatus's generic one.
      this._ready.reject(
        new Error(
          action === 'deleted'
            ? 'The notebook was deleted.'
            : 'This copy of the notebook is out of date: reload the page.'
        )
      );
      this._setStatus({ status: action, closeCode: code, closeReason: reason });
      this.doc.off('update', this._onDocUpdate);
      this.awareness.off('update', this._onAwarenessUpdate);
      return;
    }
    const delay =
      action === 'reconnect-now' && this._attempt === 0
        ? 0
        : backoffDelay(this._attempt, this._backoff, this._random);
    this._attempt += 1;
    this._setStatus({
      status: 'offline',
      retryInMs: delay,
      closeCode: code,
      closeReason: reason
    });
    this._retryTimer = this._timers.setTimeout(() => {
      this._retryTimer = null;
      this.connect();
    }, delay);
  }

  /** Forget everything tied to the socket that went away. */
  private _afterDisconnect(): void {
    this._ws = null;
    this._clearConnectTimer();
    this._clearStableTimer();
    this._failRoundTrips('offline');
    // The other clients' cursors are no longer known to be current.
    const others = Array.from(this.awareness.getStates().keys()).filter(
      id => id !== this.doc.clientID
    );
    if (others.length > 0) {
      awarenessProtocol.removeAwarenessStates(this.awareness, others, this);
    }
  }

  /** Close the current socket without waiting for its close event; false if none. */
  private _closeSocket(): boolean {
    const ws = this._ws;
    if (!ws) {
      return false;
    }
    this._detach(ws);
    try {
      ws.close(CloseCode.normal);
    } catch {
      // Already closing or closed: nothing more to do.
    }
    return true;
  }

  private _detach(ws: IWebSocketLike): void {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    if (this._ws === ws) {
      this._ws = null;
    }
    this._clearConnectTimer();
  }

  private _onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    const ws = this._ws;
    if (origin === this || ws === null || ws.readyState !== WS_OPEN) {
      // Updates made while offline reach the room with the next sync exchange.
      return;
    }
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MessageType.sync);
    syncProtocol.writeUpdate(encoder, update);
    ws.send(encoding.toUint8Array(encoder));
  };

  private _onAwarenessUpdate = (
    change: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown
  ): void => {
    const ws = this._ws;
    if (origin === this || ws === null || ws.readyState !== WS_OPEN) {
      return;
    }
    this._sendAwareness(
      ws,
      change.added.concat(change.updated, change.removed)
    );
  };

  private _sendRoundTrip(ws: IWebSocketLike, trip: IRoundTrip): void {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MessageType.sync);
    syncProtocol.writeSyncStep1(encoder, this.doc);
    this._roundTrips.push(trip);
    ws.send(encoding.toUint8Array(encoder));
  }

  private _failRoundTrips(status: ConnectionStatus): void {
    const trips = this._roundTrips;
    this._roundTrips = [];
    for (const trip of trips) {
      trip.reject(
        new NotAppliedError(
          status,
          status === 'disposed'
            ? notAppliedMessage(status)
            : 'the connection to the server was lost before it confirmed the changes'
        )
      );
    }
  }

  private _sendAwareness(ws: IWebSocketLike, clients: number[]): void {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MessageType.awareness);
    encoding.writeVarUint8Array(
      encoder,
      awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients)
    );
    ws.send(encoding.toUint8Array(encoder));
  }

  private _setStatus(
    change: Omit<IStatusChange, 'previous' | 'attempt'>
  ): void {
    const previous = this._status;
    this._status = change.status;
    this._statusChanged.emit({ ...change, previous, attempt: this._attempt });
    if (TERMINAL_STATUSES.has(change.status) && !this._hasSynced) {
      this._ready.reject(new Error(`room connection ${change.status}`));
    }
  }

  private _clearRetry(): void {
    if (this._retryTimer !== null) {
      this._timers.clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
  }

  /**
   * Start the backoff over only once a connection has lasted: a server that syncs and
   * then drops us at once (e.g. an edit it refuses, re-sent at every sync) must not be
   * hammered every half second.
   */
  private _resetBackoffWhenStable(): void {
    this._clearStableTimer();
    this._stableTimer = this._timers.setTimeout(() => {
      this._stableTimer = null;
      this._attempt = 0;
    }, STABLE_CONNECTION_MS);
  }

  private _clearStableTimer(): void {
    if (this._stableTimer !== null) {
      this._timers.clearTimeout(this._stableTimer);
      this._stableTimer = null;
    }
  }

  private _clearConnectTimer(): void {
    if (this._connectTimer !== null) {
      this._timers.clearTimeout(this._connectTimer);
      this._connectTimer = null;
    }
  }

  private _url: string;
  private _roundTrips: IRoundTrip[] = [];
  private _status: ConnectionStatus = 'offline';
  private _statusChanged = new Signal<this, IStatusChange>(this);
  private _moved = new Signal<this, IMove>(this);
  private _ws: IWebSocketLike | null = null;
  private _hasSynced = false;
  private _attempt = 0;
  private _ready = new PromiseDelegate<void>();
  private _retryTimer: unknown = null;
  private _connectTimer: unknown = null;
  private _stableTimer: unknown = null;
  private _backoff: Partial<IBackoffOptions>;
  private _connectTimeoutMs: number;
  private _createWebSocket: WebSocketFactory;
  private _timers: ITimers;
  private _random: () => number;
  private _ownsAwareness: boolean;
}

function notAppliedMessage(status: ConnectionStatus): string {
  switch (status) {
    case 'offline':
      return 'the notebook is offline (not connected to the server)';
    case 'deleted':
      return 'the notebook was deleted on the server';
    case 'stale':
      return "this window's copy of the notebook is out of date: reload the page";
    default:
      return `the notebook's connection is ${status}`;
  }
}
