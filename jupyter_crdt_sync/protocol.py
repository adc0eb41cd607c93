"""The y-websocket wire format: parsing incoming frames and building outgoing ones.

pycrdt provides the message constructors; this module adds the strict parsing the
server needs so that a malformed frame is rejected before it touches a room.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from pycrdt import (
    Decoder,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    write_message,
)

__all__ = [
    "AwarenessEntry",
    "Message",
    "MessageKind",
    "ProtocolError",
    "create_awareness_message",
    "create_moved_message",
    "create_sync_message",
    "create_sync_step2_message",
    "create_update_message",
    "parse_awareness_update",
    "parse_message",
    "parse_moved",
    "state_vector_clients",
]

QUERY_AWARENESS = 3
# Our own message type (docs/design.md, "Moves"): the server tells a room's peers that its
# file was renamed or deleted. Payload: one var-string, the JSON `{"type": "renamed",
# "path": new path}` or `{"type": "deleted", "path": the path it had}`. Stock y-websocket
# clients ignore message types they do not know (they log it); peers never send it.
MOVED = 100


class ProtocolError(ValueError):
    """A frame that does not follow the y-websocket protocol."""


class MessageKind(IntEnum):
    SYNC_STEP1 = 0
    SYNC_STEP2 = 1
    SYNC_UPDATE = 2
    AWARENESS = 3
    QUERY_AWARENESS = 4
    MOVED = 5


@dataclass(frozen=True, slots=True)
class Message:
    kind: MessageKind
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: dict | None


_SYNC_KINDS = {
    YSyncMessageType.SYNC_STEP1: MessageKind.SYNC_STEP1,
    YSyncMessageType.SYNC_STEP2: MessageKind.SYNC_STEP2,
    YSyncMessageType.SYNC_UPDATE: MessageKind.SYNC_UPDATE,
}


def create_sync_step2_message(update: bytes) -> bytes:
    """Answer a peer's sync step 1 with the updates it is missing."""
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]) + write_message(update)


def create_moved_message(event: str, path: str) -> bytes:
    """Tell peers that the room's file was `renamed` (to `path`) or `deleted`."""
    body = json.dumps({"type": event, "path": path}).encode()
    return bytes([MOVED]) + write_message(body)


def parse_moved(payload: bytes) -> dict[str, str]:
    """The `{"type", "path"}` of a moves message; ProtocolError if malformed."""
    try:
        move = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"malformed moves message: {exc}") from exc
    if (
        not isinstance(move, dict)
        or move.get("type") not in ("renamed", "deleted")
        or not isinstance(move.get("path"), str)
    ):
        raise ProtocolError("a moves message is {type: renamed|deleted, path: str}")
    return move


def parse_message(frame: bytes) -> Message:
    """Parse one binary websocket frame, raising ProtocolError if it is not well formed."""
    if not frame:
        raise ProtocolError("empty frame")
    message_type = frame[0]
    if message_type == YMessageType.SYNC:
        if len(frame) < 2:
            raise ProtocolError("sync frame without a sync message type")
        kind = _SYNC_KINDS.get(frame[1])  # type: ignore[call-overload]
        if kind is None:
            raise ProtocolError(f"unknown sync message type {frame[1]}")
        return Message(kind, _read_exact_payload(frame, 2))
    if message_type == YMessageType.AWARENESS:
        return Message(MessageKind.AWARENESS, _read_exact_payload(frame, 1))
    if message_type == QUERY_AWARENESS:
        return Message(MessageKind.QUERY_AWARENESS, b"")
    if message_type == MOVED:
        return Message(MessageKind.MOVED, _read_exact_payload(frame, 1))
    raise ProtocolError(f"unknown message type {message_type}")


def _read_exact_payload(frame: bytes, offset: int) -> bytes:
    """Read a var-uint length prefix at `offset` and return exactly that many bytes."""
    length = 0
    shift = 0
    position = offset
    while True:
        if position >= len(frame):
            raise ProtocolError("truncated length prefix")
        byte = frame[position]
        position += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
        if shift > 63:
            raise ProtocolError("length prefix too long")
    end = position + length
    if end > len(frame):
        raise ProtocolError(
            f"declared payload of {length} bytes, frame holds {len(frame) - position}"
        )
    return frame[position:end]


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """A Yjs state vector as {client id: clock}: how much of each client a replica has."""
    decoder = Decoder(state_vector)
    clocks = {}
    try:
        for _ in range(decoder.read_var_uint()):
            client = decoder.read_var_uint()
            clocks[client] = decoder.read_var_uint()
    except (IndexError, RuntimeError) as exc:
        raise ProtocolError("malformed state vector") from exc
    return clocks


def state_vector_clients(state_vector: bytes) -> set[int]:
    """The client ids a Yjs state vector (a sync step 1 payload) has content from."""
    return set(decode_state_vector(state_vector))


def covers(state_vector: bytes, other: bytes) -> bool:
    """Whether a replica at `state_vector` has everything a replica at `other` has."""
    have = decode_state_vector(state_vector)
    return all(have.get(client, 0) >= clock for client, clock in decode_state_vector(other).items())


def parse_awareness_update(update: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update fully, so that a bad one is refused before it is applied."""
    decoder = Decoder(update)
    entries = []
    try:
        count = decoder.read_var_uint()
        for _ in range(count):
            client_id = decoder.read_var_uint()
            clock = decoder.read_var_uint()
            raw_state = decoder.read_var_string()
            state = json.loads(raw_state) if raw_state else None
            if state is not None and not isinstance(state, dict):
                raise ProtocolError("awareness state must be a JSON object or null")
            entries.append(AwarenessEntry(client_id, clock, state))
    except ProtocolError:
        raise
    except (IndexError, RuntimeError, ValueError) as exc:
        raise ProtocolError(f"malformed awareness update: {exc}") from exc
    if decoder.length > 0:
        raise ProtocolError("trailing bytes after awareness update")
    return entries
