"""Widget state from a real kernel with real ipywidgets: in the document for every window,
a late one included, and in the written file."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ipywidgets
import jsonschema
import pytest
from jupyter_client.asynchronous import AsyncKernelClient
from pycrdt import Map
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

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


# -- Output widgets: outputs captured into the widget, on the server ---------------------

OUTPUT_CELLS = [
    # 0: print and display inside the widget; the cell keeps what is outside.
    "import ipywidgets as w\nfrom IPython.display import display, clear_output\n"
    "out = w.Output()\ndisplay(out)\nprint('in the cell')\n"
    "with out:\n    print('captured')\n    display('shown in the widget')\n"
    "print('back in the cell')",
    # 1: an error inside is shown in the widget; the cell goes on.
    "with out:\n    1 / 0\nprint('the cell goes on')",
    # 2: clear_output() clears the widget, not the cell.
    "print('cell output')\nwith out:\n    clear_output()\n    print('after clear')",
    # 3: clear_output(wait=True): only the last frame stays.
    "for i in range(3):\n    with out:\n"
    "        clear_output(wait=True)\n        print(f'frame {i}')",
    # 4: nested: the inner widget captures while it is entered; the same widget twice.
    "inner = w.Output()\ndisplay(inner)\nwith out:\n    print('outer 1')\n"
    "    with inner:\n        print('inner')\n        with inner:\n            print('twice')\n"
    "        print('inner again')\n    print('outer 2')",
    # 5: interact: its Output captures the callback's output.
    "def f(x):\n    print(f'x is {x}')\n    return x * 10\n"
    "ui = w.interact(f, x=w.IntSlider(value=1, max=10, description='x'))",
    # 6: the kernel's Output widgets hold what the server captured.
    "print(out.outputs == tuple(widget_outputs_seen), len(inner.outputs))",
]


def outputs_of(room: RoomClient, model_id: str) -> list[dict[str, Any]]:
    return list(widget(room, model_id).get("state", {}).get("outputs") or [])


def stream(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def plain(text: str) -> dict[str, Any]:
    return {"output_type": "display_data", "data": {"text/plain": text}, "metadata": {}}


async def browser_comm_update(
    server_url: str, token: str, kernel_id: str, comm_id: str, state: dict[str, Any]
) -> str:
    """Send a widget state change to the kernel as a JupyterLab window does: a comm_msg
    `update` on the shell channel of the kernel's websocket, under the window's own
    session; the msg_id of the request."""
    url = server_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
    session = uuid.uuid4().hex
    connection = await websocket_connect(
        HTTPRequest(f"{url}?session_id={session}", headers={"Authorization": f"token {token}"})
    )
    msg_id = uuid.uuid4().hex
    message = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "comm_msg",
            "session": session,
            "username": "browser",
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "comm_id": comm_id,
            "data": {"method": "update", "state": state, "buffer_paths": []},
        },
        "channel": "shell",
        "buffers": [],
    }
    await connection.write_message(json.dumps(message))
    # The window stays while the kernel handles it, then closes (as a window may).
    await asyncio.sleep(0.5)
    connection.close()
    return msg_id


async def test_output_widgets_capture_on_the_server(
    make_notebook, connect, jp_fetch, server_url, token
):
    path = make_notebook("nb.ipynb", OUTPUT_CELLS)
    alice = await connect("nb.ipynb")
    bob = await connect("nb.ipynb")
    results = [await alice.run(f"cell-{i}", timeout=TIMEOUT) for i in range(6)]
    assert [r.status for r in results] == ["ok"] * 6, [r.outputs for r in results]
    first, error, cleared, frames, nested, interact = results
    out_id = model_id_of(first)
    inner_id = model_id_of(nested)
    # The cells keep only what was printed outside the widget.
    assert first.stdout == "in the cell\nback in the cell\n"
    assert [o["output_type"] for o in first.outputs] == ["display_data", "stream"]
    assert error.outputs == [stream("the cell goes on\n")]
    assert cleared.outputs == [stream("cell output\n")]
    assert frames.outputs == []
    assert nested.stdout == ""

    await alice.wait_for(lambda r: "outer 2" in json.dumps(outputs_of(r, out_id)))
    captured = outputs_of(alice, out_id)
    assert captured == [stream("frame 2\nouter 1\nouter 2\n")]
    assert outputs_of(alice, inner_id) == [stream("inner\ntwice\ninner again\n")]

    # The interact widget: the first call ran in the cell and was captured.
    ui_out = next(
        model_id
        for model_id, entry in widgets(alice).items()
        if entry["model_name"] == "OutputModel" and model_id not in (out_id, inner_id)
    )
    assert interact.outputs[0]["output_type"] == "display_data"
    assert outputs_of(alice, ui_out) == [stream("x is 1\n"), plain("10")]

    # A window moves the slider: the callback's output is captured too.
    slider_id = next(
        model_id
        for model_id, entry in widgets(alice).items()
        if entry["model_name"] == "IntSliderModel" and entry["state"].get("description") == "x"
    )
    status = json.loads((await jp_fetch("api", "crdtsync", "status")).body)["rooms"][0]
    await browser_comm_update(server_url, token, status["kernel"]["id"], slider_id, {"value": 7})
    await alice.wait_for(lambda r: "x is 7" in json.dumps(outputs_of(r, ui_out)), timeout=TIMEOUT)
    # Cleared (wait=True) by interact, then the new output: once, in the widget only.
    assert outputs_of(alice, ui_out) == [stream("x is 7\n"), plain("70")]

    # Every window sees the same widgets and cells.
    await bob.wait_for(lambda r: widgets(r) == widgets(alice), timeout=10)
    assert bob.content()["cells"] == alice.content()["cells"]
    assert "x is 7" not in json.dumps(alice.content()["cells"])

    # The kernel's widgets were told what was captured, as a front-end tells them.
    alice.set_source("cell-6", f"widget_outputs_seen = {captured!r}\n" + OUTPUT_CELLS[6])
    check = await alice.run("cell-6", timeout=TIMEOUT)
    assert check.stdout == "True 1\n", check.outputs

    # A window that joins later finds the captured outputs at once.
    late = await connect("nb.ipynb")
    assert outputs_of(late, out_id) == captured
    assert "x is 7" in json.dumps(outputs_of(late, ui_out))

    # The file carries them in its widget state, valid against ipywidgets' schema.
    async def file_has_them() -> bool:
        saved = read_file(path)["metadata"].get("widgets", {}).get(STATE_MIME) or {}
        state = saved.get("state", {})
        return (
            state.get(out_id, {}).get("state", {}).get("outputs") == captured
            and "x is 7" in json.dumps(state.get(ui_out, {}))
            and inner_id in state
        )

    await wait_until(file_has_them)
    jsonschema.validate(read_file(path)["metadata"]["widgets"][STATE_MIME], SCHEMA)
