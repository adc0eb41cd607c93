"""The .ipynb file behind a room: finding it, reading it, and writing the room back to it.

All file access goes through jupyter_server's contents manager, so its path rules,
checkpoints, save hooks and permissions apply exactly as for a save from JupyterLab.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from logging import Logger
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.manager import ContentsManager
from jupyter_ydoc import YNotebook, YUnicode
from tornado.web import HTTPError

from .location import Location
from .writable import writable_notebook

# What jupyter_ydoc fills in when a notebook has no kernelspec or language_info: written
# back, it would change a file that nobody edited.
_PLACEHOLDER_METADATA = {
    "kernelspec": {"name": "", "display_name": ""},
    "language_info": {"name": ""},
}


def normalize_path(raw_path: str) -> str:
    """The API path of a notebook, relative to the server root; HTTP 404 if it escapes it."""
    path = raw_path.replace("\\", "/").strip("/")
    normalized = posixpath.normpath(path) if path else ""
    if not normalized or normalized == "." or normalized.startswith("../") or normalized == "..":
        raise HTTPError(404, f"No notebook at {raw_path!r}")
    return normalized


def is_notebook_path(path: str) -> bool:
    """Whether a room of this path holds a notebook (else a text file, text_file.py)."""
    return path.endswith(".ipynb")


async def check_file(contents_manager: ContentsManager, path: str) -> None:
    """Raise 404 for a missing file and 400 for a directory."""
    if not await ensure_async(contents_manager.file_exists(path)):
        if await ensure_async(contents_manager.dir_exists(path)):
            raise HTTPError(400, f"{path!r} is a directory, not a file")
        raise HTTPError(404, f"No file at {path!r}")


async def check_notebook(contents_manager: ContentsManager, path: str) -> None:
    """Raise 404 for a missing file and 400 for something that is not a notebook."""
    if not await ensure_async(contents_manager.file_exists(path)):
        if await ensure_async(contents_manager.dir_exists(path)):
            raise HTTPError(400, f"{path!r} is a directory, not a notebook")
        raise HTTPError(404, f"No notebook at {path!r}")
    if not is_notebook_path(path):
        raise HTTPError(400, f"{path!r} is not a notebook (.ipynb) file")


async def read_notebook(contents_manager: ContentsManager, path: str) -> dict[str, Any]:
    """The notebook's content as a plain dict, as nbformat reads it; 400 if unreadable."""
    await check_notebook(contents_manager, path)
    model = await ensure_async(contents_manager.get(path, content=True, type="notebook"))
    content = model.get("content")
    if not isinstance(content, dict) or content.get("nbformat") != 4:
        raise HTTPError(400, f"{path!r} is not an nbformat 4 notebook")
    return _plain(content)


def file_view(content: dict[str, Any]) -> dict[str, Any]:
    """The notebook as its file holds it: without the fields nbformat never writes (the
    contents manager adds `trusted` to every cell it reads). Compare notebooks this way."""
    metadata = content.get("metadata", {})
    if isinstance(metadata, dict):
        metadata = {k: v for k, v in metadata.items() if k not in _TRANSIENT_METADATA}
    cells = []
    for cell in content.get("cells", []):
        cell_metadata = cell.get("metadata") if isinstance(cell, dict) else None
        if isinstance(cell_metadata, dict) and "trusted" in cell_metadata:
            cell = {**cell, "metadata": {k: v for k, v in cell_metadata.items() if k != "trusted"}}
        cells.append(cell)
    return {**content, "metadata": metadata, "cells": cells}


_TRANSIENT_METADATA = ("signature", "orig_nbformat", "orig_nbformat_minor")


def _plain(value: Any) -> Any:
    """NotebookNode trees as builtin dicts and lists, so comparisons are cheap and exact."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class WrittenFile:
    """What the room last wrote to its file, or last accepted from it: the one record of
    it, shared by the file writer (which updates it after every write) and the file
    watcher (which tells the room's own writes from outside edits by it, and merges
    outside edits against it).
    """

    def __init__(
        self,
        content: dict[str, Any],
        cell_ids: list[str],
        view: Callable[[dict[str, Any]], dict[str, Any]] = file_view,
    ) -> None:
        # How files are compared: `file_view` for notebooks; a text file's `{"text": str}`
        # is compared as it is.
        self._view = view
        # The notebook as the file holds it (file_view), and the document's id of each of
        # its cells (files < 4.5 have none; text files none either).
        self.content = view(content)
        self.cell_ids = cell_ids
        # What the writer is writing right now, if anything.
        self.writing: dict[str, Any] | None = None

    def is_own_write(self, content: dict[str, Any]) -> bool:
        """Whether a file holding `content` is the room's own doing (done or under way)."""
        content = self._view(content)
        return content == self.content or content == self.writing

    def record(self, content: dict[str, Any], cell_ids: list[str]) -> None:
        """The file now holds `content`: written by the room, or merged in from outside."""
        self.content = self._view(content)
        self.cell_ids = cell_ids


@dataclass(frozen=True)
class Prepared:
    """The document as a file, ready to be written."""

    # As the file will hold it (compared with `WrittenFile.content`), with the document's
    # cell id of each of its cells.
    content: dict[str, Any]
    cell_ids: list[str]
    # The contents model to save.
    model: dict[str, Any]
    # What of the document the file cannot hold, if anything (kept in the room).
    problems: str | None = None


class FileWriter:
    """Writes one room's notebook back to its file, debounced, and at close.

    Text files: `text_file.TextWriter` differs only in how the document becomes a file
    (`_prepare`).

    A change waits `delay` seconds of quiet, but never more than `max_delay` seconds in
    total, so continuous typing still reaches the disk every few seconds. Before each
    write `check_file` (the file watcher's check) merges outside edits into the document,
    so that a write never overwrites an edit made to the file since the last one; it
    answers False if the file is gone and must not be written again.
    """

    def __init__(
        self,
        location: Location,
        notebook: YNotebook | YUnicode,
        contents_manager: ContentsManager,
        written: WrittenFile,
        *,
        delay: float,
        max_delay: float,
        log: Logger,
        loaded_content: dict[str, Any],
        check_file: Callable[[], Awaitable[bool]] | None = None,
        before_write: Callable[[str, dict[str, Any], list[str]], Awaitable[None]] | None = None,
        complete: Callable[[dict[str, Any]], None] | None = None,
        after_save: Callable[[], None] | None = None,
    ) -> None:
        self._location = location
        # Told after every write attempt (save_state.py publishes `dirty` and the error).
        self._after_save = after_save
        self.last_saved: datetime | None = None
        self.last_error: str | None = None
        self.saves = 0
        # The cells of the document the last write left out of the file, with the reason
        # for each (they stay in the room, and in its stored history).
        self.left_out: dict[str, str] = {}
        self._notebook = notebook
        self._contents_manager = contents_manager
        self._written = written
        self._delay = delay
        self._max_delay = max(max_delay, delay)
        self._log = log
        self._metadata_absent = {
            key: value
            for key, value in _PLACEHOLDER_METADATA.items()
            if key not in loaded_content.get("metadata", {})
        }
        self._check_file = check_file
        self._before_write = before_write
        # Adds to the notebook what lives beside the cells in the document (widget state).
        self._complete = complete
        self._dirty = False
        self._changed = asyncio.Event()
        self._save_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        return self._location.path

    @property
    def dirty(self) -> bool:
        return self._dirty

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("FileWriter already started")
        self._task = asyncio.ensure_future(self._run())

    def mark_changed(self) -> None:
        """Called on every document change: cheap, no I/O."""
        self._dirty = True
        self._changed.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._changed.wait()
            deadline = loop.time() + self._max_delay
            while True:
                self._changed.clear()
                quiet = min(self._delay, deadline - loop.time())
                if quiet <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), quiet)
                except asyncio.TimeoutError:
                    break
            self._changed.clear()
            if not await self.save():
                # Try again later rather than at the next keystroke.
                await asyncio.sleep(self._max_delay)
                if self._dirty:
                    self._changed.set()

    async def save(self) -> bool:
        """Write the document to the file if it differs from what was last written.

        Never raises: a failure is reported (`last_error`, the log, once per cause) and
        the document stays marked changed, to be written at the next attempt."""
        async with self._save_lock:
            try:
                if not self._dirty:
                    return True
                return await self._save()
            except Exception as exc:
                # Broad on purpose: whatever a document or a contents manager throws, the
                # writer must go on (the traceback is logged once, for the bug it may be).
                self._dirty = True
                self._report_error(f"writing {self.path!r} failed: {exc!r}", exc_info=True)
                return False
            finally:
                if self._after_save is not None:
                    self._after_save()

    async def _prepare(self) -> Prepared | None:
        """What to write: the document as a file, or None (reported) if it cannot be read."""
        try:
            content = await self._notebook.aget()
        except Exception as exc:
            # A document no peer can damage (content_guard.py) still reads; if it ever
            # does not, report it and keep trying.
            self._report_error(f"the document cannot be read as a notebook: {exc!r}")
            return None
        self._drop_placeholders(content)
        if self._complete is not None:
            self._complete(content)
        all_ids = document_cell_ids(self._notebook, content)
        writable = writable_notebook(file_view(content), self._written.content)
        self.left_out = writable.left_out
        return Prepared(
            content=writable.content,
            cell_ids=[all_ids[index] for index in writable.kept if index < len(all_ids)],
            model={"type": "notebook", "format": "json", "content": writable.node},
            problems=writable.describe(self.path) if writable.problems else None,
        )

    async def _save(self) -> bool:
        if self._check_file is not None and not await self._check_file():
            return True
        self._dirty = False
        prepared = await self._prepare()
        if prepared is None:
            self._dirty = True
            return False
        content, cell_ids, model = prepared.content, prepared.cell_ids, prepared.model
        if prepared.problems:
            self._report_error(prepared.problems)
        if content == self._written.content:
            if not prepared.problems:
                self.last_error = None  # the file holds the whole document already
            return True
        self._written.writing = content
        try:
            if self._before_write is not None:
                await self._before_write(self.path, content, cell_ids)
            await ensure_async(self._contents_manager.save(model, self.path))
        except (HTTPError, OSError) as exc:
            self._dirty = True
            self._report_error(f"could not write {self.path!r}: {exc}")
            return False
        finally:
            self._written.writing = None
        self._written.record(content, cell_ids)
        self.last_saved = datetime.now(timezone.utc)
        self.saves += 1
        if not prepared.problems:
            if self.last_error is not None:
                self._log.info("[persist] %r written again after an error", self.path)
            self.last_error = None
        self._log.debug("[persist] wrote %r", self.path)
        return True

    def _drop_placeholders(self, content: dict[str, Any]) -> None:
        metadata = content.get("metadata", {})
        for key, placeholder in self._metadata_absent.items():
            if metadata.get(key) == placeholder:
                del metadata[key]

    def _report_error(self, message: str, exc_info: bool = False) -> None:
        # Log a failure once, not at every retry.
        if message != self.last_error:
            self._log.error("[persist] %s", message, exc_info=exc_info)
        self.last_error = message

    async def stop(self) -> None:
        """Stop the debounce loop without writing: the file is gone and must stay gone."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def close(self) -> None:
        """Stop the debounce loop and write any pending change."""
        await self.stop()
        await self.save()


def document_cell_ids(notebook: YNotebook, content: dict[str, Any]) -> list[str]:
    """The document's cell ids for the cells of `content`, read from it just now."""
    ids = [cell.get("id") for cell in content.get("cells", [])]
    if all(ids):
        return [str(cell_id) for cell_id in ids]
    # nbformat < 4.5 files carry no ids; the document's cells are in the same order.
    return [str(ycell.get("id")) for ycell in notebook.ycells][: len(ids)]
