"""The settings room: JupyterLab's user settings as one shared document, mirrored to the
`.jupyterlab-settings` files that JupyterLab's settings API reads and writes.

Data flows one way per direction:

- peer update -> `_admit` (checked on a scratch copy: known plugin, size, schema) -> the
  room's document -> store (durable first) -> other peers; then, debounced, the changed
  plugins' text -> `_flush` -> their files (atomic), only where the text differs from what
  the file holds;
- a file changed outside (an editor, a script, JupyterLab's own `PUT lab/api/settings`)
  -> the watcher (polled, debounced) -> validated -> merged into the document as the
  changes since the text the mirror last wrote or read (`_base`), so changes made in the
  document meanwhile survive. A file that is not valid JSON5, or not what its plugin's
  schema accepts, is left alone: the document keeps the previous settings and carries the
  error (file, line, message) for the status and JupyterLab; no file is written over it.

The room core (room.Room) is reused as it is: the notebook roots it declares stay empty.
Which source is the truth at load: the stored history; files that differ from what the
mirror last wrote are outside edits, merged in as above (a plain JupyterLab's files, on
first start, are taken in as they are).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from logging import Logger
from typing import Any

from pycrdt import Doc, Map, Text

from .peer import CLOSE_ROOM_CLOSED, Peer
from .protocol import ProtocolError
from .room import Room
from .settings_doc import PluginState, SettingsDocument, SettingsError, parse_settings
from .settings_files import (
    SchemaCatalog,
    SettingsLocation,
    plugin_file,
    read_file,
    scan,
    write_file,
)
from .store import RoomJournal, Store

# The settings room's key in the store: no contents path starts with "/".
STORE_KEY = "/settings"


@dataclass(frozen=True)
class SettingsRoomSettings:
    write_delay: float = 0.2
    watch_interval: float = 0.1
    # A file must keep the same size and time this long before it is read.
    debounce: float = 0.5
    retry_interval: float = 2.0


class SettingsRoom:
    def __init__(
        self,
        location: SettingsLocation,
        catalog: SchemaCatalog,
        settings: SettingsRoomSettings,
        log: Logger,
        store: Store | None = None,
    ) -> None:
        self.location = location
        self.room = Room(STORE_KEY, log=log)
        self.document = SettingsDocument(self.room.doc)
        self.last_write: datetime | None = None
        self.write_error: str | None = None
        self._catalog = catalog
        self._settings = settings
        self._log = log
        self._store = store
        self._journal: RoomJournal | None = None
        # Per plugin, the text the mirror last wrote to or read from its file ("" for no
        # file): the base of merging outside edits, and what needs no write.
        self._base: dict[str, str] = {}
        # Per plugin, the file's (mtime_ns, size, inode) when last written or read.
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._changing: dict[str, tuple[tuple[int, int, int] | None, float]] = {}
        self._write_timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._logged_errors: set[tuple[str, str]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the document (stored history, then the files), start mirroring."""
        if self._watcher is not None:
            raise RuntimeError("the settings room is already open")
        restored = await self._restore()
        if not restored:
            self.document.initialize()
            self.room.lineage = self.room.doc.client_id
        for plugin in self._catalog_ids():
            if self.document.read(plugin) is None:
                # Every known plugin has an entry: windows never race to create one.
                self.document.plugins[plugin] = Map({"raw": Text(""), "values": Map()})
        on_disk = scan(self.location)
        for plugin in sorted(set(on_disk) | set(self._base)):
            if plugin in on_disk:
                self._seen[plugin] = on_disk[plugin]
            self._take_in(plugin, self._read(plugin) if plugin in on_disk else "")
        if self._store is not None:
            if not restored:
                await self._store.create(
                    STORE_KEY, self.room.lineage or 0, self.room.doc.get_update(), {}, []
                )
            self._journal = self._store.journal(STORE_KEY, self.room.doc.get_update)
            self.room.attach_journal(self._journal)
            # What the files changed is in no stored update yet.
            self._journal.compact()
        self.room.admit = self._admit
        self.room.on_change(self._schedule_write)
        self._watcher = asyncio.ensure_future(self._watch())
        self._schedule_write()
        self._log.info(
            "[room] settings room open: %d plugins with settings, mirrored in %s",
            self.plugins_with_settings(),
            self.location.settings_dir,
        )

    async def _restore(self) -> bool:
        if self._store is None:
            return False
        stored = await self._store.load(STORE_KEY)
        if stored is None:
            return False
        try:
            self.room.restore(stored.updates, stored.lineage)
        except ValueError as exc:
            moved = await self._store.move_aside(STORE_KEY)
            self._log.warning(
                "[persist] the stored settings document cannot be applied (%s); kept it as "
                "%r and rebuilt it from the settings files",
                exc,
                moved,
            )
            self.room = Room(STORE_KEY, log=self._log)
            self.document = SettingsDocument(self.room.doc)
            return False
        self._base = {str(k): str(v) for k, v in stored.file_content.items()}
        return True

    async def close(self) -> None:
        """Write what is pending, then disconnect every peer."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._write_timer is not None:
            self._write_timer.cancel()
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        self.room.closing = True
        try:
            await self._flush()
        except Exception:
            self._log.exception("[persist] final write of the settings files failed")
        if self._journal is not None:
            self._journal.close()
        self.room.close(CLOSE_ROOM_CLOSED, "server shutting down")

    # -- peers -----------------------------------------------------------------------------

    def join(self, peer: Peer) -> Room:
        self.room.add_peer(peer)
        return self.room

    def leave(self, room: Room, peer: Peer) -> None:
        room.remove_peer(peer)

    def _admit(self, update: bytes) -> None:
        """Refuse a peer's update that would store settings the server could not keep: an
        unknown plugin, a text or value over the size limit, values the schema refuses, a
        removed entry, or a change to what only the server writes."""
        scratch = Doc()
        scratch.apply_update(self.room.doc.get_update())
        try:
            scratch.apply_update(update)
        except ValueError as exc:
            raise ProtocolError(f"update rejected by the CRDT: {exc}") from exc
        after = SettingsDocument(scratch)
        if after.errors.to_py() != self.document.errors.to_py() or (
            after.info.to_py() != self.document.info.to_py()
        ):
            raise ProtocolError("only the server writes the settings errors and format")
        removed = set(self.document.plugins) - set(after.plugins)
        if removed:
            raise ProtocolError(f"settings of {min(removed)} refused: entries are never removed")
        limit = self._catalog.limits.max_setting_bytes
        for plugin in after.plugins:
            entry = after.plugins[plugin]
            if not (
                isinstance(entry, Map)
                and isinstance(entry.get("raw"), Text)
                and isinstance(entry.get("values"), Map)
            ):
                raise ProtocolError(f"settings of {plugin} refused: expected {{raw, values}}")
            state = after.read(plugin)
            assert state is not None
            if state == self.document.read(plugin):
                continue
            size = max(
                len(state.raw.encode("utf-8")), len(json.dumps(state.values).encode("utf-8"))
            )
            if size > limit:
                raise ProtocolError(
                    f"settings of {plugin} refused: {size} bytes, more than "
                    f"max_setting_bytes ({limit})"
                )
            try:
                self._catalog.check_values(plugin, state.values)
            except SettingsError as exc:
                raise ProtocolError(f"settings of {plugin} refused: {exc.message}") from exc

    # -- files -> document -----------------------------------------------------------------

    def _read(self, plugin: str) -> str | None:
        try:
            return read_file(plugin_file(self.location, plugin))
        except FileNotFoundError:
            return ""
        except (OSError, UnicodeDecodeError) as exc:
            self._file_error(plugin, SettingsError(f"cannot read it: {exc}"))
            return None

    def _take_in(self, plugin: str, text: str | None) -> None:
        """Merge the text of a plugin's file ("" when there is none) into the document."""
        if text is None:
            return
        if not self._catalog.known(plugin):
            # A file left by an uninstalled extension: not ours to judge.
            return
        base = self._base.get(plugin, "")
        if text == base:
            self._clear_error(plugin)
            return
        try:
            if text:
                self._catalog.check_text(plugin, text)
            else:
                self._catalog.validator(plugin)
        except SettingsError as exc:
            self._file_error(plugin, exc)
            return
        try:
            base_state: PluginState | None = PluginState(base, parse_settings(base))
        except SettingsError:
            base_state = None
        with self.room.doc.transaction():
            self.document.set_raw(plugin, text, base=base_state)
            self._clear_error(plugin)
        self._base[plugin] = text
        self._log.info(
            "[persist] %s changed on disk: merged into the settings room",
            self._file_name(plugin),
        )

    def _file_error(self, plugin: str, error: SettingsError) -> None:
        name = self._file_name(plugin)
        self.document.set_error(plugin, name, error.line, error.message)
        if (plugin, str(error)) not in self._logged_errors:
            self._logged_errors.add((plugin, str(error)))
            self._log.warning(
                "[persist] %s%s: %s; the file is left alone and the previous settings stay "
                "in force",
                name,
                f" line {error.line}" if error.line else "",
                error.message,
            )

    def _clear_error(self, plugin: str) -> None:
        if plugin in self.document.errors:
            self.document.clear_error(plugin)
            self._logged_errors = {e for e in self._logged_errors if e[0] != plugin}
            self._log.info("[persist] %s is valid again", self._file_name(plugin))

    def _file_name(self, plugin: str) -> str:
        return plugin_file(self.location, plugin)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._settings.watch_interval)
            try:
                self._check_files(loop.time())
            except Exception:
                self._log.exception("[persist] checking the settings files failed")

    def _check_files(self, now: float) -> None:
        on_disk = scan(self.location)
        for plugin in set(on_disk) | set(self._seen) | set(self._changing):
            stat = on_disk.get(plugin)
            if stat == self._seen.get(plugin):
                self._changing.pop(plugin, None)
                continue
            changing = self._changing.get(plugin)
            if changing is None or changing[0] != stat:
                self._changing[plugin] = (stat, now)
                continue
            if now - changing[1] < self._settings.debounce:
                continue
            del self._changing[plugin]
            if stat is None:
                self._seen.pop(plugin, None)
            else:
                self._seen[plugin] = stat
            self._take_in(plugin, self._read(plugin) if stat is not None else "")

    # -- document -> files -----------------------------------------------------------------

    def _schedule_write(self) -> None:
        # Called from the document observer: no reading the document here.
        if self._write_timer is not None or self.room.closing:
            return
        loop = asyncio.get_running_loop()
        self._write_timer = loop.call_later(self._settings.write_delay, self._start_flush)

    def _start_flush(self) -> None:
        self._write_timer = None
        if self._flushing is not None:
            self._schedule_write()  # one at a time; run again after this one
            return
        self._flushing = asyncio.ensure_future(self._flush())
        self._flushing.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushing = None
        if not task.cancelled() and task.exception() is not None:
            self._log.error(
                "[persist] writing the settings files failed", exc_info=task.exception()
            )

    async def _flush(self) -> None:
        """Write every plugin whose text differs from its file; reconcile first."""
        wrote = False
        for plugin in self.document.plugin_ids():
            if plugin not in self.document.errors:
                self.document.reconcile(plugin)
            state = self.document.read(plugin)
            if state is None or state.raw == self._base.get(plugin, ""):
                continue
            if plugin in self.document.errors or plugin in self._changing:
                # The file holds an edit not taken in yet (or a broken one): never write
                # over it. Once it is fixed it is merged, and this change written then.
                continue
            path = plugin_file(self.location, plugin)
            try:
                await asyncio.to_thread(write_file, path, state.raw)
                stat = os.stat(path)
            except OSError as exc:
                self._report_write_error(f"cannot write {path}: {exc}")
                continue
            self._base[plugin] = state.raw
            self._seen[plugin] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            self.last_write = datetime.now(timezone.utc)
            wrote = True
            self._log.debug("[persist] wrote %s", path)
        if wrote and self._store is not None:
            # After the files: a crash in between makes them look edited outside, and
            # merging what is already in the document changes nothing.
            await self._store.record_file(STORE_KEY, dict(self._base), [])
        if wrote and self.write_error is not None:
            self._log.info("[persist] the settings files are writable again")
            self.write_error = None

    def _report_write_error(self, message: str) -> None:
        if message != self.write_error:
            self._log.error("[persist] %s (the room keeps the change; retrying)", message)
        self.write_error = message
        if not self.room.closing:
            loop = asyncio.get_running_loop()
            loop.call_later(self._settings.retry_interval, self._schedule_write)

    # -- status ----------------------------------------------------------------------------

    def _catalog_ids(self) -> list[str]:
        try:
            return self._catalog.plugin_ids()
        except Exception as exc:
            self._log.warning("[room] cannot list JupyterLab's settings schemas: %s", exc)
            return []

    def plugins_with_settings(self) -> int:
        return sum(1 for state in self.document.snapshot().values() if state.values)

    def status(self) -> dict[str, Any]:
        journal = self._journal
        errors = self.document.error_list()
        if self.write_error:
            errors.append({"plugin": None, "file": None, "line": None, "message": self.write_error})
        return {
            "peers": len(self.room.peers),
            "plugins": self.plugins_with_settings(),
            "dir": self.location.settings_dir,
            "last_write": self.last_write.isoformat() if self.last_write else None,
            "errors": errors,
            "doc_bytes": len(self.room.doc.get_update()),
            "store": None
            if journal is None
            else {
                "bytes": journal.stored_bytes,
                "pending_updates": journal.appended - journal.durable,
                "error": self._store.error if self._store else None,
            },
        }
