"""Edits made to the .ipynb outside the room while it is open are merged in, not lost, and
the room's own edits made meanwhile survive; deleting or renaming the file is followed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .conftest import FAST_TIMINGS, file_sources, read_file, wait_for_file, write_notebook


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "file_check_interval": 0.2}


def edit_like_a_text_editor(path: Path, change: Any) -> None:
    """Rewrite the file in place, as many editors do (no rename)."""
    notebook = json.loads(path.read_text())
    change(notebook)
    with open(path, "w") as file:
        json.dump(notebook, file, indent=1)
    # Make sure the modification time moves even on coarse-grained filesystems.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))


def set_source(index: int, text: str) -> Any:
    def change(notebook: dict[str, Any]) -> None:
        notebook["cells"][index]["source"] = text

    return change


async def test_text_editor_edit_merges_with_concurrent_room_edits(make_notebook, connect):
    path = make_notebook("nb.ipynb", ["x = 1\ny = 2\n", "print(x)"])
    peer = await connect("nb.ipynb")
    # The room edits the end of the first cell while an editor changes its start.
    peer.insert_text("cell-0", len("x = 1\ny = 2\n"), "z = 3\n")
    edit_like_a_text_editor(path, set_source(0, "x = 10\ny = 2\n"))
    await peer.wait_for(lambda r: r.source("cell-0") == "x = 10\ny = 2\nz = 3\n", timeout=10)
    assert peer.cell_ids() == ["cell-0", "cell-1"]
    # Both sides end up in the file.
    await wait_for_file(path, ["x = 10\ny = 2\nz = 3\n", "print(x)"])


async def test_cells_added_and_deleted_outside(make_notebook, connect):
    path = make_notebook("nb.ipynb", ["first", "second", "third"])
    peer = await connect("nb.ipynb")

    def change(notebook: dict[str, Any]) -> None:
        added = nbformat.v4.new_markdown_cell("# added outside")
        added["id"] = "outside"
        cells = notebook["cells"]
        notebook["cells"] = [cells[0], added, cells[2]]  # "second" deleted

    edit_like_a_text_editor(path, change)
    await peer.wait_for(lambda r: r.cell_ids() == ["cell-0", "outside", "cell-2"], timeout=10)
    assert peer.source("outside") == "# added outside"
    assert peer.cells()[1]["cell_type"] == "markdown"


class TestRoomEditsNotYetWritten:
    @pytest.fixture
    def crdtsync_config(self) -> dict[str, Any]:
        # The room's edits stay in memory long enough for the file to change under them.
        return {**FAST_TIMINGS, "file_check_interval": 0.2, "save_delay": 2.0}

    async def test_outside_deletion_of_a_cell_edited_in_the_room_keeps_it(
        self, make_notebook, connect, room_manager, server_log
    ):
        path = make_notebook("nb.ipynb", ["keep", "edited in the room"])
        peer = await connect("nb.ipynb")
        peer.insert_text("cell-1", 0, "!")
        server_cell = room_manager.rooms["nb.ipynb"].notebook.ycells[1]
        await peer.wait_for(lambda _: str(server_cell["source"]).startswith("!"))

        def delete_second(notebook: dict[str, Any]) -> None:
            del notebook["cells"][1]

        edit_like_a_text_editor(path, delete_second)
        await peer.wait_for(lambda _: "kept because the room changed them" in server_log.text)
        assert peer.cell_ids() == ["cell-0", "cell-1"]
        await wait_for_file(path, ["keep", "!edited in the room"])


async def test_save_through_the_contents_api_is_merged(make_notebook, connect, jp_fetch):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    model = json.loads((await jp_fetch("api", "contents", "nb.ipynb")).body)
    model["content"]["cells"][0]["source"] = "abcd, saved by another client"
    body = json.dumps({"type": "notebook", "format": "json", "content": model["content"]})
    await jp_fetch("api", "contents", "nb.ipynb", method="PUT", body=body)
    await peer.wait_for(lambda r: r.source("cell-0") == "abcd, saved by another client")
    await wait_for_file(path, ["abcd, saved by another client"])


async def test_nbconvert_inplace_is_merged(make_notebook, connect, jp_root_dir):
    path = make_notebook("nb.ipynb", ["1 + 1"])
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 0, "# room edit\n")
    await wait_for_file(path, ["# room edit\n1 + 1"])
    # nbconvert rewrites the file (here: clearing metadata, adding a kernelspec).
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nbconvert",
        "--to",
        "notebook",
        "--inplace",
        "--ClearMetadataPreprocessor.enabled=True",
        str(path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    await asyncio.sleep(0.6)
    assert peer.source("cell-0") == "# room edit\n1 + 1"
    assert peer.cell_ids() == ["cell-0"]
    assert file_sources(path) == ["# room edit\n1 + 1"]


async def test_git_checkout_of_an_older_version(make_notebook, connect, jp_root_dir):
    path = make_notebook("nb.ipynb", ["v1"])
    old = path.read_bytes()
    peer = await connect("nb.ipynb")
    peer.set_source("cell-0", "v2")
    await wait_for_file(path, ["v2"])
    # git writes the old blob to a new file and renames it into place.
    tmp = path.with_name(".nb.ipynb.git-tmp")
    tmp.write_bytes(old)
    os.replace(tmp, path)
    await peer.wait_for(lambda r: r.source("cell-0") == "v1", timeout=10)
    assert peer.cell_ids() == ["cell-0"]


async def test_own_writes_are_not_taken_for_outside_edits(
    make_notebook, connect, room_manager, server_log
):
    path = make_notebook("nb.ipynb", ["a"])
    peer = await connect("nb.ipynb")
    for char in "bcdefgh":
        peer.insert_text("cell-0", len(peer.source("cell-0")), char)
        await asyncio.sleep(0.15)
    await wait_for_file(path, ["abcdefgh"])
    await asyncio.sleep(0.5)
    assert "merged outside edits" not in server_log.text
    assert peer.source("cell-0") == "abcdefgh"


async def test_unreadable_outside_write_keeps_the_room(make_notebook, connect, server_log):
    path = make_notebook("nb.ipynb", ["safe"])
    peer = await connect("nb.ipynb")
    path.write_text("{ half written")
    await asyncio.sleep(0.8)
    assert peer.source("cell-0") == "safe"
    assert "cannot be read as a notebook" in server_log.text
    # Once the file is a notebook again, it is merged as usual.
    write_notebook(path, ["fixed"])
    await peer.wait_for(lambda r: r.source("cell-0") == "fixed", timeout=10)


async def test_deleted_file_closes_the_room(make_notebook, connect, room_manager):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    path.unlink()
    await peer.wait_closed(timeout=10)
    assert peer.close_code == 4404
    assert "nb.ipynb" not in room_manager.rooms
    assert not path.exists(), "the closing room must not write the deleted file back"


async def test_delete_through_the_contents_api_closes_the_room(
    make_notebook, connect, room_manager, jp_fetch
):
    make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    await jp_fetch("api", "contents", "nb.ipynb", method="DELETE")
    await peer.wait_closed(timeout=10)
    assert peer.close_code == 4404


async def test_rename_through_the_contents_api_moves_the_room_and_its_peers(
    make_notebook, connect, room_manager, jp_fetch, jp_root_dir
):
    make_notebook("old.ipynb", ["abcd"])
    peer = await connect("old.ipynb")
    other = await connect("old.ipynb")
    body = json.dumps({"path": "new name.ipynb"})
    await jp_fetch("api", "contents", "old.ipynb", method="PATCH", body=body)
    assert list(room_manager.rooms) == ["new name.ipynb"]
    # The peers stay connected and go on editing; the renamed file gets the edits.
    peer.insert_text("cell-0", 4, "!")
    await other.wait_for(lambda r: r.source("cell-0") == "abcd!")
    assert peer.connected and other.connected
    await wait_for_file(jp_root_dir / "new name.ipynb", ["abcd!"])
    assert not (jp_root_dir / "old.ipynb").exists()
    # A window that opens the new path joins the same room.
    late = await connect("new name.ipynb")
    assert late.source("cell-0") == "abcd!"
    assert read_file(jp_root_dir / "new name.ipynb")["cells"][0]["id"] == "cell-0"


@pytest.mark.parametrize("crdtsync_config", [{**FAST_TIMINGS, "file_check_interval": 0.001}])
async def test_a_rename_is_not_taken_for_a_deletion_by_the_file_check(
    make_notebook, connect, room_manager, jp_fetch, crdtsync_config
):
    # The file check runs all the time here: it sees the old path gone before the rename
    # event has moved the room (a JupyterLab window renaming the notebook got 4404).
    make_notebook("a.ipynb", ["abcd"])
    peer = await connect("a.ipynb")
    names = ["a.ipynb", "b.ipynb"]
    for number in range(10):
        body = json.dumps({"path": names[(number + 1) % 2]})
        await jp_fetch("api", "contents", names[number % 2], method="PATCH", body=body)
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.5)
    assert peer.connected, f"closed with {peer.close_code}"
    assert list(room_manager.rooms) == ["a.ipynb"]


@pytest.mark.parametrize("crdtsync_config", [{**FAST_TIMINGS, "save_delay": 0.5}])
async def test_a_change_waiting_for_its_write_does_not_bring_a_deleted_file_back(
    make_notebook, connect, jp_fetch, jp_root_dir, room_manager, crdtsync_config
):
    make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 4, "!")
    while not room_manager.writer("nb.ipynb").dirty:
        await asyncio.sleep(0.01)
    await jp_fetch("api", "contents", "nb.ipynb", method="DELETE")
    await peer.wait_closed(timeout=10)
    await asyncio.sleep(1.5)  # past the save delay
    assert not (jp_root_dir / "nb.ipynb").exists()
