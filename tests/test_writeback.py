"""Write-back to the .ipynb: content, debounce, maximum delay, validity, atomicity."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import nbformat
import pytest
from pycrdt import Map

from .conftest import FAST_TIMINGS, file_sources, read_file, wait_for_file

SAVE_DELAY = 0.4
SAVE_MAX_DELAY = 1.2


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "save_delay": SAVE_DELAY, "save_max_delay": SAVE_MAX_DELAY}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    # Save hooks of the contents manager run for our writes as for any save.
    jp_server_config["FileContentsManager"] = {"pre_save_hook": "tests.test_writeback.stamp"}
    return jp_server_config


def stamp(model: dict[str, Any], **kwargs: Any) -> None:
    if model["type"] == "notebook":
        model["content"]["metadata"]["stamped_by_pre_save_hook"] = True


async def test_edits_reach_the_file_and_nothing_else_changes(make_notebook, connect):
    path = make_notebook("nb.ipynb", ["first\nline", "second"])
    original = read_file(path)
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-1", 6, " cell")
    new_id = peer.add_cell("# notes", cell_type="markdown")
    await wait_for_file(path, ["first\nline", "second cell", "# notes"])
    written = read_file(path)
    nbformat.validate(nbformat.from_dict(written))
    assert written["cells"][:1] == original["cells"][:1]
    assert written["cells"][1]["id"] == "cell-1"
    assert written["cells"][2]["id"] == new_id
    assert written["cells"][2]["cell_type"] == "markdown"
    # No kernelspec or language_info was made up for a notebook that had none.
    assert written["metadata"] == {"stamped_by_pre_save_hook": True}
    assert (written["nbformat"], written["nbformat_minor"]) == (4, 5)


async def test_non_ascii_edits_land_where_intended(make_notebook, connect):
    path = make_notebook("nb.ipynb", ["🍎é"])
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 1, "→")
    peer.insert_text("cell-0", 3, "🍐")
    await wait_for_file(path, ["🍎→é🍐"])


async def test_debounce_waits_for_quiet(make_notebook, connect, room_manager):
    path = make_notebook("nb.ipynb", [""])
    peer = await connect("nb.ipynb")
    writer = room_manager.writer("nb.ipynb")
    # Keystrokes closer together than the save delay, for less than the maximum delay.
    for char in "abcdef":
        peer.insert_text("cell-0", len(peer.source("cell-0")), char)
        await asyncio.sleep(SAVE_DELAY / 4)
    assert writer.saves == 0
    assert file_sources(path) == [""]
    await wait_for_file(path, ["abcdef"])
    await peer.wait_for(lambda _: writer.saves > 0)
    await asyncio.sleep(SAVE_DELAY * 2)
    assert writer.saves == 1


async def test_continuous_typing_reaches_the_disk_within_the_maximum_delay(
    make_notebook, connect, room_manager
):
    path = make_notebook("nb.ipynb", [""])
    peer = await connect("nb.ipynb")
    writer = room_manager.writer("nb.ipynb")
    loop = asyncio.get_running_loop()
    start = loop.time()
    seen_on_disk = []
    while loop.time() - start < SAVE_MAX_DELAY * 3:
        peer.insert_text("cell-0", len(peer.source("cell-0")), "x")
        await asyncio.sleep(SAVE_DELAY / 4)
        seen_on_disk.append(len(file_sources(path)[0]))
    # Typing never paused for the save delay, yet the file kept up.
    assert writer.saves >= 2
    assert max(seen_on_disk) > 0
    await wait_for_file(path, [peer.source("cell-0")])


async def test_no_write_when_nothing_changed(make_notebook, connect, room_manager):
    path = make_notebook("nb.ipynb", ["abcd"])
    before = path.stat().st_mtime_ns
    peer = await connect("nb.ipynb")
    writer = room_manager.writer("nb.ipynb")
    peer.insert_text("cell-0", 0, "x")
    peer.delete_text("cell-0", 0, 1)
    await asyncio.sleep(SAVE_MAX_DELAY + 0.3)
    await peer.disconnect()
    await asyncio.sleep(FAST_TIMINGS["eviction_delay"] + 0.3)
    assert room_manager.rooms == {}
    assert writer.saves == 0
    assert path.stat().st_mtime_ns == before


async def test_a_cell_nbformat_refuses_is_left_out_of_the_file_and_kept_in_the_room(
    make_notebook, connect, room_manager
):
    path = make_notebook("nb.ipynb", ["abcd", "efgh"])
    peer = await connect("nb.ipynb")
    # A peer writes something nbformat 4.5 forbids: a cell of an unknown type. The content
    # guard lets it through (a newer nbformat may have such cells); the writer cannot.
    cell: Map = peer.notebook.ycells[0]
    cell["cell_type"] = "spreadsheet"
    peer.insert_text("cell-1", 4, "!")
    # The rest of the notebook still reaches the file.
    await wait_for_file(path, ["efgh!"])
    writer = room_manager.writer("nb.ipynb")
    assert writer.last_error is not None
    assert "cell cell-0 is left out of the file (it stays in the room)" in writer.last_error
    assert list(writer.left_out) == ["cell-0"]
    (status,) = room_manager.status()
    assert status["left_out"] == ["cell-0"] and "cell-0" in status["save_error"]
    late = await connect("nb.ipynb")
    assert late.cell_ids() == ["cell-0", "cell-1"]
    # Once fixed, the file follows again and the error clears.
    cell["cell_type"] = "code"
    peer.insert_text("cell-0", 4, "!")
    await wait_for_file(path, ["abcd!", "efgh!"])
    # The file can be seen before the save that wrote it has returned: wait for it.
    assert await writer.save()
    assert writer.last_error is None and writer.left_out == {}


async def test_checkpoints_are_kept_by_the_contents_manager(make_notebook, connect, jp_serverapp):
    path = make_notebook("nb.ipynb", ["abcd"])
    contents_manager = jp_serverapp.contents_manager
    await contents_manager.create_checkpoint("nb.ipynb")
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 0, "new ")
    await wait_for_file(path, ["new abcd"])
    checkpoints = await contents_manager.list_checkpoints("nb.ipynb")
    assert len(checkpoints) == 1
    await contents_manager.restore_checkpoint(checkpoints[0]["id"], "nb.ipynb")
    assert file_sources(path) == ["abcd"]


async def test_readers_never_see_a_partial_file(make_notebook, connect, room_manager):
    path: Path = make_notebook("nb.ipynb", ["x" * 200_000])
    peer = await connect("nb.ipynb")
    writer = room_manager.writer("nb.ipynb")
    server_cell = room_manager.rooms["nb.ipynb"].notebook.ycells[0]
    failures: list[str] = []
    reads = 0
    stop = threading.Event()

    def read_continuously() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                json.loads(path.read_bytes())
                reads += 1
            except ValueError as exc:
                failures.append(str(exc))

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        for round_ in range(10):
            peer.insert_text("cell-0", 0, "y" * 100_000)
            expected = len(peer.source("cell-0"))
            await peer.wait_for(
                lambda _, expected=expected: len(str(server_cell["source"])) == expected
            )
            await writer.save()
            assert writer.saves == round_ + 1, writer.last_error
    finally:
        stop.set()
        reader.join()
    assert reads > 0
    assert failures == []
