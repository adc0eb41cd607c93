"""Running a notebook's cells through a server's kernel actor, one request per cell.

The notebook is never run in its own room: a scratch copy is put on the server (through
the contents API) and run there, so a test run changes neither the notebook file nor a
window that has it open. One cell per request means the plugin, not the actor's queue,
decides what an error means (a `raises-exception` cell goes on; nothing is dropped).

A cell that runs past its timeout is interrupted (the kernel gets SIGINT through the
kernels API) and reported as timed out; a cell that ends "aborted" lost its kernel (it
died, or was restarted or shut down) while it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..client import ExecutionResult, RoomClient

# How long a cell may wait for its kernel to start (the server's kernel_ready_timeout is
# 60 s by default, after which the actor drops the cell as aborted).
KERNEL_START = 90.0
# How long an interrupted cell may take to stop before the kernel counts as stuck.
INTERRUPT_GRACE = 10.0


@dataclass(frozen=True)
class CellOutcome:
    status: str  # "ok", "error", "timeout", "aborted"
    result: ExecutionResult | None
    seconds: float


class ServerAPI:
    """The few REST calls the runner makes, with the token, against one server."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token
        self.created_dirs: set[str] = set()

    async def request(self, method: str, endpoint: str, body: Any = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        request = HTTPRequest(
            self.url + endpoint,
            method=method,
            headers=headers,
            body=json.dumps(body) if body is not None else (None if method == "GET" else ""),
            allow_nonstandard_methods=True,
            request_timeout=60,
        )
        response = await AsyncHTTPClient().fetch(request)
        return json.loads(response.body) if response.body else None

    async def put_notebook(self, path: str, content: dict[str, Any]) -> None:
        directory = posixpath.dirname(path)
        parts = directory.split("/") if directory else []
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder not in self.created_dirs:
                await self.request("PUT", _contents(folder), {"type": "directory"})
                self.created_dirs.add(folder)
        body = {"type": "notebook", "format": "json", "content": content}
        await self.request("PUT", _contents(path), body)

    async def delete(self, path: str) -> None:
        with contextlib.suppress(HTTPClientError):
            await self.request("DELETE", _contents(path))

    async def session_of(self, path: str) -> dict[str, Any] | None:
        for session in await self.request("GET", "api/sessions"):
            if str(session.get("path", "")).strip("/") == path:
                return dict(session)
        return None

    async def start_session(self, path: str, kernel_name: str | None) -> None:
        """Start the kernel of the notebook at `path` (the kernel actor joins the session
        a notebook already has rather than starting another)."""
        body = {
            "path": path,
            "name": posixpath.basename(path),
            "type": "notebook",
            "kernel": {"name": kernel_name} if kernel_name else {},
        }
        await self.request("POST", "api/sessions", body)

    async def interrupt(self, path: str) -> None:
        session = await self.session_of(path)
        if session is not None:
            await self.request("POST", f"api/kernels/{session['kernel']['id']}/interrupt")

    async def end_session(self, path: str) -> None:
        """Shut the scratch notebook's kernel down."""
        with contextlib.suppress(HTTPClientError):
            session = await self.session_of(path)
            if session is not None:
                await self.request("DELETE", f"api/sessions/{session['id']}")


class NotebookRun:
    """One scratch copy of a notebook on the server and a client in its room."""

    def __init__(self, api: ServerAPI, path: str) -> None:
        self.api = api
        self.path = path
        self.room = RoomClient(api.url, path, token=api.token)

    async def prepare(self, content: dict[str, Any]) -> None:
        """Put the scratch copy on the server and start its kernel, ahead of its first
        cell: a kernel takes seconds to start, which the previous notebook's cells can
        hide."""
        await self.api.put_notebook(self.path, content)
        kernelspec = (content.get("metadata") or {}).get("kernelspec") or {}
        await self.api.start_session(self.path, kernelspec.get("name"))

    async def open(
        self, content: dict[str, Any], prepared: asyncio.Task[None] | None = None
    ) -> None:
        """Join the room of the scratch copy; `prepared` is a `prepare()` already under
        way (when it failed, the copy is put on the server now, and the kernel actor
        starts the kernel at the first cell)."""
        try:
            if prepared is None:
                raise LookupError("not prepared")
            await prepared
        except Exception:  # preparing is only a head start: any failure, do it now
            await self.api.put_notebook(self.path, content)
        await self.room.connect()

    async def run_cell(self, cell_id: str, timeout: float) -> CellOutcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        # The first request may start the kernel, and a cell waits in the actor's queue
        # until the kernel answers: the timeout counts from when the cell starts running.
        (msg_id,) = await self.room.execute(cell_id, timeout=KERNEL_START + timeout)

        def running(room: RoomClient) -> bool:
            execution = room.execution(cell_id)
            return execution["msg_id"] == msg_id and execution["state"] != "queued"

        try:
            await self.room.wait_for(running, KERNEL_START)
            result = await self.room.wait_for_execution(cell_id, msg_id, timeout)
        except TimeoutError:
            await self.api.interrupt(self.path)
            result = None
            with contextlib.suppress(TimeoutError):
                result = await self.room.wait_for_execution(cell_id, msg_id, INTERRUPT_GRACE)
            return CellOutcome("timeout", result, loop.time() - started)
        return CellOutcome(result.status, result, loop.time() - started)

    async def close(self) -> None:
        await self.room.disconnect()
        await self.end()

    async def end(self) -> None:
        """Shut the kernel down and delete the scratch copy (the slow part of closing)."""
        await self.api.end_session(self.path)
        await self.api.delete(self.path)


def _contents(path: str) -> str:
    return "api/contents/" + quote(path.strip("/"), safe="/")
