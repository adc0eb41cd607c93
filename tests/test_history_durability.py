"""Versions survive kill -9 and the restart after it: real server processes, a real SQLite store.
A version whose write to the file completed is never lost."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nbformat

from jupyter_crdt_sync.client import RoomClient

from .conftest import FAST_TIMINGS, wait_for_file, write_notebook
from .server_process import ServerProcess


def on_disk(path: Path) -> dict:
    return json.loads(json.dumps(nbformat.read(str(path), as_version=4)))


def test_versions_survive_kill_9_and_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = write_notebook(root / "nb.ipynb", ["zero", "keep"])
    config = {"CRDTSync": {**FAST_TIMINGS, "history_thin_interval": 0}}
    server = ServerProcess(root, config=config).start()
    states = [on_disk(path)]

    async def edit_then_crash() -> None:
        client = RoomClient(server.url, "nb.ipynb", token=server.token)
        await client.connect()
        for step in range(1, 4):
            client.set_source("cell-0", f"step {step}")
            await wait_for_file(path, [f"step {step}", "keep"])
            states.append(on_disk(path))
        # The last write is on disk: the server dies now, without any cleanup.
        server.kill()
        await client.wait_closed()

    try:
        asyncio.run(edit_then_crash())
    finally:
        server.kill()

    def check(server: ServerProcess) -> None:
        listed = server.get_json("api/crdtsync/history/nb.ipynb")["versions"]
        contents = [
            server.get_json(f"api/crdtsync/history/nb.ipynb/{v['version']}")["content"]
            for v in listed
        ]
        # Every state the file had is a version, in order, exactly.
        assert [c for c in contents if c in states] == states, contents
        assert listed[0]["version"] == 1 and contents[0] == states[0]

    restarted = ServerProcess(root, config=config, data_dir=server.data_dir, token=server.token)
    with restarted.start():
        check(restarted)
