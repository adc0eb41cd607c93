// `python -m jupyterlab.browser_check` with jupyter-crdt-sync, in Debian's Chromium,
// downloading nothing.
//
//   cd labextension && npm run build && npm run browser-check
//
// JupyterLab's browser check (jupyterlab/browser_check.py, 4.6) starts JupyterLab, then
// in `<app dir>/browser_test/` runs `npm install playwright` (only when that directory
// has no node_modules), `npx playwright install chromium` (always: a download of
// Chrome for Testing), and `node browser-test.js <url>`, which launches playwright's own
// Chromium, loads JupyterLab and fails on any error in the page or in the server log.
// It has no setting for a browser path, and does not use playwright for Python. So this
// script prepares what it looks for:
// - an app dir of its own (JUPYTERLAB_DIR): JupyterLab's static files, schemas and
//   themes linked in, and `browser_test/node_modules` linked to labextension's, which
//   holds `playwright` (a devDependency, the version of our playwright-core);
// - a playwright browsers directory (PLAYWRIGHT_BROWSERS_PATH) where the Chromium and
//   headless-shell builds playwright expects are marked installed and are links to
//   /usr/bin/chromium (or $CHROMIUM): `playwright install` finds them installed and
//   downloads nothing; `launch()` starts Debian's Chromium.
// CRDTSYNC_E2E_INSTALLED=1 checks the pip-installed extension, as the e2e tests do.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ARTIFACTS, BUILT_EXTENSION, CHROMIUM, LABEXTENSION, REPO, USE_INSTALLED } from './harness/paths.mjs';

const NODE_MODULES = path.join(LABEXTENSION, 'node_modules');
const PYTHON = process.env.PYTHON ?? 'python3';
const TIMEOUT_MS = 240_000;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jlab-browser-check-'));

/** JupyterLab's app dir (respects JUPYTERLAB_DIR), as the check itself will compute it. */
function realAppDir() {
  const result = spawnSync(PYTHON, ['-c', 'from jupyterlab.commands import get_app_dir; print(get_app_dir())'], {
    encoding: 'utf8'
  });
  if (result.status !== 0) throw new Error(`cannot find JupyterLab's app dir:\n${result.stderr}`);
  return result.stdout.trim();
}

function prepareAppDir() {
  const appDir = path.join(tmp, 'app');
  fs.mkdirSync(path.join(appDir, 'browser_test'), { recursive: true });
  const real = realAppDir();
  for (const entry of fs.readdirSync(real)) {
    if (entry !== 'browser_test') fs.symlinkSync(path.join(real, entry), path.join(appDir, entry));
  }
  if (!fs.existsSync(path.join(NODE_MODULES, 'playwright', 'package.json'))) {
    throw new Error(`no playwright in ${NODE_MODULES}: run npm ci in labextension/`);
  }
  fs.symlinkSync(NODE_MODULES, path.join(appDir, 'browser_test', 'node_modules'));
  return appDir;
}

/** Marks playwright's Chromium builds installed, as links to the system's Chromium. */
function prepareBrowsers() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);
  }
  const browsersDir = path.join(tmp, 'browsers');
  // Ask playwright's registry, loaded with this browsers directory, where it looks.
  const layout = spawnSync(
    process.execPath,
    [
      '-e',
      `const { registry } = require('playwright-core/lib/coreBundle').registry;
       const names = ['chromium', 'chromium-headless-shell', 'ffmpeg'];
       console.log(JSON.stringify(names.map(name => {
         const e = registry.findExecutable(name);
         return { name, directory: e.directory, executable: e.executablePath() };
       })));`
    ],
    { cwd: LABEXTENSION, env: { ...process.env, PLAYWRIGHT_BROWSERS_PATH: browsersDir }, encoding: 'utf8' }
  );
  if (layout.status !== 0) throw new Error(`cannot read playwright's browser registry:\n${layout.stderr}`);
  for (const { name, directory, executable } of JSON.parse(layout.stdout)) {
    if (!directory.startsWith(browsersDir + path.sep)) throw new Error(`unexpected browser directory ${directory}`);
    fs.mkdirSync(directory, { recursive: true });
    if (name !== 'ffmpeg') {
      fs.mkdirSync(path.dirname(executable), { recursive: true });
      fs.symlinkSync(CHROMIUM, executable);
    }
    // What `playwright install` and `launch()` check before downloading or validating.
    fs.writeFileSync(path.join(directory, 'INSTALLATION_COMPLETE'), '');
    fs.writeFileSync(path.join(directory, 'DEPENDENCIES_VALIDATED'), '');
  }
  return browsersDir;
}

function prepareJupyter() {
  const jupyterPath = path.join(tmp, 'jupyter-path');
  fs.mkdirSync(path.join(jupyterPath, 'labextensions'), { recursive: true });
  const configDir = path.join(tmp, 'config');
  fs.mkdirSync(configDir);
  const config = { CRDTSync: { store_path: path.join(tmp, 'store.sqlite') } };
  if (!USE_INSTALLED) {
    if (!fs.existsSync(path.join(BUILT_EXTENSION, 'package.json'))) {
      throw new Error(`no built extension in ${BUILT_EXTENSION}: run \`npm run build\` first`);
    }
    fs.symlinkSync(BUILT_EXTENSION, path.join(jupyterPath, 'labextensions', 'jupyter-crdt-sync'));
    config.ServerApp = { jpserver_extensions: { jupyter_crdt_sync: true } };
  }
  fs.writeFileSync(path.join(configDir, 'jupyter_server_config.json'), JSON.stringify(config));
  return { jupyterPath, configDir };
}

let checkGroup = null;

function killCheck() {
  try {
    if (checkGroup !== null) process.kill(-checkGroup, 'SIGKILL');
  } catch {
    // nothing left
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killCheck();
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(128 + os.constants.signals[signal]);
  });
}

/** Runs the check in a process group of its own; resolves to its exit status. */
function run(command, args, env, cwd) {
  return new Promise(resolve => {
    const child = spawn(command, args, { env, cwd, detached: true, stdio: 'inherit' });
    checkGroup = child.pid;
    const timer = setTimeout(() => {
      console.error(`browser check: no result within ${TIMEOUT_MS / 1000} s, stopping it`);
      killCheck();
    }, TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // The check ends with os._exit(): stop whatever it left behind (browser, kernels).
      killCheck();
      checkGroup = null;
      resolve(code ?? 128 + (os.constants.signals[signal] ?? 0));
    });
  });
}

let status = 1;
try {
  const root = path.join(tmp, 'root');
  fs.mkdirSync(root);
  const { jupyterPath, configDir } = prepareJupyter();
  const env = {
    ...process.env,
    JUPYTERLAB_DIR: prepareAppDir(),
    PLAYWRIGHT_BROWSERS_PATH: prepareBrowsers(),
    JUPYTER_PATH: [jupyterPath, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
    JUPYTER_CONFIG_DIR: configDir,
    JUPYTER_DATA_DIR: path.join(tmp, 'data'),
    JUPYTER_RUNTIME_DIR: path.join(tmp, 'runtime'),
    JLAB_BROWSER_CHECK_OUTPUT: path.join(ARTIFACTS, 'browser-check')
  };
  delete env.JUPYTER_TOKEN;
  if (!USE_INSTALLED) env.PYTHONPATH = [REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  // The check says nothing about which extensions it loaded: make sure ours is there.
  const list = spawnSync('jupyter', ['labextension', 'list'], { env, cwd: root, encoding: 'utf8' });
  const listed = `${list.stdout}${list.stderr}`.replace(/\x1b\[[0-9;]*m/g, ''); // no colours
  const ours = listed.split('\n').find(line => line.includes('jupyter-crdt-sync'));
  if (!ours || !/enabled/.test(ours) || !/OK/.test(ours)) {
    throw new Error(`jupyter-crdt-sync is not an enabled, OK lab extension here:\n${listed}`);
  }
  console.log(`browser check: ${ours.trim()}`);
  status = await run(PYTHON, ['-m', 'jupyterlab.browser_check', '--allow-root'], env, root);
  console.log(`browser check: ${status === 0 ? 'passed' : `FAILED (exit status ${status})`}`);
} catch (error) {
  console.error(`browser check: ${error.message}`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);
