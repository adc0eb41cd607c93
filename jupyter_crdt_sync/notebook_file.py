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

import nbformat
from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.manager import ContentsManager
from jupyter_ydoc import YNotebook, YUnicode
from jupyter_ydoc.utils import cast_all
from pycrdt import Map
from tornado.web import HTTPError

from .cell_cache import CellCache, CellEntry, prepare_cells
from .cells import plain
from .location import Location
from .notebook_json import NotebookText, notebook_text
from .notebook_save import FileStat, can_save_text, save_text
from .writable import Writable, left_out_name, left_out_problem, writable_top

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
    return plain(content)


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
        # The file's text (its pieces) and which file it is, when the room wrote it
        # (notebook_json.py, notebook_save.py).
        self.text: list[bytes] | None = None
        self.stat: FileStat | None = None
        # What the writer is writing right now, if anything.
        self.writing: dict[str, Any] | None = None

    def is_own_write(self, content: dict[str, Any]) -> bool:
        """Whether a file holding `content` is the room's own doing (done or under way)."""
        content = self._view(content)
        return content == self.content or content == self.writing

    def is_own_file(self, stat: FileStat) -> bool:
        """Whether the file is still the one the room wrote last (no need to read it)."""
        return self.stat is not None and stat == self.stat

    def record(
        self,
        content: dict[str, Any],
        cell_ids: list[str],
        text: list[bytes] | None = None,
        stat: FileStat | None = None,
    ) -> None:
        """The file now holds `content`: written by the room (its `text`, in the file
        `stat` names), or merged in from outside."""
        self.content = self._view(content)
        self.cell_ids = cell_ids
        self.text = text
        self.stat = stat


BeforeWrite = Callable[[str, dict[str, Any], list[str], "list[bytes] | None"], Awaitable[None]]


@dataclass(frozen=True)
class Prepared:
    """The document as a file, ready to be written."""

    # As the file will hold it (compared with `WrittenFile.content`), with the document's
    # cell id of each of its cells.
    content: dict[str, Any]
    cell_ids: list[str]
    # The contents model to save (None: made from `content` if `text` cannot be used).
    model: dict[str, Any] | None
    # What of the document the file cannot hold, if anything (kept in the room).
    problems: str | None = None
    # A notebook's file as pieces (notebook_json.py), and whether the notary trusts it.
    text: NotebookText | None = None
    trusted: bool = False


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
        # Called before each write with the path, the content, its cells' ids and the
        # file's bytes in pieces (None if the writer has none: text files).
        before_write: BeforeWrite | None = None,
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
        # A notebook's cells, prepared once per change (made at the first write).
        self._cells: CellCache | None = None
        # Notebooks are signed as the contents manager signs them (notebook_save.py).
        self._notary = getattr(contents_manager, "notary", None)
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
            content, entries = await self._read_document()
        except Exception as exc:
            # A document no peer can damage (content_guard.py) still reads; if it ever
            # does not, report it and keep trying.
            self._report_error(f"the document cannot be read as a notebook: {exc!r}")
            return None
        writable = _writable(content, entries, self._written.content)
        self.left_out = writable.left_out
        kept = [entries[index] for index in writable.kept]
        top = {key: value for key, value in writable.content.items() if key != "cells"}
        pieces = [entry.pieces for entry in kept if entry.pieces is not None]
        return Prepared(
            content=writable.content,
            cell_ids=[entry.doc_id for entry in kept],
            model=None,
            problems=writable.describe(self.path) if writable.problems else None,
            text=notebook_text(top, pieces),
            trusted=all(piece.trusted for piece in pieces),
        )

    async def _read_document(self) -> tuple[dict[str, Any], list[CellEntry]]:
        """The notebook's top level (as YNotebook.get gives it, completed) and its cells."""
        notebook = self._notebook
        assert isinstance(notebook, YNotebook)
        if self._cells is None:
            self._cells = CellCache(notebook, self._notary)
        meta = notebook.ydoc.get("meta", type=Map).to_py() or {}
        cast_all(meta, float, int)  # as YNotebook.get: numbers from Yjs may be floats
        content: dict[str, Any] = {
            "metadata": meta.get("metadata", {}),
            "nbformat": int(meta.get("nbformat", 0)),
            "nbformat_minor": int(meta.get("nbformat_minor", 0)),
        }
        minor = content["nbformat_minor"]
        entries = await self._cells.prepare(minor)
        if _duplicate_ids(entries):
            # jupyter-ydoc's get repairs them (in the document too): let it, then read all.
            full = await notebook.aget()
            ids = document_cell_ids(notebook, full)
            entries = await prepare_cells(full["cells"], ids, minor, self._notary)
        content["cells"] = [entry.cell for entry in entries]
        self.drop_placeholders(content)
        if self._complete is not None:
            self._complete(content)
        return content, entries

    async def _save(self) -> bool:
        if self._check_file is not None and not await self._check_file():
            return True
        self._dirty = False
        prepared = await self._prepare()
        if prepared is None:
            self._dirty = True
            return False
        content, cell_ids = prepared.content, prepared.cell_ids
        if prepared.problems:
            self._report_error(prepared.problems)
        text = prepared.text
        if text is not None and self._written.text is not None:
            # Pieces of unchanged cells are the same objects: compared by identity.
            unchanged = text.file == self._written.text
        else:
            unchanged = content == self._written.content
        if unchanged:
            if not prepared.problems:
                self.last_error = None  # the file holds the whole document already
            return True
        self._written.writing = content
        try:
            if self._before_write is not None:
                file = text.file if text is not None else None
                await self._before_write(self.path, content, cell_ids, file)
            stat = await self._write(prepared)
        except (HTTPError, OSError) as exc:
            self._dirty = True
            self._report_error(f"could not write {self.path!r}: {exc}")
            return False
        finally:
            self._written.writing = None
        self._written.record(content, cell_ids, text.file if text and stat else None, stat)
        self.last_saved = datetime.now(timezone.utc)
        self.saves += 1
        if not prepared.problems:
            if self.last_error is not None:
                self._log.info("[persist] %r written again after an error", self.path)
            self.last_error = None
        self._log.debug("[persist] wrote %r", self.path)
        return True

    async def _write(self, prepared: Prepared) -> FileStat | None:
        """Write the file: a notebook's pieces where the contents manager allows it
        (notebook_save.py), else its model through the contents manager's `save`."""
        cm = self._contents_manager
        if prepared.text is not None and can_save_text(cm):
            return await save_text(cm, self.path, prepared.text, prepared.trusted)
        model = prepared.model
        if model is None:
            node = nbformat.from_dict(prepared.content)
            model = {"type": "notebook", "format": "json", "content": node}
        await ensure_async(cm.save(model, self.path))
        return None

    def drop_placeholders(self, content: dict[str, Any]) -> None:
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
        await self._stop_task()
        self._close_cells()

    async def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def close(self) -> None:
        """Stop the debounce loop and write any pending change."""
        await self._stop_task()
        await self.save()
        self._close_cells()

    def _close_cells(self) -> None:
        if self._cells is not None:
            self._cells.close()


def document_cell_ids(notebook: YNotebook, content: dict[str, Any]) -> list[str]:
    """The document's cell ids for the cells of `content`, read from it just now."""
    ids = [cell.get("id") for cell in content.get("cells", [])]
    if all(ids):
        return [str(cell_id) for cell_id in ids]
    # nbformat < 4.5 files carry no ids; the document's cells are in the same order.
    return [str(ycell.get("id")) for ycell in notebook.ycells][: len(ids)]


def _writable(content: dict[str, Any], entries: list[CellEntry], base: dict[str, Any]) -> Writable:
    """What of the document can be written: its cells nbformat accepts (each checked once
    per change, cell_cache.py) under a top level it accepts (writable.py)."""
    top, problems = writable_top(file_view({**content, "cells": []}), base)
    kept: list[int] = []
    left_out: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if entry.error is None:
            kept.append(index)
        else:
            name = left_out_name(entry.cell, index)
            left_out[name] = entry.error
            problems.append(left_out_problem(name, entry.error))
    top["cells"] = [entries[index].cell for index in kept]
    return Writable(top, kept, left_out, problems)


def _duplicate_ids(entries: list[CellEntry]) -> bool:
    ids = [e.cell.get("id") for e in entries if isinstance(e.cell, dict) and e.cell.get("id")]
    return len(set(ids)) != len(ids)
