"""Writing a notebook's text, already serialised, through jupyter_server's file managers.

`ContentsManager.save` of a notebook model serialises the whole notebook again, validates
it twice and signs it, on the event loop: a third of a second for 10 MB. jupyter_server's
own file managers (`FileContentsManager`, `LargeFileManager` and their async forms) do
nothing else for a notebook than what `save_text` does here, with the text the file
writer assembled from per-cell pieces (notebook_json.py):

- the pieces are written (temporary file, fsync, rename: atomic_save.py) and hashed for
  the notary on a worker thread; the event loop only waits;
- the notebook is signed as trusted exactly when `check_and_sign` would sign it (every
  code cell's outputs trusted), with the same HMAC, stored in the notary's database;
- the first checkpoint is created if there is none, post-save hooks run and the `save`
  event is emitted, as `save` does.

Any other contents manager (a subclass that overrides `save`, another storage) or one
with pre-save hooks (which may rewrite the model) gets the notebook model through its own
`save`, as before: `can_save_text` tells which.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from dataclasses import dataclass
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.filemanager import (
    AsyncFileContentsManager,
    FileContentsManager,
)
from jupyter_server.services.contents.largefilemanager import (
    AsyncLargeFileManager,
    LargeFileManager,
)
from jupyter_server.services.contents.manager import ContentsManager

from .notebook_json import NotebookText

_PLAIN_SAVES = frozenset(
    {
        FileContentsManager.save,
        AsyncFileContentsManager.save,
        LargeFileManager.save,
        AsyncLargeFileManager.save,
    }
)


@dataclass(frozen=True)
class FileStat:
    """Which file the room wrote: a file with the same inode, size and modification time
    (in ns) still holds those bytes. Taken from the open file before the rename, so it
    cannot be someone else's write."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, result: os.stat_result) -> FileStat:
        return cls(result.st_ino, result.st_size, result.st_mtime_ns)


def can_save_text(contents_manager: ContentsManager) -> bool:
    """Whether `save_text` writes the notebook as this contents manager's `save` would."""
    # The bound method: a `save` replaced on the instance is respected too.
    save = getattr(contents_manager, "save", None)
    return (
        getattr(save, "__func__", None) in _PLAIN_SAVES
        and getattr(contents_manager, "pre_save_hook", None) is None
        and not getattr(contents_manager, "_pre_save_hooks", None)
        and callable(getattr(contents_manager, "_get_os_path", None))
    )


def os_path_of(contents_manager: ContentsManager, path: str) -> str | None:
    """The file behind `path` for a manager that `can_save_text`, else None."""
    if not can_save_text(contents_manager):
        return None
    return str(contents_manager._get_os_path(path))  # type: ignore[attr-defined]


async def save_text(
    contents_manager: ContentsManager, path: str, notebook: NotebookText, trusted: bool
) -> FileStat:
    """Write the notebook's text to `path`; what the contents manager's `save` would do."""
    cm: Any = contents_manager
    os_path = cm._get_os_path(path)
    notary = cm.notary
    # Traitlets with dynamic defaults (the secret may be read from its file): on this
    # thread, before the worker uses them.
    key = (notary.secret, notary.digestmod) if trusted else None

    def write() -> tuple[FileStat, str | None]:
        signature = None
        if key is not None:
            digest = hmac.new(key[0], digestmod=key[1])
            for chunk in notebook.signed():
                digest.update(chunk)
            signature = digest.hexdigest()
        with cm.atomic_writing(os_path, text=False) as fileobj:
            for piece in notebook.file:
                fileobj.write(piece)
            fileobj.flush()
            stat = FileStat.of(os.fstat(fileobj.fileno()))
        return stat, signature

    stat, signature = await asyncio.to_thread(write)
    if signature is not None:
        notary.store.store_signature(signature, notary.algorithm)
    else:
        cm.log.warning("Notebook %s is not trusted", path)
    if not await ensure_async(cm.checkpoints.list_checkpoints(path)):
        await ensure_async(cm.create_checkpoint(path))
    model = await ensure_async(cm.get(path, content=False))
    cm.run_post_save_hooks(model=model, os_path=os_path)
    emit = getattr(cm, "emit", None)
    if emit is not None:
        emit(data={"action": "save", "path": path})
    return stat
