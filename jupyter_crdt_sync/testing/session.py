"""The one server and event loop a pytest session (or xdist worker) shares, started on
first use and stopped at the end of the session.

Either a `LocalServer` of our own (loopback, random token, temporary root) or the server
given by `--nb-server URL --nb-token TOKEN`, where scratch notebooks go into a folder of
their own that is removed at the end. The loop runs only while a test waits on it, so
tests stay plain synchronous functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ServerInfo:
    """What the `crdtsync_server` fixture gives: the server's URL and token, and its root
    directory when the session started it (None for `--nb-server`)."""

    url: str
    token: str
    root_dir: Path | None


class PluginSession:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self._external = (url, token or "") if url else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._root: tempfile.TemporaryDirectory[str] | None = None
        self._info: ServerInfo | None = None
        self._api: Any = None
        self._failed: str | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Notebooks whose kernel starts ahead of their turn: scratch path -> its run and
        # the task preparing it.
        self._ahead: dict[str, tuple[Any, asyncio.Task[None]]] = {}
        # On a server we did not start, every scratch notebook lives under this folder.
        self.scratch = "" if url is None else f"nb-outputs-scratch-{secrets.token_hex(4)}/"

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the session's loop (from a synchronous test)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coroutine.close()
            raise RuntimeError(
                "notebook_room and --nb-outputs run their own event loop: use them from "
                "synchronous tests (in an async test, use RoomClient with crdtsync_server)"
            )
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    def later(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine in the background, while the next tests wait on the loop (a
        kernel's shutdown need not hold up the next notebook); done by close() at the
        latest."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._background.add(self._loop.create_task(coroutine))

    def prepare_ahead(self, run: Any, content: dict[str, Any]) -> None:
        """Start `run.prepare(content)` in the background (runner.NotebookRun), for the
        notebook that runs next; `take_prepared` hands it over when its turn comes."""
        if run.path in self._ahead:
            return
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._ahead[run.path] = (run, self._loop.create_task(run.prepare(content)))

    def take_prepared(self, path: str) -> asyncio.Task[None] | None:
        entry = self._ahead.pop(path, None)
        return entry[1] if entry is not None else None

    def server(self, kernel_root: Path | None = None) -> ServerInfo:
        """The session's server, started now if need be; `kernel_root` is where kernels
        of our own server start (see server.py)."""
        if self._failed is not None:
            raise RuntimeError(self._failed)
        if self._info is None:
            if self._external is not None:
                self._info = ServerInfo(self._external[0], self._external[1], None)
            else:
                from .server import LocalServer

                self._root = tempfile.TemporaryDirectory(prefix="crdtsync-root-")
                root = Path(self._root.name)
                try:
                    self._server = LocalServer(root, kernel_root=kernel_root).start()
                except RuntimeError as exc:
                    # Said once; every later test fails at once with the same reason.
                    self._failed = f"the test server could not start: {exc}"
                    raise
                self._info = ServerInfo(self._server.url, self._server.token, root)
        return self._info

    def api(self, kernel_root: Path | None = None) -> Any:
        if self._api is None:
            from .runner import ServerAPI

            info = self.server(kernel_root)
            self._api = ServerAPI(info.url, info.token)
        return self._api

    def server_log(self) -> str:
        return self._server.log() if self._server is not None else ""

    def close(self) -> None:
        if self._loop is not None:
            # Kernels started for notebooks that never ran (-x, a skipped notebook).
            for run, task in self._ahead.values():
                self.later(_end_prepared(run, task))
            self._ahead.clear()
            if self._background:
                self._loop.run_until_complete(
                    asyncio.gather(*self._background, return_exceptions=True)
                )
                self._background.clear()
            if self._api is not None and self.scratch:
                # Deepest first: the contents API removes only empty folders.
                for folder in sorted(self._api.created_dirs, key=len, reverse=True):
                    with contextlib.suppress(Exception):
                        self.run(self._api.delete(folder))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()
            self._loop = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._root is not None:
            self._root.cleanup()
            self._root = None
        self._info = self._api = None


async def _end_prepared(run: Any, task: asyncio.Task[None]) -> None:
    with contextlib.suppress(Exception):
        await task
    await run.end()
