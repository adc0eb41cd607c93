/**
 * The settings plugin: binds this window's setting registry to the server's settings
 * room (`WS api/crdtsync/settings`), and tells the user when a settings file was refused
 * or a change of theirs was.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { SettingsSession } from './settingsbinding';
import { ISettingsError } from './settingsstate';

export const settingsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-crdt-sync:settings',
  description:
    "Shares the user's JupyterLab settings live between all windows.",
  autoStart: true,
  requires: [ISettingRegistry],
  activate: (app: JupyterFrontEnd, registry: ISettingRegistry) => {
    void bindSettings(app.serviceManager.serverSettings, registry);
  }
};

async function bindSettings(
  settings: ServerConnection.ISettings,
  registry: ISettingRegistry
): Promise<void> {
  if (!(await hasSettingsRoom(settings))) {
    return; // an older server, or one without JupyterLab's settings API
  }
  const url = URLExt.join(settings.wsUrl, 'api/crdtsync/settings');
  const shown = new Set<string>();
  new SettingsSession({
    registry,
    url: settings.token
      ? `${url}?token=${encodeURIComponent(settings.token)}`
      : url,
    onErrors: errors => showErrors(errors, shown),
    onRefused: reason =>
      Notification.error(`Settings change not applied: ${reason}`, {
        autoClose: false
      })
  });
}

async function hasSettingsRoom(
  settings: ServerConnection.ISettings
): Promise<boolean> {
  try {
    const response = await ServerConnection.makeRequest(
      URLExt.join(settings.baseUrl, 'api/crdtsync/status'),
      {},
      settings
    );
    return response.ok && ((await response.json()).settings ?? null) !== null;
  } catch {
    return false;
  }
}

/** One notification per refused file and error; cleared errors may show again. */
function showErrors(errors: ISettingsError[], shown: Set<string>): void {
  const current = new Set<string>();
  for (const error of errors) {
    const key = `${error.plugin}\n${error.line}\n${error.message}`;
    current.add(key);
    if (!shown.has(key)) {
      const where = error.line
        ? `${error.file} line ${error.line}`
        : error.file;
      Notification.error(
        `Settings file not applied: ${where}: ${error.message}. The previous settings stay in force.`,
        { autoClose: false }
      );
    }
  }
  shown.clear();
  current.forEach(key => shown.add(key));
}
