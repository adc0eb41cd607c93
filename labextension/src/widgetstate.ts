/**
 * The document's widget state, read for ipywidgets' widget manager (pure, no JupyterLab).
 *
 * The server keeps the root Map `widgets` of a notebook's Y.Doc: model_id -> the entry
 * ipywidgets' saved widget state holds for that model (`model_name`, `model_module`,
 * `model_module_version`, `state`, `buffers`), current with the kernel's comm messages.
 * `widgets.ts` turns it into widget models; this module reads entries and change events,
 * and remembers which keys of a model the live kernel connection has taken over.
 */
import * as Y from 'yjs';

/** The root Map of the document that holds the widgets (written by the server only). */
export const WIDGETS_ROOT = 'widgets';

export interface IWidgetBuffer {
  path: (string | number)[];
  encoding: 'base64' | 'hex';
  data: string;
}

export interface IWidgetEntry {
  model_name: string;
  model_module: string;
  model_module_version: string;
  state: Record<string, unknown>;
  buffers: IWidgetBuffer[];
}

function plain(value: unknown): unknown {
  return value instanceof Y.AbstractType ? value.toJSON() : value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readBuffer(value: unknown): IWidgetBuffer | null {
  if (!isRecord(value)) {
    return null;
  }
  const { path, encoding, data } = value;
  if (
    !Array.isArray(path) ||
    path.length === 0 ||
    !path.every(p => typeof p === 'string' || typeof p === 'number') ||
    (encoding !== 'base64' && encoding !== 'hex') ||
    typeof data !== 'string'
  ) {
    return null;
  }
  return { path: path as (string | number)[], encoding, data };
}

/**
 * One model's entry as plain JSON (from the Y.Map the server writes, or from JSON), or
 * null when it cannot make a model: no class name or module, or no state object.
 */
export function readWidgetEntry(value: unknown): IWidgetEntry | null {
  const entry = plain(value);
  if (!isRecord(entry)) {
    return null;
  }
  const { model_name, model_module, model_module_version } = entry;
  const state = plain(entry.state);
  if (
    typeof model_name !== 'string' ||
    !model_name ||
    typeof model_module !== 'string' ||
    !model_module ||
    typeof model_module_version !== 'string' ||
    !isRecord(state)
  ) {
    return null;
  }
  const buffers = plain(entry.buffers);
  return {
    model_name,
    model_module,
    model_module_version,
    state,
    buffers: Array.isArray(buffers)
      ? buffers.map(readBuffer).filter((b): b is IWidgetBuffer => b !== null)
      : []
  };
}

function decodeBuffer(buffer: IWidgetBuffer): DataView {
  let bytes: Uint8Array;
  if (buffer.encoding === 'hex') {
    const pairs = buffer.data.match(/[0-9a-fA-F]{2}/g) ?? [];
    bytes = Uint8Array.from(pairs, pair => parseInt(pair, 16));
  } else {
    const binary = atob(buffer.data);
    bytes = Uint8Array.from(binary, ch => ch.charCodeAt(0));
  }
  return new DataView(bytes.buffer);
}

/** Put `value` at `path` inside `root`, making the containers on the way if missing. */
function setAtPath(
  root: Record<string, unknown>,
  path: (string | number)[],
  value: unknown
): void {
  let node: any = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (typeof node[path[i]] !== 'object' || node[path[i]] === null) {
      node[path[i]] = typeof path[i + 1] === 'number' ? [] : {};
    }
    node = node[path[i]];
  }
  node[path[path.length - 1]] = value;
}

/**
 * The model's serialized state (what a comm_open or an update message carries), with its
 * binary buffers put back in place as DataViews; only `keys` when given. A copy: the
 * caller may hand it to the widget manager, which changes it.
 */
export function serializedState(
  entry: IWidgetEntry,
  keys?: Iterable<string>
): Record<string, unknown> {
  const wanted = keys ? new Set(keys) : null;
  const state: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry.state)) {
    if (!wanted || wanted.has(key)) {
      state[key] =
        value === undefined ? value : JSON.parse(JSON.stringify(value));
    }
  }
  for (const buffer of entry.buffers) {
    const head = String(buffer.path[0]);
    if (!wanted || wanted.has(head)) {
      try {
        setAtPath(state, buffer.path, decodeBuffer(buffer));
      } catch {
        // A malformed buffer leaves that attribute as the state has it.
      }
    }
  }
  return state;
}

/** What one batch of changes to the `widgets` map did, per model. */
export interface IWidgetChanges {
  /** Models that appeared (or whose whole entry was replaced). */
  added: Set<string>;
  removed: Set<string>;
  /** Models whose state changed: the top-level attributes that changed. */
  changedKeys: Map<string, Set<string>>;
}

/** Summarise the events of one `observeDeep` call on the `widgets` map. */
export function widgetChanges(
  events: Y.YEvent<any>[],
  widgets: Y.Map<unknown>
): IWidgetChanges {
  const changes: IWidgetChanges = {
    added: new Set(),
    removed: new Set(),
    changedKeys: new Map()
  };
  const changed = (id: string, keys: Iterable<string>) => {
    let set = changes.changedKeys.get(id);
    if (!set) {
      changes.changedKeys.set(id, (set = new Set()));
    }
    for (const key of keys) {
      set.add(key);
    }
  };
  for (const event of events) {
    if (event.target === widgets) {
      for (const [id, change] of (event as Y.YMapEvent<unknown>).changes.keys) {
        if (change.action === 'delete') {
          changes.removed.add(id);
          changes.added.delete(id);
        } else {
          changes.added.add(id);
          changes.removed.delete(id);
        }
      }
      continue;
    }
    const [id, field, key] = event.path as (string | number)[];
    if (typeof id !== 'string') {
      continue;
    }
    if (field === undefined) {
      // The entry itself: its `state` or `buffers` was replaced.
      const keysChanged =
        (event as Y.YMapEvent<unknown>).keysChanged ?? new Set();
      const entry = readWidgetEntry(widgets.get(id));
      if (keysChanged.has('state') && entry) {
        changed(id, Object.keys(entry.state));
      }
      if (keysChanged.has('buffers') && entry) {
        changed(
          id,
          entry.buffers.map(b => String(b.path[0]))
        );
      }
    } else if (field === 'state') {
      if (key !== undefined) {
        // A shared type nested inside one attribute changed.
        changed(id, [String(key)]);
      } else {
        changed(id, (event as Y.YMapEvent<unknown>).keysChanged);
      }
    } else if (field === 'buffers') {
      const entry = readWidgetEntry(widgets.get(id));
      changed(id, entry ? entry.buffers.map(b => String(b.path[0])) : []);
    }
  }
  for (const id of changes.added) {
    changes.changedKeys.delete(id);
  }
  for (const id of changes.removed) {
    changes.changedKeys.delete(id);
  }
  return changes;
}

/**
 * The attributes a comm message's data updates (`update` / `echo_update`), or none.
 */
export function updatedKeys(data: unknown): string[] {
  if (
    !isRecord(data) ||
    (data.method !== 'update' && data.method !== 'echo_update')
  ) {
    return [];
  }
  const keys = isRecord(data.state) ? Object.keys(data.state) : [];
  if (Array.isArray(data.buffer_paths)) {
    for (const path of data.buffer_paths) {
      if (Array.isArray(path) && path.length > 0) {
        keys.push(String(path[0]));
      }
    }
  }
  return keys;
}

/**
 * Which attributes of the models made from the document are no longer driven by it.
 *
 * A model made from the document gets later changes from two places: the document, and
 * its comm on the window's kernel connection. The comm is the fresher one (the document
 * follows the same kernel messages through the server), but it misses what the kernel
 * sent before the comm existed. So the document drives an attribute until the kernel
 * speaks about it on the comm, or this window changes it (the kernel will echo it).
 */
export class KeyOwnership {
  /** The kernel, or this window, has taken over these attributes of the model. */
  claim(modelId: string, keys: Iterable<string>): void {
    let set = this._claimed.get(modelId);
    if (!set) {
      this._claimed.set(modelId, (set = new Set()));
    }
    for (const key of keys) {
      set.add(key);
    }
  }

  /** Whether the document still drives this attribute of the model. */
  documentDrives(modelId: string, key: string): boolean {
    return !this._claimed.get(modelId)?.has(key);
  }

  forget(modelId: string): void {
    this._claimed.delete(modelId);
  }

  private _claimed = new Map<string, Set<string>>();
}
