"""A Python client for a notebook room: read and edit cells, run them, wait for changes.

    async with RoomClient("http://127.0.0.1:8888/", "demo.ipynb", token=token) as room:
        cell_id = room.cell_ids()[0]
        room.insert_text(cell_id, 0, "print('hi')\\n")
        await room.wait_for(lambda r: r.source(cell_id).startswith("print"))
        result = await room.run(cell_id)   # the server's kernel runs it; outputs for all
        assert result.status == "ok" and result.stdout.startswith("hi")

Indexes into cell text are Python string indexes (code points); the client converts
them to the UTF-8 offsets pycrdt uses.

The client keeps its replica across `disconnect()` and `connect()`: edits made while
offline are merged when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jupyter_ydoc import YNotebook
from pycrdt import Awareness, Doc, Map, Text, TransactionEvent
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from .cells import find_cell, multiline
from .protocol import (
    MessageKind,
    create_awareness_message,
    create_sync_message,
    create_sync_step2_message,
    create_update_message,
    parse_message,
    parse_moved,
)
from .text_offsets import utf8_offset

ROOM_ENDPOINT = "api/crdtsync/room/"
EXECUTE_ENDPOINT = "api/crdtsync/execute/"
HISTORY_ENDPOINT = "api/crdtsync/history/"
RESTORE_ENDPOINT = "api/crdtsync/restore/"


@dataclass(frozen=True)
class ExecutionResult:
    """A cell as one execution request left it."""

    cell_id: str
    msg_id: str
    status: str  # "ok", "error", or "aborted" (dropped from the queue, or its kernel restarted)
    execution_count: int | None
    outputs: list[dict[str, Any]]

    def stream(self, name: str = "stdout") -> str:
        texts = [
            o["text"]
            for o in self.outputs
            if o.get("output_type") == "stream" and o["name"] == name
        ]
        return "".join(multiline(t) for t in texts)

    @property
    def stdout(self) -> str:
        return self.stream("stdout")

    @property
    def stderr(self) -> str:
        return self.stream("stderr")

    @property
    def text(self) -> str:
        """Everything the cell showed as text, in order: streams, and the `text/plain` of
        results and displays (one per line)."""
        parts = []
        for output in self.outputs:
            if output.get("output_type") == "stream":
                parts.append(multiline(output.get("text", "")))
            elif "text/plain" in (output.get("data") or {}):
                plain = multiline(output["data"]["text/plain"])
                parts.append(plain if plain.endswith("\n") else plain + "\n")
        return "".join(parts)

    @property
    def data(self) -> dict[str, Any]:
        """The MIME bundles of the results and displays, merged (a later one's type wins):
        `result.data["image/png"]` is the base64 of the last PNG shown."""
        merged: dict[str, Any] = {}
        for output in self.outputs:
            if output.get("output_type") in ("execute_result", "display_data"):
                for mime, value in (output.get("data") or {}).items():
                    merged[mime] = multiline(value) if isinstance(value, list) else value
        return merged

    @property
    def error(self) -> dict[str, Any] | None:
        """The `error` output (`ename`, `evalue`, `traceback`) if the cell raised."""
        for output in self.outputs:
            if output.get("output_type") == "error":
                return output
        return None


class RoomClient:
    poll_interval = 0.05

    def __init__(
        self,
        server_url: str,
        path: str,
        token: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        max_message_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.server_url = server_url if server_url.endswith("/") else server_url + "/"
        self.url = room_url(server_url, path)
        self.path = path
        self.doc = Doc()
        self.notebook = YNotebook(self.doc)
        # Keep no deleted text for an undo this client never does (see room.py).
        self.notebook.undo_manager.include_origin("jupyter-crdt-sync: no client-side undo")
        self.awareness = Awareness(self.doc)
        self.close_code: int | None = None
        self.close_reason: str | None = None
        # The room's moves as the server announced them: {"type": "renamed" | "deleted",
        # "path": str}; `path` and `url` follow renames.
        self.moves: list[dict[str, str]] = []
        self._headers = dict(headers or {})
        if token:
            self._headers["Authorization"] = f"token {token}"
        self._max_message_bytes = max_message_bytes
        self._connection: WebSocketClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._changed = asyncio.Event()
        self._applying_remote = False
        self._subscription = self.doc.observe(self._on_transaction)
        self._awareness_subscription = self.awareness.observe(self._on_awareness)

    # -- connection ----------------------------------------------------------------------

    async def __aenter__(self) -> RoomClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def connect(self, timeout: float = 30.0) -> None:
        """Open the websocket and wait until this replica and the room's are in sync."""
        if self._connection is not None:
            raise RuntimeError("already connected")
        self._synced.clear()
        self.close_code = self.close_reason = None
        request = HTTPRequest(self.url, headers=self._headers, request_timeout=timeout)
        self._connection = await websocket_connect(
            request, max_message_size=self._max_message_bytes
        )
        self._reader = asyncio.ensure_future(self._read(self._connection))
        self._send(create_sync_message(self.doc))
        state = self.awareness.get_local_state()
        if state:
            self._send_awareness()
        await self.wait_synced(timeout)

    async def wait_synced(self, timeout: float = 30.0) -> None:
        synced = asyncio.ensure_future(self._synced.wait())
        assert self._reader is not None
        done, _ = await asyncio.wait(
            {synced, self._reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if synced not in done:
            synced.cancel()
            raise ConnectionError(
                f"room {self.path!r} did not sync (closed with {self.close_code} "
                f"{self.close_reason!r})"
            )

    async def disconnect(self) -> None:
        """Close the websocket; the replica stays, and edits go on offline."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()
            self._reader = None

    async def _read(self, connection: WebSocketClientConnection) -> None:
        while True:
            frame = await connection.read_message()
            if frame is None:
                self.close_code = connection.close_code
                self.close_reason = connection.close_reason
                if self._connection is connection:
                    self._connection = None
                self._changed.set()
                return
            if isinstance(frame, bytes):
                self._receive(frame)

    def _receive(self, frame: bytes) -> None:
        message = parse_message(frame)
        if message.kind is MessageKind.SYNC_STEP1:
            self._send(create_sync_step2_message(self.doc.get_update(message.payload)))
        elif message.kind in (MessageKind.SYNC_STEP2, MessageKind.SYNC_UPDATE):
            self._applying_remote = True
            try:
                self.doc.apply_update(message.payload)
            finally:
                self._applying_remote = False
            if message.kind is MessageKind.SYNC_STEP2:
                self._synced.set()
        elif message.kind is MessageKind.AWARENESS:
            self.awareness.apply_awareness_update(message.payload, origin="remote")
            self._changed.set()
        elif message.kind is MessageKind.MOVED:
            move = parse_moved(message.payload)
            self.moves.append(move)
            if move["type"] == "renamed":
                # Follow: a reconnect, a save or an execute request uses the new path.
                self.path = move["path"]
                self.url = room_url(self.server_url, self.path)
            self._changed.set()

    def _send(self, frame: bytes) -> None:
        if self._connection is None:
            return
        try:
            future = self._connection.write_message(frame, binary=True)
        except WebSocketClosedError:
            return  # closed: a reconnect re-syncs whatever did not get through
        future.add_done_callback(_ignore_result)

    def _on_transaction(self, event: TransactionEvent) -> None:
        self._changed.set()
        if not self._applying_remote:
            self._send(create_update_message(event.update))

    def _on_awareness(self, topic: str, changes: tuple[dict[str, Any], Any]) -> None:
        if topic == "update" and changes[1] == "local":
            self._send_awareness()

    def _send_awareness(self) -> None:
        update = self.awareness.encode_awareness_update([self.awareness.client_id])
        self._send(create_awareness_message(update))

    def send_raw(self, frame: bytes | str) -> None:
        """Send a frame as is (for testing how the server treats bad input)."""
        assert self._connection is not None
        self._connection.write_message(frame, binary=isinstance(frame, bytes))

    # -- waiting -------------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[RoomClient], bool], timeout: float = 10.0
    ) -> None:
        """Wait until `predicate(self)` is true, re-checking after every change (and every
        `poll_interval` seconds, for conditions on anything else)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s in {self.path!r}")
            self._changed.clear()
            if predicate(self):
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, self.poll_interval))

    async def wait_closed(self, timeout: float = 10.0) -> None:
        """Wait until the server closes the connection."""
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)

    # -- executing -----------------------------------------------------------------------

    async def execute(self, cell_ids: str | Sequence[str], timeout: float = 60.0) -> list[str]:
        """Ask the server to run these code cells, in this order, on the notebook's kernel;
        the msg_id of each request. Returns once they are queued: outputs arrive in the
        document, for every peer, whether or not this client stays connected."""
        ids = [cell_ids] if isinstance(cell_ids, str) else list(cell_ids)
        answer = await self._call(EXECUTE_ENDPOINT, {"cell_ids": ids}, timeout=timeout)
        return [str(execution["msg_id"]) for execution in answer["executions"]]

    async def _call(
        self, endpoint: str, body: Any = None, suffix: str = "", timeout: float = 60.0
    ) -> Any:
        """A REST call about this notebook (POST with a JSON body, else GET); an HTTP error
        is raised as HTTPClientError carrying the server's message."""
        request = HTTPRequest(
            self.server_url + endpoint + quote(self.path.strip("/"), safe="/") + suffix,
            method="GET" if body is None else "POST",
            headers={**self._headers, "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            request_timeout=timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as exc:
            message = exc.message
            if exc.response is not None:
                with contextlib.suppress(ValueError, AttributeError):
                    message = json.loads(exc.response.body)["message"]
            raise HTTPClientError(exc.code, message, exc.response) from None
        return json.loads(response.body)

    # -- history -------------------------------------------------------------------------

    async def history(self) -> list[dict[str, Any]]:
        """The notebook's versions, oldest first: `version`, `time` (ISO 8601), `authors`,
        `cells_changed` (and `restored_from` for a restore). Works without connect()."""
        answer = await self._call(HISTORY_ENDPOINT)
        return list(answer["versions"])

    async def version(self, number: int, diff: int | str | None = None) -> dict[str, Any]:
        """The notebook at a version: `content` (nbformat 4 JSON), `cell_ids`, `time`...;
        with `diff` (another version number, or "now"), also how it differs from that."""
        suffix = f"/{int(number)}" + (f"?diff={quote(str(diff))}" if diff is not None else "")
        return dict(await self._call(HISTORY_ENDPOINT, suffix=suffix))

    async def restore(self, number: int, cell_ids: Sequence[str] | None = None) -> int:
        """Bring the notebook (or only `cell_ids`, deleted ones included) back to a version,
        as an edit every window sees; the number of the version recorded after it."""
        body: dict[str, Any] = {"version": int(number)}
        if cell_ids is not None:
            body["cell_ids"] = list(cell_ids)
        answer = await self._call(RESTORE_ENDPOINT, body)
        return int(answer["version"])

    def execution(self, cell_id: str) -> dict[str, Any]:
        """The cell's execution as peers see it: `state` (queued, running, idle), and the
        `msg_id` and `status` of the request that produced its outputs."""
        cell = self._ycell(cell_id)
        metadata = cell.get("metadata")
        record = metadata.get("crdtsync") if isinstance(metadata, Map) else None
        record = record if isinstance(record, dict) else {}
        return {
            "state": cell.get("execution_state"),
            "msg_id": record.get("msg_id"),
            "status": record.get("status"),
        }

    def outputs(self, cell_id: str) -> list[dict[str, Any]]:
        index, _ = self._found(cell_id)
        return list(self.notebook.get_cell(index).get("outputs", []))

    async def wait_for_execution(
        self, cell_id: str, msg_id: str, timeout: float = 60.0
    ) -> ExecutionResult:
        """Wait until the request `msg_id` is over for this cell: run to its end, or
        dropped (status "aborted"); then its outputs."""
        if not self.connected:
            raise RuntimeError("outputs arrive through the room: connect() first")

        def finished(room: RoomClient) -> bool:
            execution = room.execution(cell_id)
            return (
                execution["msg_id"] == msg_id
                and execution["status"] is not None
                and execution["state"] == "idle"
            )

        await self.wait_for(finished, timeout)
        cell = self._ycell(cell_id)
        count = cell.get("execution_count")
        return ExecutionResult(
            cell_id=cell_id,
            msg_id=msg_id,
            status=str(self.execution(cell_id)["status"]),
            execution_count=int(count) if count is not None else None,
            outputs=self.outputs(cell_id),
        )

    async def run(self, cell_id: str, timeout: float = 60.0) -> ExecutionResult:
        """Execute one cell and wait for its outputs."""
        (msg_id,) = await self.execute(cell_id, timeout)
        return await self.wait_for_execution(cell_id, msg_id, timeout)

    async def run_all(self, timeout: float = 300.0) -> list[ExecutionResult]:
        """Execute every code cell in order, as JupyterLab's "Run All" does, and wait for
        all of them; after an error the rest end as "aborted"."""
        cell_ids = self.code_cell_ids()
        msg_ids = await self.execute(cell_ids, timeout) if cell_ids else []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        results = []
        for cell_id, msg_id in zip(cell_ids, msg_ids, strict=True):
            remaining = max(0.0, deadline - loop.time())
            results.append(await self.wait_for_execution(cell_id, msg_id, remaining))
        return results

    # -- reading -------------------------------------------------------------------------

    def cells(self) -> list[dict[str, Any]]:
        return [self.notebook.get_cell(i) for i in range(self.notebook.cell_number)]

    def cell_ids(self) -> list[str]:
        return [str(cell["id"]) for cell in self.notebook.ycells]

    def code_cell_ids(self) -> list[str]:
        return [str(c["id"]) for c in self.notebook.ycells if c.get("cell_type") == "code"]

    def source(self, cell_id: str) -> str:
        return str(self._ycell(cell_id)["source"])

    def content(self) -> dict[str, Any]:
        return self.notebook.get()

    def _found(self, cell_id: str) -> tuple[int, Map]:
        found = find_cell(self.notebook, cell_id)
        if found is None:
            raise KeyError(f"no cell with id {cell_id!r}")
        return found

    def _ycell(self, cell_id: str) -> Map:
        return self._found(cell_id)[1]

    # -- editing -------------------------------------------------------------------------

    def insert_text(self, cell_id: str, index: int, text: str) -> None:
        source: Text = self._ycell(cell_id)["source"]
        source.insert(utf8_offset(str(source), index), text)

    def delete_text(self, cell_id: str, index: int, length: int) -> None:
        source: Text = self._ycell(cell_id)["source"]
        current = str(source)
        start = utf8_offset(current, index)
        end = utf8_offset(current, index + length)
        del source[start:end]

    def set_source(self, cell_id: str, text: str) -> None:
        source: Text = self._ycell(cell_id)["source"]
        with self.doc.transaction():
            source.clear()
            source.insert(0, text)

    def add_cell(self, source: str = "", cell_type: str = "code", index: int | None = None) -> str:
        cell: dict[str, Any] = {
            "id": uuid.uuid4().hex[:8],
            "cell_type": cell_type,
            "source": source,
            "metadata": {},
        }
        if cell_type == "code":
            cell.update(outputs=[], execution_count=None)
        ycell = self.notebook.create_ycell(cell)
        cells = self.notebook.ycells
        cells.insert(len(cells) if index is None else index, ycell)
        return str(cell["id"])

    def delete_cell(self, cell_id: str) -> None:
        del self.notebook.ycells[self._found(cell_id)[0]]

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        self.awareness.set_local_state(state)

    # -- text files ----------------------------------------------------------------------
    # A text file's room (any file but a notebook) holds root Text `source` (jupyter-ydoc's
    # YUnicode layout); indexes are Python string indexes, as for cells.

    @property
    def _file_text(self) -> Text:
        return self.doc.get("source", type=Text)

    def file_text(self) -> str:
        """The text of a text file's room."""
        return str(self._file_text)

    def insert_file_text(self, index: int, text: str) -> None:
        source = self._file_text
        source.insert(utf8_offset(str(source), index), text)

    def delete_file_text(self, index: int, length: int) -> None:
        source = self._file_text
        current = str(source)
        del source[utf8_offset(current, index) : utf8_offset(current, index + length)]


def room_url(server_url: str, path: str) -> str:
    """The websocket URL of a notebook's room, from the server's http(s) URL."""
    base = server_url if server_url.endswith("/") else server_url + "/"
    if base.startswith("http"):
        base = "ws" + base[len("http") :]
    return base + ROOM_ENDPOINT + quote(path.strip("/"), safe="/")


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
