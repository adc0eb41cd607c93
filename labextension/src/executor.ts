/**
 * JupyterLab's notebook cell executor, for notebooks bound to a room: code cells run
 * through the room's kernel actor (`POST api/crdtsync/execute/{path}`), and their
 * outputs, `[*]` and execution count come back through the document, in every window.
 * Notebooks that are not bound to a room run as JupyterLab runs them.
 */

import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { CodeCell, MarkdownCell } from '@jupyterlab/cells';
import {
  INotebookCellExecutor,
  KernelError,
  runCell as runCellStock
} from '@jupyterlab/notebook';
import { KernelMessage, ServerConnection } from '@jupyterlab/services';
import type * as Y from 'yjs';

import {
  ExecutionBatcher,
  ExecutionOutcome,
  requestExecution,
  waitForExecution
} from './executionclient';
import { NotAppliedError } from './provider';
import { IRoomBinding, IRoomBindings } from './tokens';

type Options = INotebookCellExecutor.IRunCellOptions;

export class RoomCellExecutor implements INotebookCellExecutor {
  constructor(
    private readonly _rooms: IRoomBindings,
    private readonly _serverSettings: ServerConnection.ISettings
  ) {}

  async runCell(options: Options): Promise<boolean> {
    const binding = this._rooms.bindingOf(options.notebook.sharedModel);
    if (!binding) {
      return runCellStock(options);
    }
    const { cell } = options;
    switch (cell.model.type) {
      case 'markdown':
        (cell as MarkdownCell).rendered = true;
        cell.inputHidden = false;
        options.onCellExecuted({ cell, success: true });
        return true;
      case 'code':
        return this._runCode(binding, cell as CodeCell, options);
      default:
        return true;
    }
  }

  private async _runCode(
    binding: IRoomBinding,
    cell: CodeCell,
    options: Options
  ): Promise<boolean> {
    const state = this._state(binding);
    // Checks run one cell after the other, so that the cells reach the room in order.
    const checked = state.checks.then(() => readiness(cell, options));
    state.checks = checked.then(
      () => undefined,
      () => undefined
    );
    const ready = await checked;
    if (ready !== 'run') {
      return ready === 'cleared';
    }
    if (!cell.model.sharedModel.getSource().trim()) {
      // As JupyterLab does: an empty cell is not sent to the kernel, it is cleared.
      cell.model.sharedModel.transact(() => cell.model.clearExecution());
      return true;
    }
    options.onCellExecutionScheduled({ cell });
    // Outputs of code this window ran are trusted here, as JupyterLab trusts them.
    cell.model.trusted = true;
    let msgId: string;
    try {
      msgId = (await state.batcher.request(cell.model.sharedModel.getId()))
        .msg_id;
    } catch (error) {
      this._report(error);
      options.onCellExecuted({ cell, success: false });
      return false;
    }
    const ymodel = (cell.model.sharedModel as unknown as { ymodel: Y.Map<any> })
      .ymodel;
    const end = roomEnd(binding);
    let outcome: ExecutionOutcome;
    try {
      outcome = await waitForExecution(ymodel, msgId, end.promise);
    } finally {
      end.dispose();
    }
    const success = outcome === 'ok';
    if (outcome === 'error') {
      options.onCellExecuted({ cell, success, error: kernelError(cell) });
    } else if (outcome !== 'stopped' && outcome !== 'deleted') {
      options.onCellExecuted({ cell, success });
    }
    return success;
  }

  private _state(binding: IRoomBinding): IRoomExecution {
    let state = this._states.get(binding);
    if (!state) {
      state = {
        checks: Promise.resolve(),
        batcher: new ExecutionBatcher(
          cellIds =>
            requestExecution(this._serverSettings, binding.path, cellIds),
          // The room runs the source it holds: it must have this window's edits first.
          () => binding.provider.whenApplied()
        )
      };
      this._states.set(binding, state);
    }
    return state;
  }

  /** One dialog per failed request (a Run All of fifty cells fails once). */
  private _report(error: unknown): void {
    if (typeof error === 'object' && error !== null) {
      if (this._reported.has(error)) {
        return;
      }
      this._reported.add(error);
    }
    const message =
      error instanceof NotAppliedError
        ? `The cells were not run: ${error.message}. Run them again once the notebook ` +
          'is connected.'
        : String((error as Error)?.message ?? error);
    console.warn(`jupyter-crdt-sync: ${message}`);
    void showErrorMessage('Cells not run', message);
  }

  private _states = new WeakMap<IRoomBinding, IRoomExecution>();
  private _reported = new WeakSet<object>();
}

interface IRoomExecution {
  checks: Promise<void>;
  batcher: ExecutionBatcher;
}

/**
 * What JupyterLab checks before it runs a code cell: a kernel that is not shutting down,
 * and one at all (offering to start or choose one). The room's kernel actor uses the
 * kernel of the notebook's session, the one this window's toolbar shows.
 */
async function readiness(
  cell: CodeCell,
  { sessionContext, sessionDialogs }: Options
): Promise<'run' | 'refused' | 'cleared'> {
  if (!sessionContext) {
    return 'run'; // the kernel actor starts one from the notebook's kernelspec
  }
  await sessionContext.ready;
  if (sessionContext.isTerminating) {
    await showDialog({
      title: 'Kernel Terminating',
      body:
        `The kernel for ${sessionContext.session?.path} appears to be terminating. ` +
        'You can not run any cell for now.',
      buttons: [Dialog.okButton()]
    });
    return 'refused';
  }
  if (sessionContext.hasNoKernel) {
    const shouldSelect = await sessionContext.startKernel();
    if (shouldSelect && sessionDialogs) {
      await sessionDialogs.selectKernel(sessionContext);
    }
  }
  if (sessionContext.hasNoKernel) {
    // "No Kernel" chosen: as JupyterLab does, the cell is cleared and not run.
    cell.model.sharedModel.transact(() => cell.model.clearExecution());
    return 'cleared';
  }
  return 'run';
}

/** Resolves when the binding's room connection ends for good (deleted, stale, closed). */
function roomEnd(binding: IRoomBinding): {
  promise: Promise<void>;
  dispose: () => void;
} {
  let check = () => undefined as void;
  const promise = new Promise<void>(resolve => {
    check = () => {
      const status = binding.provider.status;
      if (status === 'deleted' || status === 'stale' || status === 'disposed') {
        resolve();
      }
    };
  });
  binding.provider.statusChanged.connect(check);
  check();
  return {
    promise,
    dispose: () => binding.provider.statusChanged.disconnect(check)
  };
}

/** The error the kernel reported, as JupyterLab passes it to `onCellExecuted`. */
function kernelError(cell: CodeCell): KernelError {
  const outputs = cell.model.outputs.toJSON();
  const error = outputs.find(output => output.output_type === 'error') as
    { ename?: string; evalue?: string; traceback?: string[] } | undefined;
  const content: KernelMessage.IExecuteReplyMsg['content'] = {
    status: 'error',
    ename: error?.ename ?? 'Error',
    evalue: error?.evalue ?? '',
    traceback: error?.traceback ?? [],
    execution_count: cell.model.executionCount
  } as KernelMessage.IExecuteReplyMsg['content'];
  return new KernelError(content);
}
