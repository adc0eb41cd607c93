"""The websocket endpoint of a room: authentication, then frames to and from the room."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .peer import CLOSE_PROTOCOL_ERROR, CLOSE_STALE_REPLICA, CLOSE_UNSUPPORTED_DATA, Peer
from .protocol import ProtocolError
from .room import Room, StaleReplicaError
from .rooms import RoomManager

if TYPE_CHECKING:
    # Only with JupyterLab (jupyterlab_server): imported by the app when it has one.
    from .settings_room import SettingsRoom


class RoomWebSocketHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):  # type: ignore[misc]
    auth_resource = "contents"

    _path: str
    _peer: Peer | None = None
    _room: Room | None = None

    @property
    def room_manager(self) -> RoomManager:
        return self.settings["crdtsync_room_manager"]

    @property
    def crdtsync_config(self) -> Any:
        return self.settings["crdtsync_config"]

    # Keep-alive uses tornado's own pings (seconds), not WebSocketMixin's (milliseconds),
    # whose ping callback `open` below does not start.
    @property
    def ping_interval(self) -> float:
        return float(self.crdtsync_config.ping_interval)

    @property
    def ping_timeout(self) -> float:
        return float(self.crdtsync_config.ping_interval)

    @property
    def max_message_size(self) -> int:
        return int(self.crdtsync_config.max_message_bytes)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        # Every check happens before the upgrade: a refused peer gets an HTTP error and
        # not a single byte of the document.
        user = self.current_user
        if not self.authorizer.is_authorized(self, user, "read", self.auth_resource):
            raise web.HTTPError(403, f"reading {self.auth_resource} is not permitted for this user")
        self._can_write = self.authorizer.is_authorized(self, user, "write", self.auth_resource)
        origin = self.request.headers.get("Origin") or self.request.headers.get(
            "Sec-Websocket-Origin"
        )
        if origin is not None and not self.check_origin(origin):
            raise web.HTTPError(403, "cross-origin websocket refused")
        await self.load_room(*args)
        await super().get(*args, **kwargs)

    async def load_room(self, raw_path: str) -> None:
        self._path = await self.room_manager.resolve(raw_path)
        # Load now so that an unreadable notebook is an HTTP error, not a closed socket.
        await self.room_manager.get(self._path)

    async def join_room(self, peer: Peer) -> Room:
        return await self.room_manager.join(self._path, peer)

    def leave_room(self, room: Room, peer: Peer) -> None:
        self.room_manager.leave(room, peer)

    async def open(self, *args: Any, **kwargs: Any) -> None:
        # Nagle's algorithm plus delayed ACKs would add ~40 ms to each small update.
        self.set_nodelay(True)
        user = self.current_user
        self._peer = Peer(
            _WebSocketTransport(self),
            can_write=self._can_write,
            max_pending_bytes=self.crdtsync_config.peer_max_pending_bytes,
            log=self.log,
            user=getattr(user, "username", "") or "",
        )
        try:
            self._room = await self.join_room(self._peer)
        except (web.HTTPError, RuntimeError) as exc:
            # The file went away, or the server is stopping, since the request was taken.
            self.log.warning("[room] %r could not join %r: %s", self._peer, self._path, exc)
            self._peer.close(1011, "the room could not be opened")
        except Exception:
            self.log.exception("[room] %r could not join %r", self._peer, self._path)
            self._peer.close(1011, "the room could not be opened")

    def on_message(self, message: str | bytes) -> None:
        peer, room = self._peer, self._room
        if peer is None or room is None or peer.closed:
            return
        if isinstance(message, str):
            self._refuse(CLOSE_UNSUPPORTED_DATA, "text frames are not part of the protocol")
            return
        try:
            room.receive(peer, message)
        except StaleReplicaError as exc:
            self._refuse(CLOSE_STALE_REPLICA, str(exc))
        except ProtocolError as exc:
            self._refuse(CLOSE_PROTOCOL_ERROR, str(exc))

    def _refuse(self, code: int, reason: str) -> None:
        assert self._peer is not None
        self.log.warning("[sync] closing %r in %r: %s", self._peer, self._path, reason)
        self._peer.close(code, reason[:120])

    def on_close(self) -> None:
        peer, room = self._peer, self._room
        if peer is None:
            return
        peer.connection_lost()
        if self.close_code not in (None, 1000, 1001):
            self.log.info(
                "[sync] %r disconnected with code %s (%s)", peer, self.close_code, self.close_reason
            )
        # The handler sits in reference cycles (peer -> transport -> handler) that only
        # the cycle collector frees: it must not keep the room and its document alive.
        self._peer = self._room = None
        if room is not None:
            self.leave_room(room, peer)


class _WebSocketTransport:
    """A peer's view of the handler: binary writes and close, nothing else."""

    def __init__(self, handler: WebSocketHandler) -> None:
        self._handler = handler

    def write(self, frame: bytes) -> Awaitable[None]:
        try:
            return self._handler.write_message(frame, binary=True)
        except WebSocketClosedError as exc:
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    def close(self, code: int, reason: str) -> None:
        self._handler.close(code, reason)


class SettingsWebSocketHandler(RoomWebSocketHandler):
    """`WS api/crdtsync/settings`: the settings room (JupyterLab's user settings)."""

    auth_resource = "config"

    @property
    def settings_room(self) -> SettingsRoom:
        room: SettingsRoom | None = self.settings.get("crdtsync_settings_room")
        if room is None:
            raise web.HTTPError(404, "the settings room is off (no JupyterLab settings API)")
        return room

    async def load_room(self) -> None:
        self._path = "settings"
        await self.settings["crdtsync_settings_ready"].wait()
        self.settings_room  # noqa: B018 (404 if there is none)

    async def join_room(self, peer: Peer) -> Room:
        return self.settings_room.join(peer)

    def leave_room(self, room: Room, peer: Peer) -> None:
        self.settings_room.leave(room, peer)
