/**
 * Collaborators' cursors in the awareness state (pure: Yjs only, no editor).
 *
 * Each window publishes one field in its awareness state, next to the `user` the
 * content provider sets (the server's identity: name, display_name, initials, color):
 *
 *     selection: { cell: <cell id>, ranges: [{ anchor, head }, ...] } | null
 *
 * `anchor` and `head` are Yjs relative positions (JSON) on the cell's source Y.Text, so
 * they stay on the same characters while anyone edits the cell; the main range is
 * first. A window has one selection at a time: moving to another cell replaces it.
 */
import * as Y from 'yjs';

/** The awareness field holding a window's selection. */
export const SELECTION_FIELD = 'selection';

export interface IRange {
  anchor: number;
  head: number;
}

export interface ISelectionState {
  cell: string;
  ranges: { anchor: unknown; head: unknown }[];
}

/** Another window's selection in one cell, resolved to indices in its text. */
export interface IRemoteSelection {
  clientID: number;
  name: string;
  color: string;
  ranges: IRange[];
}

/** The awareness field value for a selection in the cell `cellId` whose text is `ytext`. */
export function selectionState(
  ytext: Y.Text,
  cellId: string,
  ranges: readonly IRange[]
): ISelectionState {
  const rel = (index: number) =>
    Y.relativePositionToJSON(
      Y.createRelativePositionFromTypeIndex(ytext, index)
    );
  return {
    cell: cellId,
    ranges: ranges.map(r => ({ anchor: rel(r.anchor), head: rel(r.head) }))
  };
}

/** Where a relative position (JSON) lands in `ytext` now, or null if not in it. */
export function resolvePosition(ytext: Y.Text, json: unknown): number | null {
  if (typeof json !== 'object' || json === null || !ytext.doc) {
    return null;
  }
  try {
    const absolute = Y.createAbsolutePositionFromRelativePosition(
      Y.createRelativePositionFromJSON(json),
      ytext.doc
    );
    if (!absolute || absolute.type !== ytext) {
      return null;
    }
    return Math.max(0, Math.min(absolute.index, ytext.length));
  } catch {
    return null;
  }
}

const COLOR =
  /^(#[0-9a-f]{3,8}|[a-z]{3,20}|var\(--[\w-]+\)|(rgb|rgba|hsl|hsla)\([\d\s.,%/]+\))$/i;
export const DEFAULT_COLOR = 'var(--jp-collaborator-color1, #ffad8e)';

/** The collaborator's colour if it is a plain CSS colour (it comes from another window). */
export function safeColor(color: unknown): string {
  return typeof color === 'string' && COLOR.test(color.trim())
    ? color.trim()
    : DEFAULT_COLOR;
}

/** The name to show for an awareness `user` field. */
export function displayName(user: unknown): string {
  if (typeof user === 'object' && user !== null) {
    const { display_name, name } = user as Record<string, unknown>;
    for (const candidate of [display_name, name]) {
      if (typeof candidate === 'string' && candidate.trim()) {
        return candidate.trim().slice(0, 80);
      }
    }
  }
  return 'Anonymous';
}

/**
 * The other windows' selections in the cell `cellId` (text `ytext`), from the
 * awareness states. States that are malformed, in another cell, or whose positions
 * no longer fall in this text are left out.
 */
export function remoteSelections(
  states: Map<number, Record<string, any>>,
  localClientID: number,
  cellId: string,
  ytext: Y.Text
): IRemoteSelection[] {
  const selections: IRemoteSelection[] = [];
  for (const [clientID, state] of states) {
    if (
      clientID === localClientID ||
      typeof state !== 'object' ||
      state === null
    ) {
      continue;
    }
    const selection = state[SELECTION_FIELD];
    if (
      typeof selection !== 'object' ||
      selection === null ||
      selection.cell !== cellId ||
      !Array.isArray(selection.ranges)
    ) {
      continue;
    }
    const ranges: IRange[] = [];
    for (const range of selection.ranges.slice(0, 100)) {
      const anchor = resolvePosition(ytext, range?.anchor);
      const head = resolvePosition(ytext, range?.head);
      if (anchor !== null && head !== null) {
        ranges.push({ anchor, head });
      }
    }
    if (ranges.length > 0) {
      selections.push({
        clientID,
        name: displayName(state.user),
        color: safeColor(state.user?.color),
        ranges
      });
    }
  }
  return selections;
}

/** Whether two awareness selection values are the same (JSON equality). */
export function sameSelection(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
