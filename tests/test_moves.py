"""A room tells its peers when its file is renamed or deleted (protocol.MOVED), over real
websockets: every peer follows a rename at once, with or without a kernel session."""

from __future__ import annotations

import json

import pytest
from pycrdt import write_message

from jupyter_crdt_sync.peer import CLOSE_NOTEBOOK_DELETED, CLOSE_PROTOCOL_ERROR
from jupyter_crdt_sync.protocol import MOVED

from .conftest import wait_for_file


async def rename(jp_fetch, old: str, new: str) -> None:
    await jp_fetch("api", "contents", old, method="PATCH", body=json.dumps({"path": new}))


async def test_a_renamed_text_file_moves_its_peers(jp_root_dir, connect, jp_fetch, room_manager):
    (jp_root_dir / "old.py").write_text("a = 1\n")
    first = await connect("old.py")
    second = await connect("old.py")
    await rename(jp_fetch, "old.py", "new.py")
    for peer in (first, second):
        await peer.wait_for(lambda r: r.moves == [{"type": "renamed", "path": "new.py"}])
        assert peer.path == "new.py" and peer.url.endswith("/api/crdtsync/room/new.py")
    assert list(room_manager.rooms) == ["new.py"]
    # The room goes on at its new path: edits reach the other peer and the new file.
    first.insert_file_text(6, "b = 2\n")
    await second.wait_for(lambda r: r.file_text() == "a = 1\nb = 2\n")
    path = jp_root_dir / "new.py"
    await second.wait_for(lambda r: path.read_text() == "a = 1\nb = 2\n")
    assert not (jp_root_dir / "old.py").exists()
    # A reconnect goes to the new path.
    await first.disconnect()
    await first.connect()
    assert first.file_text() == "a = 1\nb = 2\n"


async def test_a_renamed_folder_moves_each_room_to_its_own_path(
    jp_root_dir, make_notebook, connect, jp_fetch
):
    make_notebook("dir/nb.ipynb", ["x"])
    (jp_root_dir / "dir" / "notes.md").write_text("# notes\n")
    notebook = await connect("dir/nb.ipynb")
    notes = await connect("dir/notes.md")
    await rename(jp_fetch, "dir", "moved")
    await notebook.wait_for(lambda r: r.moves == [{"type": "renamed", "path": "moved/nb.ipynb"}])
    await notes.wait_for(lambda r: r.moves == [{"type": "renamed", "path": "moved/notes.md"}])
    notebook.insert_text("cell-0", 1, "y")
    await wait_for_file(jp_root_dir / "moved" / "nb.ipynb", ["xy"])


async def test_a_deleted_file_is_announced_before_the_room_closes(jp_root_dir, connect, jp_fetch):
    (jp_root_dir / "gone.txt").write_text("bye")
    peer = await connect("gone.txt")
    await jp_fetch("api", "contents", "gone.txt", method="DELETE")
    await peer.wait_closed()
    assert peer.moves == [{"type": "deleted", "path": "gone.txt"}]
    assert peer.close_code == CLOSE_NOTEBOOK_DELETED


async def test_a_notebook_renamed_to_a_text_file_closes_its_room(
    jp_root_dir, make_notebook, connect, jp_fetch, room_manager
):
    make_notebook("nb.ipynb", ["x"])
    peer = await connect("nb.ipynb")
    await rename(jp_fetch, "nb.ipynb", "nb.json")
    await peer.wait_closed()
    assert peer.moves == [{"type": "renamed", "path": "nb.json"}]
    # Opened again, it is the text file it now is.
    again = await connect("nb.json")
    assert json.loads(again.file_text())["cells"][0]["source"] in ("x", ["x"])


@pytest.mark.parametrize("payload", [b'{"type": "renamed", "path": "x"}', b"nonsense"])
async def test_a_peer_may_not_send_moves(payload, jp_root_dir, connect):
    (jp_root_dir / "a.txt").write_text("a")
    bad = await connect("a.txt")
    good = await connect("a.txt")
    bad.send_raw(bytes([MOVED]) + write_message(payload))
    await bad.wait_closed()
    assert bad.close_code == CLOSE_PROTOCOL_ERROR
    assert good.moves == []
    good.insert_file_text(1, "b")
    other = await connect("a.txt")
    await other.wait_for(lambda r: r.file_text() == "ab")
