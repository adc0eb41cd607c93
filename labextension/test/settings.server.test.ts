/**
 * Two "windows" (setting registries on JupyterLab's settings API through the real
 * `SettingManager`, each bound to the settings room by a SettingsSession) against a real
 * `jupyter server` with JupyterLab's server extension: a setting changed in one reaches
 * the other's registry and the file; two at once both stay; a change the room refuses is
 * undone everywhere. Skipped without `jupyter` on PATH.
 *
 * `SettingRegistry` itself does not load in node (its ESM build imports paths without
 * extensions), so `Registry` below does what SettingsBinding uses of it the way it does
 * it (`set` rewrites the whole text, then saves and fetches; `reload` fetches); the e2e
 * tests (e2e/settings.test.mjs) run JupyterLab's own registry in Chromium.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import WebSocket from 'ws';
import * as json5 from 'json5';
import { ServerConnection, SettingManager } from '@jupyterlab/services';
import type { ISettingRegistry } from '@jupyterlab/settingregistry';

import { IWebSocketLike } from '../src/provider';
import { SettingsSession } from '../src/settingsbinding';
import { hasJupyter, JupyterServer, until } from './jupyter';

const THEMES = '@jupyterlab/apputils-extension:themes';
const server = new JupyterServer();
let settingsDir = '';

before(async () => {
  if (hasJupyter) {
    await server.start([
      // JupyterLab's server extension: its settings API and the settings room.
      '--ServerApp.jpserver_extensions=jupyterlab=True',
      '--CRDTSync.max_setting_bytes=4096'
    ]);
    settingsDir = path.join(server.root, '.cfg', 'lab', 'user-settings');
    const status = await (await server.fetch('api/crdtsync/status')).json();
    // An older jupyter_crdt_sync on the path (from a checkout, set PYTHONPATH to it).
    assert.ok(status.settings, 'the server has no settings room');
  }
});

const sessions: SettingsSession[] = [];
after(async () => {
  sessions.forEach(s => s.dispose());
  await server.stop();
});

class Registry {
  constructor(readonly connector: SettingManager) {}
  readonly plugins: Record<string, ISettingRegistry.IPlugin> = {};
  /** Reloads of a plugin: what tells a registry's Settings objects that it changed. */
  changed = 0;

  async load(id: string): Promise<void> {
    this.plugins[id] = await this.connector.fetch(id);
  }

  async reload(id: string): Promise<void> {
    await this.load(id);
    this.changed++;
  }

  async set(id: string, key: string, value: unknown): Promise<void> {
    const raw = JSON.stringify({ ...this.values(id), [key]: value }, null, 4);
    this.plugins[id] = { ...this.plugins[id], raw };
    await this.connector.save(id, raw);
    await this.load(id);
  }

  values(id: string): Record<string, unknown> {
    return json5.parse(this.plugins[id].raw.trim() || '{}');
  }
}

interface IWindow {
  session: SettingsSession;
  registry: Registry;
  settings: { set: (key: string, value: unknown) => Promise<void> };
  refusals: string[];
}

async function openWindow(): Promise<IWindow> {
  // JupyterLab's settings API lives under its app URL.
  const serverSettings = ServerConnection.makeSettings({
    ...server.settings,
    appUrl: 'lab'
  });
  const registry = new Registry(new SettingManager({ serverSettings }));
  await registry.load(THEMES);
  const settings = {
    set: (key: string, value: unknown) => registry.set(THEMES, key, value)
  };
  const refusals: string[] = [];
  const session = new SettingsSession({
    registry: registry as unknown as ISettingRegistry,
    url: `ws://127.0.0.1:${server.port}/api/crdtsync/settings?token=${server.token}`,
    createWebSocket: url => new WebSocket(url) as unknown as IWebSocketLike,
    onRefused: reason => refusals.push(reason)
  });
  sessions.push(session);
  await session.ready;
  return { session, registry, settings, refusals };
}

function fileValues(): any {
  const file = path.join(
    settingsDir,
    '@jupyterlab',
    'apputils-extension',
    'themes.jupyterlab-settings'
  );
  try {
    return JSON.parse(
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(line => !line.trim().startsWith('//'))
        .join('\n')
    );
  } catch {
    return undefined;
  }
}

const user = (w: IWindow, key: string) => w.registry.values(THEMES)[key];

test(
  'a setting saved in one window reaches the other and the file',
  { skip: !hasJupyter },
  async () => {
    const [a, b] = [await openWindow(), await openWindow()];
    await a.settings.set('theme', 'JupyterLab Dark');
    await until(
      'b has the theme',
      () => user(b, 'theme') === 'JupyterLab Dark'
    );
    assert.ok(b.registry.changed > 0, "b's registry reloaded the plugin");
    await until(
      'the file has it',
      () => fileValues()?.theme === 'JupyterLab Dark'
    );
  }
);

test(
  'two windows saving different settings at once both keep theirs',
  { skip: !hasJupyter },
  async () => {
    const [a, b] = [await openWindow(), await openWindow()];
    await Promise.all([
      a.settings.set('theme-scrollbars', true),
      b.settings.set('theme', 'JupyterLab Light')
    ]);
    for (const w of [a, b]) {
      await until(
        'both changes everywhere',
        () =>
          user(w, 'theme-scrollbars') === true &&
          user(w, 'theme') === 'JupyterLab Light'
      );
    }
    await until(
      'the file has both',
      () =>
        fileValues()?.['theme-scrollbars'] === true &&
        fileValues()?.theme === 'JupyterLab Light'
    );
  }
);

test(
  'a change the room refuses is undone, and the window goes on',
  { skip: !hasJupyter },
  async () => {
    const [a, b] = [await openWindow(), await openWindow()];
    const before = user(b, 'theme');
    await assert.rejects(a.settings.set('theme', 'x'.repeat(5000)));
    await until('the refusal was reported', () => a.refusals.length > 0);
    assert.match(a.refusals[0], /max_setting_bytes/);
    await a.session.ready;
    await until(
      "a's registry is back to the room's value",
      () => user(a, 'theme') === before
    );
    assert.equal(user(b, 'theme'), before);
    // The new binding works.
    await a.settings.set('theme', 'JupyterLab Dark');
    await until(
      'b follows again',
      () => user(b, 'theme') === 'JupyterLab Dark'
    );
  }
);
