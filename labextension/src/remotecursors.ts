/**
 * The CodeMirror 6 extension of one notebook cell editor that publishes this window's
 * selection in the notebook's awareness state and draws the other windows' cursors and
 * selections in their colour, with their name shown briefly after a move and on hover.
 * State layout and position mapping: `cursorstate.ts`.
 *
 * Names are CodeMirror tooltips above the caret's line (below it only where there is no
 * room above), outside the editor's scroller, so they are never clipped by the cell and
 * never cover the line they annotate, the first line included; the names of carets at
 * one place are one tooltip, stacked.
 */
import { StateEffect, StateField } from '@codemirror/state';
import {
  Decoration,
  DecorationSet,
  EditorView,
  showTooltip,
  Tooltip,
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
  on(
    event: 'change',
    handler: (changes: IAwarenessChanges, origin: unknown) => void
  ): void;
  off(
    event: 'change',
    handler: (changes: IAwarenessChanges, origin: unknown) => void
  ): void;
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

/** One name shown above a caret. */
interface ILabel {
  name: string;
  color: string;
}

/** The name tooltips to show now (the plugin computes them, this field shows them). */
const setLabels = StateEffect.define<readonly Tooltip[]>();

const labelsField = StateField.define<readonly Tooltip[]>({
  create: () => [],
  update(labels, tr) {
    for (const effect of tr.effects) {
      if (effect.is(setLabels)) {
        return effect.value;
      }
    }
    if (!tr.docChanged) {
      return labels;
    }
    return labels.map(label => ({
      ...label,
      pos: tr.changes.mapPos(label.pos)
    }));
  },
  provide: field => showTooltip.computeN([field], state => state.field(field))
});

/** A tooltip with the names of the carets at `pos`, stacked, the latest on top. */
function labelTooltip(pos: number, labels: ILabel[]): Tooltip {
  return {
    pos,
    above: true,
    arrow: false,
    create: () => {
      const dom = document.createElement('div');
      dom.className = 'jp-crdtsync-cursor-labels';
      for (const { name, color } of labels) {
        const label = document.createElement('div');
        label.className = 'jp-crdtsync-cursor-label';
        label.style.setProperty('--jp-crdtsync-cursor-color', color);
        label.textContent = name;
        dom.appendChild(label);
      }
      return { dom };
    }
  };
}

class CaretWidget extends WidgetType {
  constructor(
    readonly clientID: number,
    readonly name: string,
    readonly color: string,
    readonly showName: boolean
  ) {
    super();
  }

  eq(other: CaretWidget): boolean {
    return (
      other.clientID === this.clientID &&
      other.name === this.name &&
      other.color === this.color &&
      other.showName === this.showName
    );
  }

  toDOM(): HTMLElement {
    const caret = document.createElement('span');
    caret.className = 'jp-crdtsync-cursor';
    if (this.showName) {
      caret.classList.add('jp-mod-recent');
    }
    caret.dataset.client = String(this.clientID);
    caret.dataset.name = this.name;
    caret.style.setProperty('--jp-crdtsync-cursor-color', this.color);
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
  // The tooltip that holds the names: no frame of its own.
  '.cm-tooltip.jp-crdtsync-cursor-labels': {
    display: 'flex',
    flexDirection: 'column',
    gap: '1px',
    backgroundColor: 'transparent',
    border: 'none',
    pointerEvents: 'none'
  },
  '.jp-crdtsync-cursor-label': {
    alignSelf: 'flex-start',
    padding: '0 3px',
    borderRadius: '2px 2px 2px 0',
    backgroundColor: 'var(--jp-crdtsync-cursor-color)',
    color: 'white',
    fontSize: '10px',
    lineHeight: '14px',
    fontFamily: 'var(--jp-ui-font-family)',
    whiteSpace: 'nowrap'
  },
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

  /** The pointer is over a caret (or left it): show that caret's name while it is. */
  hover(target: EventTarget | null): void {
    const element = target instanceof Element ? target : null;
    const caret = element?.closest('.jp-crdtsync-cursor') as
      HTMLElement | null | undefined;
    const hovered = caret?.dataset.client ? Number(caret.dataset.client) : null;
    if (hovered !== this._hovered) {
      this._hovered = hovered;
      this._scheduleRefresh();
    }
  }

  private _onAwarenessChange = (changes: IAwarenessChanges): void => {
    const { awareness } = this.options;
    const cellId = this.options.cellId();
    const states = awareness.getStates();
    const relevant = [
      ...changes.added,
      ...changes.updated,
      ...changes.removed
    ].some(
      id =>
        id !== awareness.clientID &&
        (this._shown.has(id) ||
          states.get(id)?.[SELECTION_FIELD]?.cell === cellId)
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
    const ranges = [
      selection.main,
      ...selection.ranges.filter(r => r !== selection.main)
    ];
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
    // Caret position -> the names shown there (stacked in one tooltip).
    const labels = new Map<number, ILabel[]>();
    // Hovering a caret shows every name at its place.
    const hoveredAt = selections
      .filter(selection => selection.clientID === this._hovered)
      .map(selection => Math.min(selection.ranges[0]?.head ?? -1, length))[0];
    let nextExpiry = Infinity;
    for (const selection of selections) {
      shown.add(selection.clientID);
      const showUntil = this._nameShownUntil(selection, now);
      if (showUntil > now) {
        nextExpiry = Math.min(nextExpiry, showUntil);
      }
      const recent = showUntil > now;
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
              selection.clientID,
              selection.name,
              selection.color,
              recent
            ),
            side: head < anchor ? -1 : 1
          }).range(head)
        );
        if ((recent || head === hoveredAt) && range === selection.ranges[0]) {
          const here = labels.get(head) ?? [];
          here.unshift({ name: selection.name, color: selection.color });
          labels.set(head, here);
        }
      }
    }
    this._showLabels(
      [...labels].map(([pos, names]) => labelTooltip(pos, names))
    );
    for (const id of this._lastRanges.keys()) {
      if (!shown.has(id)) {
        this._lastRanges.delete(id);
      }
    }
    this._shown = shown;
    clearTimeout(this._nameTimer);
    if (nextExpiry < Infinity) {
      this._nameTimer = setTimeout(
        () => this._scheduleRefresh(),
        nextExpiry - now + 20
      );
    }
    return Decoration.set(decorations, true);
  }

  /** Show these name tooltips, after the current update (none: only if some show). */
  private _showLabels(labels: Tooltip[]): void {
    if (labels.length === 0 && !this._labelsShown) {
      return;
    }
    this._labelsShown = labels.length > 0;
    queueMicrotask(() => {
      if (!this._destroyed) {
        this.view.dispatch({ effects: setLabels.of(labels) });
      }
    });
  }

  /** Until when to show the collaborator's name: a while after their cursor moved. */
  private _nameShownUntil(selection: IRemoteSelection, now: number): number {
    const key = JSON.stringify(selection.ranges);
    const last = this._lastRanges.get(selection.clientID);
    if (!last || last.key !== key) {
      this._lastRanges.set(selection.clientID, {
        key,
        until: now + NAME_SHOWN_MS
      });
      return now + NAME_SHOWN_MS;
    }
    return last.until;
  }

  private _hovered: number | null = null;
  private _labelsShown = false;
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
    labelsField,
    ViewPlugin.define(view => new RemoteCursorsView(view, options), {
      decorations: plugin => plugin.decorations,
      eventHandlers: {
        mouseover(event) {
          this.hover(event.target);
        },
        mouseout(event) {
          this.hover(event.relatedTarget);
        }
      }
    })
  ];
}
