"""Peers in one room converge: concurrent edits, late joiners, offline edits, awareness."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_crdt_sync.client import RoomClient

from .conftest import wait_for_file, write_notebook


async def test_late_joiner_catches_up(make_notebook, connect):
    make_notebook("nb.ipynb", ["one", "two"])
    first = await connect("nb.ipynb")
    first.insert_text("cell-1", 3, "!")
    new_id = first.add_cell("three")
    await asyncio.sleep(0.05)
    late = await connect("nb.ipynb")
    # connect() returns once synced: no waiting needed for what the room already had.
    assert late.cell_ids() == ["cell-0", "cell-1", new_id]
    assert [late.source(cid) for cid in late.cell_ids()] == ["one", "two!", "three"]


async def test_joins_between_two_changes_encode_the_document_once(
    make_notebook, connect, room_manager
):
    make_notebook("nb.ipynb", ["one", "two"])
    first = await connect("nb.ipynb")
    room = room_manager.open_notebook("nb.ipynb").room
    encodings = room.state_encodings
    assert encodings >= 1  # the first join's
    second = await connect("nb.ipynb")
    third = await connect("nb.ipynb")
    assert room.state_encodings == encodings  # no change since: the same encoding
    assert second.content() == third.content() == first.content()
    # A change: the next join gets it, encoded anew.
    first.insert_text("cell-0", 3, "!")
    await second.wait_for(lambda peer: peer.source("cell-0") == "one!")
    fourth = await connect("nb.ipynb")
    assert fourth.source("cell-0") == "one!"
    assert room.state_encodings == encodings + 1
    # A replica that has part of the document gets only what it misses, as before.
    await third.disconnect()
    first.insert_text("cell-1", 0, ">")
    await third.connect()
    assert third.source("cell-1") == ">two"
    assert room.state_encodings == encodings + 1


async def test_offline_peers_merge_preserving_intentions(make_notebook, connect, jp_root_dir):
    make_notebook("nb.ipynb", ["abcd"])
    peers = [await connect("nb.ipynb") for _ in range(3)]
    for peer in peers:
        await peer.disconnect()
    x_after_c, y_before_c, delete_b = peers
    x_after_c.insert_text("cell-0", 3, "x")
    y_before_c.insert_text("cell-0", 2, "y")
    delete_b.delete_text("cell-0", 1, 1)
    for peer in peers:
        await peer.connect()
    for peer in peers:
        await peer.wait_for(lambda r: r.source("cell-0") == "aycxd")
    watcher = await connect("nb.ipynb")
    assert watcher.source("cell-0") == "aycxd"
    await wait_for_file(jp_root_dir / "nb.ipynb", ["aycxd"])


async def test_concurrent_first_joins_make_one_room(make_notebook, connect, room_manager):
    make_notebook("nb.ipynb", ["only cell"])
    peers = await asyncio.gather(*(connect("nb.ipynb") for _ in range(20)))
    for peer in peers:
        assert peer.cell_ids() == ["cell-0"]
        assert peer.source("cell-0") == "only cell"
    # A second load would have made a second room and split the peers between them.
    assert list(room_manager.rooms) == ["nb.ipynb"]
    assert len(room_manager.rooms["nb.ipynb"].peers) == 20


async def test_equivalent_paths_share_one_room(make_notebook, connect, room_manager):
    make_notebook("sub/nb.ipynb", ["x"])
    a = await connect("sub/nb.ipynb")
    b = await connect("sub/./nb.ipynb")
    c = await connect("/sub//nb.ipynb")
    a.insert_text("cell-0", 1, "y")
    await b.wait_for(lambda r: r.source("cell-0") == "xy")
    await c.wait_for(lambda r: r.source("cell-0") == "xy")
    assert list(room_manager.rooms) == ["sub/nb.ipynb"]


async def test_awareness_is_relayed_and_removed_on_disconnect(make_notebook, connect):
    make_notebook("nb.ipynb")
    alice = await connect("nb.ipynb")
    bob = await connect("nb.ipynb")
    alice.set_awareness({"user": {"name": "alice"}, "cursor": 3})
    alice_id = alice.awareness.client_id
    await bob.wait_for(lambda r: r.awareness.states.get(alice_id, {}).get("cursor") == 3)
    # A window that joins later is told who is there.
    carol = await connect("nb.ipynb")
    await carol.wait_for(lambda r: alice_id in r.awareness.states)
    await alice.disconnect()
    await bob.wait_for(lambda r: alice_id not in r.awareness.states)
    await carol.wait_for(lambda r: alice_id not in r.awareness.states)


async def test_server_keeps_no_awareness_state_of_its_own(make_notebook, connect):
    make_notebook("nb.ipynb")
    alice = await connect("nb.ipynb")
    await asyncio.sleep(0.05)
    assert set(alice.awareness.states) <= {alice.awareness.client_id}


async def test_ten_peers_typing_at_once_converge(make_notebook, connect, jp_root_dir):
    make_notebook("nb.ipynb", [""])
    peers = [await connect("nb.ipynb") for _ in range(10)]
    for round_ in range(20):
        for number, peer in enumerate(peers):
            text = peer.source("cell-0")
            peer.insert_text("cell-0", (round_ * 7 + number) % (len(text) + 1), str(number))
        await asyncio.sleep(0)
    expected_length = 20 * 10
    for peer in peers:
        await peer.wait_for(lambda r: len(r.source("cell-0")) == expected_length)
    assert len({peer.source("cell-0") for peer in peers}) == 1
    for digit in range(10):
        assert peers[0].source("cell-0").count(str(digit)) == 20
    await wait_for_file(jp_root_dir / "nb.ipynb", [peers[0].source("cell-0")])


# -- property: any edits, any delivery order, every replica converges --------------------

_example_numbers = itertools.count()

edit = st.tuples(
    st.sampled_from(["insert", "delete"]),
    st.floats(min_value=0, max_value=1),
    st.text(alphabet="ab é🍎\n", min_size=1, max_size=4),
    st.integers(min_value=1, max_value=3),
)


@st.composite
def scenarios(draw: Any, peer_count: int) -> dict[str, Any]:
    edits = draw(st.lists(st.tuples(st.integers(0, peer_count - 1), edit), min_size=1, max_size=30))
    offline = draw(st.lists(st.booleans(), min_size=peer_count, max_size=peer_count))
    reconnect_order = draw(st.permutations(range(peer_count)))
    return {"edits": edits, "offline": offline, "reconnect_order": reconnect_order}


async def run_scenario(
    server_url: str, token: str, root: Any, peer_count: int, scenario: dict[str, Any]
) -> None:
    name = f"prop-{next(_example_numbers)}.ipynb"
    write_notebook(root / name, ["start"])
    peers = [RoomClient(server_url, name, token=token) for _ in range(peer_count)]
    try:
        for peer in peers:
            await peer.connect()
        for peer, offline in zip(peers, scenario["offline"], strict=True):
            if offline:
                await peer.disconnect()
        # Edits of online peers go out without waiting for delivery, so they cross.
        for number, (kind, where, text, length) in scenario["edits"]:
            peer = peers[number]
            current = peer.source("cell-0")
            position = round(where * len(current))
            if kind == "insert":
                peer.insert_text("cell-0", position, text)
            elif current:
                position = min(position, len(current) - 1)
                peer.delete_text("cell-0", position, min(length, len(current) - position))
            if number % 3 == 0:
                await asyncio.sleep(0)
        for number in scenario["reconnect_order"]:
            if not peers[number].connected:
                await peers[number].connect()
        reference = RoomClient(server_url, name, token=token)
        await reference.connect()
        peers.append(reference)

        def converged(_: RoomClient) -> bool:
            return len({p.source("cell-0") for p in peers}) == 1

        await reference.wait_for(converged, timeout=15)
        await wait_for_file(root / name, [reference.source("cell-0")])
    finally:
        for peer in peers:
            await peer.disconnect()


def _property_settings(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@_property_settings(25)
@given(scenario=scenarios(peer_count=2))
def test_two_peers_converge_property(scenario, server_url, token, jp_root_dir, jp_asyncio_loop):
    jp_asyncio_loop.run_until_complete(run_scenario(server_url, token, jp_root_dir, 2, scenario))


@_property_settings(8)
@given(scenario=scenarios(peer_count=10))
def test_ten_peers_converge_property(scenario, server_url, token, jp_root_dir, jp_asyncio_loop):
    jp_asyncio_loop.run_until_complete(run_scenario(server_url, token, jp_root_dir, 10, scenario))
