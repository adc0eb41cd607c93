/**
 * What the status bar says about a notebook's room connection: the text, the tooltip
 * that explains it, and a tone for the colour. Pure; unit-tested in node.
 */

import type { ConnectionStatus } from './provider';

export interface IConnectionState {
  status: ConnectionStatus;
  /** Whether the document was in sync with the room at least once. */
  hasSynced: boolean;
  /** For `offline`: when the next attempt starts (ms since the epoch), if scheduled. */
  retryAt?: number;
}

export type ConnectionTone = 'ok' | 'busy' | 'offline' | 'error';

export interface IConnectionView {
  text: string;
  tooltip: string;
  tone: ConnectionTone;
}

/** Only one of the statuses calls for a click: an offline notebook reconnects at once. */
export function canReconnectNow(state: IConnectionState): boolean {
  return state.status === 'offline';
}

/** Describe the connection of the notebook named `name` at time `now` (ms). */
export function describeConnection(
  state: IConnectionState,
  name: string,
  now: number
): IConnectionView {
  switch (state.status) {
    case 'connected':
      return {
        text: 'Connected',
        tone: 'ok',
        tooltip:
          `${name} is live: every window that has it open sees the same notebook, ` +
          'and the server writes it to the file.'
      };
    case 'connecting':
      return state.hasSynced
        ? {
            text: 'Reconnecting…',
            tone: 'busy',
            tooltip: `Reconnecting ${name} to the server. ${KEEP_WORKING}`
          }
        : {
            text: 'Connecting…',
            tone: 'busy',
            tooltip: `Connecting ${name} to the server.`
          };
    case 'syncing':
      return {
        text: 'Syncing…',
        tone: 'busy',
        tooltip:
          `Exchanging changes with the server: ${name} catches up with the other ` +
          'windows, and they with this one.'
      };
    case 'offline': {
      const seconds =
        state.retryAt === undefined
          ? 0
          : Math.ceil((state.retryAt - now) / 1000);
      const lost = `The connection to the server is lost. ${KEEP_WORKING}`;
      return seconds > 0
        ? {
            text: `Offline · retry in ${seconds} s`,
            tone: 'offline',
            tooltip: `${lost} Next attempt in ${seconds} s; click to retry now.`
          }
        : { text: 'Offline · reconnecting…', tone: 'offline', tooltip: lost };
    }
    case 'deleted':
      return {
        text: 'Deleted',
        tone: 'error',
        tooltip:
          `${name} was deleted on the server. This window no longer follows it: ` +
          'copy what you need, then close it.'
      };
    case 'stale':
      return {
        text: 'Out of date · reload',
        tone: 'error',
        tooltip:
          `This window's copy of ${name} comes from an earlier history of the notebook ` +
          'that the server no longer has; it cannot be merged. Reload the page to get ' +
          'the current notebook (changes made here since are not kept).'
      };
    case 'disposed':
      return { text: '', tone: 'busy', tooltip: '' };
  }
}

const KEEP_WORKING =
  'Keep working: your changes are kept in this window and merged when it reconnects.';

/** When the text changes next without a status change (the countdown), in ms; or null. */
export function nextRefreshIn(
  state: IConnectionState,
  now: number
): number | null {
  if (
    state.status !== 'offline' ||
    state.retryAt === undefined ||
    state.retryAt <= now
  ) {
    return null;
  }
  const left = state.retryAt - now;
  // Wake up when the shown number of seconds changes.
  return left % 1000 || 1000;
}
