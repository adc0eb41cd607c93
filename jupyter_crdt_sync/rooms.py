"""The set of open rooms: one per notebook path, loaded once, evicted when idle.

Each room is loaded in its own task, so a failure (a missing file, an unreadable
notebook) reaches only the requests for that path and never the other rooms.

Loading decides once which source is the truth (see docs/design.md): the stored CRDT
history when there is one, with edits made to the file since it was last written merged
in; the file only when there is no history. File content is never laid over history.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from logging import Logger
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.manager import ContentsManager

from .execution import reset_execution_states
from .file_watcher import FileWatcher
from .merge import merge_into_notebook
from .notebook_file import (
    FileWriter,
    check_notebook,
    document_cell_ids,
    file_view,
    normalize_path,
    read_notebook,
)
from .peer import CLOSE_NOTEBOOK_DELETED, CLOSE_ROOM_CLOSED, Peer
from .protocol import covers
from .room import Room
from .store import RoomJournal, Store, fingerprint
from .widgets import add_saved_state

KernelStatus = Callable[[str], "dict[str, Any] | None"]

# A file the watcher finds missing may have just been renamed through the contents API:
# the event that moves its room follows a moment later. Look again after this long.
RENAME_GRACE_SECONDS = 1.0


class SaveError(Exception):
    """A requested write-back did not happen; the message says why."""


@dataclass(frozen=True)
class RoomSettings:
    save_delay: float
    save_max_delay: float
    eviction_delay: float
    file_check_interval: float = 2.0
    widget_state_in_file: str = "displayed"


@dataclass
class _OpenRoom:
    room: Room
    writer: FileWriter
    watcher: FileWatcher
    journal: RoomJournal | None


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
        self._open: dict[str, _OpenRoom] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._eviction_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Rooms whose file the watcher found missing, being looked at again.
        self._missing: set[Room] = set()
        # Paths whose rooms this process closed: their kernels may still run.
        self._closed_here: set[str] = set()
        self._stopped = False
        # Set by the kernel actor: a room's kernel for the status, or None.
        self.kernel_status: KernelStatus | None = None

    @property
    def rooms(self) -> dict[str, Room]:
        return {path: entry.room for path, entry in self._open.items()}

    def writer(self, path: str) -> FileWriter:
        return self._open[path].writer

    async def resolve(self, raw_path: str) -> str:
        """Normalise a requested path and check that it names a notebook (HTTP 404/400)."""
        path = normalize_path(raw_path)
        if path not in self._open:
            await check_notebook(self._contents_manager, path)
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
        content = await read_notebook(self._contents_manager, path)
        room, merged = await self._room_from_store(path, content)
        restored = room is not None
        if room is None:
            room = Room(path, log=self._log)
            room.load(content)
            if self._store is not None:
                cell_ids = document_cell_ids(room.notebook, content)
                await self._store.create(
                    path, room.doc.client_id, room.doc.get_update(), file_view(content), cell_ids
                )
        writer = FileWriter(
            path,
            room.notebook,
            self._contents_manager,
            delay=self._settings.save_delay,
            max_delay=self._settings.save_max_delay,
            log=self._log,
            loaded_content=content,
            before_write=self._store.record_file if self._store is not None else None,
            complete=partial(
                add_saved_state, widgets=room.widgets, policy=self._settings.widget_state_in_file
            ),
        )
        journal = None
        if self._store is not None:
            journal = self._store.journal(path, room.doc.get_update)
            room.attach_journal(journal)
            if merged:
                # What the merge changed is in no stored update yet.
                journal.compact()
        if restored and path not in self._closed_here:
            # History from an earlier server process: its kernels, their executions and
            # their widgets died with it.
            if reset_execution_states(room.notebook):
                self._log.info("[room] %r: executions cut short by a restart marked idle", path)
            room.widgets.clear()
        room.on_change(writer.mark_changed)
        watcher = FileWatcher(
            room,
            writer,
            self._contents_manager,
            interval=self._settings.file_check_interval,
            log=self._log,
            on_deleted=lambda: self._file_missing(room),
        )
        await watcher.start()
        writer.check_outside_edits = watcher.check
        writer.start()
        if restored:
            # The stored history may be ahead of the file (a crash before the last write).
            writer.mark_changed()
        self._open[path] = _OpenRoom(room, writer, watcher, journal)
        self._log.info("[room] opened %r (%d cells)", path, len(room.notebook.ycells))
        # A room nobody joins (the upgrade failed) must not stay open forever.
        self._schedule_eviction(room)
        return room

    async def _room_from_store(
        self, path: str, content: dict[str, Any]
    ) -> tuple[Room | None, bool]:
        """The room restored from its stored history, and whether the file's outside edits
        were merged into it; (None, False) without a usable history."""
        if self._store is None:
            return None, False
        stored = await self._store.load(path)
        if stored is None:
            return None, False
        room = Room(path, log=self._log)
        try:
            room.restore(stored.updates, stored.lineage)
        except ValueError as exc:
            moved = await self._store.move_aside(path)
            self._log.warning(
                "[persist] the stored history of %r cannot be applied (%s); kept it as %r and "
                "rebuilt the room from the file",
                path,
                exc,
                moved,
            )
            return None, False
        on_disk = file_view(content)
        if fingerprint(on_disk) in stored.file_fingerprints:
            return room, False
        report = merge_into_notebook(
            room.notebook, stored.file_content, stored.file_cell_ids, on_disk
        )
        self._log.info(
            "[persist] %r changed on disk since the room last wrote it: merged "
            "(%d cells changed, %d added, %d deleted)",
            path,
            len(report.changed),
            len(report.added),
            len(report.deleted),
        )
        return room, True

    # -- files deleted or renamed ----------------------------------------------------------

    def _file_missing(self, room: Room) -> None:
        """The watcher found no file at the room's path: deleted, or renamed just now."""
        if room in self._missing:
            return
        self._missing.add(room)
        self._spawn(self._confirm_missing(room))

    async def _confirm_missing(self, room: Room) -> None:
        try:
            await asyncio.sleep(RENAME_GRACE_SECONDS)
            if room.closing or self._open.get(room.path) is None:
                return
            if await ensure_async(self._contents_manager.file_exists(room.path)):
                return  # renamed (the room follows its new path), or back again
            await self._file_deleted(room)
        finally:
            self._missing.discard(room)

    async def _file_deleted(self, room: Room) -> None:
        if room.closing or self._open.get(room.path, None) is None:
            return
        self._log.warning("[room] %r was deleted; closing its room", room.path)
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
        old_prefix = old_path.rstrip("/") + "/"
        for path in list(self._open):
            if path == old_path:
                target = new_path
            elif path.startswith(old_prefix):
                target = posixpath.join(new_path, path[len(old_prefix) :])
            else:
                continue
            entry = self._open.pop(path)
            self._cancel_eviction(path)
            entry.room.path = target
            entry.writer.path = target
            self._open[target] = entry
            if self._store is not None:
                await self._store.rename(path, target)
            self._log.info("[room] %r renamed to %r; its peers follow", path, target)
            self._maybe_schedule_eviction(entry.room)

    async def forget_missing(self) -> list[str]:
        """Drop the stored histories of notebooks that are gone from disk (deleted or
        renamed outside Jupyter while no room had them open). Histories moved aside as
        corrupt are kept for inspection. Returns the paths forgotten."""
        if self._store is None:
            return []
        forgotten = []
        for path in await self._store.paths():
            if not path.endswith(".ipynb") or path in self._open or path in self._loading:
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
        room.closing = True
        entry = self._open[room.path]
        await entry.watcher.stop()
        try:
            if code == CLOSE_NOTEBOOK_DELETED:
                # A change waiting for its write must not bring the file back.
                await entry.writer.stop()
            else:
                await entry.writer.close()
        except Exception:
            self._log.exception("[persist] final write of %r failed", room.path)
        finally:
            if entry.writer.dirty and code != CLOSE_NOTEBOOK_DELETED:
                self._log.error(
                    "[persist] %r closed with changes that could not be written to the file: %s",
                    room.path,
                    entry.writer.last_error,
                )
            if entry.journal is not None:
                entry.journal.close()
            # The writer and the watcher refer to each other (and the watcher to the room).
            entry.writer.check_outside_edits = None
            self._open.pop(room.path, None)
            self._closed_here.add(room.path)
            room.close(code, reason)
            self._log.info("[room] closed %r (%s)", room.path, reason)

    async def stop(self) -> None:
        """Write every room back and close it: the server is shutting down."""
        self._stopped = True
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
        rooms = []
        for path, entry in sorted(self._open.items()):
            room, writer, journal = entry.room, entry.writer, entry.journal
            errors = [e for e in (writer.last_error, self._store and self._store.error) if e]
            rooms.append(
                {
                    "path": path,
                    "peers": len(room.peers),
                    "cells": len(room.notebook.ycells),
                    "doc_bytes": len(room.doc.get_update()),
                    "dirty": writer.dirty,
                    "last_saved": writer.last_saved.isoformat() if writer.last_saved else None,
                    "save_error": "; ".join(errors) or None,
                    "kernel": self.kernel_status(path) if self.kernel_status else None,
                    "widgets": len(room.widgets),
                    "store": None
                    if journal is None
                    else {
                        "bytes": journal.stored_bytes,
                        "updates_since_compaction": journal.updates_since_compaction,
                        "pending_updates": journal.appended - journal.durable,
                        "error": self._store.error if self._store else None,
                    },
                }
            )
        return rooms
