"""Widget state in the shared document: the live ipywidgets models of a room's kernel.

The kernel actor hands every comm message from its kernel's IOPub to `WidgetStates`. For
comms of the `jupyter.widget` target it keeps the room's root Map `widgets` current: per
model_id, exactly the entry ipywidgets' saved widget state holds (`model_name`,
`model_module`, `model_module_version`, `state`, and `buffers` as base64 with their paths).
`comm_open` adds an entry, `update` and ipywidgets 8's `echo_update` (a change made from
any window, echoed by the kernel) change its state, `comm_close` removes it, and a kernel
restart clears them all. A window that opens late finds every widget here, at once.

Updates are coalesced per widget: a slider dragged for ten seconds writes at most one
change per `min_interval`, and always the last value.

`saved_state` gives what a notebook file carries under `metadata.widgets`.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from logging import Logger
from typing import Any

from jupyter_ydoc.utils import cast_all
from pycrdt import Map

WIDGET_TARGET = "jupyter.widget"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
_MODEL_REFERENCE = re.compile(r"^IPY_MODEL_(.+)$")


class WidgetStates:
    def __init__(self, widgets: Map, *, min_interval: float, log: Logger) -> None:
        self._widgets = widgets
        self._min_interval = min_interval
        self._log = log
        # A room restored with its history (the kernel still alive) knows its widgets.
        self._comm_ids: set[str] = set(widgets.keys())
        self._pending: dict[str, tuple[dict[str, Any], dict[tuple[Any, ...], bytes]]] = {}
        self._last_write: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._widgets)

    def handle(self, msg: dict[str, Any]) -> None:
        """Take one IOPub message; anything but a widget comm message is ignored."""
        msg_type = msg.get("header", {}).get("msg_type") or msg.get("msg_type")
        content = msg.get("content", {})
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str):
            return
        if msg_type == "comm_open":
            if content.get("target_name") == WIDGET_TARGET:
                self._open(comm_id, content.get("data", {}), msg.get("buffers") or [])
        elif msg_type == "comm_msg" and comm_id in self._comm_ids:
            data = content.get("data", {})
            if data.get("method") in ("update", "echo_update"):
                self._update(comm_id, data, msg.get("buffers") or [])
        elif msg_type == "comm_close" and comm_id in self._comm_ids:
            self._close(comm_id)

    def clear(self) -> None:
        """The kernel restarted or went away: no widget is alive any more."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()
        self._comm_ids.clear()
        self._widgets.clear()

    def close(self) -> None:
        """Write what is pending and stop (the room or the kernel link is going away)."""
        for comm_id in list(self._pending):
            self._write(comm_id)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    # -- comm messages -------------------------------------------------------------------

    def _open(self, comm_id: str, data: dict[str, Any], buffers: list[Any]) -> None:
        state = dict(data.get("state", {}))
        received = _buffers_by_path(data.get("buffer_paths", []), buffers)
        self._comm_ids.add(comm_id)
        entry = Map(
            {
                "model_name": str(state.get("_model_name", "")),
                "model_module": str(state.get("_model_module", "")),
                "model_module_version": str(state.get("_model_module_version", "")),
                "state": Map(state),
                "buffers": _encode_buffers(received),
            }
        )
        self._widgets[comm_id] = entry

    def _update(self, comm_id: str, data: dict[str, Any], buffers: list[Any]) -> None:
        state, received = self._pending.setdefault(comm_id, ({}, {}))
        state.update(data.get("state", {}))
        received.update(_buffers_by_path(data.get("buffer_paths", []), buffers))
        loop = asyncio.get_running_loop()
        wait = self._last_write.get(comm_id, -1e9) + self._min_interval - loop.time()
        if wait <= 0:
            self._write(comm_id)
        elif comm_id not in self._timers:
            self._timers[comm_id] = loop.call_later(wait, self._write, comm_id)

    def _write(self, comm_id: str) -> None:
        timer = self._timers.pop(comm_id, None)
        if timer is not None:
            timer.cancel()
        pending = self._pending.pop(comm_id, None)
        entry = self._widgets.get(comm_id)
        if pending is None or not isinstance(entry, Map):
            return
        state_changes, received = pending
        self._last_write[comm_id] = asyncio.get_running_loop().time()
        with self._widgets.doc.transaction():
            state = entry["state"]
            for key, value in state_changes.items():
                if key not in state or state[key] != value:
                    state[key] = value
            if received:
                by_path = {tuple(b["path"]): b for b in entry.get("buffers") or []}
                encoded = _encode_buffers(received)
                by_path.update(zip(received, encoded, strict=True))
                entry["buffers"] = list(by_path.values())

    def _close(self, comm_id: str) -> None:
        timer = self._timers.pop(comm_id, None)
        if timer is not None:
            timer.cancel()
        self._pending.pop(comm_id, None)
        self._last_write.pop(comm_id, None)
        self._comm_ids.discard(comm_id)
        if comm_id in self._widgets:
            del self._widgets[comm_id]


def _buffers_by_path(paths: list[Any], buffers: list[Any]) -> dict[tuple[Any, ...], bytes]:
    return {tuple(path): bytes(buffer) for path, buffer in zip(paths, buffers, strict=False)}


def _encode_buffers(received: dict[tuple[Any, ...], bytes]) -> list[dict[str, Any]]:
    return [
        {"path": list(path), "encoding": "base64", "data": base64.b64encode(data).decode()}
        for path, data in received.items()
    ]


# -- the state a notebook file carries ---------------------------------------------------


def saved_state(
    widgets: dict[str, Any], notebook: dict[str, Any], *, only_displayed: bool = True
) -> dict[str, Any]:
    """ipywidgets' saved widget state (version 2.0) for `metadata.widgets[STATE_MIME]`: the
    live widgets, by default only those displayed in an output and those they refer to."""
    if only_displayed:
        keep = _referenced_closure(widgets, set(_displayed_model_ids(notebook)))
    else:
        keep = set(widgets)
    state = {}
    for model_id in sorted(keep):
        entry = widgets.get(model_id)
        if not isinstance(entry, dict):
            continue
        saved = {
            "model_name": entry.get("model_name", ""),
            "model_module": entry.get("model_module", ""),
            "model_module_version": entry.get("model_module_version", ""),
            "state": entry.get("state", {}),
        }
        if entry.get("buffers"):
            saved["buffers"] = entry["buffers"]
        state[model_id] = saved
    # Numbers come back from the CRDT as floats; 3.0 was 3.
    cast_all(state, float, int)
    return {"version_major": 2, "version_minor": 0, "state": state}


def add_saved_state(content: dict[str, Any], widgets: Map, policy: str) -> None:
    """Put the live widgets' saved state into a notebook about to be written. Without live
    widgets (no kernel yet, or after a restart) the notebook keeps what it had."""
    if policy == "none" or len(widgets) == 0:
        return
    metadata = content.setdefault("metadata", {})
    if not isinstance(metadata, dict) or not isinstance(metadata.setdefault("widgets", {}), dict):
        return  # not written as it is anyway (writable.py keeps the file's metadata)
    state = saved_state(widgets.to_py() or {}, content, only_displayed=policy == "displayed")
    metadata["widgets"][STATE_MIME] = state


def _displayed_model_ids(notebook: dict[str, Any]) -> Iterator[str]:
    # Any part may be malformed here (the writer leaves such cells out of the file).
    for cell in notebook.get("cells", []):
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for output in outputs if isinstance(outputs, list) else []:
            data = output.get("data") if isinstance(output, dict) else None
            view = data.get(VIEW_MIME) if isinstance(data, dict) else None
            if isinstance(view, dict) and isinstance(view.get("model_id"), str):
                yield view["model_id"]


def _referenced_closure(widgets: dict[str, Any], roots: set[str]) -> set[str]:
    keep: set[str] = set()
    todo = [model_id for model_id in roots if model_id in widgets]
    while todo:
        model_id = todo.pop()
        if model_id in keep:
            continue
        keep.add(model_id)
        entry = widgets.get(model_id)
        state = entry.get("state", {}) if isinstance(entry, dict) else {}
        for reference in _references(state):
            if reference in widgets and reference not in keep:
                todo.append(reference)
    return keep


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        match = _MODEL_REFERENCE.match(value)
        if match:
            yield match.group(1)
    elif isinstance(value, dict):
        # A widget displayed inside an Output widget's captured outputs.
        view = value.get(VIEW_MIME)
        if isinstance(view, dict) and isinstance(view.get("model_id"), str):
            yield view["model_id"]
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
