/**
 * Collaborators' cursors: registers the remote-cursors CodeMirror extension
 * (`remotecursors.ts`) for notebook cell editors, and takes this window's cursor away
 * when it moves to another cell without editing it.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  EditorExtensionRegistry,
  IEditorExtensionRegistry
} from '@jupyterlab/codemirror';
import { INotebookTracker } from '@jupyterlab/notebook';
import type * as Y from 'yjs';

import { SELECTION_FIELD } from './cursorstate';
import { IAwarenessLike, remoteCursors } from './remotecursors';

interface ICellSharedModel {
  ysource?: Y.Text;
  awareness?: IAwarenessLike | null;
  notebook?: unknown;
  getId?: () => string;
}

export const cursorsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-crdt-sync:cursors',
  description: "Shows collaborators' cursors and selections in notebook cells.",
  autoStart: true,
  requires: [IEditorExtensionRegistry],
  optional: [INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    extensions: IEditorExtensionRegistry,
    tracker: INotebookTracker | null
  ) => {
    extensions.addExtension({
      name: 'jupyter-crdt-sync:remote-cursors',
      factory: options => {
        const shared = options.model.sharedModel as unknown as ICellSharedModel;
        // Notebook cells only: they share the notebook's awareness.
        if (
          !shared?.ysource ||
          !shared.awareness ||
          !shared.notebook ||
          !shared.getId
        ) {
          return null;
        }
        const getId = shared.getId.bind(shared);
        return EditorExtensionRegistry.createImmutableExtension(
          remoteCursors({
            ytext: shared.ysource,
            awareness: shared.awareness,
            cellId: getId
          })
        );
      }
    });
    // Moving to another cell without editing it (command mode) takes our cursor away.
    tracker?.activeCellChanged.connect((_, cell) => {
      const awareness = tracker.currentWidget?.model?.sharedModel.awareness as
        IAwarenessLike | undefined;
      const published = awareness?.getLocalState()?.[SELECTION_FIELD];
      if (
        awareness &&
        published &&
        published.cell !== cell?.model.sharedModel.getId()
      ) {
        awareness.setLocalStateField(SELECTION_FIELD, null);
      }
    });
  }
};
