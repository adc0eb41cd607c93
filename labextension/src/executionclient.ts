/**
 * Asking the room's kernel actor to run cells, and following their executions in the
 * document. No widget code: runs in node (test/executionclient.test.ts, server.test.ts).
 *
 * The server queues the cells, writes `execution_state` ('queued', 'running', 'idle')
 * and `execution_count` into each cell, appends the outputs, and records the request in
 * the cell's `metadata.crdtsync` as `{msg_id}`, then `{msg_id, status}` once it is over.
 */

import * as Y from 'yjs';
import { ServerConnection } from '@jupyterlab/services';

import { postJson, roomApiUrl } from './roomapi';

/** One queued execution, as `POST api/crdtsync/execute/{path}` answers it. */
export interface IExecution {
  cell_id: string;
  msg_id: string;
}

/** How an execution ended ('ok', 'error', 'aborted' come from the server). */
export type ExecutionOutcome =
  | 'ok'
  | 'error'
  | 'aborted'
  /** The cell was run again (by any window) before this execution was seen to end. */
  | 'superseded'
  /** The cell was deleted. */
  | 'deleted'
  /** The caller stopped waiting (`stop` resolved). */
  | 'stopped';

/** The request body: one cell or several, in order. */
export function executeBody(cellIds: readonly string[]): object {
  if (cellIds.length === 0) {
    throw new Error('no cells to execute');
  }
  return cellIds.length === 1
    ? { cell_id: cellIds[0] }
    : { cell_ids: [...cellIds] };
}

/** What to tell the user when the server refuses or fails to run cells. */
export function executeErrorMessage(
  status: number,
  serverMessage: string
): string {
  switch (status) {
    case 0:
      return `The server cannot be reached (${serverMessage}); the cells were not run.`;
    case 400:
      // No such kernelspec, not a code cell, a bad request: the server says which.
      return `The cells were not run: ${serverMessage}`;
    case 403:
      return 'The cells were not run: you may not run code on this server.';
    case 404:
      return `The cells were not run: ${serverMessage}`;
    default:
      return `The cells were not run: the server answered ${status} (${serverMessage}).`;
  }
}

/** Ask the room of `path` to run these cells, in this order. */
export function requestExecution(
  settings: ServerConnection.ISettings,
  path: string,
  cellIds: readonly string[]
): Promise<IExecution[]> {
  return postJson<{ executions: IExecution[] }>(
    roomApiUrl(settings.baseUrl, 'execute', path),
    executeBody(cellIds),
    settings,
    executeErrorMessage
  ).then(answer => answer.executions);
}

/**
 * Collects the cells asked for in one turn of the event loop (Run All asks for every
 * cell at once) into one request, and sends requests one at a time, so that the room
 * queues the cells in the order they were asked for.
 */
export class ExecutionBatcher {
  /**
   * @param send - posts one request (cell ids in order) and returns its executions.
   * @param beforeSend - awaited before each request (e.g. until the room has every edit
   *   made here, so that it runs the source this window shows); its error fails the batch.
   */
  constructor(
    private readonly send: (cellIds: string[]) => Promise<IExecution[]>,
    private readonly beforeSend: () => Promise<void> = () => Promise.resolve()
  ) {}

  /** The execution of this cell, once the room has queued it. */
  request(cellId: string): Promise<IExecution> {
    return new Promise<IExecution>((resolve, reject) => {
      this._pending.push({ cellId, resolve, reject });
      if (!this._scheduled) {
        this._scheduled = true;
        // After the current task: every cell of one Run All joins the batch.
        setTimeout(() => {
          this._scheduled = false;
          this._tail = this._tail.then(() => this._sendPending());
        }, 0);
      }
    });
  }

  private async _sendPending(): Promise<void> {
    const batch = this._pending;
    this._pending = [];
    if (batch.length === 0) {
      return;
    }
    try {
      await this.beforeSend();
      const executions = await this.send(batch.map(entry => entry.cellId));
      batch.forEach((entry, index) => {
        const execution = executions[index];
        if (execution && execution.cell_id === entry.cellId) {
          entry.resolve(execution);
        } else {
          entry.reject(
            new Error(`the server did not queue cell ${entry.cellId}`)
          );
        }
      });
    } catch (error) {
      // One error for the whole batch: the caller reports it once.
      batch.forEach(entry => entry.reject(error));
    }
  }

  private _pending: {
    cellId: string;
    resolve: (execution: IExecution) => void;
    reject: (error: unknown) => void;
  }[] = [];
  private _scheduled = false;
  private _tail: Promise<void> = Promise.resolve();
}

/** The request record the server keeps in a cell's metadata. */
export function executionRecord(
  cell: Y.Map<any>
): { msg_id?: string; status?: string } | undefined {
  const metadata = cell.get('metadata');
  const record =
    metadata instanceof Y.Map ? metadata.get('crdtsync') : metadata?.crdtsync;
  return record && typeof record === 'object' ? record : undefined;
}

/**
 * Resolves with the outcome of the execution `msgId` of this cell (a cell Map of the
 * document's `cells` array), as the document shows it; or 'stopped' when `stop`
 * resolves first.
 */
export function waitForExecution(
  cell: Y.Map<any>,
  msgId: string,
  stop?: Promise<unknown>
): Promise<ExecutionOutcome> {
  return new Promise<ExecutionOutcome>(resolve => {
    const doc = cell.doc;
    // The room's change that queues the cell may arrive after its answer to the request:
    // until then the cell still shows the record of an earlier execution.
    const earlier = cell.doc ? executionRecord(cell)?.msg_id : undefined;
    let done = false;
    const check = () => {
      if (done) {
        return;
      }
      const outcome = currentOutcome(cell, msgId, earlier);
      if (outcome !== null) {
        finish(outcome);
      }
    };
    const finish = (outcome: ExecutionOutcome) => {
      done = true;
      doc?.off('afterTransaction', check);
      resolve(outcome);
    };
    check();
    if (done) {
      return;
    }
    if (!doc) {
      finish('deleted');
      return;
    }
    // After every transaction (the server's changes, or a window deleting the cell).
    doc.on('afterTransaction', check);
    void stop?.then(
      () => !done && finish('stopped'),
      () => !done && finish('stopped')
    );
  });
}

function currentOutcome(
  cell: Y.Map<any>,
  msgId: string,
  earlier: string | undefined
): ExecutionOutcome | null {
  if (cell._item?.deleted || cell.doc === null) {
    return 'deleted';
  }
  const record = executionRecord(cell);
  if (
    record?.msg_id === undefined ||
    (record.msg_id === earlier && earlier !== msgId)
  ) {
    return null; // not queued yet (the room's change has not arrived)
  }
  if (record.msg_id !== msgId) {
    // Run again since, perhaps before this window saw this execution at all.
    return 'superseded';
  }
  switch (record.status) {
    case 'ok':
    case 'error':
    case 'aborted':
      return record.status;
    case undefined:
      return null;
    default:
      return 'error';
  }
}
