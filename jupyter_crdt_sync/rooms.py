"""The set of open rooms: one per notebook path, loaded once, evicted when idle.

Each room is loaded in its own task, so a failure (a missing file, an unreadable
notebook) reaches only the requests for that path and never the other rooms.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from logging import Logger
from typing import Any

from jupyter_server.services.contents.manager import ContentsManager

from .notebook_file import FileWriter, check_notebook, normalize_path, read_notebook
from .peer import CLOSE_ROOM_CLOSED, Peer
from .room import Room


@dataclass(frozen=True)
class RoomSettings:
    save_delay: float
    save_max_delay: float
    eviction_delay: float
    closed_room_cache_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class ClosedRoom:
    """What a closed room leaves behind so that its next room continues its history."""

    state: bytes
    lineage: int
    file_content: dict[str, Any]


class RoomManager:
    def __init__(
        self, contents_manager: ContentsManager, settings: RoomSettings, log: Logger
    ) -> None:
        self._contents_manager = contents_manager
        self._settings = settings
        self._log = log
        self._rooms: dict[str, Room] = {}
        self._writers: dict[str, FileWriter] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._eviction_timers: dict[str, asyncio.TimerHandle] = {}
        self._evictions: set[asyncio.Task[None]] = set()
        self._closed_rooms: OrderedDict[str, ClosedRoom] = OrderedDict()
        self._closed_rooms_bytes = 0
        self._stopped = False

    @property
    def rooms(self) -> dict[str, Room]:
        return dict(self._rooms)

    def writer(self, path: str) -> FileWriter:
        return self._writers[path]

    async def resolve(self, raw_path: str) -> str:
        """Normalise a requested path and check that it names a notebook (HTTP 404/400)."""
        path = normalize_path(raw_path)
        if path not in self._rooms:
            await check_notebook(self._contents_manager, path)
        return path

    async def get(self, path: str) -> Room:
        """The open room for `path`, loading it if needed; concurrent callers share one load."""
        while True:
            if self._stopped:
                raise RuntimeError("the room manager is stopped")
            room = self._rooms.get(path)
            if room is None:
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

    def _maybe_schedule_eviction(self, room: Room) -> None:
        if not room.peers and not room.holds and not room.closing:
            self._schedule_eviction(room)

    async def _load(self, path: str) -> Room:
        content = await read_notebook(self._contents_manager, path)
        room = Room(path, log=self._log)
        closed = self._forget_closed_room(path)
        if closed is not None and closed.file_content == content:
            # The file is as the last room left it: continue that room's history, so that
            # windows still holding a copy of it merge instead of duplicating cells.
            room.restore(closed.state, closed.lineage)
        else:
            room.load(content)
        writer = FileWriter(
            path,
            room.notebook,
            self._contents_manager,
            delay=self._settings.save_delay,
            max_delay=self._settings.save_max_delay,
            log=self._log,
            loaded_content=content,
        )
        room.on_change(writer.mark_changed)
        writer.start()
        self._rooms[path] = room
        self._writers[path] = writer
        self._log.info("[room] opened %r (%d cells)", path, len(room.notebook.ycells))
        # A room nobody joins (the upgrade failed) must not stay open forever.
        self._schedule_eviction(room)
        return room

    # -- eviction ------------------------------------------------------------------------

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
        task = asyncio.ensure_future(self._close_room(room, "room evicted"))
        self._evictions.add(task)
        task.add_done_callback(self._evictions.discard)

    async def _close_room(self, room: Room, reason: str) -> None:
        room.closing = True
        writer = self._writers[room.path]
        try:
            await writer.close()
        except Exception:
            self._log.exception("[persist] final write of %r failed", room.path)
        finally:
            if writer.dirty:
                self._log.error(
                    "[persist] %r closed with changes that could not be written: %s",
                    room.path,
                    writer.last_error,
                )
            if not writer.dirty and room.lineage is not None:
                self._remember_closed_room(
                    room.path,
                    ClosedRoom(room.doc.get_update(), room.lineage, writer.written_content),
                )
            self._rooms.pop(room.path, None)
            self._writers.pop(room.path, None)
            room.close(CLOSE_ROOM_CLOSED, reason)
            self._log.info("[room] closed %r (%s)", room.path, reason)

    def _remember_closed_room(self, path: str, closed: ClosedRoom) -> None:
        self._forget_closed_room(path)
        if len(closed.state) > self._settings.closed_room_cache_bytes:
            return
        self._closed_rooms[path] = closed
        self._closed_rooms_bytes += len(closed.state)
        while self._closed_rooms_bytes > self._settings.closed_room_cache_bytes:
            _, oldest = self._closed_rooms.popitem(last=False)
            self._closed_rooms_bytes -= len(oldest.state)

    def _forget_closed_room(self, path: str) -> ClosedRoom | None:
        closed = self._closed_rooms.pop(path, None)
        if closed is not None:
            self._closed_rooms_bytes -= len(closed.state)
        return closed

    async def stop(self) -> None:
        """Write every room back and close it: the server is shutting down."""
        self._stopped = True
        for timer in self._eviction_timers.values():
            timer.cancel()
        self._eviction_timers.clear()
        closing = [
            self._close_room(room, "server shutting down")
            for room in list(self._rooms.values())
            if not room.closing
        ]
        await asyncio.gather(*closing, *self._evictions, return_exceptions=True)

    # -- status --------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        rooms = []
        for path, room in sorted(self._rooms.items()):
            writer = self._writers[path]
            rooms.append(
                {
                    "path": path,
                    "peers": len(room.peers),
                    "cells": len(room.notebook.ycells),
                    "doc_bytes": len(room.doc.get_update()),
                    "dirty": writer.dirty,
                    "last_saved": writer.last_saved.isoformat() if writer.last_saved else None,
                    "save_error": writer.last_error,
                    "kernel": None,
                    "widgets": len(room.widgets),
                }
            )
        return rooms
