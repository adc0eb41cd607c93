"""Bad notebook content from a client that speaks the protocol correctly: refused at the
boundary (1002 with the reason), undone before any other peer, the store or the file sees
it; the room, its other peers and the write-back go on. Legitimate edits of every kind
(JupyterLab's, jupyter-ydoc's, a newer nbformat's) are never refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from jupyter_crdt_sync.client import RoomClient

from .conftest import wait_for_file


def code_cell(**keys: Any) -> Map:
    cell = {"id": "bad", "cell_type": "code", "source": Text("x"), "metadata": Map()}
    cell.update(outputs=Array(), execution_count=None)
    cell.update(keys)
    return Map({k: v for k, v in cell.items() if v is not _DROP})


_DROP = object()


def meta(peer: RoomClient) -> Map:
    return peer.doc.get("meta", type=Map)


def first(peer: RoomClient) -> Map:
    return peer.notebook.ycells[0]


def add_output(peer: RoomClient, output: Any) -> None:
    first(peer)["outputs"].append(output)


# The examples of issue #10, each as a peer would send it. The value: (the edit, a part of
# the close reason that names what was wrong).
HOSTILE: dict[str, tuple[Callable[[RoomClient], None], str]] = {
    "cell without cell_type": (
        lambda p: p.notebook.ycells.append(code_cell(cell_type=_DROP)),
        "has no cell_type",
    ),
    "cell without source": (
        lambda p: p.notebook.ycells.append(code_cell(source=_DROP)),
        "has no source",
    ),
    "source is a Map": (lambda p: first(p).__setitem__("source", Map({"a": 1})), "source is a map"),
    "source is an int": (lambda p: first(p).__setitem__("source", 5), "source is a"),
    "outputs is an int": (lambda p: first(p).__setitem__("outputs", 3), "outputs is a"),
    "output without output_type": (
        lambda p: add_output(p, Map({"data": {}})),
        "has no output_type",
    ),
    "output_type bogus": (
        lambda p: add_output(p, Map({"output_type": "bogus"})),
        "unknown output_type 'bogus'",
    ),
    "output is an int": (
        lambda p: first(p).__setitem__("outputs", Array([7])),
        "an output is a",
    ),
    "metadata is an int": (lambda p: first(p).__setitem__("metadata", 3), "metadata is a"),
    "execution_count is a string": (
        lambda p: first(p).__setitem__("execution_count", "3"),
        "execution_count is a str",
    ),
    "meta emptied of nbformat": (lambda p: meta(p).pop("nbformat"), "nbformat must stay 4"),
    "notebook metadata is a list": (
        lambda p: meta(p).__setitem__("metadata", Array([1])),
        "metadata must stay a map",
    ),
    "a string among the cells": (
        lambda p: p.notebook.ycells.append("zzz"),
        "something other than a cell",
    ),
    "a bad cell inserted in the same update as a good one": (
        lambda p: p.notebook.ycells.extend([code_cell(id="good"), code_cell(source=5)]),
        "source is a",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_bad_content_is_refused_and_the_room_goes_on(
    name, make_notebook, connect, room_manager
):
    edit, reason = HOSTILE[name]
    path = make_notebook("nb.ipynb", ["abcd", "efgh"])
    alice = await connect("nb.ipynb")
    intruder = await connect("nb.ipynb")
    before = room_manager.rooms["nb.ipynb"].notebook.get()
    with intruder.doc.transaction():
        edit(intruder)
    await intruder.wait_closed()
    assert intruder.close_code == 1002
    assert intruder.close_reason is not None and reason in intruder.close_reason
    # The room is as it was; a well-behaved peer goes on, and so does the file.
    assert room_manager.rooms["nb.ipynb"].notebook.get() == before
    alice.insert_text("cell-1", 4, "!")
    await wait_for_file(path, ["abcd", "efgh!"])
    late = await connect("nb.ipynb")
    await late.wait_for(lambda r: r.source("cell-1") == "efgh!")
    assert late.content() == alice.content()
    assert late.cell_ids() == ["cell-0", "cell-1"]
    (status,) = room_manager.status()
    assert status["save_error"] is None and status["left_out"] == []


async def test_refused_content_is_neither_stored_nor_relayed(
    make_notebook, connect, room_manager, jp_serverapp
):
    make_notebook("nb.ipynb", ["abcd"])
    alice = await connect("nb.ipynb")
    intruder = await connect("nb.ipynb")
    seen: list[Any] = []
    alice.notebook.ycells.observe(lambda event: seen.extend(event.delta))
    with intruder.doc.transaction():
        intruder.notebook.ycells.append(code_cell(source=Map({"evil": True})))
    await intruder.wait_closed()
    alice.insert_text("cell-0", 4, "!")
    late = await connect("nb.ipynb")
    await late.wait_for(lambda r: r.source("cell-0") == "abcd!")
    # Alice got the damage and its undoing together: no cell ever appeared for her.
    assert alice.cell_ids() == ["cell-0"]
    assert not [change for change in seen if "insert" in change]
    # The stored history, replayed, is the room as it is.
    while room_manager.status()[0]["store"]["pending_updates"]:
        await asyncio.sleep(0.02)
    stored = await room_manager.store.load("nb.ipynb")
    replay = Doc()
    for update in stored.updates:
        replay.apply_update(update)
    cells = replay.get("cells", type=Array).to_py()
    assert [cell["id"] for cell in cells] == ["cell-0"]
    assert cells[0]["source"] == "abcd!"


async def test_a_second_window_keeps_working_while_a_misbehaving_client_reconnects(
    make_notebook, connect, room_manager
):
    path = make_notebook("nb.ipynb", ["abcd"])
    alice = await connect("nb.ipynb")
    for attempt in range(5):
        intruder = await connect("nb.ipynb")
        intruder.notebook.ycells.append(code_cell(cell_type=_DROP, id=f"bad-{attempt}"))
        alice.insert_text("cell-0", len(alice.source("cell-0")), str(attempt))
        await intruder.wait_closed()
        assert intruder.close_code == 1002
    await wait_for_file(path, ["abcd01234"])
    assert alice.connected and alice.cell_ids() == ["cell-0"]


# What legitimate clients do, which must never be refused.
LEGITIMATE: dict[str, Callable[[RoomClient], None]] = {
    "JupyterLab: a new code cell": lambda p: p.notebook.ycells.append(
        code_cell(id="new", execution_count=None)
    ),
    "jupyter-ydoc: a code cell without execution_count": lambda p: p.notebook.append_cell(
        {"cell_type": "code", "source": "y = 2", "metadata": {}}
    ),
    "a cell of a type from a newer nbformat, without source": lambda p: p.notebook.ycells.append(
        Map({"id": "future", "cell_type": "future cell", "key": "value", "metadata": Map()})
    ),
    "extra keys on a cell and an output": lambda p: (
        first(p).__setitem__("x-extension", {"a": [1, 2]}),
        add_output(
            p,
            Map({"output_type": "stream", "name": "stdout", "text": Text("hi\n"), "extra": 1}),
        ),
    ),
    "outputs as JupyterLab writes them": lambda p: first(p).__setitem__(
        "outputs",
        Array(
            [
                Map({"output_type": "execute_result", "data": {"text/plain": "1"}}),
                Map({"output_type": "display_data", "data": {}, "metadata": {}}),
                Map({"output_type": "error", "ename": "E", "evalue": "", "traceback": []}),
            ]
        ),
    ),
    "an execution count": lambda p: first(p).__setitem__("execution_count", 3),
    "notebook metadata": lambda p: meta(p).__setitem__(
        "metadata", Map({"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    ),
    "cell moved (deleted and inserted)": lambda p: (
        p.notebook.ycells.append(p.notebook.create_ycell(p.notebook.get_cell(0))),
        p.notebook.ycells.__delitem__(0),
    ),
    "cell type changed to markdown": lambda p: (
        first(p).__setitem__("cell_type", "markdown"),
        first(p).pop("outputs"),
        first(p).pop("execution_count"),
    ),
}


@pytest.mark.parametrize("name", LEGITIMATE)
async def test_legitimate_edits_are_never_refused(name, make_notebook, connect, room_manager):
    make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    with peer.doc.transaction():
        LEGITIMATE[name](peer)
    late = await connect("nb.ipynb")
    await late.wait_for(lambda r: r.doc.get("cells", type=Array).to_py() == _cells(peer))
    await asyncio.sleep(0.2)
    assert peer.connected, (peer.close_code, peer.close_reason)


def _cells(peer: RoomClient) -> Any:
    return peer.doc.get("cells", type=Array).to_py()
