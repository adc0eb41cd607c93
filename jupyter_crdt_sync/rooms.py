"""The set of open rooms: one per notebook path, loaded once, evicted when idle.

Each room is loaded in its own task, so a failure (a missing file, an unreadable
notebook) reaches only the requests for that path and never the other rooms.

Loading decides once which source is the truth (see docs/design.md): the stored CRDT
history when there is one, with edits made to the file since it was last written merged
in; the file only when there is no history. File content is never laid over history.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from logging import Logger
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.manager import ContentsManager

from .location import moved_path
from .memory import ReleaseAfterEviction
from .notebook_file import FileWriter, check_notebook, is_notebook_path, normalize_path
from .open_notebook import OpenNotebook, RoomSettings
from .peer import CLOSE_NOTEBOOK_DELETED, CLOSE_ROOM_CLOSED, Peer
from .protocol import covers
from .room import Room
from .store import Store
from .text_file import read_text

__all__ = ["RoomManager", "RoomSettings", "SaveError"]

# A file the watcher finds missing may have just been renamed through the contents API:
# the event that moves its room follows a moment later. Look again after this long.
RENAME_GRACE_SECONDS = 1.0


def _not_a_file_path(path: str) -> bool:
    """Store keys that name no file: the settings room's, histories moved aside."""
    return path.startswith("/") or re.search(r"\.corrupt(\.\d+)?$", path) is not None


class SaveError(Exception):
    """A requested write-back did not happen; the message says why."""


class RoomManager:
    def __init__(
        self,
        contents_manager: ContentsManager,
        settings: RoomSettings,
        log: Logger,
        store: Store | None = None,
    ) -> None:
        self._contents_manager = contents_manager
        self._settings = settings
        self._log = log
        self._store = store
        self.store = store
        self._open: dict[str, OpenNotebook] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._eviction_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Rooms whose file the watcher found missing, being looked at again.
        self._missing: set[Room] = set()
        # Counts renames, so a missing file's check knows whether renames were under way.
        self._renames = 0
        # Paths whose rooms this process closed: their kernels may still run.
        self._closed_here: set[str] = set()
        # The memory of closed rooms goes back to the OS after a burst of evictions.
        self.memory = ReleaseAfterEviction()
        self._stopped = False

    @property
    def rooms(self) -> dict[str, Room]:
        return {path: entry.room for path, entry in self._open.items()}

    def writer(self, path: str) -> FileWriter:
        return self._open[path].writer

    def open_notebook(self, path: str) -> OpenNotebook | None:
        """The owner of the open room of `path`, or None."""
        return self._open.get(path)

    def open_notebooks(self) -> list[OpenNotebook]:
        return list(self._open.values())

    async def resolve(self, raw_path: str) -> str:
        """Normalise a requested path and check that it names a notebook or a text file
        (HTTP 404 missing, 400 a directory, a binary or too large file)."""
        path = normalize_path(raw_path)
        if path not in self._open:
            if is_notebook_path(path):
                await check_notebook(self._contents_manager, path)
            else:
                await read_text(self._contents_manager, path, self._settings.max_text_file_bytes)
        return path

    async def get(self, path: str) -> Room:
        """The open room for `path`, loading it if needed; concurrent callers share one load."""
        while True:
            if self._stopped:
                raise RuntimeError("the room manager is stopped")
            entry = self._open.get(path)
            if entry is not None:
                room = entry.room
            else:
                loading = self._loading.get(path)
                if loading is None:
                    loading = asyncio.ensure_future(self._load(path))
                    self._loading[path] = loading
                    loading.add_done_callback(lambda _: self._loading.pop(path, None))
                room = await asyncio.shield(loading)
            if room.closing:
                await room.closed.wait()
                continue
            return room

    async def join(self, path: str, peer: Peer) -> Room:
        room = await self.get(path)
        self._cancel_eviction(path)
        room.add_peer(peer)
        return room

    def leave(self, room: Room, peer: Peer) -> None:
        room.remove_peer(peer)
        self._maybe_schedule_eviction(room)

    @asynccontextmanager
    async def hold(self, path: str) -> AsyncIterator[Room]:
        """Keep the room of `path` open, with or without peers, for the duration: for
        server-side work such as executing cells for a script that has disconnected."""
        room = await self.get(path)
        self._cancel_eviction(path)
        room.holds += 1
        try:
            yield room
        finally:
            room.holds -= 1
            self._maybe_schedule_eviction(room)

    async def save_now(
        self, path: str, state_vector: bytes | None = None, wait: float = 5.0
    ) -> None:
        """Write the room of `path` back to its file now, if a room is open.

        With a client's `state_vector`, first wait up to `wait` seconds until the room has
        everything that client had sent when it asked, so the file holds its last edits.
        Raises `SaveError` if the room does not catch up or the write fails.
        """
        entry = self._open.get(path)
        if entry is None:
            return
        if state_vector is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while not covers(entry.room.doc.get_state(), state_vector):
                if loop.time() > deadline or entry.room.closing:
                    raise SaveError("the room has not received all of this window's edits yet")
                await asyncio.sleep(0.02)
        if not await entry.writer.save():
            raise SaveError(entry.writer.last_error or "the notebook could not be written")

    # -- loading -------------------------------------------------------------------------

    async def _load(self, path: str) -> Room:
        owner = await OpenNotebook.open(
            path,
            settings=self._settings,
            contents_manager=self._contents_manager,
            log=self._log,
            store=self._store,
            kernels_may_live=path in self._closed_here,
            on_file_missing=self._file_missing,
        )
        self._open[path] = owner
        # A room nobody joins (the upgrade failed) must not stay open forever.
        self._schedule_eviction(owner.room)
        return owner.room

    # -- files deleted or renamed ----------------------------------------------------------

    def _file_missing(self, owner: OpenNotebook) -> None:
        """The watcher found no file at the room's path: deleted, or renamed just now."""
        room = owner.room
        if room in self._missing:
            return
        self._missing.add(room)
        self._spawn(self._confirm_missing(room))

    async def _confirm_missing(self, room: Room) -> None:
        try:
            while True:
                renames = self._renames
                await asyncio.sleep(RENAME_GRACE_SECONDS)
                if room.closing or self._open.get(room.path) is None:
                    return
                if await ensure_async(self._contents_manager.file_exists(room.path)):
                    return  # renamed (the room follows its new path), or back again
                if self._renames == renames:
                    break
                # Renames went on meanwhile (a busy server can take longer than the grace
                # between a file's move on disk and the event that moves its room).
            await self._file_deleted(room)
        finally:
            self._missing.discard(room)

    async def _file_deleted(self, room: Room) -> None:
        if room.closing or self._open.get(room.path, None) is None:
            return
        self._log.warning("[room] %r was deleted; closing its room", room.path)
        room.announce_move("deleted")
        await self._close_room(room, "the notebook was deleted", code=CLOSE_NOTEBOOK_DELETED)
        if self._store is not None:
            await self._store.delete(room.path)

    def file_changed(self, path: str) -> None:
        """The contents manager reports a save of `path` (by anyone): check it soon."""
        entry = self._open.get(path)
        if entry is not None and not entry.room.closing and not self._stopped:
            self._spawn(entry.watcher.check())

    async def file_deleted(self, path: str) -> None:
        for open_path, entry in list(self._open.items()):
            if open_path == path or open_path.startswith(path.rstrip("/") + "/"):
                await self._file_deleted(entry.room)

    async def file_renamed(self, old_path: str, new_path: str) -> None:
        """Move the rooms of a renamed notebook (or of the notebooks in a renamed folder)
        to their new paths, peers and all."""
        self._renames += 1
        for path in list(self._open):
            target = moved_path(path, old_path, new_path)
            if target is None:
                continue
            entry = self._open.pop(path)
            self._cancel_eviction(path)
            entry.rename(target)
            self._open[target] = entry
            if self._store is not None:
                await self._store.rename(path, target)
            self._log.info("[room] %r renamed to %r; its peers follow", path, target)
            entry.room.announce_move("renamed")
            if is_notebook_path(path) != is_notebook_path(target):
                # A notebook renamed to a text file, or back: its windows must open it anew
                # as what it is now; the next room of the path starts from the file.
                await self._close_room(entry.room, "the file changed kind with its name")
                if self._store is not None:
                    await self._store.delete(target)
                continue
            self._maybe_schedule_eviction(entry.room)
        if self._store is not None:
            # The histories of notebooks no room has open follow the rename too.
            await self._store.rename_history(old_path, new_path)

    async def forget_missing(self) -> list[str]:
        """Drop the stored histories of notebooks that are gone from disk (deleted or
        renamed outside Jupyter while no room had them open). Histories moved aside as
        corrupt are kept for inspection. Returns the paths forgotten."""
        if self._store is None:
            return []
        forgotten = []
        for path in await self._store.paths():
            if _not_a_file_path(path) or path in self._open or path in self._loading:
                continue
            if await ensure_async(self._contents_manager.file_exists(path)):
                continue
            # The file may have come back, or a room opened, while we looked.
            if path in self._open or path in self._loading:
                continue
            await self._store.delete(path)
            forgotten.append(path)
            self._log.info("[persist] forgot the stored history of %r: the notebook is gone", path)
        return forgotten

    # -- eviction ------------------------------------------------------------------------

    def _maybe_schedule_eviction(self, room: Room) -> None:
        if not room.peers and not room.holds and not room.closing:
            self._schedule_eviction(room)

    def _schedule_eviction(self, room: Room) -> None:
        self._cancel_eviction(room.path)
        loop = asyncio.get_running_loop()
        self._eviction_timers[room.path] = loop.call_later(
            self._settings.eviction_delay, self._start_eviction, room
        )

    def _cancel_eviction(self, path: str) -> None:
        timer = self._eviction_timers.pop(path, None)
        if timer is not None:
            timer.cancel()

    def _start_eviction(self, room: Room) -> None:
        self._eviction_timers.pop(room.path, None)
        if room.peers or room.holds or room.closing:
            return
        self._spawn(self._close_room(room, "room evicted"))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("[room] background work failed", exc_info=task.exception())

    async def _close_room(self, room: Room, reason: str, code: int = CLOSE_ROOM_CLOSED) -> None:
        owner = self._open[room.path]
        try:
            await owner.close(reason, code)
        finally:
            if self._open.get(owner.path) is owner:
                del self._open[owner.path]
            self._closed_here.add(owner.path)
            if not self._stopped:
                self.memory.room_closed()

    async def stop(self) -> None:
        """Write every room back and close it: the server is shutting down."""
        self._stopped = True
        self.memory.cancel()
        for timer in self._eviction_timers.values():
            timer.cancel()
        self._eviction_timers.clear()
        closing = [
            self._close_room(entry.room, "server shutting down")
            for entry in list(self._open.values())
            if not entry.room.closing
        ]
        await asyncio.gather(*closing, *self._tasks, return_exceptions=True)

    # -- status --------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        store_error = self._store.error if self._store is not None else None
        return [owner.status(store_error) for _, owner in sorted(self._open.items())]
