"""A graceful stop of a real server process writes every room back first."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from jupyter_crdt_sync.client import RoomClient

from .conftest import file_sources, write_notebook
from .server_process import ServerProcess


def test_sigterm_writes_pending_edits(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = write_notebook(root / "first.ipynb", ["abcd"])
    second = write_notebook(root / "sub" / "second.ipynb", ["one", "two"])
    # Delays long enough that nothing is written unless the shutdown writes it.
    config = {"CRDTSync": {"save_delay": 600, "save_max_delay": 600, "eviction_delay": 600}}
    with ServerProcess(root, config=config) as server:

        async def edit() -> None:
            a = RoomClient(server.url, "first.ipynb", token=server.token)
            b = RoomClient(server.url, "sub/second.ipynb", token=server.token)
            await a.connect()
            await b.connect()
            a.insert_text("cell-0", 4, " edited")
            b.delete_cell("cell-0")
            watcher = RoomClient(server.url, "first.ipynb", token=server.token)
            await watcher.connect()
            await watcher.wait_for(lambda r: r.source("cell-0") == "abcd edited")
            other = RoomClient(server.url, "sub/second.ipynb", token=server.token)
            await other.connect()
            await other.wait_for(lambda r: r.cell_ids() == ["cell-1"])
            status = server.get_json("api/crdtsync/status")
            assert all(room["dirty"] for room in status["rooms"])
            # Peers stay connected while the server stops.
            assert server.terminate() == 0
            for client in (a, b, watcher, other):
                await client.disconnect()

        asyncio.run(edit())
        assert file_sources(first) == ["abcd edited"]
        assert file_sources(second) == ["two"]
        assert "closed 'first.ipynb' (server shutting down)" in server.log()


def test_sigint_without_a_tty_writes_every_room_and_exits(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = write_notebook(root / "first.ipynb", ["abcd"])
    second = write_notebook(root / "second.ipynb", ["one"])
    config = {"CRDTSync": {"save_delay": 600, "save_max_delay": 600, "eviction_delay": 600}}
    with ServerProcess(root, config=config) as server:

        async def edit_then_interrupt() -> float:
            a = RoomClient(server.url, "first.ipynb", token=server.token)
            b = RoomClient(server.url, "second.ipynb", token=server.token)
            await a.connect()
            await b.connect()
            a.insert_text("cell-0", 4, " edited")
            b.insert_text("cell-0", 3, " two")
            await asyncio.sleep(0.5)
            started = time.monotonic()
            assert server.interrupt(timeout=30) == 0
            elapsed = time.monotonic() - started
            for client in (a, b):
                await client.disconnect()
            return elapsed

        elapsed = asyncio.run(edit_then_interrupt())
        assert elapsed < 5, f"the server took {elapsed:.1f} s to stop after SIGINT"
        assert file_sources(first) == ["abcd edited"]
        assert file_sources(second) == ["one two"]
        assert "closed 'first.ipynb' (server shutting down)" in server.log()
