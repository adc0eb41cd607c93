"""A writer that never dies: whatever the document holds (history from before the content
guard, a server-side bug) or the contents manager throws, the file keeps being written
with what can be written, the cause is named once in the log and in the status, writing
resumes by itself, and the final write at eviction always runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Map

from .conftest import FAST_TIMINGS, file_sources, read_file, wait_for_file


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "eviction_delay": 0.3}


def server_cell(room_manager: Any, index: int) -> Map:
    return room_manager.rooms["nb.ipynb"].notebook.ycells[index]


# Damage that reaches the document without passing the content guard (the room's own
# transactions are trusted): the examples of a writer that died.
DAMAGE: dict[str, Callable[[Any], None]] = {
    "cell metadata is an int": lambda rm: server_cell(rm, 0).__setitem__("metadata", 3),
    "execution_count is a string": lambda rm: server_cell(rm, 0).__setitem__(
        "execution_count", "3"
    ),
    "output_type bogus": lambda rm: server_cell(rm, 0)["outputs"].append(
        Map({"output_type": "bogus"})
    ),
}


@pytest.mark.parametrize("name", DAMAGE)
async def test_a_damaged_cell_is_left_out_and_the_rest_is_written(
    name, make_notebook, connect, room_manager, server_log
):
    path = make_notebook("nb.ipynb", ["abcd", "efgh"])
    peer = await connect("nb.ipynb")
    DAMAGE[name](room_manager)
    peer.insert_text("cell-1", 4, "!")
    await wait_for_file(path, ["efgh!"])
    (status,) = room_manager.status()
    assert status["left_out"] == ["cell-0"]
    assert "cell cell-0 is left out of the file" in status["save_error"]
    # Named once in the log, however often the writer tried.
    peer.insert_text("cell-1", 5, "?")
    await wait_for_file(path, ["efgh!?"])
    assert server_log.text.count("cell cell-0 is left out of the file") == 1
    assert len(room_manager.rooms["nb.ipynb"].notebook.ycells) == 2


async def test_meta_without_nbformat_keeps_the_files_version(make_notebook, connect, room_manager):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    room_manager.rooms["nb.ipynb"].doc.get("meta", type=Map).pop("nbformat")
    peer.insert_text("cell-0", 4, "!")
    await wait_for_file(path, ["abcd!"])
    assert read_file(path)["nbformat"] == 4
    assert "nbformat version is not valid" in room_manager.status()[0]["save_error"]


async def test_a_failing_contents_manager_is_retried_and_the_final_write_runs(
    make_notebook, connect, room_manager, jp_serverapp, monkeypatch
):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    contents_manager = jp_serverapp.contents_manager
    failures = {"left": 3}
    real_save = contents_manager.save

    def flaky_save(model: Any, save_path: str) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("disk on fire")
        return real_save(model, save_path)

    monkeypatch.setattr(contents_manager, "save", flaky_save)
    peer.insert_text("cell-0", 4, "!")
    writer = room_manager.writer("nb.ipynb")
    while writer.last_error is None:
        await asyncio.sleep(0.02)
    assert "disk on fire" in writer.last_error
    assert "disk on fire" in room_manager.status()[0]["save_error"]
    # It resumes by itself once the contents manager works again.
    await wait_for_file(path, ["abcd!"], timeout=15)
    # The file is visible before the save that made it returns and clears the error.
    for _ in range(100):
        if writer.last_error is None:
            break
        await asyncio.sleep(0.02)
    assert writer.last_error is None
    # A failure just before eviction: the final write still runs at close.
    failures["left"] = 1
    peer.insert_text("cell-0", 5, "?")
    await peer.disconnect()
    while "nb.ipynb" in room_manager.rooms:
        await asyncio.sleep(0.05)
    assert file_sources(path) == ["abcd!?"]
