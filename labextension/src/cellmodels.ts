/**
 * Following every cell model of a notebook panel: those it has, those added later, and
 * those of a new notebook model should the panel get one.
 */

import { ICellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

/** Call `watch` once for each cell model the panel's notebook has or will have. */
export function forEachCellModel(
  panel: NotebookPanel,
  watch: (model: ICellModel) => void
): void {
  const notebook = panel.content;
  const seen = new WeakSet<ICellModel>();
  const visit = (model: ICellModel) => {
    if (!seen.has(model)) {
      seen.add(model);
      watch(model);
    }
  };
  const onCellsChanged = (
    _: unknown,
    change: { type: string; newValues: ICellModel[] }
  ) => {
    if (change.type === 'add' || change.type === 'set') {
      change.newValues.forEach(visit);
    }
  };
  const attach = () => {
    const model = notebook.model;
    if (!model) {
      return;
    }
    for (const cell of model.cells) {
      visit(cell);
    }
    model.cells.changed.connect(onCellsChanged);
  };
  attach();
  notebook.modelChanged.connect(attach);
}
