/**
 * `[*]` for queued cells. The kernel actor marks a cell 'queued' until its turn comes,
 * then 'running'; JupyterLab's code cell shows `[*]` only for 'running' (it marks every
 * queued cell 'running' itself). In every window, whichever ran the cells, a queued
 * cell gets the same prompt as a running one.
 */

import { Cell, CodeCell, ICellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { forEachCellModel } from './cellmodels';

const QUEUED = 'queued';

/** Keep `[*]` on the queued cells of this notebook until the panel is disposed. */
export function showQueuedCells(panel: NotebookPanel): void {
  const notebook = panel.content;

  const refresh = (model: ICellModel) => {
    if ((model as { executionState?: string }).executionState !== QUEUED) {
      return;
    }
    const cell = notebook.widgets.find(widget => widget.model === model);
    if (!(cell instanceof CodeCell)) {
      return;
    }
    // The cell's own handler of the same change (or its first render) sets the prompt
    // from the count; set ours after it.
    void cell.ready.then(() =>
      queueMicrotask(() => {
        if (
          !cell.isDisposed &&
          (cell.model.executionState as string) === QUEUED
        ) {
          showAsRunning(cell);
        }
      })
    );
  };

  forEachCellModel(panel, model => {
    if (model.type !== 'code') {
      return;
    }
    model.stateChanged.connect((_, change) => {
      if (
        change.name === 'executionState' ||
        change.name === 'executionCount'
      ) {
        refresh(model);
      }
    });
    refresh(model);
  });
}

function showAsRunning(cell: Cell): void {
  // The same prompt JupyterLab gives a running cell. (`setPrompt` is the public way to
  // set a prompt; the model's execution state stays what the room says.)
  cell.setPrompt('*');
}
