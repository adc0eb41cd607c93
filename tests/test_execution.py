"""One cell execution written into a document, from kernel messages made up here."""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timezone
from typing import Any

import nbformat
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map, TextEvent

from jupyter_crdt_sync.execution import CellExecution, DisplayIndex, OutputLimits
from jupyter_crdt_sync.room import Room

LIMITS = OutputLimits(max_output_bytes=1 << 20, max_cell_output_bytes=4 << 20)


def make_notebook(count: int = 2) -> YNotebook:
    """The document of a room (as the server configures it) holding `count` code cells."""
    room = Room("nb.ipynb", log=logging.getLogger("test"))
    cells = [nbformat.v4.new_code_cell(f"cell {i}") for i in range(count)]
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index}"
    room.load(nbformat.v4.new_notebook(cells=cells))
    return room.notebook


def message(msg_type: str, content: dict[str, Any], parent: str = "m1") -> dict[str, Any]:
    return {
        "header": {"msg_type": msg_type, "date": datetime.now(timezone.utc)},
        "parent_header": {"msg_id": parent},
        "content": content,
        "metadata": {},
    }


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return message("stream", {"name": name, "text": text})


def run(
    notebook: YNotebook,
    messages: list[dict[str, Any]],
    cell_id: str = "cell-0",
    limits: OutputLimits = LIMITS,
    displays: DisplayIndex | None = None,
    msg_id: str = "m1",
) -> CellExecution:
    execution = CellExecution(
        notebook, cell_id, msg_id, "code", limits, displays or DisplayIndex(notebook)
    )
    execution.queue()
    execution.start()
    execution.handle_iopub(message("status", {"execution_state": "busy"}, msg_id))
    execution.handle_iopub(message("execute_input", {"execution_count": 1}, msg_id))
    for msg in messages:
        msg["parent_header"]["msg_id"] = msg_id
        with execution.transaction():
            execution.handle_iopub(msg)
    execution.handle_reply(message("execute_reply", {"status": "ok", "execution_count": 1}, msg_id))
    execution.handle_iopub(message("status", {"execution_state": "idle"}, msg_id))
    assert execution.complete
    execution.finish("ok")
    return execution


def outputs(notebook: YNotebook, index: int = 0) -> list[dict[str, Any]]:
    return notebook.get_cell(index)["outputs"]


def valid_file(notebook: YNotebook) -> dict[str, Any]:
    content = notebook.get()
    nbformat.validate(nbformat.from_dict(copy.deepcopy(content)))
    return content


def test_consecutive_output_of_a_stream_stays_in_one_output():
    notebook = make_notebook()
    run(notebook, [stream("a\n"), stream("b\n"), stream("err\n", "stderr"), stream("c\n")])
    assert outputs(notebook) == [
        {"output_type": "stream", "name": "stdout", "text": "a\nb\n"},
        {"output_type": "stream", "name": "stderr", "text": "err\n"},
        {"output_type": "stream", "name": "stdout", "text": "c\n"},
    ]
    valid_file(notebook)


def test_execution_record_and_timings():
    notebook = make_notebook()
    run(notebook, [stream("x")], msg_id="request-1")
    cell = valid_file(notebook)["cells"][0]
    assert cell["execution_count"] == 1
    assert cell["metadata"]["crdtsync"] == {"msg_id": "request-1", "status": "ok"}
    assert cell["metadata"]["trusted"] is True
    assert set(cell["metadata"]["execution"]) == {
        "iopub.status.busy",
        "iopub.execute_input",
        "shell.execute_reply",
        "iopub.status.idle",
    }
    assert all(value.endswith("Z") for value in cell["metadata"]["execution"].values())
    assert notebook.ycells[0]["execution_state"] == "idle"


def test_states_for_peers():
    notebook = make_notebook()
    execution = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    execution.queue()
    assert notebook.ycells[0]["execution_state"] == "queued"
    execution.start()
    assert notebook.ycells[0]["execution_state"] == "running"
    execution.finish("aborted")
    assert notebook.ycells[0]["execution_state"] == "idle"
    assert notebook.get_cell(0)["metadata"]["crdtsync"]["status"] == "aborted"


def test_the_count_lands_with_idle_in_one_change():
    # JupyterLab marks a cell idle (in the document) when it sees an execution count: a
    # count shown while the cell runs would take the [*] away in every window.
    notebook = make_notebook()
    cell = notebook.ycells[0]
    changes: list[set[str]] = []
    subscription = cell.observe(lambda event: changes.append(set(event.keys)))
    execution = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    execution.queue()
    execution.start()
    execution.handle_iopub(message("status", {"execution_state": "busy"}))
    execution.handle_iopub(message("execute_input", {"execution_count": 7}))
    execution.handle_iopub(stream("out\n"))
    assert (cell["execution_count"], cell["execution_state"]) == (None, "running")
    execution.handle_reply(message("execute_reply", {"status": "ok", "execution_count": 7}))
    execution.handle_iopub(message("status", {"execution_state": "idle"}))
    assert cell["execution_count"] is None
    changes.clear()
    execution.finish("ok")
    cell.unobserve(subscription)
    assert (cell["execution_count"], cell["execution_state"]) == (7, "idle")
    assert [keys >= {"execution_count", "execution_state"} for keys in changes] == [True]


def test_an_interrupted_cell_keeps_the_count_the_kernel_gave_it():
    notebook = make_notebook()
    execution = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    execution.queue()
    execution.start()
    execution.handle_iopub(message("execute_input", {"execution_count": 3}))
    execution.finish("aborted")
    assert (notebook.ycells[0]["execution_count"], notebook.ycells[0]["execution_state"]) == (
        3,
        "idle",
    )


def test_progress_bar_stays_one_line_and_the_document_does_not_grow():
    notebook = make_notebook()
    doc = notebook.ydoc
    run(notebook, [stream(f"\rprogress {i:5d}/10000") for i in range(100)])
    size_after_100 = len(doc.get_update())
    run(notebook, [stream(f"\rprogress {i:5d}/10000") for i in range(10_000)] + [stream("\n")])
    assert outputs(notebook) == [
        {"output_type": "stream", "name": "stdout", "text": "progress  9999/10000\n"}
    ]
    # 100 times more updates, about the same document: deleted characters are collected.
    assert len(doc.get_update()) < size_after_100 * 3


def test_stream_text_changes_only_at_its_end():
    """JupyterLab applies a stream text change as 'remove N characters from the end, then
    append': replaying the changes that way must give the text."""
    notebook = make_notebook()
    replica = Doc()
    replica_notebook = YNotebook(replica)
    replica.apply_update(notebook.ydoc.get_update())
    notebook.ydoc.observe(lambda event: replica.apply_update(event.update))
    shown = [""]

    def on_text_change(events: list[Any]) -> None:
        for event in events:
            if isinstance(event, TextEvent):
                for op in event.delta:
                    if "delete" in op:
                        shown[0] = shown[0][: len(shown[0]) - op["delete"]]
                    if "insert" in op:
                        shown[0] += op["insert"]

    chunks = ["Downloading\n", "  0%\r", " 10%\r", " 55%", "\b\b\b60%\r", "100%\n", "done\n"]
    execution = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    execution.queue()
    execution.handle_iopub(message("stream", {"name": "stdout", "text": chunks[0]}))
    youtput = replica_notebook.ycells[0]["outputs"][0]
    shown[0] = str(youtput["text"])
    youtput.observe_deep(on_text_change)
    for chunk in chunks[1:]:
        execution.handle_iopub(message("stream", {"name": "stdout", "text": chunk}))
    assert str(youtput["text"]) == "Downloading\n100%\ndone\n"
    assert shown[0] == "Downloading\n100%\ndone\n"


def test_clear_output_and_clear_output_wait():
    notebook = make_notebook()
    run(notebook, [stream("old\n"), message("clear_output", {"wait": False}), stream("new\n")])
    assert outputs(notebook) == [{"output_type": "stream", "name": "stdout", "text": "new\n"}]
    # wait=True: the old outputs stay until the next output replaces them.
    notebook = make_notebook()
    execution = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    execution.queue()
    execution.handle_iopub(stream("frame 1\n"))
    execution.handle_iopub(message("clear_output", {"wait": True}))
    assert outputs(notebook)[0]["text"] == "frame 1\n"
    execution.handle_iopub(stream("frame 2\n"))
    assert outputs(notebook) == [{"output_type": "stream", "name": "stdout", "text": "frame 2\n"}]


def test_update_display_data_reaches_every_cell_showing_it():
    notebook = make_notebook(3)
    displays = DisplayIndex(notebook)

    def display(text: str, display: str) -> dict[str, Any]:
        return message(
            "display_data",
            {"data": {"text/plain": text}, "metadata": {}, "transient": {"display_id": display}},
        )

    run(
        notebook,
        [display("v1", "d"), stream("between\n"), display("other", "e")],
        "cell-0",
        displays=displays,
    )
    run(notebook, [display("v1 again", "d")], "cell-1", displays=displays, msg_id="m2")
    update = message(
        "update_display_data",
        {"data": {"text/plain": "v2"}, "metadata": {"k": 1}, "transient": {"display_id": "d"}},
    )
    run(notebook, [update], "cell-2", displays=displays, msg_id="m3")
    first = outputs(notebook, 0)
    assert first[0] == {
        "output_type": "display_data",
        "data": {"text/plain": "v2"},
        "metadata": {"k": 1},
    }
    assert first[1]["text"] == "between\n"
    assert first[2]["data"] == {"text/plain": "other"}
    assert outputs(notebook, 1)[0]["data"] == {"text/plain": "v2"}
    # The updating cell shows nothing itself.
    assert outputs(notebook, 2) == []
    # Updated twice: still found.
    update["content"]["data"] = {"text/plain": "v3"}
    run(notebook, [update], "cell-2", displays=displays, msg_id="m4")
    assert outputs(notebook, 0)[0]["data"] == {"text/plain": "v3"}
    # Re-running a cell forgets its displays; the other cell still updates.
    run(notebook, [stream("rerun\n")], "cell-0", displays=displays, msg_id="m5")
    update["content"]["data"] = {"text/plain": "v4"}
    run(notebook, [update], "cell-2", displays=displays, msg_id="m6")
    assert outputs(notebook, 0) == [{"output_type": "stream", "name": "stdout", "text": "rerun\n"}]
    assert outputs(notebook, 1)[0]["data"] == {"text/plain": "v4"}
    valid_file(notebook)


def test_output_cap_truncates_with_a_note():
    limits = OutputLimits(max_output_bytes=1000, max_cell_output_bytes=100_000)
    notebook = make_notebook()
    run(
        notebook,
        [stream("".join(f"line {i}\n" for i in range(1000)))] + [stream("more\n")] * 10,
        limits=limits,
    )
    (output,) = outputs(notebook)
    assert "truncated" in output["text"] and "max_output_bytes" in output["text"]
    assert output["text"].startswith("line 0\nline 1\n")
    assert len(output["text"].encode()) < 1000 + 200
    assert "more" not in output["text"]
    valid_file(notebook)


def test_cell_cap_drops_the_rest_with_one_note():
    limits = OutputLimits(max_output_bytes=10_000, max_cell_output_bytes=30_000)
    notebook = make_notebook()
    image = message("display_data", {"data": {"image/png": "A" * 9000}, "metadata": {}})
    run(notebook, [image] * 10 + [stream("after\n")], limits=limits)
    shown = outputs(notebook)
    assert [o["output_type"] for o in shown[:3]] == ["display_data"] * 3
    assert shown[-1]["output_type"] == "stream"
    assert "max_cell_output_bytes" in shown[-1]["text"]
    assert len(shown) == 4
    total = sum(len(str(o).encode()) for o in shown)
    assert total < 30_000 + 1000
    valid_file(notebook)


def test_a_moved_cell_keeps_receiving():
    # JupyterLab moves a cell by deleting it and inserting a copy with the same id.
    notebook = make_notebook(2)
    execution = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    execution.queue()
    execution.handle_iopub(stream("one\n"))
    copy_of_cell = notebook.get_cell(0)
    with notebook.ydoc.transaction():
        del notebook.ycells[0]
        notebook.ycells.append(notebook.create_ycell(copy_of_cell))
    execution.handle_iopub(stream("two\n"))
    assert notebook.get_cell(1)["id"] == "cell-0"
    assert outputs(notebook, 1) == [
        {"output_type": "stream", "name": "stdout", "text": "one\ntwo\n"}
    ]


def test_a_deleted_cell_is_no_error():
    notebook = make_notebook(2)
    execution = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    execution.queue()
    del notebook.ycells[0]
    execution.handle_iopub(stream("lost\n"))
    execution.finish("ok")
    assert [c["id"] for c in notebook.get()["cells"]] == ["cell-1"]


def test_help_page_payload_becomes_an_output():
    notebook = make_notebook()
    execution = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    execution.queue()
    page = {"source": "page", "data": {"text/plain": "Docstring: ..."}, "start": 0}
    execution.handle_reply(
        message("execute_reply", {"status": "ok", "execution_count": 1, "payload": [page]})
    )
    assert outputs(notebook) == [
        {"output_type": "display_data", "data": {"text/plain": "Docstring: ..."}, "metadata": {}}
    ]


def test_outputs_are_maps_with_text_as_jupyterlab_expects():
    notebook = make_notebook()
    run(
        notebook,
        [stream("s"), message("display_data", {"data": {"text/plain": "d"}, "metadata": {}})],
    )
    youtputs = notebook.ycells[0]["outputs"]
    assert all(isinstance(output, Map) for output in youtputs)
    assert type(youtputs[0]["text"]).__name__ == "Text"


def test_states_left_by_a_crashed_server_can_be_reset():
    from jupyter_crdt_sync.execution import reset_execution_states

    notebook = make_notebook(3)
    queued = CellExecution(notebook, "cell-0", "m1", "x", LIMITS, DisplayIndex(notebook))
    running = CellExecution(notebook, "cell-1", "m2", "x", LIMITS, DisplayIndex(notebook))
    queued.queue()
    running.queue()
    running.start()
    assert reset_execution_states(notebook) == 2
    assert [c["execution_state"] for c in notebook.ycells] == ["idle"] * 3
    assert notebook.get_cell(0)["metadata"]["crdtsync"] == {"msg_id": "m1", "status": "aborted"}
    assert reset_execution_states(notebook) == 0
