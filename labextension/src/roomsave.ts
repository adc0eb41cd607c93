/**
 * Saving a notebook bound to a room: the room, not this window, writes the file.
 *
 * First make sure the room has every change made here (`RoomProvider.whenApplied`),
 * then ask the server to write the room back now (`POST api/crdtsync/save/{path}`),
 * which answers with the file's contents model (no content) and its hash.
 */

import { Contents, ServerConnection } from '@jupyterlab/services';

import { NotAppliedError, RoomProvider } from './provider';
import { postJson, roomApiUrl } from './roomapi';

export interface ISaveOptions {
  /** The notebook's path (API path, relative to the server root). */
  path: string;
  provider: RoomProvider;
  serverSettings: ServerConnection.ISettings;
  /** How long to wait for the room to confirm this window's changes, in ms. */
  timeoutMs?: number;
}

/** Save through the room; rejects with an Error whose message says why it was not saved. */
export async function saveThroughRoom(
  options: ISaveOptions
): Promise<Contents.IModel> {
  const { path, provider, serverSettings } = options;
  try {
    await provider.whenApplied(options.timeoutMs ?? 15000);
  } catch (error) {
    if (error instanceof NotAppliedError) {
      throw new Error(notSavedBecause(error));
    }
    throw error;
  }
  return postJson<Contents.IModel>(
    roomApiUrl(serverSettings.baseUrl, 'save', path),
    {},
    serverSettings,
    (status, serverMessage) => saveErrorMessage(path, status, serverMessage)
  );
}

function notSavedBecause(error: NotAppliedError): string {
  const kept =
    'Your changes are kept in this window and reach the file once it is connected again.';
  switch (error.status) {
    case 'offline':
    case 'connecting':
    case 'syncing':
    case 'connected':
      return `Not saved: ${error.message}. ${kept}`;
    default:
      return `Not saved: ${error.message}.`;
  }
}

/** What to tell the user when the save request itself fails. */
export function saveErrorMessage(
  path: string,
  status: number,
  serverMessage: string
): string {
  switch (status) {
    case 0:
      return `Not saved: the server cannot be reached (${serverMessage}).`;
    case 403:
      return `Not saved: you may not change ${path} on this server.`;
    case 404:
      return `Not saved: ${path} no longer exists on the server.`;
    default:
      return serverMessage.startsWith('Not saved')
        ? serverMessage
        : `Not saved: the server answered ${status} (${serverMessage}).`;
  }
}

/**
 * What to tell the user when a notebook bound to a room is no longer at its path on the
 * server (its contents model answered 404): JupyterLab shows it as "File Save Error".
 * `deleted` is whether the room said the notebook was deleted; otherwise it was renamed
 * or moved elsewhere, and this window's connection has followed the room (the window
 * learns the new name from the notebook's session a few seconds later).
 */
export function missingNotebookMessage(name: string, deleted: boolean): string {
  return deleted
    ? `${name} was deleted on the server; this window no longer follows it.`
    : `${name} is no longer at this path on the server: it was renamed, moved or ` +
        'deleted elsewhere. If it was renamed, your changes are kept and this window ' +
        'takes the new name within a few seconds; save again then.';
}
