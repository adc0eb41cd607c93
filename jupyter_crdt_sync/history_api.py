"""REST endpoints of the history (docs/history.md): list, read (and compare), restore.

Reading needs the contents read permission, restoring the contents write permission:
jupyter_server's `authorized` decorator maps GET to read and POST to write.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from .history import NotebookHistory


class _HistoryHandler(APIHandler):
    auth_resource = "contents"

    @property
    def history(self) -> NotebookHistory:
        return self.settings["crdtsync_history"]

    def _answer(self, body: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class HistoryHandler(_HistoryHandler):
    """`GET api/crdtsync/history/{path}`: the versions, oldest first."""

    @web.authenticated
    @authorized
    async def get(self, raw_path: str) -> None:
        self._answer(await self.history.versions(raw_path))


class VersionHandler(_HistoryHandler):
    """`GET api/crdtsync/history/{path}/{version}[?diff=<version>|now]`."""

    @web.authenticated
    @authorized
    async def get(self, raw_path: str, number: str) -> None:
        compare = self.get_query_argument("diff", None)
        self._answer(await self.history.version(raw_path, int(number), compare))


class RestoreHandler(_HistoryHandler):
    """`POST api/crdtsync/restore/{path}` with `{"version": n}` or also `"cell_ids"`."""

    @web.authenticated
    @authorized
    async def post(self, raw_path: str) -> None:
        number, cell_ids = _restore_request(self.request.body)
        user = self.current_user
        name = getattr(user, "username", "") or "anonymous"
        self._answer(await self.history.restore(raw_path, number, cell_ids, name))


def _restore_request(body: bytes) -> tuple[int, list[str] | None]:
    try:
        request = json.loads(body or b"null")
    except ValueError:
        request = None
    if isinstance(request, dict) and set(request) <= {"version", "cell_ids"}:
        number = request.get("version")
        cell_ids = request.get("cell_ids")
        number_ok = isinstance(number, int) and not isinstance(number, bool) and number > 0
        cells_ok = cell_ids is None or (
            isinstance(cell_ids, list)
            and cell_ids
            and all(isinstance(cell_id, str) for cell_id in cell_ids)
        )
        if number_ok and cells_ok:
            return number, cell_ids
    raise web.HTTPError(
        400, 'expected a JSON body {"version": <n>} or {"version": <n>, "cell_ids": ["<id>", ...]}'
    )
