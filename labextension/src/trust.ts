/**
 * Trust follows the document. JupyterLab renders HTML, JavaScript and widget outputs only
 * in trusted cells, and reads a cell's trust from its `metadata.trusted` once, when the
 * cell model is made. In a shared notebook the cell is often run elsewhere: by another
 * window, or by the kernel actor for a script; both mark it `metadata.trusted` in the
 * document (as JupyterLab does when its user runs a cell). Every window applies that mark
 * as it arrives, so outputs made by the notebook's own kernel render the same everywhere.
 * Trust is only ever given here, never taken away.
 */

import { ICellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { forEachCellModel } from './cellmodels';

/** Keep the trust of this notebook's cells in step with their `metadata.trusted`. */
export function followTrust(panel: NotebookPanel): void {
  const apply = (model: ICellModel) => {
    if (!model.trusted && model.getMetadata('trusted') === true) {
      model.trusted = true;
    }
  };
  forEachCellModel(panel, model => {
    model.metadataChanged.connect((_, change) => {
      if (change.key === 'trusted') {
        apply(model);
      }
    });
    apply(model);
  });
}
