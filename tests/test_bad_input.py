"""Bad frames close the connection that sent them; the room and its other peers go on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Doc, Text, YMessageType, YSyncMessageType, write_message

from jupyter_crdt_sync.client import room_url

from .conftest import FAST_TIMINGS, wait_for_file
from .raw_websocket import OP_CLOSE, OP_PING, RawWebSocket

MAX_MESSAGE_BYTES = 4096


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "max_message_bytes": MAX_MESSAGE_BYTES, "ping_interval": 0.3}


def sync_frame(sync_type: int, payload: bytes) -> bytes:
    return bytes([YMessageType.SYNC, sync_type]) + write_message(payload)


def update_from_elsewhere(text: str) -> bytes:
    """A valid update, but made on a document with another schema."""
    doc = Doc()
    doc.get("cells", type=Text).insert(0, text)
    return doc.get_update()


BAD_FRAMES = {
    "empty": b"",
    "unknown message type": b"\x07\x00\x01\x00",
    "unknown sync type": b"\x00\x09\x01\x00",
    "truncated length": b"\x00\x02\xff",
    "length past end": b"\x00\x02\x40abc",
    "undecodable update": sync_frame(YSyncMessageType.SYNC_UPDATE, b"\x05\x01\x02\x03garbage"),
    "undecodable step 2": sync_frame(YSyncMessageType.SYNC_STEP2, b"\xff\xff\xff\xff"),
    "bad state vector": sync_frame(YSyncMessageType.SYNC_STEP1, b"\x09\x09"),
    "awareness not json": b"\x01" + write_message(b"\x01\x05\x01\x03{{{"),
    "awareness truncated": b"\x01" + write_message(b"\x03\x05"),
    "awareness not an object": b"\x01" + write_message(b"\x01\x05\x01\x03[1]"),
}


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_malformed_frame_closes_only_its_connection(
    frame, make_notebook, connect, room_manager
):
    make_notebook("nb.ipynb", ["abcd"])
    good = await connect("nb.ipynb")
    bad = await connect("nb.ipynb")
    good.set_awareness({"user": {"name": "good"}})
    before = room_manager.rooms["nb.ipynb"].doc.get_update()
    bad.send_raw(frame)
    await bad.wait_closed()
    assert bad.close_code == 1002
    room = room_manager.rooms["nb.ipynb"]
    assert room.doc.get_update() == before
    assert len(room.peers) == 1
    # The other peer goes on editing, and a new peer joins normally.
    good.insert_text("cell-0", 4, "e")
    late = await connect("nb.ipynb")
    await late.wait_for(lambda r: r.source("cell-0") == "abcde")
    assert good.awareness.client_id in late.awareness.states


async def test_text_frame_closes_only_its_connection(make_notebook, connect):
    make_notebook("nb.ipynb", ["abcd"])
    good = await connect("nb.ipynb")
    bad = await connect("nb.ipynb")
    bad.send_raw("hello")
    await bad.wait_closed()
    assert bad.close_code == 1003
    good.insert_text("cell-0", 0, "!")
    await good.wait_for(lambda r: r.source("cell-0") == "!abcd")


async def test_oversized_frame_closes_only_its_connection(make_notebook, connect, room_manager):
    make_notebook("nb.ipynb", ["abcd"])
    good = await connect("nb.ipynb")
    bad = await connect("nb.ipynb")
    bad.insert_text("cell-0", 0, "x" * (MAX_MESSAGE_BYTES * 2))
    await bad.wait_closed()
    assert bad.close_code == 1009
    other = await connect("nb.ipynb")
    assert other.source("cell-0") == "abcd"
    good.insert_text("cell-0", 0, "ok ")
    await other.wait_for(lambda r: r.source("cell-0") == "ok abcd")


async def test_update_breaking_the_schema_is_undone(make_notebook, connect, room_manager):
    # pycrdt accepts this update: it is well formed, but declares the `cells` root as text,
    # so it would put strings among the cells. The room undoes it and drops the sender.
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    intruder = await connect("nb.ipynb")
    intruder.send_raw(sync_frame(YSyncMessageType.SYNC_UPDATE, update_from_elsewhere("zzz")))
    await intruder.wait_closed()
    assert intruder.close_code == 1002
    peer.insert_text("cell-0", 4, "!")
    late = await connect("nb.ipynb")
    await late.wait_for(lambda r: r.source("cell-0") == "abcd!")
    assert late.cell_ids() == ["cell-0"]
    await peer.wait_for(lambda r: r.cell_ids() == ["cell-0"])
    assert peer.notebook.get()["cells"][0]["source"] == "abcd!"
    await wait_for_file(path, ["abcd!"])
    assert room_manager.writer("nb.ipynb").last_error is None


async def test_keep_alive_pings_and_dead_peer_is_dropped(
    make_notebook, connect, server_url, token, room_manager
):
    make_notebook("nb.ipynb", ["abcd"])
    live = await connect("nb.ipynb")
    loop = asyncio.get_running_loop()
    # Blocking socket calls go to a thread: the server runs on this test's event loop.
    dead = await loop.run_in_executor(None, RawWebSocket, room_url(server_url, "nb.ipynb"), token)
    assert dead.status == 101

    def read_until_ping_or_close() -> list[int]:
        opcodes = []
        try:
            while OP_CLOSE not in opcodes:
                opcode, _ = dead.read_frame()
                opcodes.append(opcode)
        except (ConnectionError, TimeoutError):
            pass
        return opcodes

    # The dead peer reads but never answers pings: it gets pings, then is closed.
    opcodes = await loop.run_in_executor(None, read_until_ping_or_close)
    dead.close()
    assert OP_PING in opcodes
    assert OP_CLOSE in opcodes or opcodes[-1] == OP_PING
    await live.wait_for(lambda r: len(room_manager.rooms["nb.ipynb"].peers) == 1, timeout=5)
    # The live peer answers pings (its library does) and stays.
    await asyncio.sleep(1.0)
    assert live.connected
    live.insert_text("cell-0", 0, "!")
    await live.wait_for(lambda r: r.source("cell-0") == "!abcd")
