"""Text files (`.py`, `.md`, ...) share a room like notebooks: jupyter-ydoc's YUnicode
layout, written back atomically, outside edits merged three-way, durable in the store;
binary files, directories and files too large are refused with 400 and no room opens."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from jupyter_ydoc import YUnicode
from pycrdt import Doc, Map
from tornado.httpclient import HTTPClientError

from jupyter_crdt_sync.client import RoomClient

from .conftest import FAST_TIMINGS
from .server_process import ServerProcess
from .test_auth import PNG_BYTES


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    # A long save delay: the save-now test sees its own write, not the debounced one.
    return {**FAST_TIMINGS, "file_check_interval": 0.2, "max_text_file_bytes": 1000}


async def wait_for_text(path: Path, expected: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while path.read_text(encoding="utf-8") != expected:
        if loop.time() > deadline:
            raise AssertionError(f"file holds {path.read_text()!r}, expected {expected!r}")
        await asyncio.sleep(0.05)


def edit_in_place(path: Path, text: str) -> None:
    """Rewrite the file as an editor does, moving its modification time for sure."""
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))


async def test_two_peers_type_into_a_python_file_and_it_is_written_back(
    jp_root_dir, connect, room_manager
):
    path = jp_root_dir / "pkg" / "mod.py"
    path.parent.mkdir()
    path.write_text("x = 1\n", encoding="utf-8")
    first = await connect("pkg/mod.py")
    second = await connect("pkg/mod.py")
    assert first.file_text() == second.file_text() == "x = 1\n"
    # jupyter-ydoc reads the document as JupyterLab's file editor lays it out.
    doc = Doc()
    doc.apply_update(first.doc.get_update())
    assert YUnicode(doc).get() == "x = 1\n"

    first.insert_file_text(6, "y = 'é🍎'\n")
    second.insert_file_text(0, "# header\n")
    expected = "# header\nx = 1\ny = 'é🍎'\n"
    for peer in (first, second):
        await peer.wait_for(lambda r: r.file_text() == expected)
    await wait_for_text(path, expected)
    room = room_manager.rooms["pkg/mod.py"]
    assert room.is_text
    # Written back as the text it is: no JSON, no notebook.
    assert path.read_bytes() == expected.encode()


async def test_status_lists_a_text_room(jp_root_dir, connect, jp_fetch):
    (jp_root_dir / "notes.md").write_text("# notes\n", encoding="utf-8")
    peer = await connect("notes.md")
    peer.insert_file_text(8, "more\n")
    await wait_for_text(jp_root_dir / "notes.md", "# notes\nmore\n")
    response = await jp_fetch("api", "crdtsync", "status")
    (entry,) = [r for r in json.loads(response.body)["rooms"] if r["path"] == "notes.md"]
    assert entry["type"] == "file"
    assert entry["peers"] == 1
    assert entry["dirty"] is False
    assert entry["last_saved"] is not None
    assert entry["save_error"] is None


async def test_outside_edit_merges_with_concurrent_typing(jp_root_dir, connect):
    path = jp_root_dir / "script.py"
    path.write_text("def f():\n    return 1\n", encoding="utf-8")
    peer = await connect("script.py")
    # The room types at the end while an editor changes the start of the file.
    peer.insert_file_text(len("def f():\n    return 1\n"), "print(f())\n")
    edit_in_place(path, "def f(a=2):\n    return 1\n")
    expected = "def f(a=2):\n    return 1\nprint(f())\n"
    await peer.wait_for(lambda r: r.file_text() == expected, timeout=10)
    await wait_for_text(path, expected)


async def test_outside_edit_of_non_ascii_text_lands_in_place(jp_root_dir, connect):
    path = jp_root_dir / "emoji.txt"
    path.write_text("🍎🍎 apples\n", encoding="utf-8")
    peer = await connect("emoji.txt")
    peer.insert_file_text(0, "é ")
    edit_in_place(path, "🍎🍎 pears\n")
    await peer.wait_for(lambda r: r.file_text() == "é 🍎🍎 pears\n", timeout=10)
    await wait_for_text(path, "é 🍎🍎 pears\n")


async def test_save_now_writes_a_text_file(jp_root_dir, connect, jp_fetch):
    path = jp_root_dir / "a.txt"
    path.write_text("a", encoding="utf-8")
    peer = await connect("a.txt")
    peer.insert_file_text(1, "b")
    # Saved at once (no debounce), once the room has this window's edit.
    body = json.dumps({"state_vector": base64.b64encode(peer.doc.get_state()).decode()})
    response = await jp_fetch("api", "crdtsync", "save", "a.txt", method="POST", body=body)
    assert json.loads(response.body)["type"] == "file"
    assert path.read_text() == "ab"


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("image.png", lambda p: p.write_bytes(PNG_BYTES)),
        ("latin1.txt", lambda p: p.write_bytes("café".encode("latin-1"))),
        ("folder", lambda p: p.mkdir()),
        ("big.txt", lambda p: p.write_text("x" * 1001)),
    ],
)
async def test_files_that_are_not_text_are_refused_with_400(
    name, make, jp_root_dir, connect, room_manager
):
    target = jp_root_dir / name
    make(target)
    before = target.read_bytes() if target.is_file() else None
    with pytest.raises(HTTPClientError) as refused:
        await connect(name)
    assert refused.value.code == 400
    assert name not in room_manager.rooms
    if before is not None:
        assert target.read_bytes() == before


async def test_cells_of_a_text_file_are_not_executed(jp_root_dir, connect, jp_fetch):
    (jp_root_dir / "run.py").write_text("print(1)\n")
    await connect("run.py")
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(
            "api", "crdtsync", "execute", "run.py", method="POST", body='{"cell_id": "x"}'
        )
    assert refused.value.code == 400


async def test_an_empty_file_reopens_from_its_history(jp_root_dir, connect, room_manager):
    path = jp_root_dir / "empty.txt"
    path.write_text("", encoding="utf-8")
    peer = await connect("empty.txt")
    peer.insert_file_text(0, "typed")
    await wait_for_text(path, "typed")
    await peer.disconnect()
    # Evicted, reopened from the store: the old replica still belongs to its lineage.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while "empty.txt" in room_manager.rooms:
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    peer.insert_file_text(5, " offline")
    await peer.connect()
    await peer.wait_for(lambda r: r.file_text() == "typed offline")
    await wait_for_text(path, "typed offline")


def test_kill_9_loses_no_text_edit_a_peer_has_seen(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = root / "notes.md"
    path.write_text("# notes\n", encoding="utf-8")
    config = {"CRDTSync": {"save_delay": 600, "save_max_delay": 600, "eviction_delay": 600}}
    server = ServerProcess(root, config=config).start()

    async def before_crash() -> RoomClient:
        writer = RoomClient(server.url, "notes.md", token=server.token)
        watcher = RoomClient(server.url, "notes.md", token=server.token)
        await writer.connect()
        await watcher.connect()
        writer.insert_file_text(8, "seen by a peer\n")
        await watcher.wait_for(lambda r: r.file_text() == "# notes\nseen by a peer\n")
        server.kill()
        await writer.wait_closed()
        await watcher.wait_closed()
        await writer.disconnect()
        return writer

    writer = asyncio.run(before_crash())
    assert path.read_text() == "# notes\n", "the file was not written before the crash"
    # Meanwhile an editor changes the file: merged into the history at restart.
    path.write_text("# my notes\n", encoding="utf-8")
    server = ServerProcess(
        root, config=config, data_dir=server.data_dir, token=server.token
    ).start()
    try:

        async def after_restart() -> None:
            fresh = RoomClient(server.url, "notes.md", token=server.token)
            await fresh.connect()
            assert fresh.file_text() == "# my notes\nseen by a peer\n"
            # The old window reconnects with its replica: nothing is duplicated.
            writer.url = fresh.url
            await writer.connect()
            await writer.wait_for(lambda r: r.file_text() == "# my notes\nseen by a peer\n")
            await fresh.disconnect()
            await writer.disconnect()

        asyncio.run(after_restart())
        assert server.terminate() == 0
        assert path.read_text() == "# my notes\nseen by a peer\n"
    finally:
        server.kill()


async def test_the_save_state_is_in_the_document_for_every_window(
    jp_root_dir, connect, room_manager, monkeypatch, jp_serverapp
):
    """`state.dirty` follows the server's writer (JupyterLab's models show it as the
    modified dot), `state.save_error` its last error: the same in every window."""
    path = jp_root_dir / "s.py"
    path.write_text("a")
    first = await connect("s.py")
    second = await connect("s.py")
    state = second.doc.get("state", type=Map)
    assert state.get("dirty") is False
    # A window marks its edit dirty, as JupyterLab does; the server clears it once written.
    with first.doc.transaction():
        first.insert_file_text(1, "b")
        first.doc.get("state", type=Map)["dirty"] = True
    await wait_for_text(path, "ab")
    await second.wait_for(lambda r: state.get("dirty") is False and r.file_text() == "ab")
    # A change nobody marked (a script, the kernel actor) is marked by the server.
    real_save = jp_serverapp.contents_manager.save

    def full_disk(model: Any, save_path: str) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jp_serverapp.contents_manager, "save", full_disk)
    first.insert_file_text(2, "c")
    await second.wait_for(
        lambda r: state.get("dirty") is True and "No space left" in (state.get("save_error") or "")
    )
    monkeypatch.setattr(jp_serverapp.contents_manager, "save", real_save)
    await wait_for_text(path, "abc", timeout=15)
    await second.wait_for(lambda r: state.get("dirty") is False and state.get("save_error") is None)
