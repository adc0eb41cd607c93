/**
 * Output widgets of notebooks bound to a room: the server captures, every window shows.
 *
 * The server's kernel actor puts the outputs of a request that an ipywidgets Output
 * widget names (`with out:`, in a cell or in a callback) into that widget's `outputs`
 * state in the document (jupyter_crdt_sync/output_capture.py). In the window:
 *
 * - ipywidgets' OutputModel registers a kernel message hook for the request it names,
 *   adds what the hook sees to its outputs and sends them to the kernel. The window only
 *   sees such a request on its kernel connection when it sent it itself (a slider moved
 *   here): the outputs would then come twice, from the hook and from the document. For
 *   bound notebooks the hook only swallows those messages (they reach neither a cell nor
 *   the log console) and adds nothing: `captureOnServer`.
 * - The `outputs` of every Output model follow the document for the life of the panel
 *   (other state follows it only until the kernel answers, see widgetfeed.ts), applied
 *   as the kernel's own updates are: `DocumentOutputs`. The window renders what the
 *   server captured, once, inside the widget, whether or not it had a kernel connection
 *   when it happened.
 */
import type { IDisposable } from '@lumino/disposable';
import type * as Y from 'yjs';

import { readWidgetEntry, widgetChanges } from './widgetstate';

const OUTPUT_MODEL = 'OutputModel';
const OUTPUT_MODULE = '@jupyter-widgets/output';
const PATCHED = Symbol.for('jupyter-crdt-sync:output-capture');

/** What this module uses of ipywidgets' widget manager. */
export interface IOutputsManager {
  has_model(id: string): boolean;
  get_model(id: string): Promise<any> | undefined;
}

type Hook = (msg: unknown) => boolean;

/**
 * Make ipywidgets' OutputModel (of `@jupyter-widgets/jupyterlab-manager`'s `output`
 * module) leave capture to the server for the models whose widget manager `isBound`.
 * Patches the class once; models of other notebooks behave as before.
 */
export function captureOnServer(
  OutputModel: { prototype: any },
  isBound: (manager: unknown) => boolean
): void {
  const proto = OutputModel.prototype;
  if (proto[PATCHED]) {
    return;
  }
  const original = proto.reset_msg_id as (this: any) => void;
  proto[PATCHED] = true;
  proto.reset_msg_id = function (this: any): void {
    if (!isBound(this.widget_manager)) {
      original.call(this);
      return;
    }
    const kernel = this.widget_manager.kernel;
    const msgId = this.get('msg_id');
    const oldMsgId = this.previous('msg_id');
    const swallow: Hook = (this._crdtsyncSwallow ??= () => false);
    if (oldMsgId && kernel) {
      // Either hook may be there: the model may have named a request before its
      // notebook was known to be bound.
      kernel.removeMessageHook(oldMsgId, this._msgHook);
      kernel.removeMessageHook(oldMsgId, swallow);
    }
    if (msgId && kernel) {
      kernel.registerMessageHook(msgId, swallow);
    }
  };
}

export namespace DocumentOutputs {
  export interface IOptions {
    manager: IOutputsManager;
    /** The document's `widgets` root Map. */
    widgets: Y.Map<unknown>;
  }
}

/** Keeps the `outputs` of the panel's Output models equal to the document's. */
export class DocumentOutputs implements IDisposable {
  constructor(options: DocumentOutputs.IOptions) {
    this._manager = options.manager;
    this._widgets = options.widgets;
    this._widgets.observeDeep(this._onChanges);
    for (const id of Array.from(this._widgets.keys())) {
      this._apply(id);
    }
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (!this._isDisposed) {
      this._isDisposed = true;
      this._widgets.unobserveDeep(this._onChanges);
    }
  }

  /** A model the manager made later (from the kernel or the document) takes the
   * document's outputs too. */
  refresh(): void {
    for (const id of Array.from(this._widgets.keys())) {
      this._apply(id);
    }
  }

  private _onChanges = (events: Y.YEvent<any>[]): void => {
    const changes = widgetChanges(events, this._widgets);
    for (const id of changes.added) {
      this._apply(id);
    }
    for (const [id, keys] of changes.changedKeys) {
      if (keys.has('outputs')) {
        this._apply(id);
      }
    }
  };

  private _apply(id: string): void {
    const entry = readWidgetEntry(this._widgets.get(id));
    if (
      this._isDisposed ||
      !entry ||
      entry.model_name !== OUTPUT_MODEL ||
      entry.model_module !== OUTPUT_MODULE ||
      !Array.isArray(entry.state.outputs) ||
      !this._manager.has_model(id)
    ) {
      return;
    }
    const outputs = entry.state.outputs;
    void this._manager.get_model(id)?.then(
      model => {
        if (this._isDisposed || sameJSON(model.get('outputs'), outputs)) {
          return;
        }
        // As the kernel's updates are applied: rendered, and never sent back.
        model.set_state({ outputs });
      },
      () => undefined
    );
  }

  private _manager: IOutputsManager;
  private _widgets: Y.Map<unknown>;
  private _isDisposed = false;
}

function sameJSON(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
