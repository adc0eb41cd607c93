// Debian's headless Chromium, driven by playwright-core, and one JupyterLab window in it.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { Lab } from './lab.mjs';
import { CHROMIUM } from './paths.mjs';

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);
  }
  // launch() gives every browser a fresh temporary profile; nothing is downloaded.
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run'
    ]
  });
}

/**
 * The text of the `.cm-content` element `content`, line by line, without the widgets
 * CodeMirror shows inside lines (remote cursors and their labels, placeholders): those
 * are `contenteditable=false`. Runs in the page, so it must stay self-contained.
 */
export function editorText(content) {
  const lineText = line => {
    let text = '';
    const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.closest('[contenteditable="false"]')) text += node.data;
    }
    return text;
  };
  return [...content.querySelectorAll(':scope > .cm-line')].map(lineText).join('\n');
}

/** One JupyterLab window on one notebook: its own browser context (cookies, storage). */
export class Window {
  /**
   * @param {import('playwright-core').Browser} browser
   * @param {Lab} lab
   * @param {string} notebookPath
   * @param {{name: string, workspace: string, initScript?: Function}} options the window's
   *   name (in screenshots and messages), its JupyterLab workspace (unique in the
   *   server), and a function to run in the page before JupyterLab's scripts
   */
  static async open(browser, lab, notebookPath, options) {
    const window = await Window.create(browser, lab, notebookPath, options);
    await window.load();
    return window;
  }

  /** A window not yet on the notebook (`load()` goes there). */
  static async create(browser, lab, notebookPath, { name, workspace, initScript }) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    if (initScript) await context.addInitScript(initScript);
    return new Window(context, await context.newPage(), lab, notebookPath, { name, workspace });
  }

  constructor(context, page, lab, notebookPath, { name, workspace }) {
    this.context = context;
    this.page = page;
    this.lab = lab;
    this.path = notebookPath;
    this.name = name;
    this.workspace = workspace;
    this.logs = [];
    /** Patterns of errors a test expects in this window (see `expectErrors`). */
    this.expectedErrors = [];
    this.closed = false;
    page.on('console', message => this.logs.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', error => this.logs.push(`pageerror: ${error.stack ?? error}`));
  }

  /** Navigates to the notebook and waits until its cells are shown. */
  async load() {
    await this.page.goto(this.lab.notebookUrl(this.path, this.workspace));
    await this.waitForNotebook();
  }

  async reload() {
    await this.page.reload();
    await this.waitForNotebook();
  }

  async waitForNotebook({ timeout = 60_000 } = {}) {
    await this.page.waitForSelector('.jp-NotebookPanel .jp-Cell .cm-content', { timeout });
  }

  pluginActive() {
    return this.page.evaluate(id => window.jupyterapp?.isPluginActivated?.(id) ?? false, Lab.pluginId);
  }

  /** How JupyterLab's page config says to load our extension (`static/remoteEntry.<hash>.js`). */
  extensionLoadPath() {
    return this.page.evaluate(() => {
      const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
      return config.federated_extensions?.find(e => e.name === 'jupyter-crdt-sync')?.load ?? null;
    });
  }

  cell(index) {
    return this.page.locator('.jp-NotebookPanel .jp-Notebook .jp-Cell').nth(index);
  }

  /** The text shown in cell `index`'s editor. */
  cellText(index) {
    return this.cell(index).locator('.cm-content').evaluate(editorText);
  }

  /** Waits until cell `index` shows `expected` (a string, or a predicate on the text). */
  async waitForCellText(index, expected, { timeout = 10_000 } = {}) {
    const matches = typeof expected === 'function' ? expected : text => text === expected;
    const deadline = Date.now() + timeout;
    let text;
    for (;;) {
      text = await this.cellText(index).catch(() => undefined);
      if (text !== undefined && matches(text)) return text;
      if (Date.now() > deadline) {
        throw new Error(`window ${this.name}: cell ${index} shows ${JSON.stringify(text)}, expected ${describe(expected)}`);
      }
      await this.page.waitForTimeout(50);
    }
  }

  /** Cell `index`'s source in the window's notebook model (the shared document). */
  modelSource(index) {
    return this.page.evaluate(
      ({ path, index }) => {
        const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
        return panel?.content.model?.cells.get(index)?.sharedModel.getSource();
      },
      { path: this.path, index }
    );
  }

  /** Puts the cursor at the start or end of cell `index`'s editor (edit mode). */
  async focusCell(index, at = 'end') {
    await this.cell(index).locator('.cm-content').click();
    await this.page.keyboard.press(at === 'end' ? 'Control+End' : 'Control+Home');
  }

  async typeInCell(index, text, { at = 'end', delay = 0 } = {}) {
    await this.focusCell(index, at);
    await this.page.keyboard.type(text, { delay });
  }

  /** The text of cell `index`'s outputs, as shown. */
  outputText(index) {
    return this.cell(index)
      .locator('.jp-OutputArea-output')
      .evaluateAll(outputs => outputs.map(o => o.innerText).join(''));
  }

  async waitForOutput(index, substring, { timeout = 30_000 } = {}) {
    const deadline = Date.now() + timeout;
    let text;
    for (;;) {
      text = await this.outputText(index).catch(() => '');
      if (text.includes(substring)) return text;
      if (Date.now() > deadline) {
        throw new Error(`window ${this.name}: cell ${index} output is ${JSON.stringify(text)}, expected it to contain ${JSON.stringify(substring)}`);
      }
      await this.page.waitForTimeout(100);
    }
  }

  /** Waits until the window's notebook is connected to its kernel, and it is started. */
  async waitForKernel({ timeout = 60_000 } = {}) {
    await this.page.waitForFunction(
      path => {
        const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
        const kernel = panel?.sessionContext.session?.kernel;
        return kernel?.connectionStatus === 'connected' && ['idle', 'busy'].includes(kernel.status);
      },
      this.path,
      { timeout, polling: 100 }
    );
  }

  /** The id of the kernel the window's notebook is connected to. */
  kernelId() {
    return this.page.evaluate(path => {
      const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
      return panel?.sessionContext.session?.kernel?.id ?? null;
    }, this.path);
  }

  /**
   * Runs cell `index` with Shift+Enter, as a user does, once the window has its kernel
   * (before that, JupyterLab moves to the next cell without running anything).
   */
  async runCell(index) {
    await this.waitForKernel();
    await this.focusCell(index, 'end');
    await this.page.keyboard.press('Shift+Enter');
  }

  /** The execution prompt of cell `index`: `[ ]:`, `[*]:`, `[3]:`... */
  async prompt(index) {
    return (await this.cell(index).locator('.jp-InputArea-prompt').innerText()).replace(/\s/g, '');
  }

  async waitForPrompt(index, expected, { timeout = 30_000 } = {}) {
    const matches = typeof expected === 'function' ? expected : text => text === expected;
    const deadline = Date.now() + timeout;
    let text;
    for (;;) {
      text = await this.prompt(index).catch(() => undefined);
      if (text !== undefined && matches(text)) return text;
      if (Date.now() > deadline) {
        throw new Error(`window ${this.name}: cell ${index}'s prompt is ${JSON.stringify(text)}, expected ${describe(expected)}`);
      }
      await this.page.waitForTimeout(50);
    }
  }

  /** The values shown by the ipywidgets sliders rendered in cell `index`'s outputs. */
  sliderValues(index) {
    return this.cell(index)
      .locator('.widget-slider .widget-readout')
      .evaluateAll(readouts => readouts.filter(r => r.checkVisibility()).map(r => r.textContent.trim()));
  }

  /**
   * Waits until cell `index` shows a slider reading `value` (or any slider, without
   * `value`); returns the value it shows.
   */
  async waitForSlider(index, { value, timeout = 10_000 } = {}) {
    const values = await this._poll(
      () => this.sliderValues(index),
      shown => (value === undefined ? shown.length > 0 : shown.includes(value)),
      { timeout, what: `cell ${index}'s slider ${value === undefined ? 'shown' : `at ${value}`}` }
    );
    return value ?? values[0];
  }

  /** Moves the first slider of cell `index` one step right with the keyboard, as a user can. */
  async nudgeSlider(index) {
    await this.cell(index).locator('.widget-slider .noUi-handle').first().focus();
    await this.page.keyboard.press('ArrowRight');
  }

  /** Drags the first slider of cell `index` by `dx` pixels with the mouse. */
  async dragSlider(index, dx) {
    const box = await this.cell(index).locator('.widget-slider .noUi-handle').first().boundingBox();
    const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
    await this.page.mouse.move(x, y);
    await this.page.mouse.down();
    await this.page.mouse.move(x + dx, y, { steps: 5 });
    await this.page.mouse.up();
  }

  /** This window's user as the server's identity provider named it (name, colour...). */
  identity() {
    return this.page.evaluate(() => window.jupyterapp.serviceManager.user.identity);
  }

  /**
   * The other windows' cursors drawn in this window: each caret's cell, its position in
   * the cell's text, the name on it, its colour and whether the name shows now; and the
   * text each cell shows selected by others.
   */
  remoteCursors() {
    return this.page.evaluate(path => {
      const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
      const carets = [];
      const selections = [];
      panel.content.widgets.forEach((cell, index) => {
        const view = cell.editor?.editor;
        for (const caret of cell.node.querySelectorAll('.jp-crdtsync-cursor')) {
          carets.push({
            cell: index,
            pos: view?.posAtDOM(caret),
            name: caret.dataset.name,
            color: caret.style.getPropertyValue('--jp-crdtsync-cursor-color'),
            nameShown: caret.classList.contains('jp-mod-recent')
          });
        }
        const selected = [...cell.node.querySelectorAll('.jp-crdtsync-selection')].map(s => s.textContent).join('');
        if (selected) selections.push({ cell: index, text: selected });
      });
      return { carets, selections };
    }, this.path);
  }

  /**
   * The collaborators' name labels shown in the window, and the boxes of the text lines
   * of cell `index` that hold a caret: `{labels: [{name, box}], lines: [box]}` (viewport
   * boxes).
   */
  cursorLabels(index) {
    return this.page.evaluate(
      ({ path, index }) => {
        const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
        const node = panel.content.widgets[index].node;
        const box = r => ({ left: r.left, top: r.top, right: r.right, bottom: r.bottom });
        // Name labels are CodeMirror tooltips, which JupyterLab puts in the page's body.
        const labels = [...document.querySelectorAll('.jp-crdtsync-cursor-label')].map(label => ({
          name: label.textContent,
          box: box(label.getBoundingClientRect())
        }));
        const lines = [...new Set([...node.querySelectorAll('.jp-crdtsync-cursor')].map(c => c.closest('.cm-line')))].map(line => {
          const range = document.createRange();
          range.selectNodeContents(line);
          return box(range.getBoundingClientRect());
        });
        return { labels, lines };
      },
      { path: this.path, index }
    );
  }

  /** Waits until `predicate(remoteCursors())` holds; returns what was seen. */
  waitForRemoteCursors(predicate, what, { timeout = 10_000 } = {}) {
    return this._poll(() => this.remoteCursors(), predicate, { timeout, what });
  }

  /** Polls `read()` until `done(value)`; throws with the last value after `timeout` ms. */
  async _poll(read, done, { timeout, what, interval = 50 }) {
    const deadline = Date.now() + timeout;
    let value;
    for (;;) {
      value = await read().catch(error => ({ error: error.message }));
      if (!value?.error && done(value)) return value;
      if (Date.now() > deadline) {
        throw new Error(`window ${this.name}: timed out waiting for ${what}; last seen ${JSON.stringify(value)}`);
      }
      await this.page.waitForTimeout(interval);
    }
  }

  /**
   * The connection status the extension shows (`connected`, `syncing`, `offline`...):
   * the value of the `data-crdtsync-status` attribute of its status bar item.
   */
  connectionStatus() {
    return this.page.locator('[data-crdtsync-status]').first().getAttribute('data-crdtsync-status', { timeout: 5_000 });
  }

  /** Errors that must never happen: uncaught ones, and those the extension logs. */
  errors() {
    return this.logs.filter(
      line =>
        (line.startsWith('pageerror:') || /^(error|warning): jupyter-crdt-sync:/.test(line)) &&
        !this.expectedErrors.some(pattern => pattern.test(line))
    );
  }

  /**
   * Lets the errors matching `pattern` (a RegExp on the logged line) happen in this window
   * without failing the test: only for a test that provokes them on purpose.
   */
  expectErrors(pattern) {
    this.expectedErrors.push(pattern);
  }

  /** The titles and texts of the dialogs shown now. */
  dialogs() {
    return this.page.$$eval('.jp-Dialog', dialogs => dialogs.map(d => d.innerText.trim()));
  }

  /** Ctrl+S in the notebook; resolves when JupyterLab reports the save as done. */
  async save({ timeout = 15_000 } = {}) {
    const saved = this.page.evaluate(
      ({ path, timeout }) => {
        const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
        return new Promise((resolve, reject) => {
          const done = (_, state) => {
            if (state === 'completed' || state === 'failed') {
              clearTimeout(timer);
              panel.context.saveState.disconnect(done);
              resolve(state);
            }
          };
          const timer = setTimeout(() => {
            panel.context.saveState.disconnect(done);
            reject(new Error('JupyterLab did not finish saving in time'));
          }, timeout);
          panel.context.saveState.connect(done);
        });
      },
      { path: this.path, timeout }
    );
    await this.page.keyboard.press('Control+s');
    return saved;
  }

  async screenshot(dir, label) {
    if (this.closed) return;
    fs.mkdirSync(dir, { recursive: true });
    await this.page.screenshot({ path: path.join(dir, `${this.name}-${label}.png`), timeout: 10_000 });
    fs.writeFileSync(path.join(dir, `${this.name}-console.log`), this.logs.join('\n') + '\n');
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.context.close();
  }
}

function describe(expected) {
  return typeof expected === 'function' ? `text matching ${expected}` : JSON.stringify(expected);
}
