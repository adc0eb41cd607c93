"""A notebook's history as the REST API serves it: list, read, compare, restore.

Versions live in the store (history_store.py); the open room, if any, is "now" and is
where a restore happens (open_notebook.OpenNotebook.restore). A notebook deleted from disk
keeps its history for a while: a whole-version restore writes its file back.
"""

from __future__ import annotations

from datetime import datetime, timezone
from logging import Logger
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.manager import ContentsManager
from tornado.web import HTTPError

from .history_store import VersionRequest
from .notebook_file import check_notebook, file_view, normalize_path
from .restore import MissingVersionError, RestoreError
from .rooms import RoomManager
from .store import Store
from .versions import diff


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


class NotebookHistory:
    def __init__(
        self, rooms: RoomManager, store: Store, contents_manager: ContentsManager, log: Logger
    ) -> None:
        self._rooms = rooms
        self._store = store
        self._contents_manager = contents_manager
        self._log = log

    async def _path(self, raw_path: str) -> tuple[str, list[dict[str, Any]] | None]:
        """The normalized path and its versions; 404 if it has neither file nor history."""
        path = normalize_path(raw_path)
        versions = await self._store.history(path)
        if versions is None and self._rooms.open_notebook(path) is None:
            await check_notebook(self._contents_manager, path)
        return path, versions

    async def versions(self, raw_path: str) -> dict[str, Any]:
        path, versions = await self._path(raw_path)
        listed = [{**entry, "time": iso_time(entry["time"])} for entry in versions or []]
        deleted_at = await self._store.history_deleted_at(path)
        return {
            "path": path,
            "deleted": iso_time(deleted_at) if deleted_at is not None else None,
            "versions": listed,
        }

    async def version(self, raw_path: str, number: int, compare: str | None) -> dict[str, Any]:
        path, versions = await self._path(raw_path)
        entry = _find(versions, number, path)
        found = await self._store.read_version(path, number)
        if found is None:
            raise HTTPError(404, f"{path!r} has no version {number}")
        content, cell_ids, when = found
        answer = {
            **entry,
            "time": iso_time(when),
            "content": content,
            "cell_ids": cell_ids,
        }
        if compare is not None:
            other, other_ids, label = await self._other(path, versions, compare)
            answer["diff"] = {
                "from": number,
                "to": label,
                **diff(content, cell_ids, other, other_ids),
            }
        return answer

    async def _other(
        self, path: str, versions: list[dict[str, Any]] | None, compare: str
    ) -> tuple[dict[str, Any], list[str], int | str]:
        if compare == "now":
            owner = self._rooms.open_notebook(path)
            if owner is not None:
                content, ids = owner.current()
                return content, ids, "now"
            if not versions:
                raise HTTPError(404, f"{path!r} has no versions")
            number = versions[-1]["version"]
        else:
            try:
                number = int(compare)
            except ValueError:
                raise HTTPError(
                    400, f"diff must be a version number or 'now', got {compare!r}"
                ) from None
        _find(versions, number, path)
        found = await self._store.read_version(path, number)
        if found is None:
            raise HTTPError(404, f"{path!r} has no version {number}")
        return found[0], found[1], number if compare != "now" else "now"

    async def restore(
        self, raw_path: str, number: int, cell_ids: list[str] | None, user: str
    ) -> dict[str, Any]:
        path, versions = await self._path(raw_path)
        _find(versions, number, path)
        exists = self._rooms.open_notebook(path) is not None or await ensure_async(
            self._contents_manager.file_exists(path)
        )
        if not exists:
            return await self._restore_deleted(path, number, cell_ids, user)
        async with self._rooms.hold(path):
            owner = self._rooms.open_notebook(path)
            if owner is None:
                raise HTTPError(409, f"the room of {path!r} is closing; try again")
            try:
                recorded, restored = await owner.restore(number, cell_ids, user)
            except MissingVersionError as exc:
                raise HTTPError(404, str(exc)) from exc
            except RestoreError as exc:
                raise HTTPError(400, str(exc)) from exc
            except OSError as exc:
                raise HTTPError(500, f"restored in the room, not recorded: {exc}") from exc
        self._log.info(
            "[room] %r: %s restored %s of version %d (now version %s)",
            path,
            user,
            "cells " + ", ".join(restored) if cell_ids is not None else "all",
            number,
            recorded,
        )
        return {"version": recorded, "restored_from": number, "cell_ids": restored}

    async def _restore_deleted(
        self, path: str, number: int, cell_ids: list[str] | None, user: str
    ) -> dict[str, Any]:
        if cell_ids is not None:
            raise HTTPError(
                400, f"{path!r} was deleted: restore the whole version to bring it back"
            )
        found = await self._store.read_version(path, number)
        if found is None:
            raise HTTPError(404, f"{path!r} has no version {number}")
        content, ids, _ = found
        model = {"type": "notebook", "format": "json", "content": content}
        await ensure_async(self._contents_manager.save(model, path))
        note = {"restored_from": number}
        request = VersionRequest(file_view(content), ids, [user], note)
        recorded = await self._store.record_version(path, request)
        if recorded is None:
            recorded = await self._newest(path)
        self._log.info(
            "[room] %r: %s brought the deleted notebook back (version %d)", path, user, number
        )
        return {"version": recorded, "restored_from": number, "cell_ids": ids}

    async def _newest(self, path: str) -> int:
        versions = await self._store.history(path)
        if not versions:
            raise HTTPError(500, f"{path!r} has no versions after a restore")
        return int(versions[-1]["version"])


def _find(versions: list[dict[str, Any]] | None, number: int, path: str) -> dict[str, Any]:
    for entry in versions or []:
        if entry["version"] == number:
            return entry
    raise HTTPError(404, f"{path!r} has no version {number} (never recorded, or thinned away)")
