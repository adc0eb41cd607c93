"""One open notebook (or text file): the single owner of everything its room needs while
it is open.

A text file's room (any path but `.ipynb`, text_file.py) has the same parts but the kernel
actor and the widget states: its document is `YUnicode`, its writer and watcher are
`TextWriter` and `TextWatcher`.

    RoomManager: path -> OpenNotebook (load once, evict when idle, status)
                          │
      OpenNotebook.open() │ reads the file and the stored history, decides which is the
                          │ truth (docs/design.md), builds and starts every part:
                          ├── location  the notebook's path, held once; every part reads it
                          ├── room      the document, its peers, the sync protocol (room.py)
                          ├── journal   the room's updates made durable (store.py), or None
                          ├── written   what the file holds since the room last wrote or
                          │             merged it (notebook_file.WrittenFile): shared by
                          ├── watcher   outside edits merged in (file_watcher.py), and
                          ├── writer    debounced write-back (notebook_file.FileWriter)
                          ├── widgets   the kernel's widget states, kept in the document
                          └── kernel    its kernel actor (kernel_actor.py), set by
                                        KernelActors at the first execute request
      restore(...)        brings the document (or some cells) back to a stored version, as
                          an edit by the requesting user, recorded as a version at once
                          (the writer's next write finds it and records nothing new)
      rename(new_path)    changes `location` only: the room, writer, watcher, kernel actor
                          and widget state follow at once (the store moves its history)
      close(reason, code) the one place that takes it apart, in order: the kernel actor,
                          the widget states, the watcher, the final write (skipped only
                          for a deleted file), the journal, the room and its peers. Each
                          step runs even if an earlier one failed (logged with its cause).

Nothing else builds or dismantles these parts, and no part reaches into another's state.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from logging import Logger
from typing import Any, Protocol

from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.manager import ContentsManager
from tornado.web import HTTPError

from .execution import reset_execution_states
from .file_watcher import FileWatcher
from .history_store import VersionRequest
from .location import Location
from .merge import merge_into_notebook
from .notebook_file import (
    FileWriter,
    WrittenFile,
    document_cell_ids,
    file_view,
    is_notebook_path,
    read_notebook,
)
from .peer import CLOSE_NOTEBOOK_DELETED, CLOSE_ROOM_CLOSED
from .restore import MissingVersionError, restore_into
from .room import SERVER_ACTOR, Room
from .save_state import SaveState
from .store import RoomJournal, Store, fingerprint
from .text_file import DEFAULT_MAX_BYTES as DEFAULT_MAX_TEXT_BYTES
from .text_file import TextWatcher, TextWriter, merge_into_text, read_text, text_view
from .widgets import WidgetStates, add_saved_state


@dataclass(frozen=True)
class RoomSettings:
    save_delay: float
    save_max_delay: float
    eviction_delay: float
    file_check_interval: float = 2.0
    widget_state_in_file: str = "displayed"
    # Seconds between two writes of one widget's state into the document.
    widget_update_interval: float = 0.1
    # Largest text file a room opens (text_file.py).
    max_text_file_bytes: int = DEFAULT_MAX_TEXT_BYTES


class KernelWork(Protocol):
    """The kernel actor of an open notebook, as its owner sees it (kernel_actor.py)."""

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any] | None: ...


class OpenNotebook:
    """An open notebook's room and everything that serves it; see the module docstring."""

    def __init__(
        self,
        location: Location,
        room: Room,
        written: WrittenFile,
        *,
        settings: RoomSettings,
        contents_manager: ContentsManager,
        log: Logger,
        store: Store | None,
        loaded_content: dict[str, Any],
        on_file_missing: Callable[[OpenNotebook], None],
    ) -> None:
        self.location = location
        self.room = room
        self.written = written
        self.kernel: KernelWork | None = None
        self._log = log
        self.journal: RoomJournal | None = None
        self._store = store
        if store is not None:
            self.journal = store.journal(location.path, room.doc.get_update)
            room.attach_journal(self.journal)
        self.widgets = WidgetStates(
            room.widgets, min_interval=settings.widget_update_interval, log=log
        )
        watcher_options: dict[str, Any] = dict(
            interval=settings.file_check_interval,
            log=log,
            # The parts call back into their owner weakly: a closed notebook is freed by
            # reference counting, with no cycle to wait for the collector.
            on_deleted=_weakly(self._file_missing),
            on_merged=_weakly(self._changed),
        )
        self.save_state = SaveState(
            room.state,
            room.set_state,
            dirty=lambda: self.writer.dirty,
            error=lambda: self.writer.last_error,
        )
        writer_options: dict[str, Any] = dict(
            after_save=self.save_state.publish,
            delay=settings.save_delay,
            max_delay=settings.save_max_delay,
            log=log,
            loaded_content=loaded_content,
            # Notebooks get a version per write-back; text files only the file record.
            before_write=None
            if store is None
            else store.record_file
            if room.is_text
            else _weakly_async(self._record_version),
        )
        self.watcher: FileWatcher
        if room.is_text:
            self.watcher = TextWatcher(
                location,
                room.model,
                contents_manager,
                written,
                text=room.text,
                max_bytes=settings.max_text_file_bytes,
                **watcher_options,
            )
            self.writer: FileWriter = TextWriter(
                location,
                room.model,
                contents_manager,
                written,
                check_file=self.watcher.check,
                **writer_options,
            )
        else:
            self.watcher = FileWatcher(
                location, room.notebook, contents_manager, written, **watcher_options
            )
            self.writer = FileWriter(
                location,
                room.notebook,
                contents_manager,
                written,
                check_file=self.watcher.check,
                complete=partial(
                    add_saved_state, widgets=room.widgets, policy=settings.widget_state_in_file
                ),
                **writer_options,
            )
        self._on_file_missing = on_file_missing
        room.on_change(_weakly(self._changed))

    def __repr__(self) -> str:
        return f"<OpenNotebook {self.path!r}>"

    @property
    def path(self) -> str:
        return self.location.path

    def _changed(self) -> None:
        if self.room.writing_state:
            return  # only the save state it published: nothing for the file
        self.writer.mark_changed()
        self.save_state.schedule()

    def _file_missing(self) -> None:
        self._on_file_missing(self)

    async def _record_version(
        self, path: str, content: dict[str, Any], ids: list[str], file: list[bytes] | None
    ) -> None:
        """Before each write-back: the file record and the version, in one transaction."""
        assert self._store is not None
        version = VersionRequest(content, ids, self.room.take_authors())
        await self._store.record_file(path, content, ids, version, file)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        settings: RoomSettings,
        contents_manager: ContentsManager,
        log: Logger,
        store: Store | None,
        kernels_may_live: bool,
        on_file_missing: Callable[[OpenNotebook], None],
    ) -> OpenNotebook:
        """Open the notebook at `path`: its file, its stored history, every part started.

        `kernels_may_live`: this process closed a room of this path before, so a kernel
        it ran and that kernel's widgets may still be alive. Raises tornado's HTTPError
        (404, 400) if the file is missing, or neither a notebook nor a text file."""
        location = Location(path)
        text = not is_notebook_path(path)
        if text:
            content = await read_text(contents_manager, path, settings.max_text_file_bytes)
        else:
            content = await read_notebook(contents_manager, path)
        view = text_view if text else file_view
        room, merged = await _room_from_store(
            location, content, store, log, contents_manager, text=text
        )
        restored = room is not None
        if room is None:
            room = Room(location, log=log, text=text)
            room.load(content)
            if store is not None:
                await store.create(
                    path,
                    room.doc.client_id,
                    room.doc.get_update(),
                    view(content),
                    _cell_ids(room, content),
                )
        written = WrittenFile(content, _cell_ids(room, content), view=view)
        if store is not None and not text:
            # The notebook as its file is now: the first version, or the file as edited
            # while no room had it open (nothing new if it is the newest version).
            await store.record_version(path, VersionRequest(written.content, written.cell_ids, []))
        room.take_authors()  # loading the document is nobody's edit
        owner = cls(
            location,
            room,
            written,
            settings=settings,
            contents_manager=contents_manager,
            log=log,
            store=store,
            loaded_content=content,
            on_file_missing=on_file_missing,
        )
        if merged and owner.journal is not None:
            # What the merge changed is in no stored update yet.
            owner.journal.compact()
        if restored and not kernels_may_live and not text:
            # History from an earlier server process: its kernels, their executions and
            # their widgets died with it.
            if reset_execution_states(room.notebook):
                log.info("[room] %r: executions cut short by a restart marked idle", path)
            owner.widgets.clear()
        await owner.watcher.start()
        owner.writer.start()
        if restored:
            # The stored history may be ahead of the file (a crash before the last write).
            owner.writer.mark_changed()
        if text:
            log.info("[room] opened %r (text, %d characters)", path, len(content["text"]))
        else:
            log.info("[room] opened %r (%d cells)", path, len(room.notebook.ycells))
        return owner

    # -- while open ----------------------------------------------------------------------

    def rename(self, new_path: str) -> None:
        """The notebook was renamed: every part reads its path from `location`."""
        self.location.path = new_path

    async def restore(
        self, version: int, cell_ids: list[str] | None, user: str
    ) -> tuple[int, list[str]]:
        """Bring the document (or `cell_ids`) back to a stored version, as an edit by
        `user`, and record the result as a version at once (the file follows at the
        writer's next write, which finds that version and adds none). Returns the version
        recorded and the cells restored. Raises MissingVersionError for a version that does not
        exist, RestoreError for a cell it does not have."""
        if self._store is None:
            raise MissingVersionError("this server keeps no history")
        found = await self._store.read_version(self.path, version, cell_ids)
        if found is None:
            raise MissingVersionError(f"{self.path!r} has no version {version}")
        content, ids, _ = found
        room, writer = self.room, self.writer
        current = self._as_written()
        room.actor = user
        try:
            restored, restored_ids = restore_into(room.notebook, content, ids, cell_ids, current)
        finally:
            room.actor = SERVER_ACTOR
        note: dict[str, Any] = {"restored_from": version}
        if cell_ids is not None:
            note["restored_cells"] = list(cell_ids)
        restored = file_view(restored)
        # As the writer will write it: without jupyter-ydoc's placeholder metadata.
        writer.drop_placeholders(restored)
        request = VersionRequest(
            restored,
            restored_ids,
            room.take_authors(),
            note,
            # The document is that version now: record it again, nothing to encode.
            same_as=version if cell_ids is None else None,
        )
        number = await self._store.record_version(self.path, request)
        if number is None:
            raise OSError(f"the store did not record the restore of {self.path!r}")
        return number, list(cell_ids) if cell_ids is not None else ids

    def current(self) -> tuple[dict[str, Any], list[str]]:
        """The document now, as its file would hold it, and its cell ids."""
        known = self._as_written()
        if known is not None:
            return known
        content = file_view(self.room.notebook.get())
        self.writer.drop_placeholders(content)
        return content, [str(cell.get("id")) for cell in content.get("cells", [])]

    def _as_written(self) -> tuple[dict[str, Any], list[str]] | None:
        """The file as last written, if that is the document now: nothing changed since,
        and the writer left no cell out. Reading a large document whole takes long."""
        writer, written = self.writer, self.written
        if writer.dirty or writer.left_out:
            return None
        if len(written.cell_ids) != len(self.room.notebook.ycells):
            return None
        return written.content, written.cell_ids

    def status(self, store_error: str | None) -> dict[str, Any]:
        room, writer, journal = self.room, self.writer, self.journal
        errors = [e for e in (writer.last_error, store_error) if e]
        return {
            "path": self.path,
            # The contents API's type: "notebook", or "file" for a text file's room.
            "type": "file" if room.is_text else "notebook",
            "peers": len(room.peers),
            "cells": 0 if room.is_text else len(room.notebook.ycells),
            "doc_bytes": len(room.doc.get_update()),
            "dirty": writer.dirty,
            "last_saved": writer.last_saved.isoformat() if writer.last_saved else None,
            "save_error": "; ".join(errors) or None,
            # Cells kept in the room that the file cannot hold (writable.py).
            "left_out": sorted(writer.left_out),
            "kernel": self.kernel.status() if self.kernel is not None else None,
            "widgets": len(room.widgets),
            "store": None
            if journal is None
            else {
                "bytes": journal.stored_bytes,
                "updates_since_compaction": journal.updates_since_compaction,
                "pending_updates": journal.appended - journal.durable,
                "error": store_error,
            },
        }

    # -- closing -------------------------------------------------------------------------

    async def close(self, reason: str, code: int = CLOSE_ROOM_CLOSED) -> None:
        """Stop every part and close the room; the final write runs unless the file was
        deleted (a change waiting for its write must not bring it back)."""
        room, writer = self.room, self.writer
        room.closing = True
        deleted = code == CLOSE_NOTEBOOK_DELETED
        if self.kernel is not None:
            await self._step("stopping the kernel actor of", self.kernel.stop())
        # Widget states still waiting for their interval go into the document first.
        self._run_step("writing the widget states of", self.widgets.close)
        await self._step("stopping the file check of", self.watcher.stop())
        await self._step("the final write of", writer.stop() if deleted else writer.close())
        self.save_state.close()
        if writer.dirty and not deleted:
            self._log.error(
                "[persist] %r closed with changes that could not be written to the file: %s "
                "(the store keeps them)",
                self.path,
                writer.last_error,
            )
        if self.journal is not None:
            self._run_step("closing the journal of", self.journal.close)
        room.close(code, reason)
        self._log.info("[room] closed %r (%s)", self.path, reason)

    async def _step(self, what: str, step: Any) -> None:
        # Broad on purpose: one part failing must not skip the others' closing; the
        # traceback is logged.
        try:
            await step
        except Exception:
            self._log.exception("[room] %s %r failed", what, self.path)

    def _run_step(self, what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            self._log.exception("[room] %s %r failed", what, self.path)


def _weakly(method: Callable[[], None]) -> Callable[[], None]:
    """Call a bound method without keeping its object alive."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        target = ref()
        if target is not None:
            target()

    return call


def _weakly_async(
    method: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """An async bound method called without keeping its object alive."""
    ref = weakref.WeakMethod(method)

    async def call(*args: Any) -> None:
        target = ref()
        if target is not None:
            await target(*args)

    return call


def _cell_ids(room: Room, content: dict[str, Any]) -> list[str]:
    return [] if room.is_text else document_cell_ids(room.notebook, content)


async def _file_hash(contents_manager: ContentsManager, path: str) -> str | None:
    """The SHA-256 of the file's bytes, as the contents API gives it (jupyter_server >=
    2.11 with its default `hash_algorithm`); None where it cannot."""
    if getattr(contents_manager, "hash_algorithm", "sha256") != "sha256":
        return None
    try:
        model = await ensure_async(contents_manager.get(path, content=False, require_hash=True))
    except (TypeError, HTTPError, OSError):
        return None
    digest = model.get("hash")
    return digest if isinstance(digest, str) else None


async def _room_from_store(
    location: Location,
    content: dict[str, Any],
    store: Store | None,
    log: Logger,
    contents_manager: ContentsManager,
    *,
    text: bool,
) -> tuple[Room | None, bool]:
    """The room restored from its stored history, and whether the file's outside edits
    were merged into it; (None, False) without a usable history."""
    if store is None:
        return None, False
    path = location.path
    stored = await store.load(path)
    if stored is None:
        return None, False
    if text != ("cells" not in stored.file_content):
        # A history of the other kind (a notebook renamed to .txt while closed, say): the
        # file is the truth, and a new lineage starts.
        log.info(
            "[persist] the stored history of %r is not of a %s; starting over",
            path,
            "text file" if text else "notebook",
        )
        return None, False
    room = Room(location, log=log, text=text)
    try:
        room.restore(stored.updates, stored.lineage)
    except ValueError as exc:
        moved = await store.move_aside(path)
        log.warning(
            "[persist] the stored history of %r cannot be applied (%s); kept it as %r and "
            "rebuilt the room from the file",
            path,
            exc,
            moved,
        )
        return None, False
    on_disk = text_view(content) if text else file_view(content)
    if not text and await _file_hash(contents_manager, path) in stored.file_fingerprints:
        return room, False  # the file the room wrote last (store.record_file with `file`)
    if fingerprint(on_disk) in stored.file_fingerprints:
        return room, False
    if text:
        base = stored.file_content.get("text")
        if not isinstance(base, str):
            base = ""
        merge_into_text(room.text, base, on_disk["text"])
        log.info("[persist] %r changed on disk since the room last wrote it: merged", path)
        return room, True
    report = merge_into_notebook(room.notebook, stored.file_content, stored.file_cell_ids, on_disk)
    log.info(
        "[persist] %r changed on disk since the room last wrote it: merged "
        "(%d cells changed, %d added, %d deleted)",
        path,
        len(report.changed),
        len(report.added),
        len(report.deleted),
    )
    return room, True
