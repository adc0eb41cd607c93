/**
 * jupyter-collaboration installed as well: what to tell the user. Pure; unit-tested.
 */

/** jupyter-collaboration's plugin that binds notebooks to its own rooms. */
export const JUPYTER_COLLABORATION_PLUGIN =
  '@jupyter/docprovider-extension:ynotebook';

export interface ICoexistence {
  /** jupyter-collaboration's front-end plugin is registered. */
  frontEnd: boolean;
  /** Its server extension is enabled (it sets the page option `disableRTC`). */
  serverExtension: boolean;
  /** Our content provider is the one the notebook factory uses. */
  oursBindsNotebooks: boolean;
}

export interface ICoexistenceNotice {
  /** For the notification (JupyterLab shows at most 140 characters). */
  summary: string;
  /** What to do, shown on request. */
  details: string;
}

/** The notice when jupyter-collaboration is present; null when it is not. */
export function coexistenceNotice(
  state: ICoexistence
): ICoexistenceNotice | null {
  if (!state.frontEnd && !state.serverExtension) {
    return null;
  }
  const binder = state.oursBindsNotebooks
    ? 'jupyter-crdt-sync'
    : 'jupyter-collaboration';
  const other = state.oursBindsNotebooks
    ? 'jupyter-collaboration'
    : 'jupyter-crdt-sync';
  return {
    summary: `jupyter-collaboration is installed too. Notebooks open with ${binder}, not ${other}.`,
    details:
      'jupyter-collaboration and jupyter-crdt-sync both share notebooks between windows, ' +
      `each with rooms of its own. In this JupyterLab, notebooks open with ${binder}; ` +
      `${other} is not used for them, and windows bound to different ones do not see each ` +
      'other. To keep one: `pip uninstall jupyter-collaboration jupyter-collaboration-ui ' +
      'jupyter-docprovider jupyter-server-ydoc` (jupyter-collaboration itself is only a ' +
      'metapackage of the other three), or disable one of them with ' +
      '`jupyter labextension disable` and `jupyter server extension disable` ' +
      '(jupyter-crdt-sync: `jupyter-crdt-sync` and `jupyter_crdt_sync`; ' +
      'jupyter-collaboration: `@jupyter/docprovider-extension @jupyter/collaboration-extension` ' +
      'and `jupyter_server_ydoc`).'
  };
}
