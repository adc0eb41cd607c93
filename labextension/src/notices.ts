/**
 * What the user is told when a notebook's room ends for good (the notebook was deleted,
 * or this window's copy is stale), and when jupyter-collaboration is installed too.
 */

import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { coexistenceNotice, ICoexistence } from './coexistence';
import { IStatusChange, RoomProvider } from './provider';
import { IRoomBinding, IRoomBindings } from './tokens';

/** Marks the tab of a notebook that no longer follows its room. */
const ENDED_CLASS = 'jp-crdtsync-mod-ended';

/** React to the terminal statuses of every binding, now and to come. */
export function announceRoomEnds(
  rooms: IRoomBindings,
  tracker: INotebookTracker
): void {
  const watch = (binding: IRoomBinding) => {
    const onStatus = (_: RoomProvider, change: IStatusChange) => {
      if (change.status === 'deleted') {
        binding.provider.statusChanged.disconnect(onStatus);
        onDeleted(binding, tracker);
      } else if (change.status === 'stale') {
        binding.provider.statusChanged.disconnect(onStatus);
        void onStale(binding, tracker);
      } else if (change.status === 'disposed') {
        binding.provider.statusChanged.disconnect(onStatus);
      }
    };
    binding.provider.statusChanged.connect(onStatus);
  };
  rooms.bindings().forEach(watch);
  rooms.changed.connect((_, change) => {
    if (change.type === 'added') {
      watch(change.binding);
    }
  });
}

function panelsOf(
  binding: IRoomBinding,
  tracker: INotebookTracker
): NotebookPanel[] {
  return tracker.filter(
    panel => panel.context.model.sharedModel === binding.sharedModel
  );
}

/** Edits made here would go nowhere: stop them, and say so on the tab. */
function markEnded(panels: NotebookPanel[]): void {
  for (const panel of panels) {
    panel.context.model.readOnly = true;
    panel.content.widgets.forEach(cell => (cell.readOnly = true));
    panel.title.className = `${panel.title.className} ${ENDED_CLASS}`.trim();
  }
}

function onDeleted(binding: IRoomBinding, tracker: INotebookTracker): void {
  const panels = panelsOf(binding, tracker);
  markEnded(panels);
  const name = PathExt.basename(binding.path);
  Notification.warning(
    `${name} was deleted on the server; this window no longer follows it.`,
    {
      autoClose: false,
      actions: [
        {
          label: 'Close it',
          caption: `Close ${name} (it cannot be saved any more)`,
          callback: () => {
            for (const panel of panelsOf(binding, tracker)) {
              panel.context.model.dirty = false;
              panel.close();
            }
          }
        }
      ]
    }
  );
}

let reloadDialogOpen = false;

async function onStale(
  binding: IRoomBinding,
  tracker: INotebookTracker
): Promise<void> {
  markEnded(panelsOf(binding, tracker));
  if (reloadDialogOpen) {
    return; // one dialog for every notebook that became stale at once
  }
  reloadDialogOpen = true;
  try {
    const name = PathExt.basename(binding.path);
    const result = await showDialog({
      title: 'Reload to keep working on this notebook',
      body:
        `This window's copy of ${name} comes from an earlier history of the notebook ` +
        'that the server no longer has, so the two cannot be merged. Reload the page ' +
        'to get the current notebook. Changes made in this window since it lost the ' +
        'connection are not kept.',
      buttons: [
        Dialog.cancelButton({ label: 'Not now' }),
        Dialog.okButton({ label: 'Reload' })
      ]
    });
    if (result.button.accept) {
      window.location.reload();
    }
  } finally {
    reloadDialogOpen = false;
  }
}

/** Show the coexistence notice once, if jupyter-collaboration is present. */
export function warnIfJupyterCollaboration(state: ICoexistence): void {
  const notice = coexistenceNotice(state);
  if (notice === null) {
    return;
  }
  console.warn(`jupyter-crdt-sync: ${notice.summary} ${notice.details}`);
  Notification.warning(notice.summary, {
    autoClose: false,
    actions: [
      {
        label: 'How to keep one',
        callback: () =>
          void showDialog({
            title: 'jupyter-collaboration is installed too',
            body: notice.details,
            buttons: [Dialog.okButton()]
          })
      }
    ]
  });
}
