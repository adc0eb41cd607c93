"""Room lifetime: slow peers, eviction after the grace period, memory released, status."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

from jupyter_crdt_sync.client import room_url

from .conftest import FAST_TIMINGS, file_sources, wait_for_file, write_notebook
from .raw_websocket import RawWebSocket

# Above what a peer that keeps up has queued when a commit releases a batch of edits.
PEER_BUDGET = 4 * 1024 * 1024


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "peer_max_pending_bytes": PEER_BUDGET, "eviction_delay": 0.3}


async def test_peer_that_never_reads_does_not_stall_the_others(
    make_notebook, connect, server_url, token, room_manager
):
    make_notebook("nb.ipynb", [""])
    writer = await connect("nb.ipynb")
    reader = await connect("nb.ipynb")
    loop = asyncio.get_running_loop()
    stuck = await loop.run_in_executor(
        None, lambda: RawWebSocket(room_url(server_url, "nb.ipynb"), token, receive_buffer=4096)
    )
    room = room_manager.rooms["nb.ipynb"]
    assert len(room.peers) == 3
    # Far more than the socket buffers of the stuck peer and its budget can absorb.
    chunk = "x" * 32 * 1024
    edits = 640
    for _ in range(edits):
        writer.insert_text("cell-0", 0, chunk)
        await asyncio.sleep(0.001)
    expected = len(chunk) * edits
    await reader.wait_for(lambda r: len(r.source("cell-0")) == expected, timeout=30)
    assert reader.connected and writer.connected
    # The stuck peer was cut off once its queue passed the budget; memory stays bounded.
    await reader.wait_for(lambda r: len(room.peers) == 2, timeout=10)
    assert all(peer.pending_bytes <= PEER_BUDGET for peer in room.peers)
    stuck.close()
    # It may come back and catch up.
    again = await connect("nb.ipynb")
    assert len(again.source("cell-0")) == expected


async def test_room_is_evicted_after_grace_period_and_memory_released(
    make_notebook, connect, room_manager, jp_root_dir
):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    room = room_manager.rooms["nb.ipynb"]
    doc_ref = weakref.ref(room.doc)
    peer.insert_text("cell-0", 4, "!")
    # The document must be freed by reference counting, at eviction: no reference cycle
    # may hold the room. The cycle collector is kept out so that it cannot hide one.
    gc.collect()
    gc.disable()
    try:
        await peer.disconnect()
        del room
        await asyncio.sleep(0.8)
        assert room_manager.rooms == {}
        assert doc_ref() is None, "the evicted room's document is still referenced"
    finally:
        gc.enable()
    assert file_sources(path) == ["abcd!"]


async def test_rejoining_within_grace_period_keeps_the_room(make_notebook, connect, room_manager):
    make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    room = room_manager.rooms["nb.ipynb"]
    await peer.disconnect()
    await asyncio.sleep(0.05)
    await peer.connect()
    await asyncio.sleep(0.6)
    assert room_manager.rooms["nb.ipynb"] is room


async def test_join_during_eviction_gets_the_saved_content(make_notebook, connect, room_manager):
    make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 0, ">")
    await peer.disconnect()
    # Join as eviction runs, repeatedly: every join sees the edit, whichever room it gets.
    for _ in range(20):
        other = await connect("nb.ipynb")
        assert other.source("cell-0") == ">abcd"
        assert other.cell_ids() == ["cell-0"]
        await other.disconnect()
        await asyncio.sleep(0.05)


async def test_status_lists_rooms(make_notebook, connect, jp_fetch):
    make_notebook("a.ipynb", ["one", "two"])
    make_notebook("sub/b.ipynb", ["three"])
    a1 = await connect("a.ipynb")
    await connect("a.ipynb")
    await connect("sub/b.ipynb")
    a1.insert_text("cell-0", 0, "x")
    response = await jp_fetch("api", "crdtsync", "status")
    import json

    status = json.loads(response.body)
    from jupyter_crdt_sync import __version__

    assert status["version"] == __version__
    rooms = {room["path"]: room for room in status["rooms"]}
    assert set(rooms) == {"a.ipynb", "sub/b.ipynb"}
    assert rooms["a.ipynb"]["peers"] == 2
    assert rooms["a.ipynb"]["cells"] == 2
    assert rooms["sub/b.ipynb"]["cells"] == 1
    assert rooms["a.ipynb"]["doc_bytes"] > 0
    assert rooms["a.ipynb"]["kernel"] is None
    assert rooms["a.ipynb"]["widgets"] == 0
    for room in rooms.values():
        assert set(room) >= {
            "path",
            "peers",
            "cells",
            "doc_bytes",
            "dirty",
            "last_saved",
            "kernel",
            "widgets",
        }
    # Written after save_delay; the write itself runs on worker threads (notebook_save.py).
    for _ in range(100):
        await asyncio.sleep(0.1)
        response = await jp_fetch("api", "crdtsync", "status")
        rooms = {room["path"]: room for room in json.loads(response.body)["rooms"]}
        if rooms["a.ipynb"]["last_saved"] is not None:
            break
    assert rooms["a.ipynb"]["dirty"] is False
    assert rooms["a.ipynb"]["last_saved"] is not None
    assert rooms["sub/b.ipynb"]["last_saved"] is None


async def wait_evicted(room_manager: Any, path: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while path in room_manager.rooms:
        assert loop.time() < deadline, f"room {path!r} was not evicted"
        await asyncio.sleep(0.05)


async def test_reconnecting_after_eviction_merges_offline_edits(
    make_notebook, connect, room_manager
):
    path = make_notebook("nb.ipynb", ["abcd", "efgh"])
    window = await connect("nb.ipynb")
    await window.disconnect()
    await wait_evicted(room_manager, "nb.ipynb")
    # Offline, with a copy of the evicted room's history, as a browser tab would be.
    window.insert_text("cell-1", 4, "!")
    await window.connect()
    other = await connect("nb.ipynb")
    await other.wait_for(lambda r: r.source("cell-1") == "efgh!")
    for peer in (window, other):
        assert peer.cell_ids() == ["cell-0", "cell-1"]
    await wait_for_file(path, ["abcd", "efgh!"])


async def test_peer_must_start_with_its_state_vector(make_notebook, connect, room_manager):
    from pycrdt import Doc, Text

    from jupyter_crdt_sync.protocol import create_update_message

    make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    # A raw client that skips sync step 1 and sends an update straight away.
    raw = RoomClientWithoutHandshake(peer.url, peer._headers)
    doc = Doc()
    doc.get("t", type=Text).insert(0, "x")
    await raw.open()
    raw.send(create_update_message(doc.get_update()))
    assert await raw.close_code() == 1002
    assert peer.source("cell-0") == "abcd"


class RoomClientWithoutHandshake:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers

    async def open(self) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        self.connection = await websocket_connect(HTTPRequest(self.url, headers=self.headers))

    def send(self, frame: bytes) -> None:
        self.connection.write_message(frame, binary=True)

    async def close_code(self) -> int | None:
        while await self.connection.read_message() is not None:
            pass
        return self.connection.close_code


async def test_file_changed_while_closed_is_merged_into_the_history(
    make_notebook, connect, room_manager, jp_root_dir
):
    # The file edited while no room was open is merged into the stored history: windows
    # holding that history reconnect and see both their offline edit and the file's.
    make_notebook("nb.ipynb", ["abcd", "efgh"])
    window = await connect("nb.ipynb")
    await window.disconnect()
    await wait_evicted(room_manager, "nb.ipynb")
    write_notebook(jp_root_dir / "nb.ipynb", ["abcd changed on disk", "efgh"])
    window.insert_text("cell-1", 0, "offline ")
    await window.connect()
    await window.wait_for(lambda r: r.source("cell-0") == "abcd changed on disk")
    assert window.cell_ids() == ["cell-0", "cell-1"]
    fresh = await connect("nb.ipynb")
    await fresh.wait_for(lambda r: r.source("cell-1") == "offline efgh")
    assert [fresh.source(c) for c in fresh.cell_ids()] == ["abcd changed on disk", "offline efgh"]
    await wait_for_file(jp_root_dir / "nb.ipynb", ["abcd changed on disk", "offline efgh"])


async def test_a_held_room_outlives_its_peers(make_notebook, connect, room_manager):
    path = make_notebook("nb.ipynb", ["abcd"])
    async with room_manager.hold("nb.ipynb") as room:
        peer = await connect("nb.ipynb")
        await peer.disconnect()
        await asyncio.sleep(0.8)
        assert room_manager.rooms["nb.ipynb"] is room
        # Server-side work edits the document with nobody connected.
        source = room.notebook.ycells[0]["source"]
        source.insert(4, " (headless)")
    await wait_evicted(room_manager, "nb.ipynb")
    assert file_sources(path) == ["abcd (headless)"]
