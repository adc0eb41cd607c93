"""`jupyter crdtsync history / show / restore`, run as real commands against a real
`jupyter server` process."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_crdt_sync.client import RoomClient
from tests.conftest import FAST_TIMINGS, wait_for_file, write_notebook
from tests.server_process import ServerProcess
from tests.test_cli import crdtsync


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("history-cli") / "root"
    root.mkdir()
    with ServerProcess(root, config={"CRDTSync": FAST_TIMINGS}) as process:
        yield process


def test_history_show_and_restore(server: ServerProcess, tmp_path: Path) -> None:
    path = write_notebook(server.root_dir / "dir" / "nb one.ipynb", ["one", "two"])

    async def edit() -> None:
        client = RoomClient(server.url, "dir/nb one.ipynb", token=server.token)
        await client.connect()
        client.delete_cell("cell-1")
        await wait_for_file(path, ["one"])
        await client.disconnect()

    asyncio.run(edit())
    url = ["--url", server.url, "--token", server.token]
    # Found through the runtime dir, as `jupyter server list` finds it.
    listed = crdtsync("history", "dir/nb one.ipynb", runtime_dir=server.runtime_dir)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "dir/nb one.ipynb: 2 versions"
    assert re.split(r"\s{2,}", lines[1].strip()) == ["VERSION", "TIME", "AUTHORS", "CELLS CHANGED"]
    first, second = (re.split(r"\s{2,}", line.strip()) for line in lines[2:4])
    assert first[0] == "1" and first[2] == "-" and first[3] == "2"
    assert second[0] == "2" and second[3] == "1" and second[2] != "-"
    as_json = crdtsync("history", "dir/nb one.ipynb", "--json", *url, runtime_dir=tmp_path)
    assert [v["version"] for v in json.loads(as_json.stdout)["versions"]] == [1, 2]

    shown = crdtsync("show", "dir/nb one.ipynb", "1", *url, runtime_dir=tmp_path)
    assert shown.returncode == 0, shown.stderr
    notebook = json.loads(shown.stdout)
    assert [cell["source"] for cell in notebook["cells"]] == ["one", "two"]

    restored = crdtsync(
        "restore", "dir/nb one.ipynb", "1", "--cell", "cell-1", *url, runtime_dir=tmp_path
    )
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip().endswith("now version 3")
    asyncio.run(wait_for_file(path, ["one", "two"]))
    listed = crdtsync("history", "dir/nb one.ipynb", *url, runtime_dir=tmp_path)
    assert "restored cells cell-1 from version 1" in listed.stdout.splitlines()[-1]


def test_errors_are_explained(server: ServerProcess, tmp_path: Path) -> None:
    write_notebook(server.root_dir / "plain.ipynb", ["x"])
    url = ["--url", server.url, "--token", server.token]
    missing = crdtsync("history", "no-such.ipynb", *url, runtime_dir=tmp_path)
    assert missing.returncode == 1 and "No notebook at 'no-such.ipynb'" in missing.stderr
    never_opened = crdtsync("history", "plain.ipynb", *url, runtime_dir=tmp_path)
    assert never_opened.stdout.startswith("plain.ipynb: 0 versions")

    async def open_room() -> None:
        client = RoomClient(server.url, "plain.ipynb", token=server.token)
        await client.connect()
        await client.disconnect()

    asyncio.run(open_room())
    no_version = crdtsync("show", "plain.ipynb", "9", *url, runtime_dir=tmp_path)
    assert no_version.returncode == 1 and "has no version 9" in no_version.stderr
    bad_cell = crdtsync("restore", "plain.ipynb", "1", "--cell", "zz", *url, runtime_dir=tmp_path)
    assert bad_cell.returncode == 1 and "no cell 'zz'" in bad_cell.stderr
    bad_token = crdtsync(
        "history", "plain.ipynb", "--url", server.url, "--token", "wrong", runtime_dir=tmp_path
    )
    assert bad_token.returncode == 1 and "rejected the token" in bad_token.stderr
    usage = crdtsync("show", "plain.ipynb", "one", *url, runtime_dir=tmp_path)
    assert usage.returncode == 2
