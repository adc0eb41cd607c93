/**
 * The notebooks of this window that are bound to rooms, for the other plugins (status
 * item, cell executor, notices, and those of other parts of the extension).
 */

import type { YFile, YNotebook } from '@jupyter/ydoc';
import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';

import type { RoomProvider } from './provider';

/** One notebook or text file of this window, kept in sync with its room. */
export interface IRoomBinding {
  /** The file's API path; follows renames. */
  readonly path: string;
  readonly provider: RoomProvider;
  /** A notebook's `YNotebook`, or a text file's `YFile`. */
  readonly sharedModel: YNotebook | YFile;
  /** What the room holds. */
  readonly kind: 'notebook' | 'file';
  /** While offline: when the next connection attempt starts (ms since the epoch). */
  readonly retryAt: number | undefined;
}

export interface IBindingsChange {
  type: 'added' | 'removed' | 'moved';
  binding: IRoomBinding;
  /** For `moved`: the path before the rename. */
  oldPath?: string;
}

export interface IRoomBindings {
  /** The binding of a notebook's shared model, if it is bound to a room. */
  bindingOf(sharedModel: unknown): IRoomBinding | undefined;
  /** The binding of the notebook at `path`, if it is open and bound. */
  bindingFor(path: string): IRoomBinding | undefined;
  /** All current bindings. */
  bindings(): IRoomBinding[];
  /** Bindings added, removed, or moved by a rename. */
  readonly changed: ISignal<IRoomBindings, IBindingsChange>;
  /**
   * The notebook of this shared model now lives at `newPath` (renamed, perhaps by
   * another window: JupyterLab learns it from the kernel session's path).
   */
  follow(sharedModel: unknown, newPath: string): void;
  /** Connect every offline binding at once (the network is back). */
  reconnectOffline(): void;
}

export const IRoomBindings = new Token<IRoomBindings>(
  'jupyter-crdt-sync:IRoomBindings',
  "The notebooks of this window that are bound to jupyter-crdt-sync's rooms."
);
