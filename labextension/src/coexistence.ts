/**
 * jupyter-collaboration installed as well: what to tell the user. Pure; unit-tested.
 */

/** jupyter-collaboration's plugin that binds notebooks to its own rooms. */
export const JUPYTER_COLLABORATION_PLUGIN = '@jupyter/docprovider-extension:ynotebook';

export interface ICoexistence {
  /** jupyter-collaboration's front-end plugin is registered. */
  frontEnd: boolean;
  /** Its server extension is enabled (it sets the page option `disableRTC`). */
  serverExtension: boolean;
  /** Our content provider is the one the notebook factory uses. */
  oursBindsNotebooks: boolean;
}

/** The notice text when jupyter-collaboration is present; null when it is not. */
export function coexistenceMessage(state: ICoexistence): string | null {
  if (!state.frontEnd && !state.serverExtension) {
    return null;
  }
  const who = state.oursBindsNotebooks
    ? 'Notebooks open with jupyter-crdt-sync; jupyter-collaboration is not used for them.'
    : 'Notebooks open with jupyter-collaboration; jupyter-crdt-sync is not used for them.';
  return (
    `jupyter-collaboration is installed as well as jupyter-crdt-sync. ${who} ` +
    'Windows bound to different ones do not see each other. To keep one: ' +
    '`pip uninstall jupyter-collaboration`, or disable one of them with ' +
    '`jupyter labextension disable` and `jupyter server extension disable`.'
  );
}
