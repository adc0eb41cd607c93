/**
 * Feeds one notebook's document widget state into its ipywidgets widget manager.
 *
 * ipywidgets' manager restores the live widgets by asking the kernel (`request_states`
 * on the control comm, then `comm_info_request`): a kernel busy with a long cell answers
 * only when the cell ends, so a window opened meanwhile shows "Loading widget..." until
 * then. The document has the same state at once. For each widget the manager does not
 * know yet, the feed makes the model the way the manager's own kernel restore does: from
 * the state, with a comm bound to the widget's id on the live kernel connection (no
 * comm_open is sent: the kernel has that comm already). Dragging the slider then talks
 * to the kernel as usual.
 *
 * Until the kernel has answered the manager (`restored`), the feed follows the document:
 * widgets that appear (after a grace period in which their comm_open normally arrives
 * on the kernel connection), attributes that change (until the kernel speaks about
 * them on the comm, see `KeyOwnership`), widgets that go away. It never writes to the
 * document.
 */
import type { IClassicComm, WidgetModel } from '@jupyter-widgets/base';
import type { LabWidgetManager } from '@jupyter-widgets/jupyterlab-manager';
import type { Kernel } from '@jupyterlab/services';
import type { IDisposable } from '@lumino/disposable';
import type * as Y from 'yjs';

import {
  KeyOwnership,
  readWidgetEntry,
  serializedState,
  updatedKeys,
  widgetChanges
} from './widgetstate';

/** The comm target of widget models. */
export const WIDGET_COMM_TARGET = 'jupyter.widget';

/** What the feed uses of ipywidgets' JupyterLab widget manager. */
export type FedManager = Pick<
  LabWidgetManager,
  'has_model' | 'new_model' | 'kernel' | 'restored' | 'restoredStatus'
>;

/** ipywidgets' wrapper of a JupyterLab comm (`shims.services.Comm` of @jupyter-widgets/base). */
export type CommShim = new (comm: Kernel.IComm) => IClassicComm & {
  on_msg(callback: (msg: any) => void): void;
  send(data: any, callbacks?: any, metadata?: any, buffers?: any): string;
  readonly jsServicesComm: Kernel.IComm;
};

export namespace DocumentWidgetFeed {
  export interface IOptions {
    manager: FedManager;
    /** The document's `widgets` root Map. */
    widgets: Y.Map<unknown>;
    Comm: CommShim;
    /**
     * How long a widget that appears in the document may wait for its comm_open on the
     * kernel connection before the feed makes it, in ms.
     */
    adoptDelayMs?: number;
  }
}

export class DocumentWidgetFeed implements IDisposable {
  constructor(options: DocumentWidgetFeed.IOptions) {
    this._manager = options.manager;
    this._widgets = options.widgets;
    this._adoptDelayMs = options.adoptDelayMs ?? 1000;
    this._TrackedComm = trackedComm(options.Comm, this._ownership);
    if (this._manager.restoredStatus) {
      // The kernel has answered already: the manager has every live widget.
      this.dispose();
      return;
    }
    this._manager.restored.connect(this._onRestored, this);
    this._widgets.observeDeep(this._onChanges);
    for (const id of Array.from(this._widgets.keys())) {
      this._adopt(id);
    }
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._widgets.unobserveDeep(this._onChanges);
    this._manager.restored.disconnect(this._onRestored, this);
    for (const timer of this._timers.values()) {
      clearTimeout(timer);
    }
    this._timers.clear();
    this._models.clear();
  }

  private _onRestored(): void {
    // From here the kernel connection is the source of every widget change.
    this.dispose();
  }

  private _onChanges = (events: Y.YEvent<any>[]): void => {
    if (this._isDisposed) {
      return;
    }
    const changes = widgetChanges(events, this._widgets);
    for (const id of changes.removed) {
      this._remove(id);
    }
    for (const id of changes.added) {
      this._scheduleAdopt(id);
    }
    for (const [id, keys] of changes.changedKeys) {
      this._follow(id, keys);
    }
  };

  private _scheduleAdopt(id: string): void {
    clearTimeout(this._timers.get(id));
    this._timers.set(
      id,
      setTimeout(() => {
        this._timers.delete(id);
        this._adopt(id);
      }, this._adoptDelayMs)
    );
  }

  /** Make the model of a widget the manager does not know, from the document. */
  private _adopt(id: string): void {
    const kernel = this._manager.kernel;
    if (
      this._isDisposed ||
      this._models.has(id) ||
      !kernel ||
      !kernel.handleComms ||
      this._manager.has_model(id) ||
      kernel.hasComm(id)
    ) {
      return;
    }
    const entry = readWidgetEntry(this._widgets.get(id));
    if (!entry) {
      return;
    }
    // No await from here to new_model: it registers the model id synchronously, so the
    // manager's own restore, or a comm_open, sees the model and does not make a second.
    const comm = new this._TrackedComm(
      kernel.createComm(WIDGET_COMM_TARGET, id)
    );
    const model = this._manager.new_model(
      {
        model_id: id,
        model_name: entry.model_name,
        model_module: entry.model_module,
        model_module_version: entry.model_module_version,
        comm
      },
      serializedState(entry)
    );
    this._models.set(id, { model, comm: comm.jsServicesComm });
    model.then(
      m => m.once('comm:close', () => this._forget(id, model)),
      error => {
        console.warn(
          `jupyter-crdt-sync: could not make widget ${id} from the document`,
          error
        );
        this._forget(id, model);
      }
    );
  }

  /** Apply changed attributes the document still drives to a model it made. */
  private _follow(id: string, keys: Set<string>): void {
    const fed = this._models.get(id);
    if (!fed) {
      return;
    }
    const manager = this._manager;
    const ownership = this._ownership;
    void fed.model.then(model => {
      // Queue behind the model's own updates, as its comm messages do.
      model.state_change = model.state_change
        .then(async () => {
          const entry = readWidgetEntry(this._widgets.get(id));
          const driven = [...keys].filter(k => ownership.documentDrives(id, k));
          if (this._isDisposed || !entry || driven.length === 0) {
            return;
          }
          const ModelClass = model.constructor as typeof WidgetModel;
          const attributes = await ModelClass._deserialize_state(
            serializedState(entry, driven) as any,
            manager as any
          );
          for (const key of Object.keys(attributes)) {
            // The kernel may have spoken while the state was being deserialized.
            if (!ownership.documentDrives(id, key)) {
              delete attributes[key];
            }
          }
          model.set_state(attributes);
        })
        .catch(error => {
          console.warn(
            `jupyter-crdt-sync: could not update widget ${id} from the document`,
            error
          );
        });
    });
  }

  /** The kernel closed a widget this feed made (its comm_close may not reach us). */
  private _remove(id: string): void {
    const timer = this._timers.get(id);
    if (timer !== undefined) {
      clearTimeout(timer);
      this._timers.delete(id);
    }
    const fed = this._models.get(id);
    if (!fed) {
      return;
    }
    this._forget(id, fed.model);
    void fed.model.then(model => {
      // What the model does when its comm is closed by the kernel: leave the manager,
      // remove its views. Then unregister the comm without telling the kernel.
      model.trigger('comm:close');
      void model.close(true);
      fed.comm.dispose();
    });
  }

  private _forget(id: string, model: Promise<WidgetModel>): void {
    if (this._models.get(id)?.model === model) {
      this._models.delete(id);
      this._ownership.forget(id);
    }
  }

  private _manager: FedManager;
  private _widgets: Y.Map<unknown>;
  private _adoptDelayMs: number;
  private _ownership = new KeyOwnership();
  private _TrackedComm: CommShim;
  private _models = new Map<
    string,
    { model: Promise<WidgetModel>; comm: Kernel.IComm }
  >();
  private _timers = new Map<string, ReturnType<typeof setTimeout>>();
  private _isDisposed = false;
}

/**
 * ipywidgets' comm wrapper that tells `ownership` which attributes the kernel sent
 * (incoming updates) or this window sent (outgoing updates) on it.
 */
function trackedComm(Comm: CommShim, ownership: KeyOwnership): CommShim {
  return class TrackedComm extends Comm {
    on_msg(callback: (msg: any) => void): void {
      super.on_msg((msg: any) => {
        ownership.claim(this.comm_id, updatedKeys(msg?.content?.data));
        return callback.call(this, msg);
      });
    }

    send(data: any, callbacks?: any, metadata?: any, buffers?: any): string {
      ownership.claim(this.comm_id, updatedKeys(data));
      return super.send(data, callbacks, metadata, buffers);
    }
  };
}
