"""The server extension: settings, routes, and the rooms' lifetime inside the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Bool, Enum, Float, Int, List, TraitError, Tuple, Unicode, validate

from .api import ExecuteHandler, SaveHandler, StatusHandler
from .atomic_save import install_replace_writing
from .execution import OutputLimits
from .history import NotebookHistory
from .history_api import HistoryHandler, RestoreHandler, VersionHandler
from .kernel_actor import ActorSettings, KernelActors
from .rooms import RoomManager, RoomSettings
from .sessions import install_one_session_per_path
from .store import Store
from .versions import RetentionPolicy
from .websocket import RoomWebSocketHandler, SettingsWebSocketHandler

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"

# jupyter-collaboration's server extension (jupyter_server_ydoc since 3.0, named
# jupyter_collaboration before): it binds notebooks to rooms of its own.
COLLABORATION_EXTENSIONS = ("jupyter_server_ydoc", "jupyter_collaboration")


def _tty() -> bool:
    return bool(sys.stdin) and sys.stdin.isatty()


class CRDTSync(ExtensionApp):
    name = "jupyter_crdt_sync"
    description = "Shared notebook rooms: one CRDT document per notebook path."

    save_delay = Float(
        1.0,
        config=True,
        help="Seconds of quiet after the last change before a room writes its notebook "
        "back to the file. Default: 1.0.",
    )
    save_max_delay = Float(
        5.0,
        config=True,
        help="Longest time, in seconds, a change waits to be written back while edits keep "
        "coming, so continuous typing still reaches the disk. Default: 5.0.",
    )
    eviction_delay = Float(
        10.0,
        config=True,
        help="Seconds a room stays open after its last peer leaves; then it is written back "
        "and evicted from memory. A peer that rejoins within it finds the room as it was. "
        "Default: 10.0.",
    )
    max_message_bytes = Int(
        64 * 1024 * 1024,
        config=True,
        help="Largest websocket frame, in bytes, accepted from a peer; a larger frame closes "
        "that connection (code 1009). Default: 67108864 (64 MiB).",
    )
    peer_max_pending_bytes = Int(
        32 * 1024 * 1024,
        config=True,
        help="Most bytes that may wait to be sent to one peer. A peer that falls further "
        "behind is disconnected (code 1013) so it cannot stall the others; it can rejoin. "
        "Default: 33554432 (32 MiB).",
    )
    ping_interval = Float(
        30.0,
        config=True,
        help="Seconds between websocket keep-alive pings; a peer that does not answer a ping "
        "before the next one is due is disconnected. 0 disables pings. Default: 30.0.",
    )
    store_path = Unicode(
        "",
        config=True,
        help="The SQLite file that keeps every room's CRDT history, so that no edit is lost "
        "when the server stops or crashes and reconnecting windows merge without duplicating "
        "anything. ':memory:' keeps it in memory only (no durability across restarts). "
        "Default: '' (crdtsync/store.sqlite in Jupyter's data directory).",
    )
    compact_after_updates = Int(
        10_000,
        config=True,
        help="Updates after which a room's stored history is squashed into one snapshot "
        "(also once the updates outweigh the snapshot itself). Default: 10000.",
    )
    file_check_interval = Float(
        2.0,
        config=True,
        help="Seconds between checks of an open notebook's file for edits made outside the "
        "room (an editor, git, nbconvert); saves through the contents manager are seen at "
        "once. 0 disables the polling. Default: 2.0.",
    )
    max_text_file_bytes = Int(
        16 * 1024 * 1024,
        config=True,
        help="Largest text file (any file but a notebook that the contents API reads as "
        "UTF-8 text), in bytes, that is shared through a room; a larger one is refused with "
        "HTTP 400 and JupyterLab opens it as before. Default: 16777216 (16 MiB).",
    )
    forget_missing_interval = Float(
        3600.0,
        config=True,
        help="Seconds between sweeps that drop the stored histories of notebooks deleted or "
        "renamed outside Jupyter while no room had them open; the first sweep runs at "
        "start-up. 0 disables the sweeps. Default: 3600.0.",
    )
    replace_on_save = Bool(
        True,
        config=True,
        help="Make the server's file contents manager save by writing a temporary file and "
        "renaming it over the original, so that readers of a notebook never see a partial "
        "file. Applies to every save through the server. Default: True.",
    )
    max_output_bytes = Int(
        4 * 1024 * 1024,
        config=True,
        help="Largest cell output, in bytes, that the kernel actor writes into the shared "
        "document (UTF-8 bytes of a stream's text, of the JSON of other outputs). Past it the "
        "output is cut, with a visible note, and the rest of that output is dropped. "
        "Default: 4194304 (4 MiB).",
    )
    max_cell_output_bytes = Int(
        16 * 1024 * 1024,
        config=True,
        help="Most output bytes one cell holds, all its outputs together; past it the rest "
        "of the cell's output is dropped, with a visible note (clear_output makes room "
        "again). Default: 16777216 (16 MiB).",
    )
    widget_update_interval = Float(
        0.1,
        config=True,
        help="Shortest time, in seconds, between two changes of one widget's state in the "
        "shared document: a slider dragged for a minute does not flood the peers or grow the "
        "document, and its last value always lands. Default: 0.1.",
    )
    widget_state_in_file = Enum(
        ["displayed", "all", "none"],
        "displayed",
        config=True,
        help="Which live widgets the written .ipynb carries in metadata.widgets: 'displayed' "
        "(shown in an output, and what they refer to), 'all', or 'none'. Without live widgets "
        "the file keeps what it had. Default: 'displayed'.",
    )
    kernel_ready_timeout = Float(
        60.0,
        config=True,
        help="Seconds the kernel actor waits for a kernel to answer before it gives up on "
        "the cells queued for it (they end as 'aborted'). Default: 60.0.",
    )

    history_retention = List(
        Tuple(Float(), Float()),
        default_value=[(3600.0, 0.0), (86400.0, 600.0), (604800.0, 3600.0), (0.0, 86400.0)],
        config=True,
        help="How a notebook's versions are thinned as they age: a list of (up to age, one "
        "per interval) pairs in seconds, youngest first. Versions up to that age keep one per "
        "interval (the newest of each); interval 0 keeps every version; an age of 0 in the "
        "last pair means forever. Past the last age, versions are dropped; the newest "
        "version is always kept. Default: every version for an hour, one per 10 minutes for "
        "a day, one per hour for a week, one per day after: "
        "[(3600, 0), (86400, 600), (604800, 3600), (0, 86400)].",
    )
    history_keep_deleted = Float(
        30 * 86400.0,
        config=True,
        help="Seconds the history of a deleted notebook is kept (it can be brought back with "
        "a restore meanwhile); 0 drops it at the next thinning. Default: 2592000 (30 days).",
    )
    history_thin_interval = Float(
        600.0,
        config=True,
        help="Seconds between two thinnings of the stored versions (history_retention, "
        "history_keep_deleted); the first runs at start-up. 0 disables thinning (the history "
        "then grows without bound). Default: 600.0.",
    )

    @validate("history_retention")
    def _check_retention(self, proposal: Any) -> Any:
        tiers = proposal["value"]
        ages = [age if age > 0 else float("inf") for age, _ in tiers]
        if not tiers or ages != sorted(ages) or any(interval < 0 for _, interval in tiers):
            raise TraitError(
                "history_retention: expected (age, interval) pairs with growing ages (0 = "
                f"forever, last only) and intervals >= 0, got {tiers!r}"
            )
        return tiers

    def retention_policy(self) -> RetentionPolicy:
        return RetentionPolicy(
            tuple(
                (age if age > 0 else float("inf"), interval)
                for age, interval in self.history_retention
            )
        )

    settings_room = Bool(
        True,
        config=True,
        help="Share JupyterLab's user settings between all windows through one settings "
        "room (WS api/crdtsync/settings), mirrored to the .jupyterlab-settings files of "
        "JupyterLab's settings API. Needs JupyterLab's server extension. Default: True.",
    )
    max_setting_bytes = Int(
        1024 * 1024,
        config=True,
        help="Largest settings text (or its values as JSON), in bytes, that the settings "
        "room takes from a window or a settings file; a larger one is refused and nothing "
        "stored changes. Default: 1048576 (1 MiB).",
    )
    settings_debounce = Float(
        0.5,
        config=True,
        help="Seconds a settings file changed outside (an editor, a script, PUT "
        "lab/api/settings) must stay unchanged before the settings room reads it. "
        "Default: 0.5.",
    )

    def initialize_settings(self) -> None:
        self._warn_about_jupyter_collaboration()
        contents_manager = self.serverapp.contents_manager
        if self.replace_on_save and install_replace_writing(contents_manager):
            self.log.info("[persist] notebooks are saved by atomic rename")
        self.store = Store(
            self.store_path or os.path.join(jupyter_data_dir(), "crdtsync", "store.sqlite"),
            self.log,
            compact_after_updates=self.compact_after_updates,
        )
        self.store.open()
        self.log.info("[persist] room histories are kept in %s", self.store.path)
        self.room_manager = RoomManager(
            contents_manager,
            RoomSettings(
                save_delay=self.save_delay,
                save_max_delay=self.save_max_delay,
                eviction_delay=self.eviction_delay,
                file_check_interval=self.file_check_interval,
                max_text_file_bytes=self.max_text_file_bytes,
                widget_state_in_file=self.widget_state_in_file,
                widget_update_interval=self.widget_update_interval,
            ),
            self.log,
            store=self.store,
        )
        self.serverapp.event_logger.add_listener(
            schema_id=CONTENTS_EVENTS, listener=self._on_contents_event
        )
        # The kernel actor and JupyterLab's windows must find the same kernel for a notebook.
        install_one_session_per_path(self.serverapp.session_manager, self.log)
        self.kernel_actors = KernelActors(
            self.room_manager,
            self.serverapp.session_manager,
            self.serverapp.kernel_manager,
            ActorSettings(
                OutputLimits(self.max_output_bytes, self.max_cell_output_bytes),
                kernel_ready_timeout=self.kernel_ready_timeout,
            ),
            self.log,
            event_logger=self.serverapp.event_logger,
        )
        self._sweeper: asyncio.Task[None] | None = None
        self.settings_room_: Any = None
        self._settings_ready = asyncio.Event()
        IOLoop.current().add_callback(self._open_settings_room)
        if self.forget_missing_interval > 0:
            IOLoop.current().add_callback(self._start_sweeper)
        self.history = NotebookHistory(self.room_manager, self.store, contents_manager, self.log)
        self._thinner: asyncio.Task[None] | None = None
        if self.history_thin_interval > 0:
            IOLoop.current().add_callback(self._start_thinner)
        self.settings.update(
            crdtsync_history=self.history,
            crdtsync_room_manager=self.room_manager,
            crdtsync_kernel_actors=self.kernel_actors,
            crdtsync_config=self,
            crdtsync_settings_ready=self._settings_ready,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/api/crdtsync/room/(.+)", RoomWebSocketHandler),
                (r"/api/crdtsync/settings", SettingsWebSocketHandler),
                (r"/api/crdtsync/status", StatusHandler),
                (r"/api/crdtsync/save/(.+)", SaveHandler),
                (r"/api/crdtsync/execute/(.+)", ExecuteHandler),
                (r"/api/crdtsync/history/(.+)/([0-9]+)", VersionHandler),
                (r"/api/crdtsync/history/(.+)", HistoryHandler),
                (r"/api/crdtsync/restore/(.+)", RestoreHandler),
            ]
        )

    def _warn_about_jupyter_collaboration(self) -> None:
        extensions = self.serverapp.extension_manager.extensions
        enabled = [
            name
            for name in COLLABORATION_EXTENSIONS
            if name in extensions and extensions[name].enabled
        ]
        if enabled:
            self.log.warning(
                "jupyter-collaboration's server extension %s is enabled too. JupyterLab "
                "binds notebooks to the rooms of only one of the two, and says which in a "
                "notice; windows bound to different ones do not see each other. Keep one: `pip "
                "uninstall jupyter-collaboration jupyter-collaboration-ui jupyter-docprovider "
                "jupyter-server-ydoc` (since 3.0 jupyter-collaboration is only a metapackage of "
                "the other three), or `jupyter server extension disable %s` and `jupyter "
                "labextension disable @jupyter/docprovider-extension "
                "@jupyter/collaboration-extension`, or `jupyter server extension disable "
                "jupyter_crdt_sync` and `jupyter labextension disable jupyter-crdt-sync`.",
                enabled[0],
                enabled[0],
            )

    async def _on_contents_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        # Renames, deletions and saves made through the contents manager, by anyone.
        action, path = data.get("action"), str(data.get("path", "")).strip("/")
        if action == "rename":
            source_path = str(data.get("source_path", "")).strip("/")
            await self.room_manager.file_renamed(source_path, path)
            await self.kernel_actors.renamed(source_path, path)
        elif action == "delete":
            await self.room_manager.file_deleted(path)
        elif action in ("save", "upload"):
            self.room_manager.file_changed(path)

    async def _open_settings_room(self) -> None:
        # After every extension is loaded: JupyterLab's settings directories are needed.
        try:
            location = self._settings_location() if self.settings_room else None
            if location is None:
                if self.settings_room:
                    self.log.info("[room] no JupyterLab settings API here: no settings room")
                return
            # Only now: jupyterlab_server (and json5) come with JupyterLab, which the
            # notebook rooms do not need.
            from .settings_files import SchemaCatalog, SettingsLimits
            from .settings_room import SettingsRoom, SettingsRoomSettings

            room = SettingsRoom(
                location,
                SchemaCatalog(location, SettingsLimits(self.max_setting_bytes)),
                SettingsRoomSettings(debounce=self.settings_debounce),
                self.log,
                store=self.store,
            )
            await room.open()
            self.settings_room_ = room
            self.serverapp.web_app.settings["crdtsync_settings_room"] = room
        except Exception:
            self.log.exception("[room] the settings room could not be opened")
        finally:
            self._settings_ready.set()

    def _settings_location(self) -> Any:
        """JupyterLab's settings directories, from its extension app (LabServerApp)."""
        for apps in self.serverapp.extension_manager.extension_apps.values():
            for app in apps:
                if getattr(app, "schemas_dir", None) and getattr(app, "user_settings_dir", None):
                    from .settings_files import SettingsLocation

                    return SettingsLocation(
                        settings_dir=app.user_settings_dir,
                        schemas_dir=app.schemas_dir,
                        app_settings_dir=app.app_settings_dir,
                        labextensions_path=tuple(
                            app.extra_labextensions_path + app.labextensions_path
                        ),
                    )
        return None

    def _start_sweeper(self) -> None:
        self._sweeper = asyncio.ensure_future(self._sweep_store())

    async def _sweep_store(self) -> None:
        while True:
            try:
                await self.room_manager.forget_missing()
            except Exception:
                self.log.exception("[persist] sweeping the store failed")
            await asyncio.sleep(self.forget_missing_interval)

    def _start_thinner(self) -> None:
        self._thinner = asyncio.ensure_future(self._thin_history())

    async def _thin_history(self) -> None:
        policy = self.retention_policy()
        while True:
            try:
                dropped = await self.store.thin_history(policy, self.history_keep_deleted)
                if dropped:
                    self.log.info("[persist] thinned %d versions by the retention policy", dropped)
            except Exception:
                self.log.exception("[persist] thinning the history failed")
            await asyncio.sleep(self.history_thin_interval)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # Started without a terminal (stdin not a tty), jupyter_server leaves SIGINT to
        # Python: a KeyboardInterrupt ends the event loop at once, and no extension is
        # stopped, so rooms were not written back. Make SIGINT the graceful stop that
        # SIGTERM is. With a terminal, jupyter_server's own handler asks first, and a
        # second Ctrl+C stops gracefully already.
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler and not _tty():
            signal.signal(signal.SIGINT, serverapp._signal_stop)

    async def stop_extension(self) -> None:
        for task in (self._sweeper, self._thinner):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.kernel_actors.stop()
        if self.settings_room_ is not None:
            await self.settings_room_.close()
        await self.room_manager.stop()
        await self.store.close()
