"""REST endpoints of the extension: the status of the rooms, saving now, running cells."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async
from tornado import web

from ._version import __version__
from .kernel_actor import KernelActors
from .protocol import ProtocolError, decode_state_vector
from .rooms import RoomManager, SaveError


class _RoomsHandler(APIHandler):
    """An endpoint about notebooks' rooms: permissions are those of contents."""

    auth_resource = "contents"

    @property
    def room_manager(self) -> RoomManager:
        return self.settings["crdtsync_room_manager"]


class StatusHandler(_RoomsHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        # The settings room opens just after the server starts: a status asked for in that
        # moment waits for it rather than saying there is none (the event is set either way).
        await self.settings["crdtsync_settings_ready"].wait()
        settings_room = self.settings.get("crdtsync_settings_room")
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "rooms": self.room_manager.status(),
                    "settings": settings_room.status() if settings_room is not None else None,
                }
            )
        )


class SaveHandler(_RoomsHandler):
    """Write a notebook's room back to its file now (JupyterLab's Save), then answer with
    the file's contents model without content, hash included."""

    @web.authenticated
    @authorized
    async def post(self, raw_path: str) -> None:
        state_vector = _requested_state_vector(self.request.body)
        path = await self.room_manager.resolve(raw_path)
        try:
            await self.room_manager.save_now(path, state_vector)
        except SaveError as exc:
            self.log.warning("[persist] save of %r requested, not done: %s", path, exc)
            raise web.HTTPError(500, f"Not saved: {exc}") from exc
        model = await ensure_async(
            self.contents_manager.get(path, content=False, require_hash=True)
        )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model, default=json_default))


def _requested_state_vector(body: bytes) -> bytes | None:
    """The optional body of a save request: {"state_vector": base64 of a Yjs state vector}."""
    if not body.strip():
        return None
    try:
        request = json.loads(body)
        encoded = request.get("state_vector") if isinstance(request, dict) else None
        if encoded is None:
            return None
        if not isinstance(encoded, str):
            raise ValueError("state_vector is not a string")
        state_vector = base64.b64decode(encoded, validate=True)
        decode_state_vector(state_vector)  # refuse a malformed one here, not later
    except (ValueError, binascii.Error, ProtocolError) as exc:
        raise web.HTTPError(
            400, 'expected an empty body or {"state_vector": "<base64 Yjs state vector>"}'
        ) from exc
    return state_vector


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
