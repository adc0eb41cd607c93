// A real `jupyter lab` with jupyter-crdt-sync, in its own process group and temporary
// directories, for the end-to-end tests and the browser benchmark.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { notebookSource } from './notebook.mjs';
import { BUILT_EXTENSION, REPO, USE_INSTALLED } from './paths.mjs';

const PLUGIN_ID = 'jupyter-crdt-sync:plugin';

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

/** Every server still running: killed, and its files removed, if this process exits first. */
const running = new Set();
process.once('exit', () => {
  for (const lab of running) lab.killNow();
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => process.exit(128 + os.constants.signals[signal]));
}

export class Lab {
  /**
   * @param {object} options
   * @param {Record<string, unknown>} [options.crdtsync] CRDTSync settings over the
   *   test defaults (fast write-back, quick eviction).
   * @param {string[]} [options.disabledExtensions] JupyterLab plugins or extensions to
   *   disable (as if they were not installed), through the page config.
   */
  static async start(options = {}) {
    const lab = new Lab(options);
    try {
      await lab._start();
    } catch (error) {
      await lab.dispose();
      throw error;
    }
    return lab;
  }

  constructor(options) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jlab-e2e-'));
    this.root = path.join(this.tmp, 'root');
    this.token = `e2e-${Math.random().toString(36).slice(2)}`;
    this.logPath = path.join(this.tmp, 'server.log');
    /** JupyterLab's user settings: the settings room's mirror files. */
    this.settingsDir = path.join(this.tmp, 'user-settings');
    this._settings = {
      save_delay: 0.2,
      save_max_delay: 1,
      eviction_delay: 2,
      store_path: path.join(this.tmp, 'store.sqlite'),
      ...options.crdtsync
    };
    this._disabledExtensions = options.disabledExtensions ?? [];
    this.process = null;
  }

  async _start() {
    fs.mkdirSync(this.root);
    const jupyterPath = path.join(this.tmp, 'jupyter-path');
    const configDir = path.join(this.tmp, 'config');
    fs.mkdirSync(path.join(jupyterPath, 'labextensions'), { recursive: true });
    if (!USE_INSTALLED) {
      if (!fs.existsSync(path.join(BUILT_EXTENSION, 'package.json'))) {
        throw new Error(`no built extension in ${BUILT_EXTENSION}: run \`npm run build\` first`);
      }
      fs.symlinkSync(BUILT_EXTENSION, path.join(jupyterPath, 'labextensions', 'jupyter-crdt-sync'));
    }
    writeConfig(configDir, this._settings, this._disabledExtensions);
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}/`;
    const env = {
      ...process.env,
      JUPYTER_PATH: [jupyterPath, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
      JUPYTER_CONFIG_DIR: configDir,
      JUPYTER_DATA_DIR: path.join(this.tmp, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(this.tmp, 'runtime'),
      JUPYTERLAB_WORKSPACES_DIR: path.join(this.tmp, 'workspaces'),
      JUPYTERLAB_SETTINGS_DIR: this.settingsDir,
      IPYTHONDIR: path.join(this.tmp, 'ipython')
    };
    delete env.JUPYTER_TOKEN;
    if (!USE_INSTALLED) {
      env.PYTHONPATH = [REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
    }
    const log = fs.openSync(this.logPath, 'w');
    // detached: a process group of its own, so that stopping it reaches every child.
    this.process = spawn(
      'jupyter',
      [
        'lab',
        '--no-browser',
        '--allow-root',
        '--ip=127.0.0.1',
        `--port=${this.port}`,
        '--ServerApp.port_retries=0',
        `--ServerApp.root_dir=${this.root}`,
        `--IdentityProvider.token=${this.token}`,
        '--LabApp.expose_app_in_browser=True'
      ],
      { env, detached: true, stdio: ['ignore', log, log] }
    );
    fs.closeSync(log);
    running.add(this);
    const exited = new Promise(resolve => this.process.once('exit', resolve));
    this._exited = exited;
    const deadline = Date.now() + 90_000;
    for (;;) {
      const code = await Promise.race([exited.then(c => ({ c })), sleep(250)]);
      if (code) throw new Error(`jupyter lab exited (${code.c}) at start:\n${this.log()}`);
      let response = null;
      try {
        response = await this.api('api/crdtsync/status');
      } catch {
        // not listening yet
      }
      if (response?.ok) break;
      if (response?.status === 404) {
        throw new Error(`jupyter lab runs without jupyter-crdt-sync's server extension:\n${this.log()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`jupyter lab did not answer within 90 s:\n${this.log()}`);
      }
    }
  }

  log() {
    return fs.existsSync(this.logPath) ? fs.readFileSync(this.logPath, 'utf8') : '';
  }

  /** The URL of JupyterLab on a notebook, in a workspace of its own. */
  notebookUrl(notebookPath, workspace) {
    const segments = notebookPath.split('/').map(encodeURIComponent).join('/');
    return `${this.url}lab/workspaces/${encodeURIComponent(workspace)}/tree/${segments}?token=${this.token}`;
  }

  api(endpoint, init = {}) {
    return fetch(this.url + endpoint, {
      ...init,
      headers: { Authorization: `token ${this.token}`, ...init.headers },
      signal: AbortSignal.timeout(10_000)
    });
  }

  async status() {
    const response = await this.api('api/crdtsync/status');
    if (!response.ok) throw new Error(`api/crdtsync/status answered ${response.status}`);
    return response.json();
  }

  /** The room of a notebook in `api/crdtsync/status`, or undefined when it is not open. */
  async room(notebookPath) {
    return (await this.status()).rooms.find(room => room.path === notebookPath);
  }

  /** Waits until `predicate(room)` holds for the notebook's room; returns the room. */
  async waitForRoom(notebookPath, predicate, { timeout = 20_000, what = 'the room' } = {}) {
    const deadline = Date.now() + timeout;
    let room;
    for (;;) {
      room = await this.room(notebookPath);
      if (room && predicate(room)) return room;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what} of ${notebookPath}; last: ${JSON.stringify(room)}`);
      }
      await sleep(100);
    }
  }

  writeNotebook(name, cells) {
    fs.writeFileSync(path.join(this.root, name), JSON.stringify(notebookSource(cells), null, 1));
    return name;
  }

  /** The notebook file as it is on disk now, parsed (retried while a write is under way). */
  async readNotebook(name) {
    let error;
    for (let i = 0; i < 20; i++) {
      try {
        return JSON.parse(fs.readFileSync(path.join(this.root, name), 'utf8'));
      } catch (e) {
        error = e;
        await sleep(50);
      }
    }
    throw error;
  }

  /** A cell's source as the file holds it (nbformat allows a list of lines). */
  async fileCellSource(name, index) {
    const source = (await this.readNotebook(name)).cells[index]?.source;
    return Array.isArray(source) ? source.join('') : source;
  }

  /** Waits until the file's cell `index` has `expected` as source. */
  async waitForFileCellSource(name, index, expected, { timeout = 15_000 } = {}) {
    const deadline = Date.now() + timeout;
    let source;
    while (Date.now() < deadline) {
      source = await this.fileCellSource(name, index);
      if (source === expected) return source;
      await sleep(100);
    }
    throw new Error(
      `the file ${name} never had cell ${index} = ${JSON.stringify(expected)}; last ${JSON.stringify(source)}`
    );
  }

  /** Stops the server (SIGTERM to its process group, SIGKILL after 10 s). */
  async stop() {
    if (!this.process || this.process.exitCode !== null || this.process.signalCode !== null) {
      running.delete(this);
      return;
    }
    signalGroup(this.process.pid, 'SIGTERM');
    const stopped = await Promise.race([this._exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!stopped) {
      signalGroup(this.process.pid, 'SIGKILL');
      await this._exited;
    }
    running.delete(this);
  }

  killNow() {
    if (this.process && this.process.exitCode === null) signalGroup(this.process.pid, 'SIGKILL');
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  /** Stops the server, copies its log to `artifactsDir`, removes the temporary directory. */
  async dispose(artifactsDir) {
    await this.stop();
    if (artifactsDir && fs.existsSync(this.logPath)) {
      fs.mkdirSync(artifactsDir, { recursive: true });
      fs.copyFileSync(this.logPath, path.join(artifactsDir, path.basename(this.logPath)));
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  static pluginId = PLUGIN_ID;
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch (e) {
    if (e.code !== 'ESRCH') throw e;
  }
}

/**
 * The server's configuration: jupyter-crdt-sync's settings (and the extension enabled,
 * unless testing the installed package), the JupyterLab plugins to disable, and
 * JupyterLab's network features off (news, update checks: this machine has no internet,
 * and their notices would cover the page in screenshots).
 */
function writeConfig(configDir, settings, disabledExtensions) {
  fs.mkdirSync(configDir, { recursive: true });
  const config = { CRDTSync: settings };
  if (!USE_INSTALLED) config.ServerApp = { jpserver_extensions: { jupyter_crdt_sync: true } };
  fs.writeFileSync(path.join(configDir, 'jupyter_server_config.json'), JSON.stringify(config, null, 1));
  if (disabledExtensions.length > 0) {
    // JUPYTER_CONFIG_DIR is on the config path, where JupyterLab reads labconfig/page_config.json.
    fs.mkdirSync(path.join(configDir, 'labconfig'), { recursive: true });
    fs.writeFileSync(
      path.join(configDir, 'labconfig', 'page_config.json'),
      JSON.stringify({ disabledExtensions: Object.fromEntries(disabledExtensions.map(id => [id, true])) })
    );
  }
  const userSettings = path.join(configDir, 'lab', 'user-settings', '@jupyterlab', 'apputils-extension');
  fs.mkdirSync(userSettings, { recursive: true });
  fs.writeFileSync(
    path.join(userSettings, 'notification.jupyterlab-settings'),
    JSON.stringify({ fetchNews: 'false', checkForUpdates: false })
  );
}

