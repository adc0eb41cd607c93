"""Nothing is lost when the server is killed, or when the disk is full: real server
processes, a real SQLite store, kill -9."""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path
from typing import Any

from jupyter_crdt_sync.client import RoomClient

from .conftest import file_sources, write_notebook
from .server_process import ServerProcess

# Long enough that the file is not written while the test runs: only the store keeps edits.
NO_WRITE_BACK = {"save_delay": 600, "save_max_delay": 600, "eviction_delay": 600}


def restart(server: ServerProcess, config: dict[str, Any]) -> ServerProcess:
    """A new server on the same notebooks and the same store, as after a crash."""
    return ServerProcess(
        server.root_dir, config=config, data_dir=server.data_dir, token=server.token
    ).start()


def test_kill_9_loses_no_edit_a_peer_has_seen(tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = write_notebook(root / "nb.ipynb", ["abcd", "efgh"])
    config = {"CRDTSync": NO_WRITE_BACK}
    server = ServerProcess(root, config=config).start()

    async def before_crash() -> tuple[RoomClient, RoomClient]:
        writer = RoomClient(server.url, "nb.ipynb", token=server.token)
        watcher = RoomClient(server.url, "nb.ipynb", token=server.token)
        await writer.connect()
        await watcher.connect()
        writer.insert_text("cell-0", 4, " seen by a peer")
        new_cell = writer.add_cell("a new cell")
        await watcher.wait_for(
            lambda r: r.source("cell-0") == "abcd seen by a peer" and new_cell in r.cell_ids()
        )
        # The moment a second peer has the edit, the server dies without any cleanup.
        server.kill()
        await writer.wait_closed()
        await watcher.wait_closed()
        return writer, watcher

    writer, watcher = asyncio.run(before_crash())
    assert file_sources(path) == ["abcd", "efgh"], "the file was not written before the crash"
    server = restart(server, config)
    try:

        async def after_restart() -> None:
            fresh = RoomClient(server.url, "nb.ipynb", token=server.token)
            await fresh.connect()
            sources = [fresh.source(cell_id) for cell_id in fresh.cell_ids()]
            assert sources == ["abcd seen by a peer", "efgh", "a new cell"]
            # The old windows reconnect with their pre-crash replicas, one with an edit
            # made offline: it merges, and nothing is duplicated.
            watcher.insert_text("cell-1", 0, "offline ")
            for old in (writer, watcher):
                old.url = fresh.url
                await old.connect()
            expected = ["abcd seen by a peer", "offline efgh", "a new cell"]
            for client in (fresh, writer, watcher):
                await client.wait_for(
                    lambda r: [r.source(c) for c in r.cell_ids()] == expected, timeout=10
                )
                assert len(client.cell_ids()) == 3
            for client in (fresh, writer, watcher):
                await client.disconnect()

        asyncio.run(after_restart())
        # A graceful stop now writes everything to the file.
        assert server.terminate() == 0
        assert file_sources(path) == ["abcd seen by a peer", "offline efgh", "a new cell"]
    finally:
        server.kill()


def test_edits_made_on_disk_while_the_server_was_down_are_merged(tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = write_notebook(root / "nb.ipynb", ["x = 1\n", "y = 2\n"])
    config = {"CRDTSync": NO_WRITE_BACK}
    server = ServerProcess(root, config=config).start()

    async def edit(server: ServerProcess) -> RoomClient:
        client = RoomClient(server.url, "nb.ipynb", token=server.token)
        await client.connect()
        client.insert_text("cell-1", 6, "z = 3\n")
        observer = RoomClient(server.url, "nb.ipynb", token=server.token)
        await observer.connect()
        await observer.wait_for(lambda r: r.source("cell-1") == "y = 2\nz = 3\n")
        await observer.disconnect()
        await client.disconnect()
        return client

    old_window = asyncio.run(edit(server))
    server.kill()
    # While the server is down, someone edits the file (the store still has the room).
    write_notebook(path, ["x = 100\n", "y = 2\n"])
    server = restart(server, config)
    try:

        async def check() -> None:
            client = RoomClient(server.url, "nb.ipynb", token=server.token)
            await client.connect()
            assert [client.source(c) for c in client.cell_ids()] == ["x = 100\n", "y = 2\nz = 3\n"]
            old_window.url = client.url
            await old_window.connect()
            await old_window.wait_for(lambda r: r.source("cell-0") == "x = 100\n")
            assert len(old_window.cell_ids()) == 2
            await old_window.disconnect()
            await client.disconnect()

        asyncio.run(check())
    finally:
        server.kill()


def test_full_disk_keeps_the_room_working_and_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = write_notebook(root / "nb.ipynb", ["abcd"])
    config = {"CRDTSync": {"save_delay": 0.1, "save_max_delay": 0.3, "eviction_delay": 600}}
    server = ServerProcess(root, config=config).start()
    assert server.process is not None
    pid = server.process.pid
    unlimited = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:

        async def scenario() -> None:
            a = RoomClient(server.url, "nb.ipynb", token=server.token)
            b = RoomClient(server.url, "nb.ipynb", token=server.token)
            await a.connect()
            await b.connect()
            # From now on the server cannot grow any file: as good as a full disk.
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, unlimited[1]))
            for number in range(30):
                a.insert_text("cell-0", len(a.source("cell-0")), f" {number}")
                await asyncio.sleep(0.02)
            expected = "abcd" + "".join(f" {n}" for n in range(30))
            # The room goes on in memory: the other peer sees every edit.
            await b.wait_for(lambda r: r.source("cell-0") == expected, timeout=10)
            status = await wait_for_status(server, lambda room: room["save_error"])
            assert "cannot write the store" in status["save_error"]
            assert file_sources(path) == ["abcd"]
            # Space again: the store and the file catch up by themselves.
            resource.prlimit(pid, resource.RLIMIT_FSIZE, unlimited)
            await wait_for_status(server, lambda room: room["save_error"] is None, timeout=20)
            deadline = time.monotonic() + 20
            while file_sources(path) != [expected]:
                assert time.monotonic() < deadline, file_sources(path)
                await asyncio.sleep(0.1)
            await a.disconnect()
            await b.disconnect()

        asyncio.run(scenario())
        log = server.log()
        # Said once, not once per keystroke.
        assert log.count("cannot write the store") == 1
        assert "writable again" in log
        # And the store has everything: after kill -9 and a restart, nothing is missing.
        server.kill()
        server = restart(server, config)

        async def after_restart() -> None:
            client = RoomClient(server.url, "nb.ipynb", token=server.token)
            await client.connect()
            assert client.source("cell-0") == "abcd" + "".join(f" {n}" for n in range(30))
            await client.disconnect()

        asyncio.run(after_restart())
    finally:
        server.kill()


async def wait_for_status(
    server: ServerProcess, condition: Any, timeout: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await asyncio.to_thread(server.get_json, "api/crdtsync/status")
        room = status["rooms"][0]
        if condition(room):
            return room
        assert time.monotonic() < deadline, f"status never matched: {room}"
        await asyncio.sleep(0.1)


def test_a_cell_running_at_the_crash_is_not_left_running(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_notebook(root / "nb.ipynb", ["import time\nprint('started', flush=True)\ntime.sleep(60)"])
    config = {"CRDTSync": NO_WRITE_BACK}
    server = ServerProcess(root, config=config).start()

    async def start_and_crash() -> None:
        client = RoomClient(server.url, "nb.ipynb", token=server.token)
        await client.connect()
        await client.execute("cell-0", timeout=60)
        await client.wait_for(lambda r: r.execution("cell-0")["state"] == "running", timeout=60)
        server.kill()
        await client.disconnect()

    asyncio.run(start_and_crash())
    server = restart(server, config)
    try:

        async def after_restart() -> None:
            client = RoomClient(server.url, "nb.ipynb", token=server.token)
            await client.connect()
            state = client.execution("cell-0")
            assert state["state"] == "idle", state
            assert state["status"] == "aborted", state
            await client.disconnect()

        asyncio.run(after_restart())
    finally:
        server.kill()
