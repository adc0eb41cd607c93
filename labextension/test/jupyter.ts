/**
 * A real `jupyter server` with jupyter-crdt-sync, for the server tests: started in a
 * temporary root on a free port, stopped (and the root removed) by `stop`.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ServerConnection } from '@jupyterlab/services';

export const hasJupyter =
  spawnSync('jupyter', ['server', '--version']).status === 0;

/** Whether the kernel can make widgets: the widget tests need a real ipykernel with ipywidgets. */
export const hasIpywidgets =
  hasJupyter &&
  spawnSync('python', ['-c', 'import ipywidgets, ipykernel']).status === 0;

export const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

export async function until<T>(
  what: string,
  f: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 20000
): Promise<T> {
  const end = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) {
        return v as T;
      }
    } catch (e) {
      lastError = e; // not yet; said on time-out, since it may be why
    }
    if (Date.now() > end) {
      throw new Error(
        `timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`
      );
    }
    await sleep(50);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

/**
 * A notebook of cells of one type: from a list of sources, with ids `cell-0`, `cell-1`, ...;
 * from a record, with its keys as ids (in the record's order).
 */
export function notebook(
  sources: string[] | Record<string, string>,
  cellType = 'code'
): object {
  const cells = Array.isArray(sources)
    ? sources.map((source, i) => [`cell-${i}`, source])
    : Object.entries(sources);
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: cells.map(([id, source]) => ({
      cell_type: cellType,
      id,
      metadata: {},
      source,
      ...(cellType === 'code' ? { outputs: [], execution_count: null } : {})
    }))
  };
}

export class JupyterServer {
  readonly token = 'crdtsync-labextension-test';
  root = '';
  port = 0;

  /** Start with these extra command line options (e.g. `--CRDTSync.save_delay=1`). */
  async start(options: string[] = []): Promise<void> {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'crdtsync-lab-'));
    this.port = await freePort();
    const server = spawn(
      'jupyter',
      [
        'server',
        '--no-browser',
        '--allow-root',
        `--port=${this.port}`,
        '--ip=127.0.0.1',
        `--ServerApp.root_dir=${this.root}`,
        `--IdentityProvider.token=${this.token}`,
        // Enabled here, whether or not the package's config file is installed.
        '--ServerApp.jpserver_extensions=jupyter_crdt_sync=True',
        `--CRDTSync.store_path=${path.join(this.root, '.store.sqlite')}`,
        ...options
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          ...process.env,
          JUPYTER_CONFIG_DIR: path.join(this.root, '.cfg')
        }
      }
    );
    this._process = server;
    server.stderr!.on('data', d => (this.log += d));
    let exited = false;
    server.once('exit', () => (exited = true));
    await until(
      'the server',
      async () => {
        if (exited) {
          throw new Error('the server exited');
        }
        return (await this.fetch('api/crdtsync/status')).ok;
      },
      60000
    ).catch(e => {
      throw new Error(`${e}\n${this.log}`);
    });
  }

  log = '';

  get settings(): ServerConnection.ISettings {
    return ServerConnection.makeSettings({
      baseUrl: `http://127.0.0.1:${this.port}/`,
      wsUrl: `ws://127.0.0.1:${this.port}/`,
      token: this.token
    });
  }

  fetch(
    p: string,
    init: { method?: string; body?: string } = {}
  ): Promise<Response> {
    return fetch(`http://127.0.0.1:${this.port}/${p}`, {
      ...init,
      headers: { Authorization: `token ${this.token}` }
    });
  }

  write(name: string, content: object): string {
    const file = path.join(this.root, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(content));
    return file;
  }

  async stop(): Promise<void> {
    const server = this._process;
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise(r => server.once('exit', r));
    }
    if (this.root) {
      fs.rmSync(this.root, { recursive: true, force: true });
    }
  }

  private _process: ChildProcess | null = null;
}
