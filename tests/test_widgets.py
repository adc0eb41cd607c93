"""Widget state in the document, from comm messages shaped as the Jupyter messaging spec
says, and the saved state a notebook file carries."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import ipywidgets
import jsonschema
from pycrdt import Doc, Map

from jupyter_crdt_sync.widgets import VIEW_MIME, WidgetStates, saved_state

LOG = logging.getLogger("test-widgets")
SCHEMA = json.loads((Path(ipywidgets.__file__).parent / "state.schema.json").read_text())


def comm_open(comm_id: str, model: str, module: str, **state: Any) -> dict[str, Any]:
    state = {
        "_model_name": model,
        "_model_module": module,
        "_model_module_version": "2.0.0",
    } | state
    return {
        "header": {"msg_type": "comm_open"},
        "content": {
            "comm_id": comm_id,
            "target_name": "jupyter.widget",
            "data": {"state": state, "buffer_paths": []},
        },
    }


def comm_msg(comm_id: str, method: str = "update", buffers: Any = None, **state: Any) -> dict:
    paths = [[key] for key, value in state.items() if value is None] if buffers else []
    return {
        "header": {"msg_type": "comm_msg"},
        "content": {
            "comm_id": comm_id,
            "data": {"method": method, "state": state, "buffer_paths": paths},
        },
        "buffers": buffers or [],
    }


def comm_close(comm_id: str) -> dict[str, Any]:
    return {"header": {"msg_type": "comm_close"}, "content": {"comm_id": comm_id, "data": {}}}


def displayed(*model_ids: str) -> dict[str, Any]:
    outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {VIEW_MIME: {"model_id": m}}}
        for m in model_ids
    ]
    return {"cells": [{"cell_type": "code", "outputs": outputs}]}


def new_states(interval: float = 0.05) -> tuple[Doc, Map, WidgetStates]:
    doc = Doc()
    widgets = doc.get("widgets", type=Map)
    return doc, widgets, WidgetStates(widgets, min_interval=interval, log=LOG)


def test_open_update_close() -> None:
    async def scenario() -> None:
        _, widgets, states = new_states()
        states.handle(comm_open("s", "IntSliderModel", "@jupyter-widgets/controls", value=1))
        states.handle(comm_msg("s", value=5))
        entry = widgets.to_py()["s"]
        assert entry["model_name"] == "IntSliderModel"
        assert entry["model_module"] == "@jupyter-widgets/controls"
        assert entry["state"]["value"] == 5
        # A change made in another window, echoed by the kernel (ipywidgets 8).
        states.handle(comm_msg("s", method="echo_update", value=7))
        await asyncio.sleep(0.1)
        assert widgets.to_py()["s"]["state"]["value"] == 7
        states.handle(comm_close("s"))
        assert widgets.to_py() == {}

    asyncio.run(scenario())


def test_other_comms_and_methods_are_ignored() -> None:
    async def scenario() -> None:
        _, widgets, states = new_states()
        message = comm_open("x", "M", "m")
        message["content"]["target_name"] = "some.other.target"
        states.handle(message)
        states.handle(comm_msg("x", value=1))
        states.handle(comm_open("s", "IntSliderModel", "@jupyter-widgets/controls", value=1))
        states.handle(comm_msg("s", method="custom", value=99))
        states.handle({"header": {"msg_type": "stream"}, "content": {"text": "hi"}})
        assert set(widgets.to_py()) == {"s"}
        assert widgets.to_py()["s"]["state"]["value"] == 1

    asyncio.run(scenario())


def test_dragging_a_slider_is_coalesced_and_the_last_value_lands() -> None:
    async def scenario() -> None:
        doc, widgets, states = new_states(interval=0.05)
        states.handle(comm_open("s", "IntSliderModel", "@jupyter-widgets/controls", value=0))
        updates: list[bytes] = []
        doc.observe(lambda event: updates.append(event.update))
        for value in range(1, 2001):
            states.handle(comm_msg("s", method="echo_update", value=value))
            if value % 100 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert widgets.to_py()["s"]["state"]["value"] == 2000
        # Far fewer document changes than messages: about one per interval.
        assert len(updates) < 200
        size = len(doc.get_update())
        assert size < 2000, size

    asyncio.run(scenario())


def test_binary_buffers_are_kept_as_base64_with_their_paths() -> None:
    async def scenario() -> None:
        _, widgets, states = new_states()
        states.handle(comm_open("i", "ImageModel", "@jupyter-widgets/controls", format="png"))
        states.handle(comm_msg("i", buffers=[b"\x89PNG\x00\xff"], value=None))
        await asyncio.sleep(0.1)
        entry = widgets.to_py()["i"]
        assert entry["buffers"] == [{"path": ["value"], "encoding": "base64", "data": "iVBORwD/"}]
        saved = saved_state(widgets.to_py(), displayed("i"))
        jsonschema.validate(saved, SCHEMA)
        assert saved["state"]["i"]["buffers"][0]["data"] == "iVBORwD/"

    asyncio.run(scenario())


def test_saved_state_keeps_displayed_widgets_and_what_they_refer_to() -> None:
    async def scenario() -> None:
        _, widgets, states = new_states()
        controls = "@jupyter-widgets/controls"
        states.handle(comm_open("layout", "LayoutModel", "@jupyter-widgets/base"))
        states.handle(
            comm_open("a", "IntSliderModel", controls, value=1, layout="IPY_MODEL_layout")
        )
        states.handle(comm_open("b", "IntSliderModel", controls, value=2))
        states.handle(
            comm_open("box", "HBoxModel", controls, children=["IPY_MODEL_a", "IPY_MODEL_b"])
        )
        states.handle(comm_open("hidden", "IntSliderModel", controls, value=3))
        saved = saved_state(widgets.to_py(), displayed("box"))
        jsonschema.validate(saved, SCHEMA)
        assert set(saved["state"]) == {"box", "a", "b", "layout"}
        assert saved["state"]["box"]["state"]["children"] == ["IPY_MODEL_a", "IPY_MODEL_b"]
        assert saved["state"]["a"]["state"]["value"] == 1  # an int again, not 1.0
        everything = saved_state(widgets.to_py(), displayed(), only_displayed=False)
        assert set(everything["state"]) == {"box", "a", "b", "layout", "hidden"}

    asyncio.run(scenario())


def test_clear_on_kernel_restart() -> None:
    async def scenario() -> None:
        _, widgets, states = new_states()
        for number in range(5):
            states.handle(comm_open(f"w{number}", "IntSliderModel", "@jupyter-widgets/controls"))
        states.handle(comm_msg("w0", value=3))
        states.clear()
        assert widgets.to_py() == {}
        # Messages for the old comms do nothing now.
        states.handle(comm_msg("w1", value=4))
        assert widgets.to_py() == {}

    asyncio.run(scenario())
