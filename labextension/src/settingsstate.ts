/**
 * The shared settings document, as the server's `settings_doc.py` lays it out:
 *
 * - root Map `plugins`: plugin id -> Map `{raw: Y.Text, values: Y.Map}`; `raw` is the
 *   settings text with its comments (JSON5), `values` one entry per setting;
 * - root Map `errors`: plugin id -> `{file, line, message}` for a settings file the
 *   server refused (written by the server only).
 *
 * A window writes both: the text by a minimal diff (concurrent edits of different lines
 * merge), the values per key (different settings changed at once both stay; the same
 * setting converges, last writer wins). When the two disagree after a merge, the server
 * rewrites the text from the values; a window applies only a text that agrees.
 *
 * No JupyterLab imports: it runs (and is tested) in node.
 */
import * as json5 from 'json5';
import { JSONExt, JSONObject, JSONValue } from '@lumino/coreutils';
import * as Y from 'yjs';

export interface IPluginState {
  raw: string;
  values: JSONObject;
}

export interface ISettingsError {
  plugin: string;
  file: string;
  line: number | null;
  message: string;
}

/** The settings object of a settings text (blank reads as `{}`, as JupyterLab does). */
export function parseSettings(raw: string): JSONObject {
  if (!raw.trim()) {
    return {};
  }
  const value = json5.parse(raw);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('expected an object of settings');
  }
  return value as JSONObject;
}

export function pluginsOf(doc: Y.Doc): Y.Map<Y.Map<any>> {
  return doc.getMap('plugins');
}

export function readPlugin(doc: Y.Doc, plugin: string): IPluginState | null {
  const entry = pluginsOf(doc).get(plugin);
  if (!(entry instanceof Y.Map)) {
    return null;
  }
  const raw = entry.get('raw');
  const values = entry.get('values');
  return {
    raw: raw instanceof Y.Text ? raw.toString() : '',
    values: values instanceof Y.Map ? (values.toJSON() as JSONObject) : {}
  };
}

/** Whether the text parses to the values (else the server is about to rewrite it). */
export function isConsistent(state: IPluginState): boolean {
  try {
    return JSONExt.deepEqual(parseSettings(state.raw), state.values);
  } catch {
    return false;
  }
}

/** The change from `current` to `next` as one replacement: [start, deleted, inserted]. */
export function textDiff(
  current: string,
  next: string
): [number, number, string] {
  let start = 0;
  const shorter = Math.min(current.length, next.length);
  while (start < shorter && current[start] === next[start]) {
    start++;
  }
  let end = 0;
  while (
    end < shorter - start &&
    current[current.length - 1 - end] === next[next.length - 1 - end]
  ) {
    end++;
  }
  // Never split a surrogate pair (Y.Text counts UTF-16 code units).
  if (start > 0 && isHighSurrogate(current.charCodeAt(start - 1))) {
    start--;
  }
  if (
    end > 0 &&
    isHighSurrogate(current.charCodeAt(current.length - end - 1))
  ) {
    end--;
  }
  end = Math.min(end, current.length - start, next.length - start);
  return [
    start,
    current.length - end - start,
    next.slice(start, next.length - end)
  ];
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * Write a window's new settings text for a plugin. `base` is the text the window's
 * change was made from: only the settings that changed from it are written, so a change
 * another window made meanwhile (and this one has not applied yet) is not undone.
 */
export function writePlugin(
  doc: Y.Doc,
  plugin: string,
  raw: string,
  base: string | null,
  origin: unknown
): void {
  const next = parseSettings(raw);
  let old: JSONObject | null = null;
  if (base !== null) {
    try {
      old = parseSettings(base);
    } catch {
      old = null;
    }
  }
  doc.transact(() => {
    const plugins = pluginsOf(doc);
    let entry = plugins.get(plugin);
    if (!(entry instanceof Y.Map)) {
      entry = new Y.Map<any>();
      entry.set('raw', new Y.Text());
      entry.set('values', new Y.Map<any>());
      plugins.set(plugin, entry);
    }
    const text = entry.get('raw') as Y.Text;
    const values = entry.get('values') as Y.Map<JSONValue>;
    const [start, deleted, inserted] = textDiff(text.toString(), raw);
    if (deleted) {
      text.delete(start, deleted);
    }
    if (inserted) {
      text.insert(start, inserted);
    }
    const reference: JSONObject = old ?? (values.toJSON() as JSONObject);
    for (const [key, value] of Object.entries(next)) {
      const before = reference[key];
      if (
        before === undefined ||
        !JSONExt.deepEqual(before, value as JSONValue)
      ) {
        values.set(key, value as JSONValue);
      }
    }
    for (const key of Object.keys(reference)) {
      if (!(key in next) && values.has(key)) {
        values.delete(key);
      }
    }
  }, origin);
}

export function readErrors(doc: Y.Doc): ISettingsError[] {
  const errors = doc.getMap<any>('errors');
  return [...errors.keys()]
    .sort()
    .map(plugin => ({ plugin, ...errors.get(plugin) }));
}
