"""One connected window: its permissions and a bounded queue of frames waiting to be sent.

The room never waits on a peer. It hands frames to `Peer.send`, which only appends to a
queue; a per-peer task drains the queue into the transport. A peer whose queue grows past
its byte budget (it stopped reading, or its network is too slow) is disconnected so it
cannot stall the others; it may rejoin and catch up through the sync protocol.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable
from logging import Logger
from typing import Protocol

from pycrdt import merge_updates

from .protocol import create_update_message, parse_message

# Close codes, from RFC 6455 and the 4000-4999 range kept for applications.
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_ROOM_CLOSED = 4001
# In y-websocket, 4400-4499 are permanent: the client stops reconnecting.
CLOSE_NOTEBOOK_DELETED = 4404
CLOSE_STALE_REPLICA = 4409

_peer_numbers = itertools.count(1)
_UPDATE_PREFIX = bytes([0, 2])  # y-websocket: message type sync, sync type update


class Transport(Protocol):
    """What a peer needs from its connection; the websocket handler provides it."""

    def write(self, frame: bytes) -> Awaitable[None]:
        """Queue a binary frame; the awaitable resolves once it has been flushed."""
        ...

    def close(self, code: int, reason: str) -> None: ...


class Peer:
    def __init__(
        self,
        transport: Transport,
        *,
        can_write: bool,
        max_pending_bytes: int,
        log: Logger,
        user: str = "",
    ) -> None:
        self.id = next(_peer_numbers)
        self.user = user
        self.can_write = can_write
        self.awareness_client_ids: set[int] = set()
        self.refused_update_logged = False
        self.sent_state_vector = False
        self._transport = transport
        self._max_pending_bytes = max_pending_bytes
        self._log = log
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._wakeup = asyncio.Event()
        self._closed = False
        # Set by `finish`: close once everything queued has been sent.
        self._finishing: tuple[int, str] | None = None
        self._sender = asyncio.ensure_future(self._drain())

    def __repr__(self) -> str:
        return f"<Peer {self.id} {self.user or 'anonymous'}>"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending_bytes(self) -> int:
        """Bytes queued and not yet handed to the connection."""
        return self._pending_bytes

    def send(self, frame: bytes) -> None:
        """Queue a frame without waiting; disconnect the peer if it is too far behind."""
        if self._closed:
            return
        self._pending.append(frame)
        self._pending_bytes += len(frame)
        # One frame alone may exceed the budget (the first sync of a big notebook).
        if self._pending_bytes > self._max_pending_bytes and len(self._pending) > 1:
            self._log.warning(
                "[sync] %r fell %d bytes behind (limit %d); disconnecting it",
                self,
                self._pending_bytes,
                self._max_pending_bytes,
            )
            self.close(CLOSE_TRY_AGAIN_LATER, "peer fell too far behind; reconnect to catch up")
            return
        self._wakeup.set()

    def close(self, code: int, reason: str) -> None:
        """Stop sending and close the connection; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._pending_bytes = 0
        self._wakeup.set()
        self._transport.close(code, reason)

    def finish(self, code: int, reason: str, within: float = 5.0) -> None:
        """Send what is queued, then close; close anyway after `within` seconds (a peer
        that does not read). For a room that closes: its last frames (a moves message,
        the last updates) still reach the peer."""
        if self._closed:
            return
        if not self._pending:
            self.close(code, reason)
            return
        self._finishing = (code, reason)
        asyncio.get_running_loop().call_later(within, self.close, code, reason)
        self._wakeup.set()

    def connection_lost(self) -> None:
        """The transport is gone: drop what is queued and stop the sender task."""
        self._closed = True
        self._pending.clear()
        self._pending_bytes = 0
        self._sender.cancel()

    async def _drain(self) -> None:
        while not self._closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending:
                continue
            batch = list(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            # Everything that queued up while the last batch was being written goes out as
            # few frames: under load, one merged update instead of one frame per edit.
            writes = [self._transport.write(frame) for frame in _coalesce(batch)]
            results = await asyncio.gather(*writes, return_exceptions=True)
            if any(isinstance(result, BaseException) for result in results):
                self._closed = True
                return
            if self._finishing is not None and not self._pending:
                self.close(*self._finishing)


def _coalesce(frames: list[bytes]) -> list[bytes]:
    """Merge each run of consecutive document updates into one update frame."""
    out: list[bytes] = []
    run: list[bytes] = []
    for frame in frames:
        if frame[:2] == _UPDATE_PREFIX:
            run.append(parse_message(frame).payload)
            continue
        if run:
            out.append(_merged(run))
            run = []
        out.append(frame)
    if run:
        out.append(_merged(run))
    return out


def _merged(updates: list[bytes]) -> bytes:
    return create_update_message(updates[0] if len(updates) == 1 else merge_updates(*updates))
