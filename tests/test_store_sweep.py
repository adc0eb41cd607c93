"""Stored histories of notebooks that disappeared while no room had them open are dropped;
those of notebooks still on disk, open rooms and histories kept aside as corrupt stay."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .conftest import FAST_TIMINGS


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "forget_missing_interval": 0.3}


async def open_and_evict(connect: Any, room_manager: Any, path: str) -> None:
    peer = await connect(path)
    peer.insert_text("cell-0", 0, "x")
    await asyncio.sleep(0.2)
    await peer.disconnect()
    for _ in range(100):
        if path not in room_manager.rooms:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} was not evicted")


async def stored_paths(room_manager: Any) -> set[str]:
    return set(await room_manager.store.paths())


async def wait_until_forgotten(room_manager: Any, path: str) -> None:
    for _ in range(100):
        if path not in await stored_paths(room_manager):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the history of {path} was kept")


async def test_histories_of_vanished_notebooks_are_forgotten(
    make_notebook, connect, room_manager, server_log
):
    kept = make_notebook("kept.ipynb", ["a"])
    gone = make_notebook("sub/gone.ipynb", ["b"])
    make_notebook("open.ipynb", ["c"])
    for path in ("kept.ipynb", "sub/gone.ipynb", "open.ipynb"):
        await open_and_evict(connect, room_manager, path)
    still_open = await connect("open.ipynb")
    await room_manager.store.move_aside("kept.ipynb")
    await open_and_evict(connect, room_manager, "kept.ipynb")
    assert await stored_paths(room_manager) == {
        "kept.ipynb",
        "kept.ipynb.corrupt",
        "sub/gone.ipynb",
        "open.ipynb",
    }
    # Deleted behind Jupyter's back, while no room has it open.
    gone.unlink()
    await wait_until_forgotten(room_manager, "sub/gone.ipynb")
    assert await stored_paths(room_manager) == {"kept.ipynb", "kept.ipynb.corrupt", "open.ipynb"}
    assert "forgot the stored history of 'sub/gone.ipynb'" in server_log.text
    assert kept.exists() and still_open.connected


async def test_a_notebook_that_returns_opens_from_its_file(make_notebook, connect, room_manager):
    path = make_notebook("nb.ipynb", ["first"])
    await open_and_evict(connect, room_manager, "nb.ipynb")
    content = path.read_bytes()
    path.unlink()
    await wait_until_forgotten(room_manager, "nb.ipynb")
    path.write_bytes(content)
    peer = await connect("nb.ipynb")
    assert peer.source("cell-0") == "xfirst"
