"""REST endpoints of the extension: the status of the rooms, saving, and execution of cells."""

from __future__ import annotations

import json
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ._version import __version__
from .kernel_actor import KernelActors
from .rooms import RoomManager, WriteBackError


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


class SaveHandler(APIHandler):
    """Write a notebook's room back to its file now; answer the file's model (no content)."""

    auth_resource = "contents"

    @property
    def room_manager(self) -> RoomManager:
        return self.settings["crdtsync_room_manager"]

    @web.authenticated
    @authorized
    async def post(self, raw_path: str) -> None:
        path = await self.room_manager.resolve(raw_path)
        try:
            await self.room_manager.write_now(path)
        except WriteBackError as exc:
            raise web.HTTPError(500, f"The notebook was not saved: {exc}") from exc
        model = await ensure_async(
            self.contents_manager.get(path, content=False, require_hash=True)
        )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model, default=json_default))


class ExecuteHandler(APIHandler):
    """Run cells of a notebook on its kernel; the kernel actor writes their outputs."""

    @property
    def kernel_actors(self) -> KernelActors:
        return self.settings["crdtsync_kernel_actors"]

    @web.authenticated
    async def post(self, raw_path: str) -> None:
        user = self.current_user
        if not self.authorizer.is_authorized(self, user, "execute", "kernels"):
            raise web.HTTPError(403, "executing code on kernels is not permitted for this user")
        if not self.authorizer.is_authorized(self, user, "write", "contents"):
            raise web.HTTPError(403, "changing notebooks is not permitted for this user")
        cell_ids = _requested_cells(self.get_json_body())
        executions = await self.kernel_actors.execute(raw_path, cell_ids)
        self.set_status(202)
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {"executions": [{"cell_id": e.cell_id, "msg_id": e.msg_id} for e in executions]}
            )
        )


def _requested_cells(body: Any) -> list[str]:
    """The cell ids of an execute request: {"cell_id": id} or {"cell_ids": [id, ...]}."""
    if isinstance(body, dict) and isinstance(body.get("cell_id"), str) and "cell_ids" not in body:
        return [body["cell_id"]]
    if isinstance(body, dict) and "cell_id" not in body:
        cell_ids = body.get("cell_ids")
        if (
            isinstance(cell_ids, list)
            and cell_ids
            and all(isinstance(cell_id, str) for cell_id in cell_ids)
        ):
            return cell_ids
    raise web.HTTPError(
        400, 'expected a JSON body {"cell_id": "<id>"} or {"cell_ids": ["<id>", ...]}'
    )
