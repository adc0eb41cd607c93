/**
 * The status bar item of the current notebook's room connection: Connected, Syncing…,
 * Offline · retry in 12 s, Deleted, Out of date. Clicking it while offline reconnects.
 */

import { PathExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import {
  canReconnectNow,
  describeConnection,
  IConnectionState,
  nextRefreshIn
} from './connectionstatus';
import { IBindingsChange, IRoomBinding, IRoomBindings } from './tokens';

const ITEM_CLASS = 'jp-crdtsync-StatusItem';

export class ConnectionStatusItem extends Widget {
  constructor(
    private readonly _rooms: IRoomBindings,
    private readonly _tracker: INotebookTracker
  ) {
    super({ node: document.createElement('div') });
    this.addClass(ITEM_CLASS);
    this.addClass('jp-StatusBar-TextItem');
    this.node.setAttribute('role', 'status');
    this.node.addEventListener('click', this._onClick);
    _tracker.currentChanged.connect(this._follow, this);
    _rooms.changed.connect(this._onBindingsChanged, this);
    this._follow();
  }

  /** Whether the current notebook is bound to a room (the item shows only then). */
  get isBound(): boolean {
    return (
      this._binding !== undefined &&
      this._binding.provider.status !== 'disposed'
    );
  }

  get activeStateChanged(): ISignal<this, void> {
    return this._activeStateChanged;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._clearTimer();
    this._binding?.provider.statusChanged.disconnect(this._render, this);
    this.node.removeEventListener('click', this._onClick);
    Signal.clearData(this);
    super.dispose();
  }

  private _follow(): void {
    const panel: NotebookPanel | null = this._tracker.currentWidget;
    const binding = panel
      ? this._rooms.bindingOf(panel.context.model.sharedModel)
      : undefined;
    if (binding === this._binding) {
      this._render();
      return;
    }
    const wasBound = this.isBound;
    this._binding?.provider.statusChanged.disconnect(this._render, this);
    this._binding = binding;
    binding?.provider.statusChanged.connect(this._render, this);
    this._render();
    if (wasBound !== this.isBound) {
      this._activeStateChanged.emit();
    }
  }

  private _onBindingsChanged(_: IRoomBindings, change: IBindingsChange): void {
    // A rename changes the name shown; a binding made or gone may be the current one.
    if (change.binding === this._binding || change.type === 'added') {
      this._follow();
    }
  }

  private _state(binding: IRoomBinding): IConnectionState {
    return {
      status: binding.provider.status,
      hasSynced: binding.provider.hasSynced,
      retryAt: binding.retryAt
    };
  }

  private _render(): void {
    this._clearTimer();
    const binding = this._binding;
    if (!binding) {
      this.node.textContent = '';
      this.node.title = '';
      delete this.node.dataset.crdtsyncStatus;
      return;
    }
    const now = Date.now();
    const state = this._state(binding);
    const view = describeConnection(state, PathExt.basename(binding.path), now);
    this.node.textContent = view.text;
    this.node.title = view.tooltip;
    // data-crdtsync-status: a stable hook for tests and user styles (the text is for people).
    this.node.dataset.crdtsyncStatus = state.status;
    this.node.dataset.tone = view.tone;
    this.node.style.cursor = canReconnectNow(state) ? 'pointer' : '';
    const refresh = nextRefreshIn(state, now);
    if (refresh !== null) {
      this._timer = window.setTimeout(() => this._render(), refresh);
    }
    if (state.status === 'disposed') {
      this._activeStateChanged.emit();
    }
  }

  private _onClick = (): void => {
    const binding = this._binding;
    if (binding && canReconnectNow(this._state(binding))) {
      binding.provider.reconnect();
    }
  };

  private _clearTimer(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _binding: IRoomBinding | undefined = undefined;
  private _timer: number | null = null;
  private _activeStateChanged = new Signal<this, void>(this);
}
