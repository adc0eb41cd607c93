/**
 * jupyter-crdt-sync's JupyterLab extension: notebooks open bound to the server's rooms.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookWidgetFactory } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';

import { CONTENT_PROVIDER_ID, CrdtContentProvider } from './contentprovider';
import { cursorsPlugin } from './cursors';
import { widgetsPlugin } from './widgets';

export { CONTENT_PROVIDER_ID, CrdtContentProvider } from './contentprovider';
export * from './backoff';
export * from './provider';

/** jupyter-collaboration's plugin that binds notebooks to its own rooms. */
const JUPYTER_COLLABORATION_PLUGIN = '@jupyter/docprovider-extension:ynotebook';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-crdt-sync:plugin',
  description: "Binds notebooks to jupyter-crdt-sync's rooms.",
  autoStart: true,
  requires: [INotebookWidgetFactory],
  activate: (app: JupyterFrontEnd, notebookFactory: any) => {
    if (app.hasPlugin(JUPYTER_COLLABORATION_PLUGIN)) {
      console.warn(
        'jupyter-crdt-sync: jupyter-collaboration is installed too; ' +
          'notebooks may be bound to its rooms instead. Uninstall one of them.'
      );
    }
    const contents = app.serviceManager.contents as Contents.IManager & {
      defaultDrive?: Contents.IDrive;
    };
    const drive = contents.defaultDrive;
    const registry = drive?.contentProviderRegistry;
    if (!drive || !registry) {
      console.error(
        'jupyter-crdt-sync: this JupyterLab has no content provider registry (needs 4.4 or later).'
      );
      return;
    }
    const provider = new CrdtContentProvider({
      drive,
      serverSettings: app.serviceManager.serverSettings,
      user: app.serviceManager.user
    });
    registry.register(CONTENT_PROVIDER_ID, provider);
    notebookFactory.contentProviderId = CONTENT_PROVIDER_ID;
  }
};

export default [plugin, widgetsPlugin, cursorsPlugin];
