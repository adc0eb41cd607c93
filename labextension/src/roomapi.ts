/**
 * The server's REST endpoints next to a room: `POST api/crdtsync/{save,execute}/{path}`
 * (and the history's, through `getJson`/`postJson`).
 *
 * Only `@jupyterlab/services` and `coreutils` (both run in node): tested against a real
 * server in test/server.test.ts.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The API path of a notebook, each segment percent-encoded and `/` kept (as the room URL). */
export function encodePath(path: string): string {
  return path
    .split('/')
    .filter(segment => segment.length > 0)
    .map(encodeURIComponent)
    .join('/');
}

/** `{baseUrl}api/crdtsync/{endpoint}/{path}`. */
export function roomApiUrl(
  baseUrl: string,
  endpoint: 'save' | 'execute',
  path: string
): string {
  return URLExt.join(baseUrl, 'api/crdtsync', endpoint, encodePath(path));
}

/** A refused or failed request, with the server's own explanation when it gave one. */
export class RoomApiError extends Error {
  constructor(
    message: string,
    /** The HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    /** The server's `message` (Jupyter's JSON errors), if any. */
    readonly serverMessage: string
  ) {
    super(message);
    this.name = 'RoomApiError';
  }
}

/**
 * POST a JSON body; the parsed JSON answer, or a `RoomApiError` whose message is
 * `describe(status, serverMessage)`.
 */
export function postJson<T>(
  url: string,
  body: unknown,
  settings: ServerConnection.ISettings,
  describe: (status: number, serverMessage: string) => string
): Promise<T> {
  return requestJson<T>(
    url,
    { method: 'POST', body: JSON.stringify(body) },
    settings,
    describe
  );
}

/** GET a JSON answer; errors as `postJson`. */
export function getJson<T>(
  url: string,
  settings: ServerConnection.ISettings,
  describe: (status: number, serverMessage: string) => string
): Promise<T> {
  return requestJson<T>(url, { method: 'GET' }, settings, describe);
}

async function requestJson<T>(
  url: string,
  init: RequestInit,
  settings: ServerConnection.ISettings,
  describe: (status: number, serverMessage: string) => string
): Promise<T> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new RoomApiError(
      describe(0, String((error as Error)?.message ?? error)),
      0,
      ''
    );
  }
  if (!response.ok) {
    const serverMessage = await readServerMessage(response);
    throw new RoomApiError(
      describe(response.status, serverMessage),
      response.status,
      serverMessage
    );
  }
  return (await response.json()) as T;
}

/** Jupyter's API errors are JSON `{"message": ...}`; anything else is shown as text. */
async function readServerMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === 'string' && body.message) {
      return body.message;
    }
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 300) || response.statusText;
}
