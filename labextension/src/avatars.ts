/**
 * The avatars of a document's collaborators, for the notebook toolbar: initials in the
 * user's colour, or their `avatar_url`, with the name as tooltip. Kept current from the
 * document's awareness (`collaborators.ts`).
 */
import { Widget } from '@lumino/widgets';

import { collaborators } from './collaborators';
import type { IAwarenessLike } from './remotecursors';

export class CollaboratorAvatars extends Widget {
  constructor(private readonly _awareness: IAwarenessLike) {
    super();
    this.addClass('jp-crdtsync-avatars');
    _awareness.on('change', this._render);
    this._render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._awareness.off('change', this._render);
    super.dispose();
  }

  private _render = (): void => {
    const people = collaborators(
      this._awareness.getStates(),
      this._awareness.clientID
    );
    const node = this.node;
    node.replaceChildren(
      ...people.map(person => {
        const avatar = document.createElement('span');
        avatar.className = 'jp-crdtsync-avatar';
        avatar.title = person.name;
        avatar.dataset.client = String(person.clientID);
        avatar.style.backgroundColor = person.color;
        if (person.avatarUrl) {
          const image = document.createElement('img');
          image.src = person.avatarUrl;
          image.alt = person.initials;
          avatar.appendChild(image);
        } else {
          avatar.textContent = person.initials;
        }
        return avatar;
      })
    );
  };
}
