"""The server extension: settings, routes, and the rooms' lifetime inside the server."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int

from .api import StatusHandler
from .atomic_save import install_replace_writing
from .rooms import RoomManager, RoomSettings
from .websocket import RoomWebSocketHandler


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
    closed_room_cache_bytes = Int(
        64 * 1024 * 1024,
        config=True,
        help="Bytes of CRDT history kept in memory for recently evicted rooms, so that a "
        "window reconnecting with its old copy of the notebook merges into the reopened room "
        "instead of being refused (close code 4409, reload needed). Used only while the file "
        "is unchanged since the room wrote it. 0 keeps none. Default: 67108864 (64 MiB).",
    )
    replace_on_save = Bool(
        True,
        config=True,
        help="Make the server's file contents manager save by writing a temporary file and "
        "renaming it over the original, so that readers of a notebook never see a partial "
        "file. Applies to every save through the server. Default: True.",
    )

    def initialize_settings(self) -> None:
        contents_manager = self.serverapp.contents_manager
        if self.replace_on_save and install_replace_writing(contents_manager):
            self.log.info("[persist] notebooks are saved by atomic rename")
        self.room_manager = RoomManager(
            contents_manager,
            RoomSettings(
                save_delay=self.save_delay,
                save_max_delay=self.save_max_delay,
                eviction_delay=self.eviction_delay,
                closed_room_cache_bytes=self.closed_room_cache_bytes,
            ),
            self.log,
        )
        self.settings.update(
            crdtsync_room_manager=self.room_manager,
            crdtsync_config=self,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/api/crdtsync/room/(.+)", RoomWebSocketHandler),
                (r"/api/crdtsync/status", StatusHandler),
            ]
        )

    async def stop_extension(self) -> None:
        await self.room_manager.stop()
