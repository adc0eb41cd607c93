"""The room's save state, in its document for every window: `state.dirty` and
`state.save_error`.

JupyterLab's document models keep their "modified" flag in the shared document's `state`
map (`dirty`, @jupyter/ydoc 3 and 4): a window sets it when the content changes, and clears
it after its own save. The room writes its file itself, so the server is the one that knows:
after every write attempt, and after every change, it makes `state.dirty` what the file
writer says (true while the document holds edits the file does not), and `state.save_error`
the writer's last error (null when the file holds the document). Every window shows the
same, and the flag clears by itself when the server writes.

Writes only when a value differs, in one transaction (`Room.set_state`: nobody's edit); the
owner ignores the document changes this makes (`Room.writing_state`), so that they do not
mark the writer dirty again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pycrdt import Map


class SaveState:
    def __init__(
        self,
        state: Map,
        write: Callable[[dict[str, Any]], None],
        dirty: Callable[[], bool],
        error: Callable[[], str | None],
    ) -> None:
        self._state = state
        self._write = write
        self._dirty = dirty
        self._error = error
        self._scheduled: asyncio.Handle | None = None
        self._closed = False

    def schedule(self) -> None:
        """The document changed (called from its observer, which cannot write): publish
        at the next turn of the event loop."""
        if self._scheduled is None and not self._closed:
            self._scheduled = asyncio.get_running_loop().call_soon(self.publish)

    def publish(self) -> None:
        self._scheduled = None
        if self._closed:
            return
        dirty, error = self._dirty(), self._error()
        state = self._state
        if state.get("dirty") == dirty and state.get("save_error") == error:
            return
        changes: dict[str, Any] = {}
        if state.get("dirty") != dirty:
            changes["dirty"] = dirty
        if state.get("save_error") != error:
            changes["save_error"] = error
        self._write(changes)

    def close(self) -> None:
        self._closed = True
        # They reach back into the owner: let it be freed by reference counting.
        self._dirty = self._error = _nothing
        self._write = _nothing
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None


def _nothing(*_: Any) -> Any:
    return None
