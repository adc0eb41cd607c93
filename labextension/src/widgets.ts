/**
 * Widgets from the document: each notebook bound to a room feeds the document's widget
 * state (root Map `widgets`, kept by the server) into ipywidgets' widget manager of its
 * panel, so that a window opened late, or while the kernel is busy, renders the live
 * widgets at once. See `widgetfeed.ts`. Output widgets show what the server captured
 * into them, from the document, once, in every window (`outputcapture.ts`).
 *
 * ipywidgets' JupyterLab front-end (`@jupyter-widgets/jupyterlab-manager`, installed by
 * jupyterlab_widgets) is optional: without it this plugin does nothing, and its modules
 * are only loaded (from JupyterLab's shared scope) when its plugin is there.
 */
import type * as WidgetsBase from '@jupyter-widgets/base';
import type * as LabManager from '@jupyter-widgets/jupyterlab-manager';
import type {
  LabWidgetManager,
  WidgetRenderer
} from '@jupyter-widgets/jupyterlab-manager';
import type { YNotebook } from '@jupyter/ydoc';
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { captureOnServer, DocumentOutputs } from './outputcapture';
import { CommShim, DocumentWidgetFeed } from './widgetfeed';
import { WIDGETS_ROOT } from './widgetstate';

/** ipywidgets' plugin that makes a widget manager for each notebook panel. */
export const WIDGET_MANAGER_PLUGIN =
  '@jupyter-widgets/jupyterlab-manager:plugin';

const WIDGET_VIEW_MIMETYPE = 'application/vnd.jupyter.widget-view+json';

interface IWidgetModules {
  lab: typeof LabManager;
  Comm: CommShim;
}

/** The widget managers of notebooks bound to a room: the server captures their outputs. */
const serverCaptured = new WeakSet<object>();

async function loadWidgetModules(): Promise<IWidgetModules | null> {
  try {
    const [lab, base] = await Promise.all([
      import('@jupyter-widgets/jupyterlab-manager'),
      import('@jupyter-widgets/base')
    ]);
    captureOnServer(lab.output.OutputModel, manager =>
      serverCaptured.has(manager as object)
    );
    return {
      lab,
      Comm: (base as typeof WidgetsBase).shims.services
        .Comm as unknown as CommShim
    };
  } catch (error) {
    console.warn(
      'jupyter-crdt-sync: ipywidgets is there but its modules did not load; ' +
        'widgets render from the kernel only.',
      error
    );
    return null;
  }
}

/**
 * The widget manager ipywidgets made for the panel, or null if it made none (no
 * kernel, or ipywidgets' plugin not active).
 */
async function widgetManagerOf(
  panel: NotebookPanel,
  rootRendermime: IRenderMimeRegistry,
  lab: typeof LabManager
): Promise<LabWidgetManager | null> {
  await panel.sessionContext.ready;
  // ipywidgets' plugin makes the manager once the same promise resolves, in a chain
  // of promise reactions: a macrotask later it has run.
  await new Promise(resolve => setTimeout(resolve, 0));
  // It then binds the panel's widget renderer to the manager, replacing the
  // placeholder that every notebook's rendermime starts with.
  const placeholder = rootRendermime.getFactory(WIDGET_VIEW_MIMETYPE);
  const bound = panel.content.rendermime.getFactory(WIDGET_VIEW_MIMETYPE);
  if (panel.isDisposed || !placeholder || !bound || bound === placeholder) {
    console.debug(
      `jupyter-crdt-sync: no widget manager for ${panel.context.path}`
    );
    return null;
  }
  // ipywidgets' exported `registerWidgetManager` hands the kernel's existing manager to
  // the renderers it is given (and binds the renderer again, to the same manager). Its
  // disposable would dispose that shared manager: never dispose it.
  return new Promise<LabWidgetManager>(resolve => {
    const probe = {
      set manager(manager: LabWidgetManager) {
        resolve(manager);
      }
    };
    lab.registerWidgetManager(
      panel.context,
      panel.content.rendermime,
      [probe as unknown as WidgetRenderer].values()
    );
  });
}

async function feedPanel(
  panel: NotebookPanel,
  rootRendermime: IRenderMimeRegistry,
  modules: Promise<IWidgetModules | null>
): Promise<void> {
  await panel.context.ready;
  const sharedModel = panel.context.model.sharedModel as Partial<YNotebook>;
  // Only notebooks bound to a room (a collaborative shared model) have the server's map.
  if (
    panel.isDisposed ||
    !panel.context.model.collaborative ||
    !sharedModel.ydoc
  ) {
    return;
  }
  const widgets = sharedModel.ydoc.getMap<unknown>(WIDGETS_ROOT);
  const loaded = await modules;
  if (!loaded) {
    return;
  }
  const manager = await widgetManagerOf(panel, rootRendermime, loaded.lab);
  if (!manager || panel.isDisposed) {
    return;
  }
  serverCaptured.add(manager);
  const outputs = new DocumentOutputs({ manager, widgets });
  const refresh = () => outputs.refresh();
  manager.restored.connect(refresh);
  const feed = new DocumentWidgetFeed({ manager, widgets, Comm: loaded.Comm });
  panel.disposed.connect(() => {
    manager.restored.disconnect(refresh);
    outputs.dispose();
    feed.dispose();
  });
}

export const widgetsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-crdt-sync:widgets',
  description:
    "Feeds the document's widget state to ipywidgets' widget manager.",
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry
  ) => {
    if (!app.hasPlugin(WIDGET_MANAGER_PLUGIN)) {
      return;
    }
    const modules = loadWidgetModules();
    const watch = (panel: NotebookPanel) => {
      feedPanel(panel, rendermime, modules).catch(error => {
        console.warn(
          `jupyter-crdt-sync: widgets of ${panel.context.path} not fed`,
          error
        );
      });
    };
    tracker.forEach(watch);
    tracker.widgetAdded.connect((_, panel) => watch(panel));
  }
};
