"""One execution of one code cell, as the shared document shows it.

The kernel actor creates a `CellExecution` when a request is taken and hands it the
kernel's messages for that request; it writes the cell's outputs, `execution_count`,
`execution_state` and metadata. Every write is a pycrdt change to the room's document,
so peers and the file writer see it like any other change.

Outputs are written as jupyter-ydoc and @jupyter/ydoc lay them out: the cell's `outputs`
is an Array of Maps, a stream output's `text` a Text that only grows at its end (the
shape JupyterLab's output model follows). A cell is found again by its id at every write,
so a cell that a window moves (deleted and re-created with the same id) keeps receiving.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Array, Map, Text

from .cells import find_cell, youtput
from .outputs import (
    OUTPUT_MESSAGE_TYPES,
    Terminal,
    cut_text,
    display_id,
    fold_stream,
    output_bytes,
    output_from_message,
    text_bytes,
    truncate_output,
    truncation_note,
)

# Where a cell records the request that produced its outputs: metadata.crdtsync.msg_id,
# with metadata.crdtsync.status once it finished ("ok", "error" or "aborted").
METADATA_KEY = "crdtsync"

QUEUED, RUNNING, IDLE = "queued", "running", "idle"

# When a display is updated, the outputs after it in its cell are written again (see
# DisplayIndex.update) if they hold no more than this.
REINSERTED_TAIL_BYTES = 256 * 1024


# What ipykernel raises when code asks for input and the request does not allow stdin.
STDIN_ERROR = "StdinNotImplementedError"


def stdin_message(cell_id: str) -> str:
    return (
        f"cell {cell_id!r} asked for input (input() or getpass): cells run by the server "
        "cannot read stdin, so the kernel refused it at once"
    )


@dataclass(frozen=True)
class OutputLimits:
    max_output_bytes: int
    max_cell_output_bytes: int


def reset_execution_states(notebook: YNotebook) -> int:
    """Mark `idle` the cells a previous server process left `queued` or `running` (their
    requests died with it); the number of cells changed. For a room loaded from stored
    history after a crash: a graceful stop leaves every cell idle."""
    changed = 0
    with notebook.ydoc.transaction():
        for cell in notebook.ycells:
            if isinstance(cell, Map) and cell.get("execution_state") in (QUEUED, RUNNING):
                cell["execution_state"] = IDLE
                record = _metadata_of(cell).get(METADATA_KEY)
                if isinstance(record, dict) and "status" not in record:
                    _metadata_of(cell)[METADATA_KEY] = {**record, "status": "aborted"}
                changed += 1
    return changed


def _outputs_of(cell: Map) -> Array:
    outputs = cell.get("outputs")
    if not isinstance(outputs, Array):
        outputs = cell["outputs"] = Array()
    return outputs


def _metadata_of(cell: Map) -> Map:
    metadata = cell.get("metadata")
    if not isinstance(metadata, Map):
        metadata = cell["metadata"] = Map(dict(metadata) if isinstance(metadata, dict) else {})
    return metadata


def _iso(value: Any) -> str:
    """A message date as JupyterLab's recordTiming writes it (ISO 8601, UTC, 'Z')."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, str) and value:
        return value
    return _iso(datetime.now(timezone.utc))


def _fingerprint(output: Map) -> str:
    return json.dumps(output.to_py(), sort_keys=True)


@dataclass
class _Display:
    cell_id: str
    index: int
    fingerprint: str


class DisplayIndex:
    """Where the outputs with each display id are, in every cell of one room, so that
    update_display_data replaces all of them. An output that is no longer where it was
    (cleared, or removed by a window) is forgotten."""

    def __init__(self, notebook: YNotebook) -> None:
        self._notebook = notebook
        self._displays: dict[str, list[_Display]] = {}

    def add(self, display: str, cell_id: str, index: int, output: Map) -> None:
        self._displays.setdefault(display, []).append(
            _Display(cell_id, index, _fingerprint(output))
        )

    def forget_cell(self, cell_id: str) -> None:
        for display in list(self._displays):
            kept = [entry for entry in self._displays[display] if entry.cell_id != cell_id]
            if kept:
                self._displays[display] = kept
            else:
                del self._displays[display]

    def update(
        self, display: str, data: dict[str, Any], metadata: dict[str, Any], limit: int
    ) -> int:
        """Replace data and metadata of every output shown under `display`; the count."""
        updated = 0
        kept: list[_Display] = []
        for entry in self._displays.get(display, []):
            found = find_cell(self._notebook, entry.cell_id)
            if found is None:
                continue
            outputs = _outputs_of(found[1])
            index = self._locate(outputs, entry)
            if index is None:
                continue
            new = {**outputs[index].to_py(), "data": data, "metadata": metadata}
            new = truncate_output(new, limit, truncation_note(limit, "max_output_bytes"))
            # Replaced, not edited in place: JupyterLab's output model only follows
            # insertions and deletions in the outputs array, and appends what is inserted.
            # The outputs after it go again too, unless they are big, so that its copy
            # keeps the order.
            tail = [outputs[i].to_py() for i in range(index + 1, len(outputs))]
            if sum(output_bytes(output) for output in tail) <= REINSERTED_TAIL_BYTES:
                del outputs[index : len(outputs)]
                outputs.extend([youtput(new), *(youtput(output) for output in tail)])
            else:
                del outputs[index]
                outputs.insert(index, youtput(new))
            kept.append(_Display(entry.cell_id, index, _fingerprint(outputs[index])))
            updated += 1
        if kept:
            self._displays[display] = kept
        else:
            self._displays.pop(display, None)
        return updated

    @staticmethod
    def _locate(outputs: Array, entry: _Display) -> int | None:
        if entry.index < len(outputs) and _fingerprint(outputs[entry.index]) == entry.fingerprint:
            return entry.index
        for index, output in enumerate(outputs):
            if _fingerprint(output) == entry.fingerprint:
                return index
        return None


@dataclass
class _OpenStream:
    """The stream output that consecutive output of the same stream goes into."""

    index: int
    name: str
    terminal: Terminal
    size: int  # UTF-8 bytes of its text
    closed: bool = False  # truncated: further output of this stream is dropped


class CellExecution:
    """One execution request for one code cell: from queued to idle."""

    def __init__(
        self,
        notebook: YNotebook,
        cell_id: str,
        msg_id: str,
        code: str,
        limits: OutputLimits,
        displays: DisplayIndex,
        *,
        allow_errors: bool = False,
    ) -> None:
        self.cell_id = cell_id
        self.msg_id = msg_id
        self.code = code
        # Tagged `raises-exception`: sent with stop_on_error false, and an error does not
        # stop the queue (as JupyterLab and nbclient do).
        self.allow_errors = allow_errors
        # Set when the code asked for input (input(), getpass): the kernel refused it.
        self.stdin_refused = False
        self.status: str | None = None
        self.reply_status: str | None = None
        self.idle_seen = False
        self._notebook = notebook
        self._limits = limits
        self._displays = displays
        self._hint = 0
        self._timing: dict[str, str] = {}
        self._started = False
        self._stream: _OpenStream | None = None
        self._cell_bytes = 0
        self._cell_full = False
        self._clear_pending = False
        # Written with the end of the execution, not as the kernel announces it: JupyterLab
        # marks a cell idle as soon as its execution count is set, and would write that
        # into the document while the cell still runs.
        self._execution_count: int | None = None

    def __repr__(self) -> str:
        return f"<CellExecution {self.cell_id!r} {self.msg_id!r} {self.status or ''}>"

    @property
    def blank(self) -> bool:
        """Empty or whitespace only: never sent to the kernel (JupyterLab and nbclient
        leave such a cell unexecuted, `execution_count` null, no timing metadata)."""
        return not self.code.strip()

    @property
    def complete(self) -> bool:
        """The kernel replied and went idle: every output of the request has arrived."""
        return self.reply_status is not None and self.idle_seen

    def transaction(self) -> Any:
        """A transaction on the cell's document, to group several messages into one update."""
        return self._notebook.ydoc.transaction()

    def _cell(self) -> Map | None:
        found = find_cell(self._notebook, self.cell_id, self._hint)
        if found is None:
            return None
        self._hint = found[0]
        return found[1]

    # -- lifecycle -----------------------------------------------------------------------

    def queue(self) -> None:
        """The request is taken: the cell shows it is waiting, without its old outputs."""
        cell = self._cell()
        if cell is None:
            return
        with self._notebook.ydoc.transaction():
            _outputs_of(cell).clear()
            self._displays.forget_cell(self.cell_id)
            cell["execution_count"] = None
            cell["execution_state"] = QUEUED
            metadata = _metadata_of(cell)
            metadata[METADATA_KEY] = {"msg_id": self.msg_id}
            # Its outputs will come from the notebook's own kernel, run at the request of
            # someone allowed to run code there: as trusted as when JupyterLab runs a cell
            # itself. The contents manager turns this into the notebook's signature.
            metadata["trusted"] = True
            if "execution" in metadata:
                del metadata["execution"]

    def start(self) -> None:
        """The kernel took the request (its first message): the cell shows it runs."""
        if self._started:
            return
        self._started = True
        cell = self._cell()
        if cell is not None:
            cell["execution_state"] = RUNNING

    def finish(self, status: str) -> None:
        """The request is over (ok, error) or will never run to its end (aborted)."""
        self.status = status
        cell = self._cell()
        if cell is None:
            return
        with self._notebook.ydoc.transaction():
            if self._execution_count is not None:
                cell["execution_count"] = self._execution_count
            cell["execution_state"] = IDLE
            metadata = _metadata_of(cell)
            record: dict[str, Any] = {"msg_id": self.msg_id, "status": status}
            if self.stdin_refused:
                record["error"] = stdin_message(self.cell_id)
            metadata[METADATA_KEY] = record
            if self._timing:
                metadata["execution"] = dict(self._timing)

    # -- kernel messages -----------------------------------------------------------------

    def handle_iopub_batch(self, messages: list[dict[str, Any]]) -> None:
        """Several messages, in one transaction. Consecutive output of one stream is
        applied as one chunk: folding does not depend on where chunks were cut."""
        with self.transaction():
            pending: dict[str, Any] | None = None
            for msg in messages:
                if msg["header"]["msg_type"] == "stream":
                    content = msg["content"]
                    if pending is not None and pending["name"] == content.get("name"):
                        pending["text"] += str(content["text"])
                        continue
                    if pending is not None:
                        self._handle_stream_chunk(pending)
                    pending = {"name": content.get("name"), "text": str(content["text"])}
                    continue
                if pending is not None:
                    self._handle_stream_chunk(pending)
                    pending = None
                self.handle_iopub(msg)
            if pending is not None:
                self._handle_stream_chunk(pending)

    def _handle_stream_chunk(self, content: dict[str, Any]) -> None:
        self.handle_iopub({"header": {"msg_type": "stream"}, "content": content})

    def handle_iopub(self, msg: dict[str, Any]) -> None:
        msg_type = msg["header"]["msg_type"]
        content = msg["content"]
        self.start()
        if msg_type == "status":
            state = content.get("execution_state")
            if state in ("busy", "idle"):
                self._timing[f"iopub.status.{state}"] = _iso(msg["header"].get("date"))
            if state == "idle":
                self.idle_seen = True
            return
        cell = self._cell()
        if cell is None:
            return
        if msg_type == "execute_input":
            self._timing["iopub.execute_input"] = _iso(msg["header"].get("date"))
            if content.get("execution_count") is not None:
                self._execution_count = content["execution_count"]
        elif msg_type == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self._clear(cell)
        elif msg_type == "update_display_data":
            display = display_id(content)
            if display is not None:
                self._displays.update(
                    display,
                    dict(content.get("data") or {}),
                    dict(content.get("metadata") or {}),
                    self._limits.max_output_bytes,
                )
        elif msg_type in OUTPUT_MESSAGE_TYPES:
            if self._clear_pending:
                self._clear(cell)
            if msg_type == "stream":
                self._add_stream(cell, str(content.get("name", "stdout")), str(content["text"]))
            else:
                output = output_from_message(msg_type, content)
                assert output is not None
                if msg_type == "error" and output["ename"] == STDIN_ERROR:
                    self.stdin_refused = True
                self._add_output(cell, output, display_id(content))

    def handle_reply(self, msg: dict[str, Any]) -> None:
        content = msg["content"]
        self.reply_status = str(content.get("status", "error"))
        started = msg.get("metadata", {}).get("started")
        if started:
            self._timing["shell.execute_reply.started"] = _iso(started)
        self._timing["shell.execute_reply"] = _iso(msg["header"].get("date"))
        if content.get("execution_count") is not None:
            self._execution_count = content["execution_count"]
        cell = self._cell()
        if cell is None:
            return
        with self._notebook.ydoc.transaction():
            # Help pages (`obj?`) come as payloads; JupyterLab shows them as an output.
            for payload in content.get("payload") or []:
                if payload.get("source") == "page" and isinstance(payload.get("data"), dict):
                    page = {"output_type": "display_data", "data": payload["data"], "metadata": {}}
                    self._add_output(cell, page, None)

    # -- outputs -------------------------------------------------------------------------

    def _clear(self, cell: Map) -> None:
        _outputs_of(cell).clear()
        self._displays.forget_cell(self.cell_id)
        self._clear_pending = False
        self._stream = None
        self._cell_bytes = 0
        self._cell_full = False

    def _add_output(self, cell: Map, output: dict[str, Any], display: str | None) -> None:
        if self._cell_full:
            return
        limit, setting = self._limit_for(0)
        if output_bytes(output) > limit:
            if setting == "max_cell_output_bytes":
                self._fill_cell(cell)
                return
            note = truncation_note(getattr(self._limits, setting), setting)
            output = truncate_output(output, limit, note)
        outputs = _outputs_of(cell)
        outputs.append(Map(output))
        self._cell_bytes += output_bytes(output)
        self._stream = None
        if display is not None:
            index = len(outputs) - 1
            self._displays.add(display, self.cell_id, index, outputs[index])

    def _limit_for(self, own_bytes: int) -> tuple[int, str]:
        """What one output may hold, given the others in the cell, and which setting says so."""
        cell_room = self._limits.max_cell_output_bytes - (self._cell_bytes - own_bytes)
        if self._limits.max_output_bytes <= cell_room:
            return self._limits.max_output_bytes, "max_output_bytes"
        return max(0, cell_room), "max_cell_output_bytes"

    def _fill_cell(self, cell: Map) -> None:
        """The cell holds all it may: say so once, and drop the rest of its output."""
        note = truncation_note(self._limits.max_cell_output_bytes, "max_cell_output_bytes")
        _outputs_of(cell).append(
            Map({"output_type": "stream", "name": "stderr", "text": Text(note.lstrip("\n"))})
        )
        self._cell_full = True
        self._stream = None

    def _open_stream(self, outputs: Array, name: str) -> _OpenStream:
        stream = self._stream
        if stream is not None and stream.name == name and stream.index == len(outputs) - 1:
            output = outputs[stream.index]
            text = output.get("text") if isinstance(output, Map) else None
            # Anything else changed it (a window cleared it, say): start a new output.
            if isinstance(text, Text) and len(text) == stream.size:
                return stream
        outputs.append(Map({"output_type": "stream", "name": name, "text": Text()}))
        self._stream = _OpenStream(len(outputs) - 1, name, Terminal(), 0)
        return self._stream

    def _add_stream(self, cell: Map, name: str, chunk: str) -> None:
        if self._cell_full:
            return
        outputs = _outputs_of(cell)
        stream = self._open_stream(outputs, name)
        if stream.closed:
            return
        edit = fold_stream(stream.terminal, chunk)
        removed = text_bytes(stream.terminal.line[edit.keep :])
        kept = stream.size - removed
        limit, setting = self._limit_for(stream.size)
        append = edit.append
        truncated = kept + text_bytes(append) > limit
        if truncated:
            configured = getattr(self._limits, setting)
            append = cut_text(append, max(0, limit - kept)) + truncation_note(configured, setting)
        text: Text = outputs[stream.index]["text"]
        end = len(text)  # UTF-8 bytes, as pycrdt counts
        if removed:
            del text[end - removed : end]
        if append:
            text.insert(end - removed, append)
        new_size = kept + text_bytes(append)
        self._cell_bytes += new_size - stream.size
        stream.size = new_size
        stream.terminal = edit.terminal
        if truncated:
            stream.closed = True
            if setting == "max_cell_output_bytes":
                self._cell_full = True
