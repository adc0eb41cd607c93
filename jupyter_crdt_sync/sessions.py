"""One kernel session per notebook path, even when two start it at the same moment.

jupyter_server's sessions API checks for an existing session of the path and then creates
one; the new session is recorded only once its kernel has started, a second or more later.
A JupyterLab window opening a notebook while the kernel actor starts a kernel for it (or
two windows opening it at once) each get a kernel of their own: the window's toolbar then
interrupts and restarts a kernel that does not run its cells. Creations for one path are
therefore serialised, and one that finds a session already there returns it.
"""

from __future__ import annotations

import asyncio
import types
from logging import Logger
from typing import Any

from jupyter_core.utils import ensure_async

_MARK = "_crdtsync_one_session_per_path"


def install_one_session_per_path(session_manager: Any, log: Logger) -> bool:
    """Wrap `session_manager.create_session` (once); False if it was already wrapped."""
    if getattr(session_manager, _MARK, False):
        return False
    create = session_manager.create_session
    locks: dict[str, _PathLock] = {}

    async def create_session(self: Any, path: str | None = None, **kwargs: Any) -> Any:
        if not path:
            return await create(path=path, **kwargs)
        lock = locks.setdefault(path, _PathLock())
        lock.users += 1
        try:
            async with lock.lock:
                if await ensure_async(self.session_exists(path=path)):
                    log.info("[kernel] %r has a session already; joining it", path)
                    return await self.get_session(path=path)
                return await create(path=path, **kwargs)
        finally:
            lock.users -= 1
            if lock.users == 0:
                locks.pop(path, None)

    session_manager.create_session = types.MethodType(create_session, session_manager)
    setattr(session_manager, _MARK, True)
    return True


class _PathLock:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
