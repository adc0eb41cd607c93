/**
 * The History side panel of the current notebook (docs/history.md): its versions, newest
 * first, polled every few seconds while the panel is shown and right after a restore;
 * a selected version rendered read-only (sources and outputs through the rendermime
 * registry), the cells that differ from now marked, and "Restore this version" /
 * "Restore this cell" through the server's restore endpoint. Errors show in the panel
 * with the server's message. Opened from the notebook toolbar's "History" button and
 * the `crdtsync:open-history` command; the list is keyboard-usable (Tab to it, arrows
 * between versions, Enter selects).
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import {
  IRenderMime,
  IRenderMimeRegistry,
  OutputModel
} from '@jupyterlab/rendermime';
import { ServerConnection } from '@jupyterlab/services';
import { Panel, Widget } from '@lumino/widgets';

import {
  ICellDiff,
  IVersion,
  IVersionInfo,
  describeVersion,
  listVersions,
  readVersion,
  restoreVersion
} from './historyclient';

export const OPEN_HISTORY_COMMAND = 'crdtsync:open-history';
const PANEL_ID = 'jupyter-crdt-sync-history';
/** How often the list is read again while the panel is shown. */
const POLL_MS = 3000;

const CHANGE_LABELS: Record<string, string> = {
  removed: 'deleted since',
  changed: 'changed since',
  moved: 'moved since'
};

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function joinSource(source: unknown): string {
  return Array.isArray(source) ? source.join('') : String(source ?? '');
}

/** The side panel; follows the notebook tracker's current notebook. */
export class HistoryPanel extends Panel {
  constructor(options: {
    tracker: INotebookTracker;
    rendermime: IRenderMimeRegistry;
    serverSettings: ServerConnection.ISettings;
  }) {
    super();
    this._tracker = options.tracker;
    this._rendermime = options.rendermime;
    this._settings = options.serverSettings;
    this.id = PANEL_ID;
    this.addClass('jp-crdtsync-History');
    this.title.caption = 'Notebook history';
    this.title.iconClass = 'jp-crdtsync-HistoryIcon';

    const top = new Widget();
    top.addClass('jp-crdtsync-HistoryTop');
    top.node.appendChild(element('h2', 'jp-crdtsync-HistoryTitle', 'History'));
    this._pathNode = element('div', 'jp-crdtsync-HistoryPath');
    this._errorNode = element('div', 'jp-crdtsync-HistoryError');
    this._errorNode.setAttribute('role', 'alert');
    this._noticeNode = element('div', 'jp-crdtsync-HistoryNotice');
    this._noticeNode.setAttribute('role', 'status');
    this._listNode = element('ul', 'jp-crdtsync-HistoryList');
    this._listNode.setAttribute('role', 'listbox');
    this._listNode.setAttribute('aria-label', 'Versions, newest first');
    this._listNode.tabIndex = -1;
    this._listNode.addEventListener('keydown', event => this._onListKey(event));
    top.node.append(
      this._pathNode,
      this._errorNode,
      this._noticeNode,
      this._listNode
    );
    this.addWidget(top);

    this._detail = new Panel();
    this._detail.addClass('jp-crdtsync-HistoryDetail');
    this.addWidget(this._detail);

    this._tracker.currentChanged.connect(this._onCurrentChanged, this);
  }

  /** The notebook path shown, or null. */
  get path(): string | null {
    return this._path;
  }

  /** Reads the list again (and the selected version's comparison if the list changed). */
  async refresh(): Promise<void> {
    const path = this._currentPath();
    if (path !== this._path) {
      this._path = path;
      this._versions = [];
      this._listKey = '';
      this._selected = null;
      this._clearDetail();
      this._showError('');
      this._showNotice('');
    }
    this._pathNode.textContent = path ?? 'No notebook is open.';
    if (!path) {
      this._renderList();
      return;
    }
    let versions: IVersionInfo[];
    try {
      versions = (await listVersions(path, this._settings)).versions;
    } catch (error) {
      if (path === this._path) {
        this._showError((error as Error).message);
      }
      return;
    }
    if (path !== this._path || this.isDisposed) {
      return;
    }
    this._showError('', 'list');
    const key = JSON.stringify(versions);
    if (key === this._listKey) {
      return;
    }
    this._listKey = key;
    this._versions = versions.slice().reverse();
    this._renderList();
    if (this._selected !== null) {
      await this._showVersion(this._selected, false);
    }
  }

  /** Selects and shows a version (as a click or Enter on its list item does). */
  async select(version: number): Promise<void> {
    this._selected = version;
    this._markSelected();
    await this._showVersion(version, true);
  }

  /** Focuses the selected version's list item, else the newest's, else the list. */
  focusList(): void {
    const items = Array.from(this._listNode.children) as HTMLElement[];
    const target =
      items.find(item => item.classList.contains('jp-mod-selected')) ??
      items.find(item => item.tabIndex === 0) ??
      this._listNode;
    target.focus();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stopPolling();
    super.dispose();
  }

  protected onAfterShow(msg: any): void {
    super.onAfterShow(msg);
    void this.refresh();
    this._stopPolling();
    this._timer = window.setInterval(() => void this.refresh(), POLL_MS);
  }

  protected onAfterHide(msg: any): void {
    super.onAfterHide(msg);
    this._stopPolling();
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _onCurrentChanged(): void {
    if (this.isVisible) {
      void this.refresh();
    }
  }

  private _currentPath(): string | null {
    return this._tracker.currentWidget?.context.path ?? null;
  }

  private _renderList(): void {
    const focused = this._listNode.contains(document.activeElement)
      ? (document.activeElement as HTMLElement).dataset.version
      : undefined;
    this._listNode.textContent = '';
    if (this._path && this._versions.length === 0) {
      this._listNode.appendChild(
        element('li', 'jp-crdtsync-HistoryEmpty', 'No versions recorded yet.')
      );
    }
    for (const info of this._versions) {
      const item = element('li', 'jp-crdtsync-HistoryItem');
      item.title = info.authors.length
        ? `Authors: ${info.authors.join(', ')}`
        : 'No authors';
      item.tabIndex = 0;
      item.setAttribute('role', 'option');
      item.dataset.version = String(info.version);
      item.append(
        element('span', 'jp-crdtsync-HistoryNumber', `Version ${info.version}`),
        element('span', 'jp-crdtsync-HistoryMeta', describeVersion(info))
      );
      item.addEventListener('click', () => void this.select(info.version));
      this._listNode.appendChild(item);
      if (focused === item.dataset.version) {
        item.focus();
      }
    }
    this._markSelected();
  }

  private _markSelected(): void {
    for (const item of Array.from(this._listNode.children) as HTMLElement[]) {
      const selected = item.dataset.version === String(this._selected);
      item.classList.toggle('jp-mod-selected', selected);
      item.setAttribute('aria-selected', String(selected));
    }
  }

  private _onListKey(event: KeyboardEvent): void {
    const item = (event.target as HTMLElement).closest(
      '.jp-crdtsync-HistoryItem'
    ) as HTMLElement | null;
    if (!item) {
      return;
    }
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      void this.select(Number(item.dataset.version));
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const next = (
        event.key === 'ArrowDown'
          ? item.nextElementSibling
          : item.previousElementSibling
      ) as HTMLElement | null;
      next?.focus();
    }
  }

  private async _showVersion(
    version: number,
    announce: boolean
  ): Promise<void> {
    const path = this._path;
    if (!path) {
      return;
    }
    const token = ++this._detailToken;
    if (announce) {
      this._showNotice(`Reading version ${version}...`);
    }
    let read: IVersion;
    try {
      read = await readVersion(path, version, this._settings, 'now');
    } catch (error) {
      if (token === this._detailToken) {
        this._showError((error as Error).message);
        this._showNotice('');
      }
      return;
    }
    if (token !== this._detailToken || path !== this._path || this.isDisposed) {
      return;
    }
    if (announce) {
      this._showNotice('');
    }
    const scroll = this._detail.node.scrollTop;
    this._renderVersion(path, read);
    if (!announce) {
      this._detail.node.scrollTop = scroll;
    }
  }

  private _clearDetail(): void {
    for (const widget of this._detail.widgets.slice()) {
      widget.dispose();
    }
  }

  private _renderVersion(path: string, read: IVersion): void {
    this._clearDetail();
    const diffs = new Map<string, ICellDiff>();
    for (const cell of read.diff?.cells ?? []) {
      diffs.set(cell.id, cell);
    }
    const head = new Widget();
    head.addClass('jp-crdtsync-HistoryVersionHead');
    head.node.appendChild(
      element('h3', undefined, `Version ${read.version} (read-only)`)
    );
    head.node.appendChild(
      element('div', 'jp-crdtsync-HistoryMeta', describeVersion(read))
    );
    const summary = read.diff?.summary;
    if (summary) {
      const parts = [
        summary.changed && `${summary.changed} changed`,
        summary.removed && `${summary.removed} deleted`,
        summary.added && `${summary.added} added`,
        summary.moved && `${summary.moved} moved`
      ].filter(Boolean);
      head.node.appendChild(
        element(
          'div',
          'jp-crdtsync-HistorySummary',
          parts.length
            ? `Since this version: ${parts.join(', ')}.`
            : 'Same cells as now.'
        )
      );
    }
    const restoreAll = element(
      'button',
      'jp-mod-styled jp-mod-accept',
      'Restore this version'
    );
    restoreAll.dataset.action = 'restore-version';
    restoreAll.addEventListener(
      'click',
      () => void this._restore(path, read.version, undefined, restoreAll)
    );
    head.node.appendChild(restoreAll);
    this._detail.addWidget(head);

    read.content.cells.forEach((cell, index) => {
      const id = read.cell_ids[index] ?? cell.id;
      this._detail.addWidget(
        this._renderCell(path, read.version, cell, id, diffs.get(id))
      );
    });
  }

  private _renderCell(
    path: string,
    version: number,
    cell: any,
    id: string,
    diff: ICellDiff | undefined
  ): Widget {
    const box = new Panel();
    box.addClass('jp-crdtsync-HistoryCell');
    box.node.dataset.cellId = id;
    const change = diff
      ? diff.change === 'changed' && diff.moved
        ? 'changed'
        : diff.change
      : '';
    if (change) {
      box.addClass('jp-crdtsync-mod-differs');
      box.node.dataset.change = change;
    }
    const bar = new Widget();
    bar.addClass('jp-crdtsync-HistoryCellBar');
    const kind =
      cell.cell_type === 'code' && cell.execution_count
        ? `[${cell.execution_count}]`
        : String(cell.cell_type);
    bar.node.appendChild(element('span', 'jp-crdtsync-HistoryCellKind', kind));
    if (change) {
      bar.node.appendChild(
        element(
          'span',
          'jp-crdtsync-HistoryBadge',
          CHANGE_LABELS[change] ?? change
        )
      );
    }
    if (change === 'removed' || change === 'changed') {
      const button = element('button', 'jp-mod-styled', 'Restore this cell');
      button.dataset.action = 'restore-cell';
      button.addEventListener(
        'click',
        () => void this._restore(path, version, [id], button)
      );
      bar.node.appendChild(button);
    }
    box.addWidget(bar);

    const source = joinSource(cell.source);
    if (cell.cell_type === 'markdown') {
      box.addWidget(
        this._render({ 'text/markdown': source }, 'jp-crdtsync-HistoryMarkdown')
      );
    } else {
      const pre = new Widget({
        node: element('pre', 'jp-crdtsync-HistorySource', source)
      });
      box.addWidget(pre);
    }
    if (diff?.source_diff && change === 'changed') {
      const details = element('details', 'jp-crdtsync-HistoryDiff');
      details.append(
        element('summary', undefined, 'What changed'),
        element('pre', undefined, diff.source_diff)
      );
      box.addWidget(new Widget({ node: details }));
    }
    for (const output of cell.outputs ?? []) {
      const model = new OutputModel({ value: output, trusted: false });
      box.addWidget(this._renderModel(model, 'jp-crdtsync-HistoryOutput'));
    }
    return box;
  }

  private _render(data: Record<string, string>, className: string): Widget {
    return this._renderModel(
      this._rendermime.createModel({ data, trusted: false }),
      className
    );
  }

  /** A model through the rendermime registry: the renderer its safe preferred type picks. */
  private _renderModel(
    model: IRenderMime.IMimeModel,
    className: string
  ): Widget {
    const mimeType = this._rendermime.preferredMimeType(model.data, 'ensure');
    if (!mimeType) {
      const widget = new Widget({
        node: element('div', className, '(output not shown: no safe renderer)')
      });
      return widget;
    }
    const renderer = this._rendermime.createRenderer(mimeType);
    renderer.addClass(className);
    void renderer.renderModel(model).catch(error => {
      renderer.node.textContent = `(could not render ${mimeType}: ${error})`;
    });
    return renderer;
  }

  private async _restore(
    path: string,
    version: number,
    cellIds: string[] | undefined,
    button: HTMLButtonElement
  ): Promise<void> {
    button.disabled = true;
    this._showError('');
    this._showNotice(
      cellIds ? 'Restoring the cell...' : `Restoring version ${version}...`
    );
    try {
      const result = await restoreVersion(
        path,
        version,
        this._settings,
        cellIds
      );
      this._showNotice(
        cellIds
          ? `Restored the cell from version ${version} (now version ${result.version}).`
          : `Restored version ${version} (now version ${result.version}).`
      );
      await this.refresh();
    } catch (error) {
      this._showNotice('');
      this._showError((error as Error).message);
    } finally {
      button.disabled = false;
    }
  }

  /** Shows (or clears, with '') an error; a `source` error is cleared by its own success. */
  private _showError(message: string, source?: string): void {
    if (source && this._errorNode.dataset.source !== source) {
      return;
    }
    this._errorNode.textContent = message;
    this._errorNode.dataset.source = message ? (source ?? 'list') : '';
    this._errorNode.hidden = !message;
  }

  private _showNotice(message: string): void {
    this._noticeNode.textContent = message;
    this._noticeNode.hidden = !message;
  }

  private _tracker: INotebookTracker;
  private _rendermime: IRenderMimeRegistry;
  private _settings: ServerConnection.ISettings;
  private _path: string | null = null;
  private _versions: IVersionInfo[] = [];
  private _listKey = '';
  private _selected: number | null = null;
  private _detailToken = 0;
  private _timer: number | null = null;
  private _pathNode: HTMLElement;
  private _errorNode: HTMLElement;
  private _noticeNode: HTMLElement;
  private _listNode: HTMLElement;
  private _detail: Panel;
}

/** The History panel in the right side bar, its command and its notebook toolbar button. */
export const historyPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-crdt-sync:history',
  description: "Lists, shows and restores the current notebook's versions.",
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null
  ) => {
    const panel = new HistoryPanel({
      tracker,
      rendermime,
      serverSettings: app.serviceManager.serverSettings
    });
    app.shell.add(panel, 'right', { rank: 900 });
    app.commands.addCommand(OPEN_HISTORY_COMMAND, {
      label: 'Show Notebook History',
      caption: "List, show and restore the current notebook's versions",
      execute: async () => {
        app.shell.activateById(panel.id);
        await panel.refresh();
        // Keyboard users land in the list: on the selected version, else the newest.
        window.requestAnimationFrame(() => panel.focusList());
      }
    });
    palette?.addItem({
      command: OPEN_HISTORY_COMMAND,
      category: 'Notebook Operations'
    });
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (notebook: NotebookPanel) => {
        const button = new ToolbarButton({
          className: 'jp-crdtsync-HistoryButton',
          iconClass: 'jp-crdtsync-HistoryIcon',
          label: 'History',
          tooltip: "Show this notebook's versions",
          onClick: () => {
            void app.commands.execute(OPEN_HISTORY_COMMAND);
          }
        });
        if (
          !notebook.toolbar.insertAfter('cellType', 'crdtsyncHistory', button)
        ) {
          notebook.toolbar.addItem('crdtsyncHistory', button);
        }
        return button;
      }
    });
  }
};
