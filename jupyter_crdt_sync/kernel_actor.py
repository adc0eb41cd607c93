"""The kernel actor: the server runs a notebook's cells and is the only writer of outputs.

    execute request ─▶ KernelActors.execute ─▶ the room's KernelActor (one queue per room)
        ─▶ KernelLink (its own client of the session's kernel) ─▶ CellExecution ─▶ document
        ─▶ peers and the file writer, as for any change

Cells run one at a time, in the order they were asked for. The source that runs is the
one in the document when the request was taken. An error, an interrupt, a restart or a
shutdown of the kernel drops the cells still queued, as JupyterLab's run-all stops; an
error in a cell tagged `raises-exception` does not (it is sent with `stop_on_error`
false). An empty or whitespace-only cell is never sent: its turn in the queue clears it
and ends at once, with no execution count and no timing metadata, as in JupyterLab and
nbclient. Code that asks for input fails at once (the request allows no stdin); the log
and the cell's `metadata.crdtsync.error` name the cell. While
the actor has work it holds the room open, so a script may ask for execution and leave.

Each actor belongs to one open notebook (open_notebook.py): it reads the notebook's path
and room from its owner, so a rename takes its queue, its kernel and its widget state
along, and the owner stops it when the room closes.

Outputs that an ipywidgets Output widget captures (`with out:`, in a cell or in a widget
callback that a window's slider ran) go into that widget's state, not into the cell
(output_capture.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from logging import Logger
from typing import Any

from jupyter_client.kernelspec import NoSuchKernel
from pycrdt import Map
from tornado.web import HTTPError

from .cells import find_cell
from .execution import CellExecution, DisplayIndex, OutputLimits, stdin_message
from .kernel_link import COMM_MESSAGES, KernelLink, Message
from .location import moved_path
from .notebook_file import is_notebook_path, normalize_path
from .open_notebook import OpenNotebook
from .output_capture import OutputCapture
from .room import Room
from .rooms import RoomManager

# The cell tag that lets a cell raise without stopping the cells queued after it.
RAISES_EXCEPTION = "raises-exception"

KERNEL_ACTIONS_SCHEMA = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"

# How often a running execution checks that its kernel still exists (seconds).
WATCHDOG_INTERVAL = 1.0


@dataclass(frozen=True)
class ActorSettings:
    limits: OutputLimits
    kernel_ready_timeout: float = 60.0


@dataclass(frozen=True)
class _Request:
    room: Room
    kernel_id: str | None  # None only for blank cells, which are never sent
    execution: CellExecution


class KernelActor:
    """The execution queue of one room and its link to the room's kernel."""

    def __init__(
        self,
        owner: OpenNotebook,
        rooms: RoomManager,
        kernel_manager: Any,
        settings: ActorSettings,
        log: Logger,
    ) -> None:
        self._owner = owner
        self.kernel_id: str | None = None
        self._rooms = rooms
        self._kernel_manager = kernel_manager
        self._settings = settings
        self._log = log
        self._queue: deque[_Request] = deque()
        self._running: CellExecution | None = None
        self._outcome: asyncio.Future[str] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._link: KernelLink | None = None
        self._old_links: set[KernelLink] = set()  # closed, sockets closing
        # The display ids of the room's outputs (one index per room, across executions).
        self.displays = DisplayIndex(owner.room.notebook)
        # Set when a kernel that died and is being restarted by Jupyter is back.
        self._kernel_back: asyncio.Event | None = None
        # Outputs that Output widgets capture go to their state, not to the cell.
        self._capture = OutputCapture(owner.room.widgets, self._send_comm)

    def __repr__(self) -> str:
        return f"<KernelActor {self.path!r} queue={len(self._queue)}>"

    @property
    def path(self) -> str:
        return self._owner.path

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> CellExecution | None:
        return self._running

    def uses(self, kernel_id: str) -> bool:
        link_kernel = self._link.kernel_id if self._link is not None else None
        return kernel_id in (self.kernel_id, link_kernel)

    def _clear_widgets(self) -> None:
        self._capture.clear()
        if not self._owner.room.closing:
            self._owner.widgets.clear()

    def status(self) -> dict[str, Any] | None:
        """The `kernel` field of the room's status: None until the room executed a cell."""
        if self.kernel_id is None:
            return None
        try:
            model = self._kernel_manager.kernel_model(self.kernel_id)
        except (KeyError, HTTPError):
            return None
        running = self._running
        return {
            "id": self.kernel_id,
            "name": model.get("name"),
            "execution_state": model.get("execution_state"),
            "queue": len(self._queue),
            "running": running.cell_id if running is not None else None,
        }

    # -- the queue -----------------------------------------------------------------------

    def enqueue(self, room: Room, kernel_id: str | None, executions: list[CellExecution]) -> None:
        if kernel_id is not None:
            self.kernel_id = kernel_id
        with room.doc.transaction():
            for execution in executions:
                execution.queue()
        self._queue.extend(_Request(room, kernel_id, execution) for execution in executions)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._run())

    def drop_queue(self, reason: str) -> None:
        if not self._queue:
            return
        dropped = list(self._queue)
        self._queue.clear()
        self._log.info("[kernel] %r: %d queued cells dropped: %s", self.path, len(dropped), reason)
        for request in dropped:
            request.execution.finish("aborted")

    async def _run(self) -> None:
        try:
            async with self._rooms.hold(self.path) as room:
                while self._queue:
                    request = self._queue.popleft()
                    if request.room is not room:
                        # The room was closed and reopened since: its document is gone.
                        request.execution.finish("aborted")
                        continue
                    if request.execution.blank:
                        # Not sent: done at once, in its place in the queue.
                        request.execution.finish("ok")
                        continue
                    try:
                        status = await self._run_one(request)
                    except Exception:
                        self._log.exception("[kernel] %r: %r failed", self.path, request.execution)
                        request.execution.finish("aborted")
                        status = "aborted"
                    if status == "error" and request.execution.stdin_refused:
                        self._log.warning(
                            "[kernel] %r: %s", self.path, stdin_message(request.execution.cell_id)
                        )
                    if status == "error" and request.execution.allow_errors:
                        continue  # tagged raises-exception: the queue goes on
                    if status != "ok":
                        self.drop_queue(f"cell {request.execution.cell_id!r} ended: {status}")
        except Exception:
            self._log.exception("[kernel] %r: the execution queue failed", self.path)
            self.drop_queue("the execution queue failed")

    async def _run_one(self, request: _Request) -> str:
        execution = request.execution
        assert request.kernel_id is not None
        try:
            link = await self._link_to(request.kernel_id)
        except Exception as exc:
            # Broad: a kernel can fail to answer in many ways; the traceback says which.
            self._log.error(
                "[kernel] %r: kernel %s cannot be reached: %s",
                self.path,
                request.kernel_id,
                exc,
                exc_info=not isinstance(exc, (asyncio.TimeoutError, HTTPError, KeyError)),
            )
            execution.finish("aborted")
            return "aborted"
        self._running = execution
        self._outcome = outcome = asyncio.get_running_loop().create_future()
        try:
            execution.start()
            if link.closed:
                # The kernel restarted or went away since the link was opened.
                self._end_running("aborted")
            else:
                link.execute(
                    execution.msg_id, execution.code, stop_on_error=not execution.allow_errors
                )
            while not outcome.done():
                await asyncio.wait([outcome], timeout=WATCHDOG_INTERVAL)
                if not outcome.done() and request.kernel_id not in self._kernel_manager:
                    self._log.warning("[kernel] %r: kernel %s is gone", self.path, link.kernel_id)
                    self._end_running("aborted")
            status = outcome.result()
        finally:
            link.forget(execution.msg_id)
            self._running = None
            self._outcome = None
        execution.finish(status)
        self._log.debug("[kernel] %r: %r finished (%s)", self.path, execution, status)
        return status

    def _end_running(self, status: str) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(status)

    # -- the kernel ----------------------------------------------------------------------

    async def _link_to(self, kernel_id: str) -> KernelLink:
        link = self._link
        if link is not None and (link.closed or link.kernel_id != kernel_id):
            self._drop_link()
            link = None
        if link is None:
            if self._kernel_back is not None:
                # A dead kernel is being restarted: its new process may have new ports.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        self._kernel_back.wait(), self._settings.kernel_ready_timeout
                    )
                self._kernel_back = None
            link = KernelLink(
                self._kernel_manager,
                kernel_id,
                on_iopub=self._on_iopub,
                on_reply=self._on_reply,
                on_kernel_event=lambda action: self.on_kernel_event(kernel_id, action),
                log=self._log,
            )
            self._link = link
            try:
                await link.open(self._settings.kernel_ready_timeout)
            except BaseException:
                if self._link is link:
                    self._link = None
                raise
        return link

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            self._old_links.add(link)
            link.close().add_done_callback(lambda _: self._old_links.discard(link))

    def _on_iopub(self, messages: list[Message]) -> None:
        """A batch of IOPub messages, in the kernel's order: widget comm messages, outputs
        an Output widget captures, and the running cell's messages."""
        room = self._owner.room
        if room.closing:
            return
        execution = self._running
        capture = self._capture
        ended: list[str] = []
        # One transaction per batch: one update to the peers, not one per message.
        with room.doc.transaction():
            cell_messages: list[Message] = []
            for msg in messages:
                msg_type = msg.get("msg_type")
                parent = (msg.get("parent_header") or {}).get("msg_id")
                if msg_type in COMM_MESSAGES:
                    # Comm messages may change which widget captures: apply the cell's
                    # messages before them first.
                    self._to_cell(execution, cell_messages)
                    self._owner.widgets.handle(capture.without_echo(msg))
                    capture.follow(msg)
                elif capture.take(msg):
                    self._to_cell(execution, cell_messages)
                else:
                    if msg_type == "status" and msg["content"].get("execution_state") == "idle":
                        ended.append(parent)
                    if execution is not None and parent == execution.msg_id:
                        cell_messages.append(msg)
            self._to_cell(execution, cell_messages)
            capture.flush()
        for request_id in ended:
            capture.request_ended(request_id)
        if execution is not None:
            self._check_complete(execution)

    @staticmethod
    def _to_cell(execution: CellExecution | None, messages: list[Message]) -> None:
        if execution is not None and messages:
            execution.handle_iopub_batch(messages)
        messages.clear()

    def _send_comm(self, comm_id: str, data: dict[str, Any], parent: Message) -> None:
        if self._link is not None:
            self._link.send_comm(comm_id, data, parent)

    def _on_reply(self, msg: Message) -> None:
        execution = self._running
        if execution is None or msg["parent_header"].get("msg_id") != execution.msg_id:
            return
        execution.handle_reply(msg)
        self._check_complete(execution)

    def _check_complete(self, execution: CellExecution) -> None:
        if execution.complete:
            status = execution.reply_status
            self._end_running(status if status in ("ok", "error", "aborted") else "error")

    def on_kernel_event(self, kernel_id: str, action: str) -> None:
        """An interrupt, restart, shutdown or death of a kernel this actor uses: from the
        server's kernel action events (after the action) or the kernel restarter (as a
        kernel that died is restarted: "autorestart", or could not be: "dead")."""
        if not self.uses(kernel_id):
            return
        if action == "autorestart":
            self._kernel_back = asyncio.Event()
        elif action in ("restart", "dead") and self._kernel_back is not None:
            self._kernel_back.set()
        if action == "interrupt":
            # The running cell gets its KeyboardInterrupt from the kernel.
            self.drop_queue("the kernel was interrupted")
        elif action in ("restart", "autorestart", "shutdown", "dead"):
            self.drop_queue(f"the kernel had a {action}")
            # The kernel's widgets are gone with it.
            self._clear_widgets()
            if self._link is not None and self._link.kernel_id == kernel_id:
                self._drop_link()
            self._end_running("aborted")

    async def stop(self) -> None:
        self.drop_queue("the server is stopping")
        self._end_running("aborted")
        if self._runner is not None and not self._runner.done():
            await asyncio.wait([self._runner], timeout=5)
        self._drop_link()
        links, self._old_links = self._old_links, set()
        await asyncio.gather(*(link.aclose() for link in links), return_exceptions=True)


class KernelActors:
    """The kernel actors of all rooms, and the kernel each room's notebook runs on."""

    def __init__(
        self,
        rooms: RoomManager,
        session_manager: Any,
        kernel_manager: Any,
        settings: ActorSettings,
        log: Logger,
        event_logger: Any = None,
    ) -> None:
        self._rooms = rooms
        self._session_manager = session_manager
        self._kernel_manager = kernel_manager
        self._settings = settings
        self._log = log
        self._kernel_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._event_logger = event_logger
        if event_logger is not None:
            event_logger.add_listener(
                schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_kernel_action
            )

    def actor(self, path: str) -> KernelActor | None:
        owner = self._rooms.open_notebook(path)
        return _actor_of(owner) if owner is not None else None

    async def execute(self, raw_path: str, cell_ids: list[str]) -> list[CellExecution]:
        """Queue these cells of the notebook at `raw_path` on its kernel, in this order.

        Raises HTTPError (404 unknown notebook or cell, 400 not a code cell or no such
        kernelspec) before anything is queued."""
        path = await self._rooms.resolve(raw_path)
        if not is_notebook_path(path):
            raise HTTPError(400, f"{path!r} is not a notebook: only notebook cells are executed")
        async with self._rooms.hold(path) as room:
            owner = self._rooms.open_notebook(room.path)
            if owner is None or owner.room is not room:
                raise HTTPError(409, f"The room of {path!r} closed while the request was taken")
            sources = self._sources(room, cell_ids)
            actor = _actor_of(owner)
            if actor is None:
                actor = KernelActor(
                    owner, self._rooms, self._kernel_manager, self._settings, self._log
                )
                owner.kernel = actor
            # Blank cells are never sent: they alone start no kernel.
            needs_kernel = any(code.strip() for _, code, _ in sources)
            kernel_id = await self._kernel_for(owner, actor) if needs_kernel else actor.kernel_id
            executions = [
                CellExecution(
                    room.notebook,
                    cell_id,
                    str(uuid.uuid4()),
                    code,
                    self._settings.limits,
                    actor.displays,
                    allow_errors=RAISES_EXCEPTION in tags,
                )
                for cell_id, code, tags in sources
            ]
            actor.enqueue(room, kernel_id, executions)
        return executions

    def _sources(self, room: Room, cell_ids: list[str]) -> list[tuple[str, str, list[str]]]:
        """Each cell's id, source and tags, as the request finds them."""
        sources = []
        for cell_id in cell_ids:
            found = find_cell(room.notebook, cell_id)
            if found is None:
                raise HTTPError(404, f"No cell with id {cell_id!r} in {room.path!r}")
            cell = found[1]
            cell_type = cell.get("cell_type")
            if cell_type != "code":
                raise HTTPError(
                    400, f"Cell {cell_id!r} is a {cell_type} cell: only code cells are executed"
                )
            sources.append((cell_id, str(cell.get("source", "")), _tags(cell)))
        return sources

    async def _kernel_for(self, owner: OpenNotebook, actor: KernelActor) -> str:
        """The kernel of the notebook's Jupyter session; else the kernel the actor already
        runs on (a rename may have moved the notebook away from its session's path); else
        a new session with a kernel from the notebook's kernelspec (JupyterLab then joins
        that kernel)."""
        path = owner.path
        async with self._kernel_locks[path]:
            for session in await self._session_manager.list_sessions():
                kernel_id = (session.get("kernel") or {}).get("id")
                if (
                    path in _session_paths(session.get("path"))
                    and kernel_id in self._kernel_manager
                ):
                    return str(kernel_id)
            if actor.kernel_id is not None and actor.kernel_id in self._kernel_manager:
                return actor.kernel_id
            name = _kernelspec_name(owner.room)
            try:
                model = await self._session_manager.create_session(
                    path=path, name=posixpath.basename(path), type="notebook", kernel_name=name
                )
            except NoSuchKernel as exc:
                raise HTTPError(
                    400, f"The notebook's kernel {name!r} is not installed on the server"
                ) from exc
            except HTTPError:
                raise
            except Exception as exc:
                self._log.exception("[kernel] no kernel could be started for %r", path)
                raise HTTPError(500, f"No kernel could be started for {path!r}: {exc}") from exc
            kernel_id = str(model["kernel"]["id"])
            self._log.info("[kernel] started kernel %s for %r", kernel_id, path)
            return kernel_id

    async def renamed(self, old_path: str, new_path: str) -> None:
        """A notebook was renamed outside JupyterLab (which moves its own sessions): move
        its Jupyter session along, so that windows opening the new path join its kernel."""
        for session in await self._session_manager.list_sessions():
            if session.get("type") != "notebook":
                continue
            for path in _session_paths(session.get("path")):
                target = moved_path(path, old_path, new_path)
                if target is None:
                    continue
                await self._session_manager.update_session(
                    session["id"], path=target, name=posixpath.basename(target)
                )
                self._log.info("[kernel] session %s follows %r to %r", session["id"], path, target)
                break

    async def _on_kernel_action(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        if data.get("status") != "success":
            return
        kernel_id, action = data.get("kernel_id"), data.get("action")
        if not kernel_id or not action:
            return
        for owner in self._rooms.open_notebooks():
            actor = _actor_of(owner)
            if actor is not None:
                actor.on_kernel_event(str(kernel_id), str(action))

    async def stop(self) -> None:
        if self._event_logger is not None:
            # Never registered, or already removed: nothing to undo.
            with contextlib.suppress(KeyError, ValueError):
                self._event_logger.remove_listener(
                    schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_kernel_action
                )
        actors = [_actor_of(owner) for owner in self._rooms.open_notebooks()]
        await asyncio.gather(
            *(actor.stop() for actor in actors if actor is not None), return_exceptions=True
        )


def _tags(cell: Map) -> list[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, Map) else None
    if tags is not None and hasattr(tags, "to_py"):
        tags = tags.to_py()
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def _actor_of(owner: OpenNotebook) -> KernelActor | None:
    return owner.kernel if isinstance(owner.kernel, KernelActor) else None


def _session_paths(raw: Any) -> set[str]:
    """The notebook paths a session's path may name (with or without a drive prefix)."""
    if not isinstance(raw, str) or not raw:
        return set()
    candidates = {raw}
    drive, sep, rest = raw.partition(":")
    if sep and "/" not in drive:
        candidates.add(rest)
    paths = set()
    for candidate in candidates:
        with contextlib.suppress(HTTPError):
            paths.add(normalize_path(candidate))
    return paths


def _kernelspec_name(room: Room) -> str | None:
    meta = room.doc.get("meta", type=Map).to_py() or {}
    kernelspec = (meta.get("metadata") or {}).get("kernelspec") or {}
    name = kernelspec.get("name") if isinstance(kernelspec, dict) else None
    return str(name) if name else None
