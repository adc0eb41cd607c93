"""Output widget capture: the server does for `with out:` what ipywidgets' front-end does.

An ipywidgets `Output` widget captures by name. Entering `with out:` sets its `msg_id`
state to the request the kernel is handling (a cell's execute request, or the comm
message of a slider moved in a window); leaving sets it back to ''. While a widget's
`msg_id` names a request, that request's outputs (stream, display_data, execute_result,
error) and its clear_output go into the widget's `outputs` state instead of the cell.
JupyterLab's OutputModel does this with a kernel message hook, nbclient with its output
hook stack; a server that writes outputs itself must do it too.

The kernel actor hands `OutputCapture` every IOPub message in the kernel's order: comm
messages through `follow`, then each output through `take`, which says whether it was
captured. Captured outputs go into the Output widget's entry in the document's `widgets`
map (`flush`, once per batch), so every window, a window that joins later and the file
see them. When a widget lets go of a request (or the request ends) its outputs are sent
to the kernel as a front-end sends them (a comm `update`), so `out.outputs` in the kernel
agrees; the kernel's echo of that update is not written again (`without_echo`).

Several widgets naming one request (nested `with` blocks): the one that named it last
captures until it lets go, a stack per request as message hooks are. Consecutive output
of one stream is merged, with `\\r` and `\\b` applied, as JupyterLab's output area does;
`clear_output(wait=True)` clears at the widget's next output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Map

from .outputs import Terminal, fold_stream, output_from_message

OUTPUT_MODEL = ("@jupyter-widgets/output", "OutputModel")
CAPTURED_TYPES = frozenset({"stream", "display_data", "execute_result", "error", "clear_output"})

Message = dict[str, Any]
# Sends a comm message to the kernel: comm id, data, parent header.
SendComm = Callable[[str, dict[str, Any], dict[str, Any]], None]


@dataclass
class _Capture:
    """The outputs of one Output widget while the server captures into it."""

    outputs: list[dict[str, Any]]
    clear_next: bool = False
    in_document: bool = True  # the document holds `outputs`
    in_kernel: bool = True  # the kernel was sent `outputs`
    parent: dict[str, Any] = field(default_factory=dict)  # header of the captured request
    # The unfinished line of the last output, if it is a stream this capture writes.
    terminal: Terminal | None = None


def _parent_id(msg: Message) -> str | None:
    return (msg.get("parent_header") or {}).get("msg_id")


def _msg_type(msg: Message) -> str | None:
    return (msg.get("header") or {}).get("msg_type") or msg.get("msg_type")


class OutputCapture:
    def __init__(self, widgets: Map, send: SendComm) -> None:
        self._widgets = widgets
        self._send = send
        self._stacks: dict[str, list[str]] = {}  # request msg_id -> widgets, last captures
        self._names: dict[str, str] = {}  # widget -> the request its msg_id names
        self._captures: dict[str, _Capture] = {}  # widget -> what it captured

    def capturing(self, request_id: str) -> str | None:
        """The Output widget that captures this request's outputs now, if any."""
        stack = self._stacks.get(request_id)
        return stack[-1] if stack else None

    # -- comm messages -------------------------------------------------------------------

    def follow(self, msg: Message) -> None:
        """Follow the Output widgets' `msg_id` and `outputs` from their comm messages."""
        msg_type = _msg_type(msg)
        content = msg.get("content") or {}
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str):
            return
        if msg_type == "comm_close":
            self._let_go(comm_id)
            self._captures.pop(comm_id, None)
            return
        data = content.get("data") or {}
        state = data.get("state")
        if not isinstance(state, dict):
            return
        if msg_type == "comm_open":
            if (state.get("_model_module"), state.get("_model_name")) != OUTPUT_MODEL:
                return
        elif msg_type != "comm_msg" or data.get("method") not in ("update", "echo_update"):
            return
        if not self._is_output_widget(comm_id):
            return
        capture = self._captures.get(comm_id)
        if capture is not None and "outputs" in state and data.get("method") == "update":
            # Set in the kernel (out.outputs = ..., append_stdout): the kernel is right.
            capture.outputs = [dict(output) for output in state["outputs"] or []]
            capture.terminal = None
            capture.in_document = capture.in_kernel = True
        if "msg_id" in state:
            self._let_go(comm_id)
            request_id = state["msg_id"]
            if isinstance(request_id, str) and request_id:
                self._names[comm_id] = request_id
                self._stacks.setdefault(request_id, []).append(comm_id)

    def without_echo(self, msg: Message) -> Message:
        """The message WidgetStates should apply: an echo of `outputs` of an Output
        widget the server captures into is its own write coming back, possibly stale."""
        content = msg.get("content") or {}
        data = content.get("data") or {}
        comm_id = content.get("comm_id")
        if (
            _msg_type(msg) != "comm_msg"
            or data.get("method") != "echo_update"
            or "outputs" not in (data.get("state") or {})
            or comm_id not in self._captures
        ):
            return msg
        state = {k: v for k, v in data["state"].items() if k != "outputs"}
        return {**msg, "content": {**content, "data": {**data, "state": state}}}

    def _is_output_widget(self, comm_id: str) -> bool:
        if comm_id in self._captures or comm_id in self._names:
            return True
        entry = self._widgets.get(comm_id)
        if not isinstance(entry, Map):
            return False
        return (entry.get("model_module"), entry.get("model_name")) == OUTPUT_MODEL

    def _let_go(self, comm_id: str) -> None:
        request_id = self._names.pop(comm_id, None)
        if request_id is None:
            return
        stack = self._stacks.get(request_id, [])
        if comm_id in stack:
            # The last of its entries: hooks are removed from the top.
            del stack[len(stack) - 1 - stack[::-1].index(comm_id)]
        if not stack:
            self._stacks.pop(request_id, None)
        self._sync(comm_id)

    # -- outputs -------------------------------------------------------------------------

    def take(self, msg: Message) -> bool:
        """Capture an output message if an Output widget names its request; False if the
        message is not captured (it goes to the cell, if any)."""
        msg_type = _msg_type(msg)
        if msg_type not in CAPTURED_TYPES:
            return False
        request_id = _parent_id(msg)
        comm_id = self.capturing(request_id) if request_id else None
        if comm_id is None:
            return False
        capture = self._captures.get(comm_id)
        if capture is None:
            capture = self._captures[comm_id] = _Capture(self._document_outputs(comm_id))
        capture.parent = dict(msg.get("parent_header") or {})
        content = msg.get("content") or {}
        if msg_type == "clear_output":
            if content.get("wait"):
                capture.clear_next = True
            else:
                capture.outputs, capture.terminal = [], None
                capture.clear_next = False
        else:
            if capture.clear_next:
                capture.outputs, capture.terminal = [], None
                capture.clear_next = False
            output = output_from_message(str(msg_type), content)
            assert output is not None
            _append(capture, output)
        capture.in_document = capture.in_kernel = False
        return True

    def request_ended(self, request_id: str) -> None:
        """The kernel went idle on this request: what was captured for it goes to the
        kernel now, even from a widget that has not let go."""
        for comm_id in self._stacks.get(request_id, []):
            self._sync(comm_id)

    def flush(self) -> None:
        """Write what was captured into the document (call inside a transaction)."""
        for comm_id, capture in self._captures.items():
            if capture.in_document:
                continue
            capture.in_document = True
            entry = self._widgets.get(comm_id)
            state = entry.get("state") if isinstance(entry, Map) else None
            if isinstance(state, Map):
                state["outputs"] = [dict(output) for output in capture.outputs]

    def clear(self) -> None:
        """The kernel restarted: its widgets are gone."""
        self._stacks.clear()
        self._names.clear()
        self._captures.clear()

    def _document_outputs(self, comm_id: str) -> list[dict[str, Any]]:
        entry = self._widgets.get(comm_id)
        state = entry.get("state") if isinstance(entry, Map) else None
        outputs = state.get("outputs") if isinstance(state, Map) else None
        if hasattr(outputs, "to_py"):
            outputs = outputs.to_py()
        return [dict(o) for o in outputs if isinstance(o, dict)] if outputs else []

    def _sync(self, comm_id: str) -> None:
        capture = self._captures.get(comm_id)
        if capture is None or capture.in_kernel:
            return
        capture.in_kernel = True
        data = {"method": "update", "state": {"outputs": capture.outputs}, "buffer_paths": []}
        self._send(comm_id, data, capture.parent)


def _append(capture: _Capture, output: dict[str, Any]) -> None:
    """Add an output as JupyterLab's output area does: a stream continues the previous
    output of the same stream, as a terminal would show it."""
    outputs = capture.outputs
    last = outputs[-1] if outputs else None
    if output["output_type"] != "stream":
        outputs.append(output)
        capture.terminal = None
        return
    if (
        capture.terminal is None
        or last is None
        or last.get("output_type") != "stream"
        or last.get("name") != output["name"]
    ):
        last = {**output, "text": ""}
        outputs.append(last)
        capture.terminal = Terminal()
    edit = fold_stream(capture.terminal, str(output["text"]))
    text = str(last["text"])
    kept = text[: len(text) - len(capture.terminal.line) + edit.keep]
    outputs[-1] = {**last, "text": kept + edit.append}
    capture.terminal = edit.terminal
