"""The two servers the side-by-side benchmarks run: ours, and jupyter-collaboration.

jupyter-collaboration is pinned (`COLLABORATION`) and installed into a virtual environment
of its own, made by the benchmark the first time (in $CRDTSYNC_BENCH_CACHE, default
~/.cache/jupyter-crdt-sync): its pycrdt, jupyter-ydoc and jupyter_server versions are its
own, not this checkout's. Both servers run as `jupyter server` subprocesses on 127.0.0.1
(tests/server_process.py) with the same data and runtime layout, and are driven by the same
`RoomClient` peers: jupyter-collaboration's rooms speak the same y-websocket protocol, at
the URL its session API gives (`PUT api/collaboration/session/{path}`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_crdt_sync.client import RoomClient
from tests.server_process import ServerProcess

COLLABORATION = "jupyter-collaboration==5.0.4"
CACHE = Path(os.environ.get("CRDTSYNC_BENCH_CACHE", Path.home() / ".cache" / "jupyter-crdt-sync"))


def collaboration_python(log: Any = print) -> str:
    """The Python of the pinned jupyter-collaboration's environment, made if missing."""
    venv = CACHE / f"venv-{COLLABORATION.replace('==', '-')}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        log(f"creating {venv} with {COLLABORATION} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", COLLABORATION, "psutil"], check=True
        )
        marker.write_text(COLLABORATION)
    return str(python)


@dataclass(frozen=True)
class Target:
    """One of the two servers: how to start it and how to reach a notebook's room."""

    name: str
    python: str | None  # None: this checkout's

    def server(self, root: Path, config: dict[str, dict[str, Any]]) -> ServerProcess:
        if self.python is None:
            return ServerProcess(root, config=config)
        return ServerProcess(
            root,
            config=config,
            python=self.python,
            extensions={"jupyter_server_ydoc": True, "jupyter_server_fileid": True},
            ready_endpoint="api/contents",
        )

    def room_url(self, server: ServerProcess, path: str) -> str | None:
        """The websocket URL of the room of `path`; None for ours (the client knows it)."""
        if self.python is None:
            return None
        request = urllib.request.Request(
            f"{server.url}api/collaboration/session/{path}",
            data=json.dumps({"format": "json", "type": "notebook"}).encode(),
            headers={"Authorization": f"token {server.token}"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            session = json.loads(response.read())
        room = f"json:notebook:{session['fileId']}"
        base = server.url.replace("http://", "ws://", 1)
        return f"{base}api/collaboration/room/{room}?sessionId={session['sessionId']}"

    def client(self, server: ServerProcess, path: str) -> RoomClient:
        client = RoomClient(server.url, path, token=server.token)
        url = self.room_url(server, path)
        if url is not None:
            client.url = url
        return client

    def save(self, server: ServerProcess, path: str) -> None:
        """Ask for a write of the room now (ours); jupyter-collaboration has no such call:
        it writes a quiet room by itself (`document_save_delay`)."""
        if self.python is None:
            request = urllib.request.Request(
                f"{server.url}api/crdtsync/save/{path}",
                data=b"{}",
                headers={"Authorization": f"token {server.token}"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=300):
                pass


def ours() -> Target:
    return Target("jupyter-crdt-sync", None)


def theirs(log: Any = print) -> Target:
    return Target(COLLABORATION.replace("==", " "), collaboration_python(log))


def collaboration_config(eviction: float, store: Path) -> dict[str, dict[str, Any]]:
    """jupyter-collaboration's settings for the benchmarks: rooms without peers closed
    after `eviction` seconds (as ours), a quiet room saved after one second (its default),
    its update store in the benchmark's directory (not the working directory)."""
    return {
        "YDocExtension": {"document_cleanup_delay": eviction, "document_save_delay": 1.0},
        "SQLiteYStore": {"db_path": str(store)},
    }


def peak_rss(pid: int) -> int:
    """The most memory the process ever had resident (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0
