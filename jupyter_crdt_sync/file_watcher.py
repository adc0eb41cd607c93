"""Noticing edits made to a room's notebook file by anyone else, and merging them in.

A text editor, `git checkout`, `nbconvert --inplace` or a save through the contents API:
the watcher polls the file's modification time (through the contents manager, so it works
for any storage), lets a burst of writes settle, reads the file, and merges what changed
since the room last wrote it into the document (merge.py). The room's own writes are
recognised without reading them where the file writer knows which file it wrote
(its inode, size and modification time: notebook_save.FileStat), else by their content
(the `WrittenFile` record it shares with the file writer), and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from logging import Logger
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.manager import ContentsManager
from jupyter_ydoc import YNotebook, YUnicode
from tornado.web import HTTPError

from .location import Location
from .merge import merge_into_notebook
from .notebook_file import WrittenFile, file_view, read_notebook
from .notebook_save import FileStat, os_path_of

SETTLE_SECONDS = 0.1


class FileWatcher:
    """Watches a notebook file; `text_file.TextWatcher` differs only in how the file is
    read and merged (`_read`, `_merge`)."""

    kind = "notebook"

    def __init__(
        self,
        location: Location,
        notebook: YNotebook | YUnicode,
        contents_manager: ContentsManager,
        written: WrittenFile,
        *,
        interval: float,
        log: Logger,
        on_deleted: Callable[[], None],
        on_merged: Callable[[], None],
    ) -> None:
        self._location = location
        self._notebook = notebook
        self._written = written
        self._contents_manager = contents_manager
        self._interval = interval
        self._log = log
        self._on_deleted = on_deleted
        # The file now differs from the room (even where the merge left the document as
        # it was, e.g. a deleted cell the room kept): it must be written again.
        self._on_merged = on_merged
        self._seen_modified: Any = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("FileWatcher already started")
        self._seen_modified = await self._modified()
        if self._interval > 0:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                self._log.exception("[persist] checking %r for outside edits failed", self._path)

    @property
    def _path(self) -> str:
        return self._location.path

    async def _modified(self) -> Any:
        model = await ensure_async(self._contents_manager.get(self._path, content=False))
        return model.get("last_modified")

    async def check(self) -> bool:
        """Look at the file now; merge it in if someone else changed it. False if the file
        is gone."""
        async with self._lock:
            try:
                modified = await self._modified()
            except HTTPError as exc:
                if exc.status_code == 404:
                    self._on_deleted()
                    return False
                raise
            if modified == self._seen_modified:
                return True
            # Let a burst of writes (an editor saving in steps) settle first.
            while True:
                await asyncio.sleep(SETTLE_SECONDS)
                settled = await self._modified()
                if settled == modified:
                    break
                modified = settled
            if self._is_own_file():
                self._seen_modified = modified
                return True
            try:
                theirs = await self._read()
            except HTTPError as exc:
                if exc.status_code == 404:
                    self._on_deleted()
                    return False
                # Not a valid notebook at the moment: keep the room, look again later.
                self._log.warning(
                    "[persist] %r was changed outside the room but cannot be read as a "
                    "%s (%s); keeping the room as it is",
                    self._path,
                    self.kind,
                    exc.log_message,
                )
                self._seen_modified = modified
                return True
            self._seen_modified = modified
            # The room's own writes are known by their content: the modification time the
            # contents manager reports after a save may already be someone else's.
            if not self._written.is_own_write(theirs):
                self._merge(theirs)
            return True

    def _is_own_file(self) -> bool:
        """Whether the file is the one the room wrote last, by its inode, size and
        modification time: no need to read and parse it (a 10 MB notebook: 0.3 s)."""
        if self._written.stat is None:
            return False
        os_path = os_path_of(self._contents_manager, self._path)
        if os_path is None:
            return False
        try:
            return self._written.is_own_file(FileStat.of(os.stat(os_path)))
        except OSError:
            return False

    async def _read(self) -> dict[str, Any]:
        """The file as it is now; HTTPError 404 if gone, 400 if unreadable."""
        return await read_notebook(self._contents_manager, self._path)

    def _merge(self, theirs: dict[str, Any]) -> None:
        theirs = file_view(theirs)
        report = merge_into_notebook(
            self._notebook, self._written.content, self._written.cell_ids, theirs
        )
        self._written.record(theirs, report.theirs_cell_ids)
        self._on_merged()
        self._log.info(
            "[persist] merged outside edits to %r: %d cells changed, %d added, %d deleted%s",
            self._path,
            len(report.changed),
            len(report.added),
            len(report.deleted),
            (
                f", {len(report.kept_despite_deletion)} kept because the room changed them"
                if report.kept_despite_deletion
                else ""
            ),
        )
