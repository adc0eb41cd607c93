/**
 * The content provider that binds notebooks to crdtsync rooms (JupyterLab >= 4.4).
 *
 * Registered on the default drive's `contentProviderRegistry` under
 * `CONTENT_PROVIDER_ID`; the notebook widget factory names it in its
 * `contentProviderId`. See docs/labextension-notes.md.
 */

import { YNotebook } from '@jupyter/ydoc';
import { URLExt } from '@jupyterlab/coreutils';
import {
  Contents,
  IContentProvider,
  ServerConnection,
  User
} from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { RoomProvider, roomUrl } from './provider';

export const CONTENT_PROVIDER_ID = 'crdtsync';

export namespace CrdtContentProvider {
  export interface IOptions {
    /** The drive the non-document requests go to (the default drive). */
    drive: Contents.IDrive;
    serverSettings: ServerConnection.ISettings;
    /** The identity shown to collaborators (name, colour). */
    user?: User.IManager;
    /** How long `save` waits for the room to write back, in ms. */
    saveTimeoutMs?: number;
  }
}

export class CrdtContentProvider implements IContentProvider {
  constructor(options: CrdtContentProvider.IOptions) {
    this._drive = options.drive;
    this._serverSettings = options.serverSettings;
    this._user = options.user ?? null;
    this._saveTimeoutMs = options.saveTimeoutMs ?? 15000;
    this.sharedModelFactory = {
      collaborative: true,
      createNew: (opts: Contents.ISharedFactoryOptions) => this._createNew(opts)
    };
  }

  readonly sharedModelFactory: Contents.ISharedFactory;

  /** Emitted when a room provider is added or removed (for the status item). */
  get providersChanged(): ISignal<this, void> {
    return this._providersChanged;
  }

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  /** The room provider of a notebook path, if the notebook is bound to a room. */
  providerFor(path: string): RoomProvider | undefined {
    return this._providers.get(path)?.provider;
  }

  async get(
    localPath: string,
    options?: Contents.IFetchOptions
  ): Promise<Contents.IModel> {
    const entry = this._providers.get(localPath);
    if (!entry || options?.type !== 'notebook' && options?.type !== undefined) {
      return this._drive.get(localPath, { ...options, contentProviderId: undefined });
    }
    // The content comes from the room; the REST call only gives the metadata.
    const [model] = await Promise.all([
      this._drive.get(localPath, {
        ...options,
        content: false,
        contentProviderId: undefined
      }),
      entry.provider.ready
    ]);
    entry.lastModified ??= model.last_modified;
    // The room writes the file on its own: report the metadata as of the opening, so
    // that JupyterLab's "File Changed" check (hash, then last_modified) never fires.
    return {
      ...model,
      content: null,
      format: options?.format ?? 'json',
      hash: undefined,
      last_modified: entry.lastModified
    };
  }

  async save(
    localPath: string,
    options: Partial<Contents.IModel> & Contents.IContentProvisionOptions = {}
  ): Promise<Contents.IModel> {
    const entry = this._providers.get(localPath);
    if (!entry) {
      return this._drive.save(localPath, { ...options, contentProviderId: undefined });
    }
    await this._waitWrittenBack(localPath, entry.provider);
    return this.get(localPath, { type: 'notebook', format: 'json', content: false });
  }

  dispose(): void {
    for (const { provider } of this._providers.values()) {
      provider.dispose();
    }
    this._providers.clear();
    Signal.clearData(this);
  }

  private _createNew(
    options: Contents.ISharedFactoryOptions
  ): YNotebook | undefined {
    if (options.contentType !== 'notebook' || options.collaborative === false) {
      return undefined;
    }
    const sharedModel = new YNotebook();
    const path = options.path;
    const provider = new RoomProvider({
      url: roomUrl(this._serverSettings.wsUrl, path, this._serverSettings.token),
      doc: sharedModel.ydoc,
      awareness: sharedModel.awareness
    });
    this._providers.set(path, { provider, lastModified: undefined });
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
      if (this._providers.get(path)?.provider === provider) {
        this._providers.delete(path);
      }
      this._providersChanged.emit();
    });
    this._providersChanged.emit();
    return sharedModel;
  }

  /**
   * Wait until our edits have left the socket and the room reports the file written
   * back (status `dirty` false). Interim: a server request "save now" is planned.
   */
  private async _waitWrittenBack(path: string, provider: RoomProvider): Promise<void> {
    const deadline = Date.now() + this._saveTimeoutMs;
    const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
    while (!provider.flushed) {
      if (provider.status !== 'connected' && provider.status !== 'syncing') {
        throw new Error(`Not saved: the notebook's room is ${provider.status}.`);
      }
      if (Date.now() > deadline) {
        throw new Error('Not saved: the room did not receive the edits in time.');
      }
      await sleep(50);
    }
    const url = URLExt.join(this._serverSettings.baseUrl, 'api/crdtsync/status');
    for (;;) {
      const response = await ServerConnection.makeRequest(url, {}, this._serverSettings);
      if (!response.ok) {
        throw new ServerConnection.ResponseError(response);
      }
      const status = (await response.json()) as {
        rooms: { path: string; dirty: boolean }[];
      };
      const room = status.rooms.find(r => r.path === path);
      if (room && !room.dirty) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error('Not saved: the room has not written the notebook back yet.');
      }
      await sleep(200);
    }
  }

  private _drive: Contents.IDrive;
  private _serverSettings: ServerConnection.ISettings;
  private _user: User.IManager | null;
  private _saveTimeoutMs: number;
  private _providers = new Map<
    string,
    { provider: RoomProvider; lastModified: string | undefined }
  >();
  private _providersChanged = new Signal<this, void>(this);
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
}
