"""A hypothesis state machine of hostile and benign peers against a real server process.

Hostile steps insert random cells (random keys, random kinds of values), random outputs,
random keys of the root `meta`, and the issue's examples; benign steps type and add cells
as a well-behaved window does. Invariants: the server serves; the well-behaved peer is
never disconnected and never loses an edit; within save_max_delay + 1 s the file is a
valid notebook holding every one of its edits. Bounded to a few examples (~30-60 s)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pycrdt import Array, Map, Text

from jupyter_crdt_sync.client import RoomClient

from .conftest import write_notebook
from .server_process import ServerProcess
from .test_content_guard import HOSTILE

SAVE_MAX_DELAY = 0.5

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5), st.floats(0, 3)
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
shared_value = st.one_of(
    json_value,
    st.text(max_size=5).map(Text),
    st.lists(json_leaf, max_size=3).map(Array),
    st.dictionaries(st.text(max_size=4), json_leaf, max_size=3).map(Map),
)
cell_keys = st.sampled_from(
    ["cell_type", "source", "metadata", "outputs", "execution_count", "id", "attachments", "x"]
)
cell_types = st.one_of(st.sampled_from(["code", "markdown", "raw", "future"]), shared_value)
random_cell = st.dictionaries(
    cell_keys, st.one_of(cell_types, shared_value), min_size=0, max_size=6
)
random_output = st.dictionaries(
    st.sampled_from(["output_type", "name", "text", "data", "metadata", "execution_count"]),
    st.one_of(st.sampled_from(["stream", "display_data", "bogus"]), shared_value),
    max_size=5,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("hostile") / "root"
    write_notebook(root / "nb.ipynb", ["start"])
    config = {"CRDTSync": {"save_delay": 0.05, "save_max_delay": SAVE_MAX_DELAY}}
    with ServerProcess(root, config=config) as running:
        yield running


def test_hostile_and_benign_peers(server: ServerProcess) -> None:
    path = server.root_dir / "nb.ipynb"

    class Peers(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.good = RoomClient(server.url, "nb.ipynb", token=server.token)
            self.run(self.good.connect())
            # The edits the well-behaved peer made: cell id -> source.
            self.expected = {"cell-0": self.good.source("cell-0")}

        def run(self, coroutine: Any) -> Any:
            return self.loop.run_until_complete(coroutine)

        @rule(text=st.text(alphabet="ab🍎\n", min_size=1, max_size=4), data=st.data())
        def type_text(self, text: str, data: st.DataObject) -> None:
            cell_id = data.draw(st.sampled_from(sorted(self.expected)))
            self.good.insert_text(cell_id, len(self.good.source(cell_id)), text)
            self.expected[cell_id] = self.good.source(cell_id)

        @rule(source=st.text(alphabet="xyz", max_size=3))
        def add_cell(self, source: str) -> None:
            cell_id = self.good.add_cell(source)
            self.expected[cell_id] = source

        @rule(cell=random_cell)
        def hostile_cell(self, cell: dict[str, Any]) -> None:
            self.intrude(lambda peer: peer.notebook.ycells.append(Map(cell)))

        @rule(output=random_output)
        def hostile_output(self, output: dict[str, Any]) -> None:
            def edit(peer: RoomClient) -> None:
                outputs = peer.notebook.ycells[0].get("outputs")
                if isinstance(outputs, Array):
                    outputs.append(Map(output))

            self.intrude(edit)

        @rule(key=st.sampled_from(["nbformat", "nbformat_minor", "metadata"]), value=shared_value)
        def hostile_meta(self, key: str, value: Any) -> None:
            if key == "nbformat_minor" and isinstance(value, int) and value >= 0:
                return  # a legitimate version change, not hostile
            self.intrude(lambda peer: peer.doc.get("meta", type=Map).__setitem__(key, value))

        @rule(example=st.sampled_from(sorted(HOSTILE)))
        def issue_example(self, example: str) -> None:
            self.intrude(HOSTILE[example][0])

        def intrude(self, edit: Any) -> None:
            async def go() -> None:
                peer = RoomClient(server.url, "nb.ipynb", token=server.token)
                await peer.connect()
                with peer.doc.transaction():
                    edit(peer)
                await asyncio.sleep(0.05)
                await peer.disconnect()

            self.run(go())

        @invariant()
        def good_peer_connected_and_server_serves(self) -> None:
            assert self.good.connected, (self.good.close_code, self.good.close_reason)
            assert server.get_json("api/crdtsync/status")["rooms"]

        def teardown(self) -> None:
            try:
                deadline = time.monotonic() + SAVE_MAX_DELAY + 1 + 5  # + a loaded machine
                while True:
                    on_disk = self.file_sources()
                    if on_disk is not None and all(
                        on_disk.get(cid) == source for cid, source in self.expected.items()
                    ):
                        break
                    assert time.monotonic() < deadline, (on_disk, self.expected)
                    self.run(asyncio.sleep(0.1))
                for cid, source in self.expected.items():
                    assert self.good.source(cid) == source
            finally:
                self.run(self.good.disconnect())
                self.loop.close()

        def file_sources(self) -> dict[str, str] | None:
            node = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
            nbformat.validate(node)  # always a valid notebook
            cells = json.loads(json.dumps(node))["cells"]
            return {cell.get("id"): cell.get("source") for cell in cells}

    Peers.TestCase.settings = settings(
        max_examples=6,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    Peers.TestCase().runTest()
