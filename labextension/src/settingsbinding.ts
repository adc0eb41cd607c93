/**
 * Binds this window's setting registry to the settings room.
 *
 * The registry reads and writes settings through its connector (`lab/api/settings`):
 * the binding wraps that connector's `save` and `fetch`. A save writes the new text into
 * the shared document (only the settings that changed from the text this window had, see
 * `settingsstate.ts`) and resolves once the server has it; the server writes the
 * `.jupyterlab-settings` file. A fetch answers with the text the document holds (the
 * schema and version from the server the first time, from the registry after). A change arriving from the room (another
 * window, a `PUT lab/api/settings/...`, an edit of the file) reloads that plugin in the
 * registry, which tells every `Settings` object: the theme, the font size and the
 * shortcuts follow without a reload.
 */
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import * as Y from 'yjs';

import { IStatusChange, RoomProvider, WebSocketFactory } from './provider';
import {
  isConsistent,
  ISettingsError,
  pluginsOf,
  readErrors,
  readPlugin,
  writePlugin
} from './settingsstate';

type Connector = ISettingRegistry['connector'];

export namespace SettingsBinding {
  export interface IOptions {
    registry: ISettingRegistry;
    provider: RoomProvider;
    /** How long a save waits for the server to confirm it (ms). */
    saveTimeoutMs?: number;
  }
}

export class SettingsBinding implements IDisposable {
  constructor(options: SettingsBinding.IOptions) {
    this._registry = options.registry;
    this._provider = options.provider;
    this._doc = options.provider.doc;
    this._saveTimeoutMs = options.saveTimeoutMs ?? 10000;
    const connector = this._registry.connector as Connector & {
      fetch: Connector['fetch'];
      save: Connector['save'];
    };
    this._connector = connector;
    this._originalFetch = connector.fetch.bind(connector);
    this._originalSave = connector.save.bind(connector);
    connector.fetch = (id: string) => this._fetch(id);
    connector.save = (id: string, raw: string) => this._save(id, raw);
    pluginsOf(this._doc).observeDeep(this._onPlugins);
    this._doc.getMap('errors').observe(this._onErrors);
  }

  /** The settings files the server refused, now. */
  get errors(): ISettingsError[] {
    return readErrors(this._doc);
  }

  /** Emitted when the set of refused settings files changes. */
  get errorsChanged(): ISignal<this, ISettingsError[]> {
    return this._errorsChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Bring every loaded plugin to what the room holds (after the first sync). */
  async catchUp(): Promise<void> {
    await Promise.all(
      [...pluginsOf(this._doc).keys()].map(plugin => this._follow(plugin))
    );
    this._errorsChanged.emit(this.errors);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._connector.fetch = this._originalFetch;
    this._connector.save = this._originalSave;
    pluginsOf(this._doc).unobserveDeep(this._onPlugins);
    this._doc.getMap('errors').unobserve(this._onErrors);
  }

  private async _fetch(
    id: string
  ): Promise<ISettingRegistry.IPlugin | undefined> {
    const state = readPlugin(this._doc, id);
    const usable =
      state !== null && state.raw.trim() !== '' && isConsistent(state);
    const loaded = this._registry.plugins[id];
    // A plugin the registry has: its schema does not change while the page lives, so
    // only the text is new (no round trip, no 100 ms throttle of the settings API).
    const fetched =
      loaded && usable ? { ...loaded } : await this._originalFetch(id);
    if (fetched && usable) {
      fetched.raw = state.raw;
    }
    if (fetched) {
      this._loaded.set(id, fetched.raw);
    }
    return fetched;
  }

  private async _save(id: string, raw: string): Promise<void> {
    if (this._provider.status !== 'connected' && !this._provider.hasSynced) {
      // Never in sync with the room: the plain settings API is the way.
      return this._originalSave(id, raw);
    }
    writePlugin(this._doc, id, raw, this._loaded.get(id) ?? null, this);
    this._loaded.set(id, raw);
    // Offline, the change waits in the document and goes out on reconnect.
    if (this._provider.status === 'connected') {
      await this._provider.whenApplied(this._saveTimeoutMs);
    }
  }

  private _onPlugins = (
    events: Y.YEvent<any>[],
    transaction: Y.Transaction
  ) => {
    if (transaction.origin === this) {
      return; // our own save
    }
    const changed = new Set<string>();
    for (const event of events) {
      if (event.target === pluginsOf(this._doc)) {
        event.changes.keys.forEach((_, key) => changed.add(key));
      } else if (typeof event.path[0] === 'string') {
        changed.add(event.path[0]);
      }
    }
    changed.forEach(plugin => void this._follow(plugin));
  };

  private _onErrors = () => {
    this._errorsChanged.emit(this.errors);
  };

  private async _follow(plugin: string): Promise<void> {
    const state = readPlugin(this._doc, plugin);
    const loaded = this._registry.plugins[plugin];
    // A text that disagrees with its values is being rewritten by the server: wait.
    if (!state || !loaded || !state.raw.trim() || !isConsistent(state)) {
      return;
    }
    if (loaded.raw === state.raw) {
      return;
    }
    try {
      await this._registry.reload(plugin);
    } catch (error) {
      console.warn(
        `jupyter-crdt-sync: could not apply the settings of ${plugin}`,
        error
      );
    }
  }

  private _registry: ISettingRegistry;
  private _provider: RoomProvider;
  private _doc: Y.Doc;
  private _saveTimeoutMs: number;
  private _connector: Connector & {
    fetch: Connector['fetch'];
    save: Connector['save'];
  };
  private _originalFetch: Connector['fetch'];
  private _originalSave: Connector['save'];
  /** Per plugin, the text the registry last got: the base of this window's next save. */
  private _loaded = new Map<string, string>();
  private _errorsChanged = new Signal<this, ISettingsError[]>(this);
  private _isDisposed = false;
}

/** The close code of a refused update (the room and other windows are untouched). */
export const CLOSE_REFUSED = 1002;

export namespace SettingsSession {
  export interface IOptions {
    registry: ISettingRegistry;
    /** `{wsUrl}api/crdtsync/settings`, with `?token=` if needed. */
    url: string;
    /** A change of this window the room refused (the close reason). */
    onRefused?: (reason: string) => void;
    /** The refused settings files, whenever they change. */
    onErrors?: (errors: ISettingsError[]) => void;
    createWebSocket?: WebSocketFactory;
  }
}

/**
 * The registry's binding for the life of the page: after a refusal (this window's copy
 * holds a change the room will never take) or a lost history (4409), it starts over with
 * a fresh copy of the room's document, and the registry follows it back.
 */
export class SettingsSession implements IDisposable {
  constructor(options: SettingsSession.IOptions) {
    this._options = options;
    this._connect();
  }

  get binding(): SettingsBinding {
    return this._binding!;
  }

  get provider(): RoomProvider {
    return this._provider!;
  }

  /** Resolves when the current binding has caught up with the room. */
  get ready(): Promise<void> {
    return this._ready;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._binding?.dispose();
    this._provider?.dispose();
  }

  private _connect(): void {
    const { registry, url, createWebSocket, onErrors } = this._options;
    const provider = new RoomProvider({
      url,
      doc: new Y.Doc(),
      createWebSocket
    });
    const binding = new SettingsBinding({ registry, provider });
    this._provider = provider;
    this._binding = binding;
    if (onErrors) {
      binding.errorsChanged.connect((_, errors) => onErrors(errors));
    }
    this._ready = provider.ready.then(() => binding.catchUp());
    this._ready.catch(() => undefined);
    provider.statusChanged.connect(this._onStatus, this);
  }

  private _onStatus(provider: RoomProvider, change: IStatusChange): void {
    const refused = change.closeCode === CLOSE_REFUSED;
    if (this._isDisposed || (!refused && change.status !== 'stale')) {
      return;
    }
    provider.statusChanged.disconnect(this._onStatus, this);
    this._binding?.dispose();
    provider.dispose();
    if (refused) {
      this._options.onRefused?.(change.closeReason ?? '');
    }
    this._connect();
  }

  private _options: SettingsSession.IOptions;
  private _provider: RoomProvider | null = null;
  private _binding: SettingsBinding | null = null;
  private _ready: Promise<void> = Promise.resolve();
  private _isDisposed = false;
}
