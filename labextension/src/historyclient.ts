/**
 * The server's history endpoints (docs/history.md): list a notebook's versions, read one
 * (with its per-cell comparison to now), restore a whole version or some of its cells.
 *
 * Only `@jupyterlab/services` and `coreutils` (both run in node): tested against a real
 * server in test/history.server.test.ts. Errors are `RoomApiError`s carrying the
 * server's message.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { encodePath, getJson, postJson } from './roomapi';

/** One entry of `GET api/crdtsync/history/{path}`. */
export interface IVersionInfo {
  version: number;
  /** ISO-8601. */
  time: string;
  authors: string[];
  cells_changed: number;
  restored_from?: number;
  restored_cells?: string[];
}

export interface IHistory {
  path: string;
  /** When the notebook was deleted, or null. */
  deleted: string | null;
  /** Oldest first. */
  versions: IVersionInfo[];
}

/** One differing cell of a version's `diff`, from that version to the other. */
export interface ICellDiff {
  id: string;
  change: 'added' | 'removed' | 'changed' | 'moved';
  moved?: boolean;
  old_index: number | null;
  new_index: number | null;
  source_diff: string | null;
  outputs_changed?: boolean;
  fields_changed?: string[];
}

export interface IVersionDiff {
  from: number;
  to: number | 'now';
  metadata_changed: boolean;
  summary: { added: number; removed: number; changed: number; moved: number };
  cells: ICellDiff[];
}

/** `GET api/crdtsync/history/{path}/{version}[?diff=...]`. */
export interface IVersion extends IVersionInfo {
  /** The notebook at that version (nbformat 4 JSON). */
  content: {
    cells: any[];
    metadata?: any;
    nbformat?: number;
    nbformat_minor?: number;
  };
  /** The shared document's id of each cell, in order. */
  cell_ids: string[];
  diff?: IVersionDiff;
}

export interface IRestoreResult {
  version: number;
  restored_from: number;
  cell_ids?: string[];
}

function historyUrl(
  baseUrl: string,
  endpoint: 'history' | 'restore',
  path: string
): string {
  return URLExt.join(baseUrl, 'api/crdtsync', endpoint, encodePath(path));
}

const describe = (what: string) => (status: number, serverMessage: string) =>
  status === 0
    ? `Could not ${what}: the server could not be reached (${serverMessage}).`
    : `Could not ${what} (${status}): ${serverMessage}`;

/** The notebook's versions, oldest first. */
export function listVersions(
  path: string,
  settings: ServerConnection.ISettings
): Promise<IHistory> {
  return getJson<IHistory>(
    historyUrl(settings.baseUrl, 'history', path),
    settings,
    describe(`list the versions of ${path}`)
  );
}

/** One version, with `diff` to `diffTo` (another version number or `'now'`) if given. */
export function readVersion(
  path: string,
  version: number,
  settings: ServerConnection.ISettings,
  diffTo?: number | 'now'
): Promise<IVersion> {
  let url = URLExt.join(
    historyUrl(settings.baseUrl, 'history', path),
    String(version)
  );
  if (diffTo !== undefined) {
    url += `?diff=${encodeURIComponent(String(diffTo))}`;
  }
  return getJson<IVersion>(
    url,
    settings,
    describe(`read version ${version} of ${path}`)
  );
}

/** Restores the whole version, or only the cells `cellIds` of it. */
export function restoreVersion(
  path: string,
  version: number,
  settings: ServerConnection.ISettings,
  cellIds?: string[]
): Promise<IRestoreResult> {
  const body = cellIds ? { version, cell_ids: cellIds } : { version };
  return postJson<IRestoreResult>(
    historyUrl(settings.baseUrl, 'restore', path),
    body,
    settings,
    describe(
      cellIds
        ? `restore the cell from version ${version}`
        : `restore version ${version}`
    )
  );
}

/** A list entry as one line: "3 · 08:10:40 · bob · 1 cell changed (restored from 1)". */
export function describeVersion(
  info: IVersionInfo,
  now: Date = new Date()
): string {
  const parts = [
    formatTime(info.time, now),
    info.authors.length ? info.authors.map(shortAuthor).join(', ') : '—',
    `${info.cells_changed} ${info.cells_changed === 1 ? 'cell' : 'cells'} changed`
  ];
  if (info.restored_from !== undefined) {
    parts.push(
      info.restored_cells?.length
        ? `restored ${info.restored_cells.length === 1 ? 'a cell' : `${info.restored_cells.length} cells`} from ${info.restored_from}`
        : `restored from ${info.restored_from}`
    );
  }
  return parts.join(' · ');
}

/**
 * An author as listed: JupyterLab's anonymous users are named by a long hex id, cut to its
 * first 8 characters; other names as they are.
 */
export function shortAuthor(name: string): string {
  return /^[0-9a-f]{17,}$/i.test(name) ? `${name.slice(0, 8)}…` : name;
}

/** The local time of day for today's versions, else the local date and time. */
export function formatTime(iso: string, now: Date = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  const sameDay =
    date.getFullYear() === now.getFullYear() &&
    date.getMonth() === now.getMonth() &&
    date.getDate() === now.getDate();
  return sameDay
    ? time
    : `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}
