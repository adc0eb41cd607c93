/**
 * jupyter-crdt-sync's JupyterLab extension: notebooks open bound to the server's rooms,
 * cells run through the room's kernel actor, and the status bar shows the connection.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import {
  INotebookCellExecutor,
  INotebookTracker,
  INotebookWidgetFactory,
  NotebookWidgetFactory
} from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';

import { CONTENT_PROVIDER_ID, CrdtContentProvider } from './contentprovider';
import { cursorsPlugin } from './cursors';
import { historyPlugin } from './historypanel';
import { settingsPlugin } from './settings';
import { widgetsPlugin } from './widgets';
import { RoomCellExecutor } from './executor';
import { JUPYTER_COLLABORATION_PLUGIN } from './coexistence';
import { announceRoomEnds, warnIfJupyterCollaboration } from './notices';
import { showQueuedCells } from './queuedprompt';
import { followTrust } from './trust';
import { ConnectionStatusItem } from './statusitem';
import { CollaboratorAvatars } from './avatars';
import type { IAwarenessLike } from './remotecursors';
import { IRoomBindings } from './tokens';

export { CONTENT_PROVIDER_ID, CrdtContentProvider } from './contentprovider';
export * from './backoff';
export * from './provider';
export * from './tokens';

/** The widget factory of JupyterLab's file editor (`@jupyterlab/fileeditor-extension`). */
const TEXT_EDITOR_FACTORY = 'Editor';

/** Binds notebooks to rooms: the content provider, registered on the default drive. */
const roomsPlugin: JupyterFrontEndPlugin<IRoomBindings> = {
  id: 'jupyter-crdt-sync:plugin',
  description: "Binds notebooks to jupyter-crdt-sync's rooms.",
  autoStart: true,
  requires: [INotebookWidgetFactory],
  provides: IRoomBindings,
  activate: (
    app: JupyterFrontEnd,
    notebookFactory: NotebookWidgetFactory.IFactory
  ): IRoomBindings => {
    const contents = app.serviceManager.contents as Contents.IManager & {
      defaultDrive?: Contents.IDrive;
    };
    const drive = contents.defaultDrive;
    const rooms = new CrdtContentProvider({
      drive: drive ?? (contents as unknown as Contents.IDrive),
      serverSettings: app.serviceManager.serverSettings,
      user: app.serviceManager.user
    });
    const registry = drive?.contentProviderRegistry;
    if (!drive || !registry) {
      // Nothing gets bound; the other plugins then leave every notebook to JupyterLab.
      console.error(
        'jupyter-crdt-sync: this JupyterLab has no content provider registry (needs 4.4 or later).'
      );
      return rooms;
    }
    registry.register(CONTENT_PROVIDER_ID, rooms);
    // Settable since JupyterLab 4.4, typed read-only.
    (notebookFactory as { contentProviderId?: string }).contentProviderId =
      CONTENT_PROVIDER_ID;
    // Text files too: the file editor's documents are bound to the room of their file.
    const bindEditor = (name: string) => {
      const factory = app.docRegistry.getWidgetFactory(name) as any;
      if (
        name === TEXT_EDITOR_FACTORY &&
        factory &&
        !factory.contentProviderId
      ) {
        factory.contentProviderId = CONTENT_PROVIDER_ID;
      }
    };
    bindEditor(TEXT_EDITOR_FACTORY);
    app.docRegistry.changed.connect((_, change) => {
      if (change.type === 'widgetFactory' && change.change === 'added') {
        bindEditor(change.name ?? '');
      }
    });
    // Back online: do not wait for the next scheduled attempt.
    window.addEventListener('online', () => rooms.reconnectOffline());
    void app.restored.then(() =>
      warnIfJupyterCollaboration({
        frontEnd: app.hasPlugin(JUPYTER_COLLABORATION_PLUGIN),
        serverExtension: PageConfig.getOption('disableRTC') !== '',
        oursBindsNotebooks:
          notebookFactory.contentProviderId === CONTENT_PROVIDER_ID
      })
    );
    return rooms;
  }
};

/**
 * Runs code cells of bound notebooks through the room's kernel actor. Replaces
 * `@jupyterlab/notebook-extension:cell-executor` (disabled in package.json).
 */
const executorPlugin: JupyterFrontEndPlugin<INotebookCellExecutor> = {
  id: 'jupyter-crdt-sync:cell-executor',
  description: "Runs cells of shared notebooks on the room's kernel actor.",
  autoStart: true,
  requires: [IRoomBindings],
  provides: INotebookCellExecutor,
  activate: (
    app: JupyterFrontEnd,
    rooms: IRoomBindings
  ): INotebookCellExecutor =>
    new RoomCellExecutor(rooms, app.serviceManager.serverSettings)
};

/**
 * The connection status item, `[*]` on queued cells, trust marks made elsewhere,
 * renames seen by the document context, and the end-of-room notices.
 */
const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-crdt-sync:status',
  description: "Shows the state of the current notebook's room connection.",
  autoStart: true,
  requires: [IRoomBindings, INotebookTracker],
  optional: [IStatusBar],
  activate: (
    _: JupyterFrontEnd,
    rooms: IRoomBindings,
    tracker: INotebookTracker,
    statusBar: IStatusBar | null
  ) => {
    tracker.widgetAdded.connect((__, panel) => {
      const { context } = panel;
      if (rooms.bindingOf(context.model.sharedModel)) {
        // Who else is in this notebook.
        const avatars = new CollaboratorAvatars(
          context.model.sharedModel.awareness as unknown as IAwarenessLike
        );
        panel.toolbar.insertItem(10, 'crdtsync-collaborators', avatars);
        panel.disposed.connect(() => avatars.dispose());
        showQueuedCells(panel);
        followTrust(panel);
        // Renamed elsewhere: the room moved with its peers; reconnects, saves and runs
        // must use the new path.
        context.pathChanged.connect((___, newPath) =>
          rooms.follow(context.model.sharedModel, newPath)
        );
      }
    });
    announceRoomEnds(rooms, tracker);
    if (statusBar) {
      const item = new ConnectionStatusItem(rooms, tracker);
      statusBar.registerStatusItem('jupyter-crdt-sync:connection', {
        item,
        align: 'left',
        rank: 5,
        isActive: () => item.isBound,
        activeStateChanged: item.activeStateChanged
      });
    }
  }
};

const plugins: JupyterFrontEndPlugin<any>[] = [
  roomsPlugin,
  executorPlugin,
  statusPlugin,
  widgetsPlugin,
  cursorsPlugin,
  settingsPlugin,
  historyPlugin
];

export default plugins;
