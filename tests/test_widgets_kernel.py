"""Widget state from a real kernel with real ipywidgets: in the document for every window,
a late one included, and in the written file."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import ipywidgets
import jsonschema
import pytest
from jupyter_client.asynchronous import AsyncKernelClient
from pycrdt import Map

from jupyter_crdt_sync.client import RoomClient
from jupyter_crdt_sync.widgets import STATE_MIME

from .conftest import FAST_TIMINGS, read_file

TIMEOUT = 60
SCHEMA = json.loads((Path(ipywidgets.__file__).parent / "state.schema.json").read_text())


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "widget_update_interval": 0.05}


def widgets(room: RoomClient) -> dict[str, Any]:
    """The room's widgets, as this window's replica holds them."""
    return room.doc.get("widgets", type=Map).to_py() or {}


def widget(room: RoomClient, model_id: str) -> dict[str, Any]:
    return widgets(room).get(model_id, {})


def model_id_of(result: Any) -> str:
    for output in result.outputs:
        view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
        if view:
            return str(view["model_id"])
    raise AssertionError(f"no widget displayed in {result.outputs}")


async def frontend_client(jp_serverapp: Any, room: RoomClient) -> AsyncKernelClient:
    """Another window's connection to the room's kernel, as JupyterLab's would be."""
    kernel_id = next(iter(jp_serverapp.kernel_manager.list_kernel_ids()))
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.session.session = "another-window"
    client.start_channels()
    await client.wait_for_ready(timeout=TIMEOUT)
    return client


async def test_slider_lives_in_the_document(make_notebook, connect, jp_serverapp, jp_root_dir):
    path = make_notebook(
        "nb.ipynb",
        [
            "import ipywidgets as w\nslider = w.IntSlider(value=3, description='x')\nslider",
            "slider.value = 7",
            "slider.close()",
        ],
    )
    alice = await connect("nb.ipynb")
    created = await alice.run("cell-0", timeout=TIMEOUT)
    assert created.status == "ok", created.outputs
    model_id = model_id_of(created)
    await alice.wait_for(lambda r: widget(r, model_id).get("state", {}).get("value") == 3)
    entry = widget(alice, model_id)
    assert entry["model_name"] == "IntSliderModel"
    assert entry["model_module"] == "@jupyter-widgets/controls"
    assert entry["state"]["description"] == "x"

    # Changed from the kernel.
    assert (await alice.run("cell-1", timeout=TIMEOUT)).status == "ok"
    await alice.wait_for(lambda r: widget(r, model_id)["state"]["value"] == 7)

    # Changed from another window: the kernel echoes it to IOPub (ipywidgets 8).
    other = await frontend_client(jp_serverapp, alice)
    try:
        other.session.send(
            other.shell_channel.socket,
            "comm_msg",
            {
                "comm_id": model_id,
                "data": {"method": "update", "state": {"value": 9}, "buffer_paths": []},
            },
        )
        await alice.wait_for(lambda r: widget(r, model_id)["state"]["value"] == 9, timeout=TIMEOUT)
    finally:
        other.stop_channels()

    # A window opened later finds the widget at once, without asking the kernel.
    late = await connect("nb.ipynb")
    assert widget(late, model_id)["state"]["value"] == 9

    # The written file carries it, valid against ipywidgets' schema.
    async def file_has_value_9() -> bool:
        saved = read_file(path)["metadata"].get("widgets", {}).get(STATE_MIME)
        return bool(saved) and saved["state"].get(model_id, {}).get("state", {}).get("value") == 9

    await wait_until(file_has_value_9)
    saved = read_file(path)["metadata"]["widgets"][STATE_MIME]
    jsonschema.validate(saved, SCHEMA)
    # The slider's layout and style models are referenced by it, so they are kept too.
    assert len(saved["state"]) >= 3

    # Closed: gone from the document.
    assert (await alice.run("cell-2", timeout=TIMEOUT)).status == "ok"
    await alice.wait_for(lambda r: model_id not in widgets(r))


async def test_containers_keep_references_and_buffers_are_base64(make_notebook, connect):
    path = make_notebook(
        "nb.ipynb",
        [
            "import ipywidgets as w\n"
            "box = w.HBox([w.IntSlider(value=1), w.Button(description='go')])\n"
            "box",
            "image = w.Image(value=b'\\x89PNG fake bytes', format='png')\nimage",
            "hidden = w.IntSlider(value=42)",
        ],
    )
    room = await connect("nb.ipynb")
    results = await room.run_all(timeout=TIMEOUT)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    box_id, image_id = model_id_of(results[0]), model_id_of(results[1])

    def ready(r: RoomClient) -> bool:
        live = widgets(r)
        return box_id in live and image_id in live and bool(live[image_id].get("buffers"))

    await room.wait_for(ready)
    live = widgets(room)
    children = live[box_id]["state"]["children"]
    assert len(children) == 2 and all(c.startswith("IPY_MODEL_") for c in children)
    assert all(c[len("IPY_MODEL_") :] in live for c in children)
    buffers = live[image_id]["buffers"]
    assert buffers[0]["path"] == ["value"] and buffers[0]["encoding"] == "base64"

    def saved() -> dict[str, Any] | None:
        return read_file(path)["metadata"].get("widgets", {}).get(STATE_MIME)

    async def both_saved() -> bool:
        # Not only the box: a write may come between the two cells' widgets.
        written = (saved() or {}).get("state") or {}
        return box_id in written and image_id in written

    await wait_until(both_saved)
    state = saved()["state"]  # type: ignore[index]
    jsonschema.validate({"version_major": 2, "version_minor": 0, "state": state}, SCHEMA)
    assert box_id in state and image_id in state
    assert all(c[len("IPY_MODEL_") :] in state for c in children)
    hidden = [m for m, e in live.items() if e["state"].get("value") == 42]
    assert hidden and hidden[0] not in state, "a widget never displayed is not saved"


async def test_kernel_restart_clears_widgets(make_notebook, connect, jp_fetch):
    make_notebook("nb.ipynb", ["import ipywidgets as w\nw.IntSlider()"])
    room = await connect("nb.ipynb")
    assert (await room.run("cell-0", timeout=TIMEOUT)).status == "ok"
    await room.wait_for(lambda r: len(widgets(r)) > 0)
    status = json.loads((await jp_fetch("api", "crdtsync", "status")).body)["rooms"][0]
    assert status["widgets"] == len(widgets(room))
    kernel_id = status["kernel"]["id"]
    await jp_fetch("api", "kernels", kernel_id, "restart", method="POST", body="{}")
    await room.wait_for(lambda r: widgets(r) == {}, timeout=TIMEOUT)


async def test_many_widgets_and_a_long_drag(make_notebook, connect, jp_serverapp):
    make_notebook(
        "nb.ipynb",
        [
            "import ipywidgets as w\nsliders = [w.IntSlider(value=i) for i in range(1000)]",
            "drag = w.IntSlider(max=100000)\ndrag",
        ],
    )
    room = await connect("nb.ipynb")
    results = await room.run_all(timeout=TIMEOUT)
    assert [r.status for r in results] == ["ok", "ok"]
    drag_id = model_id_of(results[1])
    await room.wait_for(lambda r: len(widgets(r)) >= 1000, timeout=TIMEOUT)
    before = len(room.doc.get_update())
    other = await frontend_client(jp_serverapp, room)
    messages = 0
    try:
        start = time.monotonic()
        # A slider dragged for 10 seconds, 60 changes a second, from another window.
        while time.monotonic() - start < 10:
            messages += 1
            other.session.send(
                other.shell_channel.socket,
                "comm_msg",
                {
                    "comm_id": drag_id,
                    "data": {"method": "update", "state": {"value": messages}, "buffer_paths": []},
                },
            )
            await asyncio.sleep(1 / 60)
        await room.wait_for(
            lambda r: widget(r, drag_id)["state"]["value"] == messages, timeout=TIMEOUT
        )
    finally:
        other.stop_channels()
    growth = len(room.doc.get_update()) - before
    print(
        f"1000+ widgets: document {before} B; a 10 s drag ({messages} changes) grew it {growth} B"
    )
    assert growth < 20_000, growth


async def wait_until(condition: Any, timeout: float = TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_a_rename_while_a_cell_runs_takes_the_kernel_and_its_widgets_along(
    make_notebook, connect, jp_serverapp, jp_fetch, jp_root_dir
):
    make_notebook(
        "old.ipynb",
        [
            "import time, ipywidgets as w\nx = 41\nslider = w.IntSlider(value=3)\n"
            "display(slider)\ntime.sleep(3)\nx += 1",
            "print(x)\nslider.value = 8",
        ],
    )
    alice = await connect("old.ipynb")
    (msg_id,) = await alice.execute("cell-0", timeout=TIMEOUT)
    await alice.wait_for(lambda r: r.execution("cell-0")["state"] == "running", timeout=TIMEOUT)
    kernels = jp_serverapp.kernel_manager.list_kernel_ids()
    assert len(kernels) == 1

    # Renamed through the contents API while the cell runs.
    body = json.dumps({"path": "new.ipynb"})
    await jp_fetch("api", "contents", "old.ipynb", method="PATCH", body=body)
    first = await alice.wait_for_execution("cell-0", msg_id, timeout=TIMEOUT)
    assert first.status == "ok", first.outputs
    model_id = model_id_of(first)

    # The next execute at the new path runs on the same kernel: its variables are there,
    # and its widget messages still reach the document.
    bob = await connect("new.ipynb")
    second = await bob.run("cell-1", timeout=TIMEOUT)
    assert second.status == "ok", second.outputs
    assert second.stdout == "42\n"
    await bob.wait_for(lambda r: widget(r, model_id).get("state", {}).get("value") == 8)
    await alice.wait_for(lambda r: widget(r, model_id).get("state", {}).get("value") == 8)
    assert jp_serverapp.kernel_manager.list_kernel_ids() == kernels
    response = await jp_fetch("api", "crdtsync", "status")
    (room,) = json.loads(response.body)["rooms"]
    assert room["path"] == "new.ipynb" and room["kernel"]["id"] == kernels[0]
    # The notebook's Jupyter session followed it, so a window opening it joins that kernel.
    sessions = json.loads((await jp_fetch("api", "sessions")).body)
    assert [(s["path"], s["kernel"]["id"]) for s in sessions] == [("new.ipynb", kernels[0])]
    assert (jp_root_dir / "new.ipynb").exists() and not (jp_root_dir / "old.ipynb").exists()
