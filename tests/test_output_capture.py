"""Output widget capture from kernel messages made up here (the real-kernel cases are in
test_widgets_kernel.py): which widget captures, and what it holds."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Map

from jupyter_crdt_sync.output_capture import OutputCapture


def comm(msg_type: str, comm_id: str, parent: str = "r", **data: Any) -> dict[str, Any]:
    return {
        "msg_type": msg_type,
        "header": {"msg_type": msg_type},
        "parent_header": {"msg_id": parent},
        "content": {"comm_id": comm_id, "data": data},
    }


def output(msg_type: str, parent: str = "r", **content: Any) -> dict[str, Any]:
    return {
        "msg_type": msg_type,
        "header": {"msg_type": msg_type},
        "parent_header": {"msg_id": parent},
        "content": content,
    }


def setup(*comm_ids: str) -> tuple[Doc, Map, OutputCapture, list[Any]]:
    doc = Doc()
    widgets = doc.get("widgets", type=Map)
    sent: list[Any] = []
    capture = OutputCapture(widgets, lambda *args: sent.append(args))
    for comm_id in comm_ids:
        state = {
            "_model_module": "@jupyter-widgets/output",
            "_model_name": "OutputModel",
            "msg_id": "",
            "outputs": [],
        }
        widgets[comm_id] = Map(
            {
                "model_module": "@jupyter-widgets/output",
                "model_name": "OutputModel",
                "state": Map(state),
            }
        )
        capture.follow(comm("comm_open", comm_id, state=state))
    return doc, widgets, capture, sent


def stdout(text: str) -> dict[str, Any]:
    return output("stream", name="stdout", text=text)


def held(widgets: Map, comm_id: str) -> list[Any]:
    return widgets[comm_id]["state"].to_py()["outputs"]


def test_the_widget_that_named_the_request_last_captures_until_it_lets_go():
    doc, widgets, capture, sent = setup("outer", "inner")
    assert not capture.take(stdout("to the cell\n"))
    capture.follow(comm("comm_msg", "outer", method="update", state={"msg_id": "r"}))
    assert capture.take(stdout("a\n"))
    capture.follow(comm("comm_msg", "inner", method="update", state={"msg_id": "r"}))
    assert capture.take(stdout("b\r"))
    assert capture.take(stdout("c\n"))
    capture.follow(comm("comm_msg", "inner", method="update", state={"msg_id": ""}))
    assert capture.take(output("error", ename="E", evalue="v", traceback=["t"]))
    # Another request is not captured.
    assert not capture.take(
        stdout(
            "other\n",
        )
        | {"parent_header": {"msg_id": "s"}}
    )
    with doc.transaction():
        capture.flush()
    assert held(widgets, "inner") == [{"output_type": "stream", "name": "stdout", "text": "c\n"}]
    assert held(widgets, "outer") == [
        {"output_type": "stream", "name": "stdout", "text": "a\n"},
        {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["t"]},
    ]
    # The inner widget let go: its outputs went to the kernel, as a front-end sends them.
    assert [(comm_id, data["state"]) for comm_id, data, _ in sent] == [
        ("inner", {"outputs": held(widgets, "inner")})
    ]
    capture.request_ended("r")
    assert sent[-1][0] == "outer"
    # Idle: nothing new, nothing sent again.
    capture.request_ended("r")
    assert len(sent) == 2


def test_clear_output_and_the_echo_of_its_own_update():
    doc, widgets, capture, _ = setup("out")
    capture.follow(comm("comm_msg", "out", method="update", state={"msg_id": "r"}))
    capture.take(stdout("old\n"))
    capture.take(output("clear_output", wait=True))
    capture.take(stdout("new\n"))
    capture.take(stdout("more\n"))
    with doc.transaction():
        capture.flush()
    assert held(widgets, "out") == [
        {"output_type": "stream", "name": "stdout", "text": "new\nmore\n"}
    ]
    capture.take(output("clear_output", wait=False))
    with doc.transaction():
        capture.flush()
    assert held(widgets, "out") == []
    echo = comm("comm_msg", "out", method="echo_update", state={"outputs": [1], "x": 2})
    assert capture.without_echo(echo)["content"]["data"]["state"] == {"x": 2}
    # Set from the kernel (out.outputs = ...): taken as it is.
    capture.follow(comm("comm_msg", "out", method="update", state={"outputs": [{"a": 1}]}))
    capture.take(stdout("x\n"))
    with doc.transaction():
        capture.flush()
    assert held(widgets, "out")[0] == {"a": 1}
    capture.follow(comm("comm_close", "out"))
    assert not capture.take(stdout("after close\n"))
