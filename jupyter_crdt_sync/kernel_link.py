"""The kernel actor's own client of one kernel.

It has its own shell and IOPub sockets, apart from every window's and console's. It
passes every IOPub message on to the actor, in the kernel's order, and the actor keeps
those of requests it sent (output of a console on the same kernel never reaches a cell),
comm messages (widget state), and outputs an Output widget captures. Only replies to its
own requests are passed on from the shell channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from logging import Logger
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.multikernelmanager import MultiKernelManager

Message = dict[str, Any]

# Most IOPub messages applied to the document in one transaction; more wait for the
# next turn of the event loop, so that peers' edits are not held up by a flood.
IOPUB_BATCH = 256
COMM_MESSAGES = ("comm_open", "comm_msg", "comm_close")


class KernelLink:
    def __init__(
        self,
        kernel_manager: MultiKernelManager,
        kernel_id: str,
        *,
        on_iopub: Callable[[list[Message]], None],
        on_reply: Callable[[Message], None],
        on_kernel_event: Callable[[str], None],
        log: Logger,
    ) -> None:
        self.kernel_id = kernel_id
        self._kernel_manager = kernel_manager
        # Every IOPub message, in the kernel's order, in batches: the actor picks its
        # requests' messages, the comm messages (widgets) whatever request they answer
        # (a change made in any window reaches IOPub as the kernel's echo), and the
        # outputs an Output widget captures (a widget callback runs under the request of
        # the window that moved the slider).
        self._on_iopub = on_iopub
        self._on_reply = on_reply
        # The kernel restarter's callbacks: "autorestart" as a dead kernel is being
        # restarted, "dead" when it could not be.
        self._on_autorestart = lambda: on_kernel_event("autorestart")
        self._on_dead = lambda: on_kernel_event("dead")
        self._log = log
        self._client: AsyncKernelClient | None = None
        # Comm messages (Output widget state) go out on a shell socket of their own, which
        # nothing reads: sent on the socket whose replies `_read_shell` awaits, while a
        # reply was arriving, the reply was sometimes never seen (1 run in 4 of
        # tests/test_widgets_kernel.py::test_output_widgets_capture_on_the_server hung).
        # Comm messages have no reply.
        self._comm_client: AsyncKernelClient | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._sent: set[str] = set()
        self._closing: asyncio.Future[None] | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"<KernelLink {self.kernel_id}>"

    async def open(self, timeout: float) -> None:
        """Connect and wait until the kernel answers and IOPub is subscribed."""
        if self._client is not None:
            raise RuntimeError("KernelLink already opened")
        manager = self._kernel_manager.get_kernel(self.kernel_id)
        # The kernel restarter calls these when the kernel dies (and is restarted).
        manager.add_restart_callback(self._on_autorestart, "restart")
        manager.add_restart_callback(self._on_dead, "dead")
        client = manager.client()
        # Clients of one kernel manager share its session id, which is also their socket
        # identity on the kernel's shell: replies would go to whichever connected last.
        client.session.session = str(uuid.uuid4())
        self._client = client
        client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        try:
            await client.wait_for_ready(timeout=timeout)
        except BaseException:
            await self.aclose()
            raise
        self._readers = [
            asyncio.ensure_future(self._read_iopub()),
            asyncio.ensure_future(self._read_shell()),
        ]

    def execute(self, msg_id: str, code: str, *, stop_on_error: bool = True) -> None:
        """Send an execute request under the msg_id the actor chose for it; a cell tagged
        `raises-exception` goes with `stop_on_error` false, as JupyterLab sends it."""
        if self._client is None or self.closed:
            raise RuntimeError(f"{self!r} is closed")
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            # input() fails at once with StdinNotImplementedError rather than waiting
            # for an answer that no window can give.
            "allow_stdin": False,
            "stop_on_error": stop_on_error,
        }
        msg = self._client.session.msg("execute_request", content)
        msg["header"]["msg_id"] = msg["msg_id"] = msg_id
        self._sent.add(msg_id)
        self._client.shell_channel.send(msg)

    def forget(self, msg_id: str) -> None:
        """Stop passing on messages for a request that is over."""
        self._sent.discard(msg_id)

    def close(self) -> asyncio.Future[None]:
        """Stop passing anything on at once; the sockets close in the background (the
        future returned)."""
        if self._closing is None:
            self.closed = True
            self._closing = asyncio.ensure_future(self._close())
        return self._closing

    async def aclose(self) -> None:
        await self.close()

    async def _close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        # Readers let go of their sockets before the sockets are closed.
        await asyncio.gather(*self._readers, return_exceptions=True)
        # The kernel may be gone already (KeyError), its callbacks with it (ValueError).
        with contextlib.suppress(KeyError, ValueError):
            manager = self._kernel_manager.get_kernel(self.kernel_id)
            manager.remove_restart_callback(self._on_autorestart, "restart")
            manager.remove_restart_callback(self._on_dead, "dead")
        if self._client is not None:
            # Only these two were started; stop_channels() would create the others.
            self._client.shell_channel.stop()
            self._client.iopub_channel.stop()
        if self._comm_client is not None:
            self._comm_client.shell_channel.stop()

    def _parent_id(self, msg: Message) -> str | None:
        parent = msg.get("parent_header") or {}
        return parent.get("msg_id")

    async def _read_iopub(self) -> None:
        assert self._client is not None
        channel = self._client.iopub_channel
        while True:
            try:
                batch = [await channel.get_msg()]
                while len(batch) < IOPUB_BATCH and await channel.msg_ready():
                    batch.append(await channel.get_msg())
            except zmq.ZMQError as exc:
                self._log.warning("[kernel] %r: IOPub closed: %s", self, exc)
                return
            except (ValueError, KeyError) as exc:
                self._log.warning("[kernel] %r: unreadable IOPub message: %s", self, exc)
                continue
            if not self.closed:
                try:
                    self._on_iopub(batch)
                except Exception:
                    self._log.exception("[kernel] %r: IOPub messages not applied", self)
            # Let websocket traffic through between batches.
            await asyncio.sleep(0)

    def send_comm(self, comm_id: str, data: dict[str, Any], parent: Message) -> None:
        """Send a comm message to the kernel, as a front-end does (no reply expected)."""
        if self._client is None or self.closed:
            return
        if self._comm_client is None:
            try:
                manager = self._kernel_manager.get_kernel(self.kernel_id)
            except KeyError:
                return  # the kernel is gone: its widgets with it
            self._comm_client = manager.client()
            self._comm_client.session.session = str(uuid.uuid4())
            self._comm_client.start_channels(
                shell=True, iopub=False, stdin=False, hb=False, control=False
            )
        content = {"comm_id": comm_id, "data": data}
        msg = self._comm_client.session.msg("comm_msg", content, parent=parent or None)
        self._comm_client.shell_channel.send(msg)

    async def _read_shell(self) -> None:
        assert self._client is not None
        channel = self._client.shell_channel
        while True:
            try:
                msg = await channel.get_msg()
            except zmq.ZMQError as exc:
                self._log.warning("[kernel] %r: shell closed: %s", self, exc)
                return
            except (ValueError, KeyError) as exc:
                self._log.warning("[kernel] %r: unreadable shell message: %s", self, exc)
                continue
            if self.closed:
                continue
            if msg["msg_type"] == "execute_reply" and self._parent_id(msg) in self._sent:
                try:
                    self._on_reply(msg)
                except Exception:
                    self._log.exception("[kernel] %r: reply not applied", self)
