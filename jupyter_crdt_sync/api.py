"""REST endpoints of the extension."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ._version import __version__
from .rooms import RoomManager


class StatusHandler(APIHandler):
    auth_resource = "contents"

    @property
    def room_manager(self) -> RoomManager:
        return self.settings["crdtsync_room_manager"]

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"version": __version__, "rooms": self.room_manager.status()}))
