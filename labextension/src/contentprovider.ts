/**
 * The content provider that binds notebooks to crdtsync rooms (JupyterLab >= 4.4).
 *
 * Registered on the default drive's `contentProviderRegistry` under
 * `CONTENT_PROVIDER_ID`; the notebook widget factory names it in its
 * `contentProviderId`. See docs/labextension-notes.md.
 *
 * The room is the notebook's only writer: the file's content never comes from here,
 * and JupyterLab's save asks the room to write the file now.
 */

import { YFile, YNotebook } from '@jupyter/ydoc';
import { PathExt } from '@jupyterlab/coreutils';
import {
  Contents,
  IContentProvider,
  ServerConnection,
  User
} from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { IMove, IStatusChange, RoomProvider, roomUrl } from './provider';
import { missingNotebookMessage, saveThroughRoom } from './roomsave';
import { IBindingsChange, IRoomBinding, IRoomBindings } from './tokens';

export const CONTENT_PROVIDER_ID = 'crdtsync';

export namespace CrdtContentProvider {
  export interface IOptions {
    /** The drive the non-document requests go to (the default drive). */
    drive: Contents.IDrive;
    serverSettings: ServerConnection.ISettings;
    /** The identity shown to collaborators (name, colour). */
    user?: User.IManager;
    /** How long `save` waits for the room to confirm this window's changes, in ms. */
    saveTimeoutMs?: number;
  }
}

class RoomBinding implements IRoomBinding {
  constructor(
    public path: string,
    readonly provider: RoomProvider,
    readonly sharedModel: YNotebook | YFile
  ) {
    provider.statusChanged.connect(this._onStatus, this);
  }

  get kind(): 'notebook' | 'file' {
    return this.sharedModel instanceof YNotebook ? 'notebook' : 'file';
  }

  retryAt: number | undefined = undefined;
  /**
   * `last_modified` as last reported to JupyterLab: at opening, then after each save.
   * The room also writes the file on its own; reporting those writes would make
   * JupyterLab's "File Changed" check (hash, else last_modified) fire for every one.
   */
  reportedLastModified: string | undefined = undefined;
  /** The file's model (no content) as the server last gave it. */
  lastModel: Contents.IModel | undefined = undefined;

  private _onStatus(_: RoomProvider, change: IStatusChange): void {
    this.retryAt =
      change.status === 'offline' && change.retryInMs !== undefined
        ? Date.now() + change.retryInMs
        : undefined;
  }
}

export class CrdtContentProvider implements IContentProvider, IRoomBindings {
  constructor(options: CrdtContentProvider.IOptions) {
    this._drive = options.drive;
    this._serverSettings = options.serverSettings;
    this._user = options.user ?? null;
    this._saveTimeoutMs = options.saveTimeoutMs ?? 15000;
    this.sharedModelFactory = {
      collaborative: true,
      createNew: (opts: Contents.ISharedFactoryOptions) => this._createNew(opts)
    };
    this._drive.fileChanged.connect(this._onDriveFileChanged, this);
  }

  readonly sharedModelFactory: Contents.ISharedFactory;

  get changed(): ISignal<this, IBindingsChange> {
    return this._changed;
  }

  /**
   * Renames the room announced (`moved` messages): JupyterLab's drive passes them on as
   * its own `fileChanged`, so that every document context of this window, and the file
   * browser, follow at once, with or without a kernel session to tell them.
   */
  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  bindingFor(path: string): IRoomBinding | undefined {
    return this._bindings.get(path);
  }

  bindingOf(sharedModel: unknown): IRoomBinding | undefined {
    for (const binding of this._bindings.values()) {
      if (binding.sharedModel === sharedModel) {
        return binding;
      }
    }
    return undefined;
  }

  bindings(): IRoomBinding[] {
    return [...this._bindings.values()];
  }

  reconnectOffline(): void {
    for (const { provider } of this._bindings.values()) {
      if (provider.status === 'offline' || provider.status === 'connecting') {
        provider.reconnect();
      }
    }
  }

  async get(
    localPath: string,
    options?: Contents.IFetchOptions
  ): Promise<Contents.IModel> {
    const binding = this._bindings.get(localPath);
    if (
      !binding ||
      (options?.type !== binding.kind && options?.type !== undefined)
    ) {
      return this._drive.get(localPath, {
        ...options,
        contentProviderId: undefined
      });
    }
    // The content comes from the room; the REST call only gives the metadata.
    const [model] = await Promise.all([
      this._drive
        .get(localPath, {
          ...options,
          content: false,
          hash: false,
          contentProviderId: undefined
        })
        .catch(error => {
          // Server out of reach: JupyterLab asks before each save (to detect changes on
          // disk, which the room handles); let the save go on and say itself why it fails.
          if (
            error instanceof ServerConnection.NetworkError &&
            binding.lastModel
          ) {
            return { ...binding.lastModel, path: binding.path };
          }
          if (error?.response?.status === 404) {
            // Deleted, or renamed by another window: JupyterLab would answer a 404 before
            // a save by writing this window's copy to the old path with the plain
            // contents API, bringing a deleted notebook back or leaving a stale copy of a
            // renamed one. The room is the notebook's only writer: refuse instead.
            throw new Error(
              missingNotebookMessage(
                PathExt.basename(binding.path),
                binding.provider.status === 'deleted'
              )
            );
          }
          throw error;
        }),
      binding.provider.ready
    ]);
    binding.lastModel = model;
    binding.reportedLastModified ??= model.last_modified;
    return this._reported(model, binding);
  }

  async save(
    localPath: string,
    options: Partial<Contents.IModel> & Contents.IContentProvisionOptions = {}
  ): Promise<Contents.IModel> {
    const binding = this._bindings.get(localPath);
    if (!binding) {
      return this._drive.save(localPath, {
        ...options,
        contentProviderId: undefined
      });
    }
    const model = await saveThroughRoom({
      path: binding.path,
      provider: binding.provider,
      serverSettings: this._serverSettings,
      timeoutMs: this._saveTimeoutMs
    });
    binding.lastModel = model;
    binding.reportedLastModified = model.last_modified;
    return this._reported(model, binding);
  }

  dispose(): void {
    for (const { provider } of this._bindings.values()) {
      provider.dispose();
    }
    this._bindings.clear();
    Signal.clearData(this);
  }

  /** The model JupyterLab's document context sees: no content, no hash (see above). */
  private _reported(
    model: Contents.IModel,
    binding: RoomBinding
  ): Contents.IModel {
    return {
      ...model,
      content: null,
      format: binding.kind === 'notebook' ? 'json' : 'text',
      hash: undefined,
      hash_algorithm: undefined,
      last_modified: binding.reportedLastModified ?? model.last_modified
    };
  }

  private _createNew(
    options: Contents.ISharedFactoryOptions
  ): YNotebook | YFile | undefined {
    if (options.collaborative === false) {
      return undefined;
    }
    let sharedModel: YNotebook | YFile;
    if (options.contentType === 'notebook') {
      sharedModel = new YNotebook();
    } else if (options.contentType === 'file' && options.format === 'text') {
      // A text file: the server's room holds it as jupyter-ydoc's YUnicode (root Text
      // `source`), which is @jupyter/ydoc's YFile.
      sharedModel = new YFile();
    } else {
      return undefined;
    }
    const provider = new RoomProvider({
      url: roomUrl(
        this._serverSettings.wsUrl,
        options.path,
        this._serverSettings.token
      ),
      doc: sharedModel.ydoc,
      awareness: sharedModel.awareness
    });
    const binding = new RoomBinding(options.path, provider, sharedModel);
    this._bindings.set(binding.path, binding);
    provider.moved.connect((_, move) => this._onMoved(binding, move));
    const user = this._user;
    if (user) {
      const setUser = () => {
        if (user.identity) {
          sharedModel.awareness.setLocalStateField('user', user.identity);
        }
      };
      void user.ready.then(setUser).catch(() => undefined);
      user.userChanged.connect(setUser);
      sharedModel.disposed.connect(() => user.userChanged.disconnect(setUser));
    }
    sharedModel.disposed.connect(() => {
      provider.dispose();
      if (this._bindings.get(binding.path) === binding) {
        this._bindings.delete(binding.path);
      }
      this._changed.emit({ type: 'removed', binding });
    });
    this._changed.emit({ type: 'added', binding });
    return sharedModel;
  }

  follow(sharedModel: unknown, newPath: string): void {
    const binding = this.bindingOf(sharedModel) as RoomBinding | undefined;
    if (binding && binding.path !== newPath) {
      this._move(binding, newPath);
    }
  }

  /**
   * A rename through this window's contents manager (the server moves the room and its
   * peers): follow it, so that saves, executions and reconnects use the new path.
   */
  private _onDriveFileChanged(
    _: Contents.IDrive,
    change: Contents.IChangedArgs
  ): void {
    const oldPath = change.oldValue?.path;
    const newPath = change.newValue?.path;
    if (change.type !== 'rename' || !oldPath || !newPath) {
      return;
    }
    for (const binding of [...this._bindings.values()]) {
      if (binding.path === oldPath) {
        this._move(binding, newPath);
      } else if (binding.path.startsWith(oldPath + '/')) {
        this._move(binding, newPath + binding.path.slice(oldPath.length));
      }
    }
  }

  /** The room's file was renamed elsewhere (another window, a script, the API). */
  private _onMoved(binding: RoomBinding, move: IMove): void {
    if (move.type !== 'renamed' || move.path === binding.path) {
      return; // a deletion ends with close code 4404; a rename made here is followed
    }
    const oldPath = binding.path;
    const name = PathExt.basename(move.path);
    // The drive re-emits this; `_onDriveFileChanged` then moves the binding.
    this._fileChanged.emit({
      type: 'rename',
      oldValue: { path: oldPath },
      newValue: { ...binding.lastModel, path: move.path, name }
    });
    if (binding.path === oldPath) {
      this._move(binding, move.path); // no drive passed it on (not registered)
    }
  }

  private _move(binding: RoomBinding, target: string): void {
    const previous = binding.path;
    if (this._bindings.get(previous) === binding) {
      this._bindings.delete(previous);
    }
    binding.path = target;
    binding.provider.moveTo(
      roomUrl(this._serverSettings.wsUrl, target, this._serverSettings.token)
    );
    this._bindings.set(target, binding);
    this._changed.emit({ type: 'moved', binding, oldPath: previous });
  }

  private _drive: Contents.IDrive;
  private _serverSettings: ServerConnection.ISettings;
  private _user: User.IManager | null;
  private _saveTimeoutMs: number;
  private _bindings = new Map<string, RoomBinding>();
  private _changed = new Signal<this, IBindingsChange>(this);
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
}
