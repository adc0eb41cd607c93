/**
 * Who else is in a document, from its awareness: one entry per other window whose state
 * has a `user` (JupyterLab's identity: `name`, `display_name`, `initials`, `color`,
 * `avatar_url`; a stock Yjs client that sets `user` counts too). Pure: runs in node.
 */

/** One collaborator (another window) in a document. */
export interface ICollaborator {
  clientID: number;
  name: string;
  initials: string;
  color: string;
  avatarUrl: string | null;
}

const FALLBACK_COLOR = '#888888';

function initialsOf(name: string): string {
  const words = name.split(/\s+/).filter(Boolean);
  const letters =
    words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map(word => [...word][0]?.toUpperCase() ?? '').join('') || '?';
}

/** The other windows in a document with a `user` state, in client id order. */
export function collaborators(
  states: Map<number, Record<string, any>>,
  localClientID: number
): ICollaborator[] {
  const found: ICollaborator[] = [];
  for (const [clientID, state] of states) {
    const user = state?.user;
    if (clientID === localClientID || !user || typeof user !== 'object') {
      continue;
    }
    const name = String(user.display_name || user.name || 'Anonymous');
    found.push({
      clientID,
      name,
      initials:
        typeof user.initials === 'string' && user.initials
          ? user.initials
          : initialsOf(name),
      color:
        typeof user.color === 'string' && user.color
          ? user.color
          : FALLBACK_COLOR,
      avatarUrl:
        typeof user.avatar_url === 'string' && user.avatar_url
          ? user.avatar_url
          : null
    });
  }
  return found.sort((a, b) => a.clientID - b.clientID);
}
