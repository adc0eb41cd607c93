/**
 * The CodeMirror 6 extension of one notebook cell editor that publishes this window's
 * selection in the notebook's awareness state and draws the other windows' cursors and
 * selections in their colour, with their name shown briefly after a move and on hover.
 * State layout and position mapping: `cursorstate.ts`.
 */
import { StateEffect } from '@codemirror/state';
import {
  Decoration,
  DecorationSet,
  EditorView,
  ViewPlugin,
  ViewUpdate,
  WidgetType
} from '@codemirror/view';
import type * as Y from 'yjs';

import {
  IRemoteSelection,
  remoteSelections,
  sameSelection,
  SELECTION_FIELD,
  selectionState
} from './cursorstate';

/** How long a collaborator's name stays shown after their cursor moved, in ms. */
const NAME_SHOWN_MS = 2000;

/** What the extension needs of y-protocols' Awareness (the notebook's). */
export interface IAwarenessLike {
  clientID: number;
  getStates(): Map<number, Record<string, any>>;
  getLocalState(): Record<string, any> | null;
  setLocalStateField(field: string, value: unknown): void;
  on(event: 'change', handler: (changes: IAwarenessChanges, origin: unknown) => void): void;
  off(event: 'change', handler: (changes: IAwarenessChanges, origin: unknown) => void): void;
}

interface IAwarenessChanges {
  added: number[];
  updated: number[];
  removed: number[];
}

export interface IRemoteCursorsOptions {
  ytext: Y.Text;
  awareness: IAwarenessLike;
  /** The cell's id (read when needed: a cell keeps its editor when its id is set). */
  cellId: () => string;
}

const refreshCursors = StateEffect.define<null>();

class CaretWidget extends WidgetType {
  constructor(
    readonly name: string,
    readonly color: string,
    readonly showName: boolean,
    readonly nameBeside: boolean
  ) {
    super();
  }

  eq(other: CaretWidget): boolean {
    return (
      other.name === this.name &&
      other.color === this.color &&
      other.showName === this.showName &&
      other.nameBeside === this.nameBeside
    );
  }

  toDOM(): HTMLElement {
    const caret = document.createElement('span');
    caret.className = 'jp-crdtsync-cursor';
    if (this.showName) {
      caret.classList.add('jp-mod-recent');
    }
    if (this.nameBeside) {
      caret.classList.add('jp-mod-first-line');
    }
    caret.style.setProperty('--jp-crdtsync-cursor-color', this.color);
    const label = document.createElement('span');
    label.className = 'jp-crdtsync-cursor-name';
    label.textContent = this.name;
    caret.appendChild(label);
    return caret;
  }

  ignoreEvent(): boolean {
    return false;
  }
}

const theme = EditorView.baseTheme({
  '.jp-crdtsync-cursor': {
    position: 'relative',
    borderLeft: '2px solid var(--jp-crdtsync-cursor-color)',
    marginLeft: '-1px',
    marginRight: '-1px',
    boxSizing: 'border-box',
    display: 'inline',
    pointerEvents: 'auto'
  },
  // A wider area to hover than the 2px caret.
  '.jp-crdtsync-cursor::before': {
    content: '""',
    position: 'absolute',
    top: '0',
    bottom: '0',
    left: '-4px',
    right: '-4px'
  },
  '.jp-crdtsync-cursor-name': {
    position: 'absolute',
    bottom: '100%',
    left: '-2px',
    zIndex: '10',
    padding: '0 3px',
    borderRadius: '2px 2px 2px 0',
    backgroundColor: 'var(--jp-crdtsync-cursor-color)',
    color: 'white',
    fontSize: '10px',
    lineHeight: '14px',
    fontFamily: 'var(--jp-ui-font-family)',
    whiteSpace: 'nowrap',
    pointerEvents: 'none',
    opacity: '0',
    transition: 'opacity 0.3s'
  },
  // On the first line the cell clips above (and below, for one line): beside it.
  '.jp-crdtsync-cursor.jp-mod-first-line .jp-crdtsync-cursor-name': {
    bottom: 'auto',
    top: '0',
    left: '3px',
    borderRadius: '2px'
  },
  '.jp-crdtsync-cursor.jp-mod-recent .jp-crdtsync-cursor-name, .jp-crdtsync-cursor:hover .jp-crdtsync-cursor-name':
    { opacity: '1' },
  '.jp-crdtsync-selection': {
    backgroundColor:
      'color-mix(in srgb, var(--jp-crdtsync-cursor-color) 30%, transparent)'
  }
});

class RemoteCursorsView {
  constructor(
    readonly view: EditorView,
    private readonly options: IRemoteCursorsOptions
  ) {
    this.decorations = this._build();
    options.awareness.on('change', this._onAwarenessChange);
  }

  decorations: DecorationSet;

  update(update: ViewUpdate): void {
    const refresh = update.transactions.some(tr =>
      tr.effects.some(effect => effect.is(refreshCursors))
    );
    if (refresh) {
      this.decorations = this._build();
    } else if (update.docChanged) {
      // Keep them on their characters now, and read them again from the relative
      // positions once every plugin (the Yjs binding too) has seen this change.
      this.decorations = this.decorations.map(update.changes);
      if (this._shown.size > 0) {
        this._scheduleRefresh();
      }
    }
    if (
      update.view.hasFocus &&
      (update.selectionSet || update.focusChanged || update.docChanged)
    ) {
      this._schedulePublish();
    }
  }

  destroy(): void {
    this._destroyed = true;
    this.options.awareness.off('change', this._onAwarenessChange);
    clearTimeout(this._nameTimer);
    const { awareness } = this.options;
    const current = awareness.getLocalState()?.[SELECTION_FIELD];
    if (this._published && sameSelection(current, this._published)) {
      // This editor goes away (cell deleted, notebook closed): so does our cursor.
      awareness.setLocalStateField(SELECTION_FIELD, null);
    }
  }

  private _onAwarenessChange = (changes: IAwarenessChanges): void => {
    const { awareness } = this.options;
    const cellId = this.options.cellId();
    const states = awareness.getStates();
    const relevant = [...changes.added, ...changes.updated, ...changes.removed].some(
      id =>
        id !== awareness.clientID &&
        (this._shown.has(id) || states.get(id)?.[SELECTION_FIELD]?.cell === cellId)
    );
    if (relevant) {
      this._scheduleRefresh();
    }
  };

  /** Dispatch outside the current update (an awareness change may come from one). */
  private _scheduleRefresh(): void {
    if (this._refreshQueued) {
      return;
    }
    this._refreshQueued = true;
    queueMicrotask(() => {
      this._refreshQueued = false;
      if (!this._destroyed) {
        this.view.dispatch({ effects: refreshCursors.of(null) });
      }
    });
  }

  private _schedulePublish(): void {
    if (this._publishQueued) {
      return;
    }
    this._publishQueued = true;
    queueMicrotask(() => {
      this._publishQueued = false;
      if (!this._destroyed && this.view.hasFocus) {
        this._publish();
      }
    });
  }

  private _publish(): void {
    const { ytext, awareness } = this.options;
    const selection = this.view.state.selection;
    if (ytext.length !== this.view.state.doc.length) {
      return; // Not in step with the text yet; the next update publishes.
    }
    const ranges = [selection.main, ...selection.ranges.filter(r => r !== selection.main)];
    const value = selectionState(ytext, this.options.cellId(), ranges);
    this._published = value;
    if (!sameSelection(awareness.getLocalState()?.[SELECTION_FIELD], value)) {
      awareness.setLocalStateField(SELECTION_FIELD, value);
    }
  }

  private _build(): DecorationSet {
    const { awareness, ytext } = this.options;
    const selections = remoteSelections(
      awareness.getStates(),
      awareness.clientID,
      this.options.cellId(),
      ytext
    );
    const now = Date.now();
    const length = this.view.state.doc.length;
    const decorations = [];
    const shown = new Set<number>();
    let nextExpiry = Infinity;
    for (const selection of selections) {
      shown.add(selection.clientID);
      const showUntil = this._nameShownUntil(selection, now);
      if (showUntil > now) {
        nextExpiry = Math.min(nextExpiry, showUntil);
      }
      const style = `--jp-crdtsync-cursor-color: ${selection.color}`;
      for (const range of selection.ranges) {
        const anchor = Math.min(range.anchor, length);
        const head = Math.min(range.head, length);
        if (anchor !== head) {
          decorations.push(
            Decoration.mark({
              class: 'jp-crdtsync-selection',
              attributes: { style }
            }).range(Math.min(anchor, head), Math.max(anchor, head))
          );
        }
        decorations.push(
          Decoration.widget({
            widget: new CaretWidget(
              selection.name,
              selection.color,
              showUntil > now,
              this.view.state.doc.lineAt(head).number === 1
            ),
            side: head < anchor ? -1 : 1
          }).range(head)
        );
      }
    }
    for (const id of this._lastRanges.keys()) {
      if (!shown.has(id)) {
        this._lastRanges.delete(id);
      }
    }
    this._shown = shown;
    clearTimeout(this._nameTimer);
    if (nextExpiry < Infinity) {
      this._nameTimer = setTimeout(() => this._scheduleRefresh(), nextExpiry - now + 20);
    }
    return Decoration.set(decorations, true);
  }

  /** Until when to show the collaborator's name: a while after their cursor moved. */
  private _nameShownUntil(selection: IRemoteSelection, now: number): number {
    const key = JSON.stringify(selection.ranges);
    const last = this._lastRanges.get(selection.clientID);
    if (!last || last.key !== key) {
      this._lastRanges.set(selection.clientID, { key, until: now + NAME_SHOWN_MS });
      return now + NAME_SHOWN_MS;
    }
    return last.until;
  }

  private _destroyed = false;
  private _refreshQueued = false;
  private _publishQueued = false;
  private _published: unknown = null;
  private _shown = new Set<number>();
  private _lastRanges = new Map<number, { key: string; until: number }>();
  private _nameTimer: ReturnType<typeof setTimeout> | undefined = undefined;
}

/** The CodeMirror extension for one cell editor. */
export function remoteCursors(options: IRemoteCursorsOptions) {
  return [
    theme,
    ViewPlugin.define(view => new RemoteCursorsView(view, options), {
      decorations: plugin => plugin.decorations
    })
  ];
}
