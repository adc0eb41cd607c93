"""One kernel session per notebook path, even when two start it at the same moment.

jupyter_server's sessions API checks for an existing session of the path and then creates
one; the new session is recorded only once its kernel has started, a second or more later.
A JupyterLab window opening a notebook while the kernel actor starts a kernel for it (or
two windows opening it at once) each get a kernel of their own: the window's toolbar then
interrupts and restarts a kernel that does not run its cells. Creations for one path are
therefore serialised, and one that finds a session already there returns it.

JupyterLab itself does not create a notebook's session at the notebook's path: its
session context creates it at a fresh `<dir>/<uuid4>` path named after the notebook (so
that the server never hands it a session whose kernel is still starting), then renames it
to the notebook's path. Two windows opening a notebook at once, or a window opening it
while the kernel actor starts its kernel, would never meet at one path. So such a request
counts as one for `<dir>/<name>`: it is serialised with the others for that notebook, and
a new session joins the kernel of a session that notebook has, or is about to have (a
request session not yet renamed), instead of starting another one.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import types
from logging import Logger
from typing import Any

from jupyter_core.utils import ensure_async

_MARK = "_crdtsync_one_session_per_path"


# The last segment of the paths JupyterLab's session context creates sessions at.
_REQUEST_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def install_one_session_per_path(session_manager: Any, log: Logger) -> bool:
    """Wrap `session_manager.create_session` (once); False if it was already wrapped."""
    if getattr(session_manager, _MARK, False):
        return False
    create = session_manager.create_session
    locks: dict[str, _PathLock] = {}

    async def create_session(
        self: Any,
        path: str | None = None,
        name: str | None = None,
        type: str | None = None,
        kernel_name: str | None = None,
        kernel_id: str | None = None,
    ) -> Any:
        args = {"name": name, "type": type, "kernel_name": kernel_name}
        notebook = notebook_path(path, name, type)
        if not notebook or kernel_id is not None:
            return await create(path=path, kernel_id=kernel_id, **args)
        lock = locks.setdefault(notebook, _PathLock())
        lock.users += 1
        try:
            async with lock.lock:
                if path == notebook and await ensure_async(self.session_exists(path=path)):
                    log.info("[kernel] %r has a session already; joining it", path)
                    return await self.get_session(path=path)
                shared = await _kernel_of(self, notebook, kernel_name)
                if shared is not None:
                    log.info("[kernel] %r has a kernel already; a new session joins it", notebook)
                return await create(path=path, kernel_id=shared, **args)
        finally:
            lock.users -= 1
            if lock.users == 0:
                locks.pop(notebook, None)

    session_manager.create_session = types.MethodType(create_session, session_manager)
    setattr(session_manager, _MARK, True)
    return True


def notebook_path(path: str | None, name: str | None, type: str | None) -> str | None:
    """The notebook a session request is for: `<dir>/<name>` for one JupyterLab makes at
    `<dir>/<uuid4>`, else its path (None without one)."""
    if path and type == "notebook" and name and _REQUEST_NAME.fullmatch(posixpath.basename(path)):
        return posixpath.join(posixpath.dirname(path), name)
    return path or None


async def _kernel_of(session_manager: Any, notebook: str, kernel_name: str | None) -> str | None:
    """The running kernel of a session of `notebook` (renamed to it already or not), if it
    is of the kind asked for."""
    for session in await ensure_async(session_manager.list_sessions()):
        kernel = session.get("kernel") or {}
        if notebook_path(session.get("path"), session.get("name"), session.get("type")) != notebook:
            continue
        if kernel.get("id") and (kernel_name is None or kernel.get("name") == kernel_name):
            return str(kernel["id"])
    return None


class _PathLock:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
