"""`jupyter crdtsync status`, run as a real command against real `jupyter server` processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from jupyter_crdt_sync import __version__
from jupyter_crdt_sync.cli import Server, format_status
from jupyter_crdt_sync.client import RoomClient
from tests.conftest import FAST_TIMINGS, write_notebook
from tests.server_process import ServerProcess, free_port

STATUS = "api/crdtsync/status"
ENABLE_HINT = "jupyter server extension enable jupyter_crdt_sync"


def _jupyter() -> list[str]:
    jupyter = Path(sysconfig.get_path("scripts")) / "jupyter"
    return [str(jupyter)] if jupyter.exists() else [sys.executable, "-m", "jupyter"]


def crdtsync(*args: str, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    """`jupyter crdtsync ARGS`, seeing only the servers in `runtime_dir`."""
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime_dir))
    env.pop("JUPYTER_TOKEN", None)
    result = subprocess.run(
        [*_jupyter(), "crdtsync", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def columns(output: str, path: str) -> list[str]:
    """The cells of the table line of `path` (columns are two or more spaces apart)."""
    line = next(line for line in output.splitlines() if line.startswith(path + "  "))
    return re.split(r"\s{2,}", line)


class ServerWithoutExtension(ServerProcess):
    """ServerProcess.start() waits until the extension's status endpoint answers; with the
    extension disabled, wait for Jupyter's own api/status instead."""

    def get_json(self, endpoint: str) -> Any:
        return super().get_json("api/status" if endpoint == STATUS else endpoint)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cli") / "root"
    write_notebook(root / "nb.ipynb", ["abcd", "x = 1"])
    write_notebook(root / "sub dir" / "other.ipynb", ["y"])
    with ServerProcess(root, config={"CRDTSync": FAST_TIMINGS}) as process:
        yield process


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cli-plain") / "root"
    root.mkdir()
    config = {"ServerApp": {"jpserver_extensions": {"jupyter_crdt_sync": False}}}
    with ServerWithoutExtension(root, config=config) as process:
        yield process


@asynccontextmanager
async def open_rooms(server: ServerProcess, *paths: str) -> AsyncIterator[list[RoomClient]]:
    clients = [RoomClient(server.url, path, token=server.token) for path in paths]
    try:
        for client in clients:
            await client.connect()
        yield clients
    finally:
        for client in clients:
            await client.disconnect()


async def wait_for_status(
    server: ServerProcess, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The server's status JSON, once `predicate` holds for it."""
    deadline = time.monotonic() + 10
    while True:
        status: dict[str, Any] = await asyncio.to_thread(server.get_json, STATUS)
        if predicate(status):
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


def no_rooms(status: dict[str, Any]) -> bool:
    return not status["rooms"]


def test_table_shows_the_open_rooms(server: ServerProcess, tmp_path: Path) -> None:
    async def scenario() -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        await wait_for_status(server, no_rooms)  # rooms of earlier tests are evicted
        async with open_rooms(server, "nb.ipynb", "nb.ipynb", "sub dir/other.ipynb") as clients:
            clients[0].insert_text("cell-0", 0, "edited ")
            status = await wait_for_status(
                server,
                lambda s: any(
                    r["path"] == "nb.ipynb" and r["last_saved"] and not r["dirty"]
                    for r in s["rooms"]
                ),
            )
            result = await asyncio.to_thread(
                crdtsync,
                "status",
                "--url",
                server.url,
                "--token",
                server.token,
                runtime_dir=tmp_path,
            )
            return result, status

    result, status = asyncio.run(scenario())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Jupyter server {server.url}")
    assert lines[0].endswith(f"jupyter-crdt-sync {__version__}")
    assert re.split(r"\s+", lines[1]) == [
        "PATH",
        "PEERS",
        "CELLS",
        "SIZE",
        "SAVED",
        "KERNEL",
        "WIDGETS",
    ]
    room = next(r for r in status["rooms"] if r["path"] == "nb.ipynb")
    saved = datetime.fromisoformat(room["last_saved"]).astimezone()
    assert columns(result.stdout, "nb.ipynb") == [
        "nb.ipynb",
        "2",
        "2",
        f"{room['doc_bytes']} B",
        f"saved {saved:%H:%M:%S}",
        "-",
        "0",
    ]
    other = columns(result.stdout, "sub dir/other.ipynb")
    assert other[:3] == ["sub dir/other.ipynb", "1", "1"]
    assert other[5:] == ["-", "0"]


def test_json_is_the_status_endpoint(server: ServerProcess, tmp_path: Path) -> None:
    async def scenario() -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        await wait_for_status(server, no_rooms)
        async with open_rooms(server, "sub dir/other.ipynb"):
            result = await asyncio.to_thread(
                crdtsync,
                "status",
                "--json",
                "--url",
                server.url,
                "--token",
                server.token,
                runtime_dir=tmp_path,
            )
            return result, await asyncio.to_thread(server.get_json, STATUS)

    result, endpoint = asyncio.run(scenario())
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed.pop("url") == server.url
    assert printed == endpoint
    assert [r["path"] for r in printed["rooms"]] == ["sub dir/other.ipynb"]


def test_finds_servers_in_the_runtime_dir(server: ServerProcess) -> None:
    asyncio.run(wait_for_status(server, no_rooms))
    # no --url, no --token: the server's info file in the runtime dir gives both
    result = crdtsync("status", runtime_dir=server.runtime_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Jupyter server {server.url} (root {server.root_dir}), jupyter-crdt-sync {__version__}",
        "  no open rooms",
        # JupyterLab is installed: the settings room, with the user settings under the
        # server's config dir
        "settings: 0 peers, 0 plugins with settings, not written yet "
        f"({server.root_dir.parent / f'config-{server.port}' / 'lab' / 'user-settings'})",
    ]
    # --url alone takes the token of the server at that URL from the runtime dir ...
    result = crdtsync("status", "--json", "--url", server.url, runtime_dir=server.runtime_dir)
    assert result.returncode == 0, result.stderr
    # ... or from a ?token= in the URL, as `jupyter server list` prints it
    url = f"{server.url}?token={server.token}"
    result = crdtsync("status", "--json", "--url", url, runtime_dir=Path("/nonexistent"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["url"] == server.url


def test_several_servers(
    server: ServerProcess, plain_server: ServerProcess, tmp_path: Path
) -> None:
    for process in (server, plain_server):
        for info in process.runtime_dir.glob("jpserver-*.json"):
            shutil.copy(info, tmp_path)
    result = crdtsync("status", runtime_dir=tmp_path)
    assert result.returncode == 1
    assert f"Jupyter server {server.url}" in result.stdout
    assert plain_server.url not in result.stdout
    assert plain_server.url in result.stderr
    assert ENABLE_HINT in result.stderr

    result = crdtsync("status", "--json", runtime_dir=tmp_path)
    assert result.returncode == 1
    assert [json.loads(line)["url"] for line in result.stdout.splitlines()] == [server.url]


def test_no_running_server(tmp_path: Path) -> None:
    # an info file left by a server that is gone does not count
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"jpserver-{dead.pid}.json").write_text(
        json.dumps({"pid": dead.pid, "url": f"http://127.0.0.1:{free_port()}/", "token": "x"})
    )
    result = crdtsync("status", runtime_dir=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no running Jupyter server found" in result.stderr
    assert str(tmp_path) in result.stderr
    assert "jupyter server" in result.stderr
    assert "--url" in result.stderr


def test_extension_not_enabled(plain_server: ServerProcess, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="404"):
        ServerProcess.get_json(plain_server, STATUS)  # not the override above
    result = crdtsync(
        "status", "--url", plain_server.url, "--token", plain_server.token, runtime_dir=tmp_path
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "not enabled" in result.stderr
    assert ENABLE_HINT in result.stderr


def test_url_without_jupyter_server(server: ServerProcess, tmp_path: Path) -> None:
    result = crdtsync(
        "status", "--url", server.url + "elsewhere/", "--token", server.token, runtime_dir=tmp_path
    )
    assert result.returncode == 1
    assert "no Jupyter server at this URL" in result.stderr


def test_wrong_or_missing_token(server: ServerProcess, tmp_path: Path) -> None:
    result = crdtsync("status", "--url", server.url, "--token", "wrong", runtime_dir=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "rejected the token" in result.stderr
    assert "--token" in result.stderr

    result = crdtsync("status", "--url", server.url, runtime_dir=tmp_path)
    assert result.returncode == 1
    assert "no token was given" in result.stderr
    assert "--token" in result.stderr


def test_nothing_listening(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = crdtsync("status", "--url", url, "--token", "x", runtime_dir=tmp_path)
    assert result.returncode == 1
    assert f"nothing is listening at {url}" in result.stderr

    result = crdtsync("status", "--url", "localhost:8888", runtime_dir=tmp_path)
    assert result.returncode == 1
    assert "invalid --url" in result.stderr


def test_help_and_version(tmp_path: Path) -> None:
    result = crdtsync("--help", runtime_dir=tmp_path)
    assert result.returncode == 0
    assert "status" in result.stdout
    result = crdtsync("status", "--help", runtime_dir=tmp_path)
    assert result.returncode == 0
    for option in ("--json", "--url", "--token"):
        assert option in result.stdout
    result = crdtsync("--version", runtime_dir=tmp_path)
    assert result.stdout.split() == ["jupyter-crdtsync", __version__]
    result = crdtsync(runtime_dir=tmp_path)
    assert result.returncode == 2
    assert "usage: jupyter crdtsync" in result.stderr


def test_table_cells() -> None:
    """The save, kernel and size columns, for states that are slow to reach on a server."""
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    room = {
        "path": "a.ipynb",
        "peers": 1,
        "cells": 3,
        "doc_bytes": 1536,
        "dirty": False,
        "last_saved": None,
        "save_error": None,
        "kernel": None,
        "widgets": 0,
    }
    rooms = [
        room,
        {
            **room,
            "path": "b.ipynb",
            "dirty": True,
            "doc_bytes": 5 * 1024**2,
            "kernel": {"id": "k", "name": "python3", "execution_state": "busy"},
            "widgets": 12,
        },
        {**room, "path": "c.ipynb", "dirty": True, "save_error": "PermissionError:\n denied"},
        {**room, "path": "d.ipynb", "last_saved": long_ago.isoformat()},
    ]
    text = format_status(Server("http://h:1/", "t"), {"version": "9.9", "rooms": rooms})
    assert text.splitlines()[0] == "Jupyter server http://h:1/, jupyter-crdt-sync 9.9"
    assert columns(text, "a.ipynb")[3:] == ["1.5 KiB", "no changes", "-", "0"]
    assert columns(text, "b.ipynb")[3:] == ["5.0 MiB", "unsaved changes", "python3 (busy)", "12"]
    assert columns(text, "c.ipynb")[4] == "error: PermissionError: denied"
    assert columns(text, "d.ipynb")[4] == f"saved {long_ago.astimezone():%Y-%m-%d %H:%M:%S}"


def test_table_shows_the_settings_room() -> None:
    settings = {
        "peers": 2,
        "plugins": 3,
        "dir": "/u/lab/user-settings",
        "last_write": None,
        "errors": [
            {"plugin": "p:q", "file": "/u/p/q.jupyterlab-settings", "line": 4, "message": "bad"}
        ],
    }
    text = format_status(
        Server("http://h:1/", "t"), {"version": "9.9", "rooms": [], "settings": settings}
    )
    assert text.splitlines()[2:] == [
        "settings: 2 peers, 3 plugins with settings, not written yet (/u/lab/user-settings)",
        "  error: /u/p/q.jupyterlab-settings line 4: bad",
    ]
