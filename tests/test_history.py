"""History against a real server: versions per write-back with their exact content,
restores of the whole notebook and of cells seen by every peer and in the file, the diff
query, bad requests, rename and delete, compaction."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

from jupyter_crdt_sync.client import RoomClient

from .conftest import FAST_TIMINGS, file_sources, wait_for_file


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    # Every test here runs with the stored CRDT history compacted every few updates:
    # versions must not care.
    return {**FAST_TIMINGS, "compact_after_updates": 5}


def rich_notebook(path: Path) -> Path:
    """Cells of three kinds, outputs, cell and notebook metadata: all must come back."""
    cells = [
        nbformat.v4.new_markdown_cell("# Title", id="md"),
        nbformat.v4.new_code_cell(
            "print('a')",
            id="code",
            execution_count=3,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="a\n")],
            metadata={"tags": ["keep"]},
        ),
        nbformat.v4.new_raw_cell("raw text", id="raw"),
        nbformat.v4.new_code_cell("x = 1", id="last"),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={"custom": {"k": [1, 2]}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path


def on_disk(path: Path) -> dict[str, Any]:
    """The notebook as nbformat reads it (multi-line strings joined), as plain JSON."""
    return json.loads(json.dumps(nbformat.read(str(path), as_version=4)))


async def wait_versions(client: RoomClient, count: int, timeout: float = 10.0) -> list[dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        versions = await client.history()
        if len(versions) >= count or loop.time() > deadline:
            return versions
        await asyncio.sleep(0.05)


def peer_names(room_manager, path: str) -> set[str]:
    """The Jupyter user names of a room's peers (token users get a new one each)."""
    return {peer.user for peer in room_manager.rooms[path].peers}


async def test_every_write_back_is_a_version_with_its_exact_content(
    jp_root_dir, connect, room_manager
):
    path = rich_notebook(jp_root_dir / "nb.ipynb")
    states = [on_disk(path)]
    client = await connect("nb.ipynb")
    assert [v["version"] for v in await client.history()] == [1]
    for edit in ("print('b')", "print('c')"):
        client.set_source("code", edit)
        await wait_for_file(path, ["# Title", edit, "raw text", "x = 1"])
        states.append(on_disk(path))
        await wait_versions(client, len(states))
    client.delete_cell("raw")
    await wait_for_file(path, ["# Title", "print('c')", "x = 1"])
    states.append(on_disk(path))
    versions = await wait_versions(client, len(states))
    assert [v["version"] for v in versions] == [1, 2, 3, 4]
    (me,) = peer_names(room_manager, "nb.ipynb")
    assert versions[0]["authors"] == [] and versions[0]["cells_changed"] == 4
    assert [v["authors"] for v in versions[1:]] == [[me]] * 3
    assert [v["cells_changed"] for v in versions[1:]] == [1, 1, 1]
    for number, state in enumerate(states, start=1):
        version = await client.version(number)
        assert version["content"] == state, f"version {number}"
        assert version["version"] == number and version["time"].endswith("+00:00")
    assert (await client.version(1))["cell_ids"] == ["md", "code", "raw", "last"]


async def test_kernel_outputs_are_authored_by_the_server(make_notebook, connect):
    make_notebook("nb.ipynb", ["print('hi')"])
    client = await connect("nb.ipynb")
    result = await client.run("cell-0")
    assert result.stdout == "hi\n"
    versions = await wait_versions(client, 2)
    await asyncio.sleep(1.0)  # the kernel actor's last writes (execution state) land
    versions = await client.history()
    authors = set().union(*(v["authors"] for v in versions))
    assert "server" in authors
    newest = await client.version(versions[-1]["version"])
    assert newest["content"]["cells"][0]["outputs"][0]["text"] == "hi\n"


async def test_whole_restore_is_seen_by_every_peer_and_reaches_the_file(
    make_notebook, connect, jp_root_dir
):
    path = make_notebook("nb.ipynb", ["one", "two", "three"])
    first, second = await connect("nb.ipynb"), await connect("nb.ipynb")
    first.delete_cell("cell-1")
    first.set_source("cell-2", "THREE")
    await wait_for_file(path, ["one", "THREE"])
    before = await wait_versions(second, 2)
    assert len(before) == 2
    recorded = await second.restore(1)
    assert recorded == 3
    for client in (first, second):
        await client.wait_for(lambda r: r.cell_ids() == ["cell-0", "cell-1", "cell-2"])
        assert [client.source(c) for c in client.cell_ids()] == ["one", "two", "three"]
    await wait_for_file(path, ["one", "two", "three"])
    # The write that follows finds its state recorded already: no version of its own.
    await asyncio.sleep(0.3)
    assert (await second.version(3))["content"] == on_disk(path)
    versions = await second.history()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[2]["restored_from"] == 1
    # The pre-restore state stays readable, and the restore can itself be undone.
    assert [c["source"] for c in (await second.version(2))["content"]["cells"]] == [
        "one",
        "THREE",
    ]
    assert await first.restore(2) == 4
    await wait_for_file(path, ["one", "THREE"])
    assert (await first.version(4))["content"] == on_disk(path)


async def test_cell_restore_brings_back_a_deleted_cell_in_place(make_notebook, connect):
    path = make_notebook("nb.ipynb", ["one", "two", "three", "four"])
    first, second = await connect("nb.ipynb"), await connect("nb.ipynb")
    first.delete_cell("cell-1")
    first.set_source("cell-0", "ONE")
    first.set_source("cell-2", "THREE")
    await wait_for_file(path, ["ONE", "THREE", "four"])
    await wait_versions(first, 2)
    recorded = await first.restore(1, cell_ids=["cell-1", "cell-2"])
    expected = ["ONE", "two", "three", "four"]
    for client in (first, second):
        await client.wait_for(lambda r: [r.source(c) for c in r.cell_ids()] == expected)
        assert client.cell_ids() == ["cell-0", "cell-1", "cell-2", "cell-3"]
    await wait_for_file(path, expected)
    await asyncio.sleep(0.3)
    versions = await first.history()
    assert (await first.version(recorded))["content"] == on_disk(path)
    assert versions[-1]["version"] == recorded
    assert versions[-1]["restored_cells"] == ["cell-1", "cell-2"]


async def test_diff_query_compares_two_versions_and_now(make_notebook, connect):
    path = make_notebook("nb.ipynb", ["one", "two\nlines", "three"])
    client = await connect("nb.ipynb")
    client.set_source("cell-1", "two\nLINES")
    client.delete_cell("cell-2")
    new = client.add_cell("four")
    await wait_for_file(path, ["one", "two\nLINES", "four"])
    await wait_versions(client, 2)
    compared = (await client.version(1, diff=2))["diff"]
    assert compared["from"] == 1 and compared["to"] == 2
    assert compared["summary"] == {"added": 1, "removed": 1, "changed": 1, "moved": 0}
    by_id = {c["id"]: c for c in compared["cells"]}
    assert by_id["cell-1"]["change"] == "changed"
    assert (
        "-lines\n" in by_id["cell-1"]["source_diff"] or "-lines" in by_id["cell-1"]["source_diff"]
    )
    assert "+LINES" in by_id["cell-1"]["source_diff"]
    assert by_id["cell-2"]["change"] == "removed" and by_id["cell-2"]["old_index"] == 2
    assert by_id[new]["change"] == "added" and by_id[new]["new_index"] == 2
    client.set_source("cell-0", "changed now")
    now = (await client.version(2, diff="now"))["diff"]
    assert now["to"] == "now" and [c["id"] for c in now["cells"]] == ["cell-0"]


async def test_bad_requests_are_refused_and_leave_the_room_untouched(
    make_notebook, connect, jp_fetch
):
    path = make_notebook("nb.ipynb", ["one", "two"])
    client = await connect("nb.ipynb")
    cases = [
        ({"version": 99}, 404),
        ({"version": "1"}, 400),
        ({"version": 0}, 400),
        ({"version": 1, "cell_ids": ["no-such-cell"]}, 400),
        ({"version": 1, "cell_ids": []}, 400),
        ({"version": 1, "extra": True}, 400),
        ([1], 400),
    ]
    for body, code in cases:
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch(
                "api", "crdtsync", "restore", "nb.ipynb", method="POST", body=json.dumps(body)
            )
        assert refused.value.code == code, body
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("api", "crdtsync", "restore", "nb.ipynb", method="POST", body="{not json")
    assert refused.value.code == 400
    for parts, code in [
        (("history", "missing.ipynb"), 404),
        (("history", "nb.ipynb", "7"), 404),
        (("history", "..", "x.ipynb"), 404),
    ]:
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch("api", "crdtsync", *parts)
        assert refused.value.code == code, parts
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("api", "crdtsync", "history", "nb.ipynb", "1", params={"diff": "x"})
    assert refused.value.code == 400
    await asyncio.sleep(0.3)
    assert [client.source(c) for c in client.cell_ids()] == ["one", "two"]
    assert file_sources(path) == ["one", "two"]
    assert [v["version"] for v in await client.history()] == [1]


async def test_history_follows_a_rename_and_outlives_a_delete(
    make_notebook, connect, jp_fetch, jp_root_dir
):
    path = make_notebook("old.ipynb", ["one"])
    client = await connect("old.ipynb")
    client.set_source("cell-0", "ONE")
    await wait_for_file(path, ["ONE"])
    await wait_versions(client, 2)
    await client.disconnect()
    await jp_fetch(
        "api", "contents", "old.ipynb", method="PATCH", body=json.dumps({"path": "new.ipynb"})
    )
    moved = RoomClient(client.server_url, "new.ipynb", token=client._headers["Authorization"][6:])
    versions = await moved.history()
    assert [v["version"] for v in versions] == [1, 2]
    assert [c["source"] for c in (await moved.version(1))["content"]["cells"]] == ["one"]
    with pytest.raises(HTTPClientError) as gone:
        await client.history()
    assert gone.value.code == 404
    await jp_fetch("api", "contents", "new.ipynb", method="DELETE")
    await asyncio.sleep(0.2)
    listed = json.loads((await jp_fetch("api", "crdtsync", "history", "new.ipynb")).body)
    assert listed["deleted"] is not None and len(listed["versions"]) == 2
    # A whole-version restore brings the deleted notebook back.
    assert await moved.restore(1) == 3
    assert file_sources(jp_root_dir / "new.ipynb") == ["one"]
    listed = json.loads((await jp_fetch("api", "crdtsync", "history", "new.ipynb")).body)
    assert listed["deleted"] is None


async def test_versions_survive_compaction(make_notebook, connect, room_manager):
    path = make_notebook("nb.ipynb", ["x"])
    client = await connect("nb.ipynb")
    expected = ["x"]
    for step in range(4):
        for char in "abcdef":
            client.insert_text("cell-0", len(client.source("cell-0")), char)
            await asyncio.sleep(0.01)
        expected.append(client.source("cell-0"))
        await wait_for_file(path, [expected[-1]])
        await wait_versions(client, step + 2)
    journal = room_manager.open_notebook("nb.ipynb").journal
    assert journal.updates_since_compaction < 20
    versions = await client.history()
    sources = [
        (await client.version(v["version"]))["content"]["cells"][0]["source"] for v in versions
    ]
    assert sources[0] == "x" and sources[-1] == expected[-1]
    assert set(expected) <= set(sources) | {"x"}


async def test_thinning_by_the_configured_policy_keeps_kept_versions_readable(
    make_notebook, connect, jp_serverapp
):
    path = make_notebook("nb.ipynb", ["v0"])
    client = await connect("nb.ipynb")
    for step in range(1, 5):
        client.set_source("cell-0", f"v{step}")
        await wait_for_file(path, [f"v{step}"])
        await wait_versions(client, step + 1)
    app = jp_serverapp.extension_manager.extension_apps["jupyter_crdt_sync"]
    (app,) = app if isinstance(app, set) else [app]
    # Everything older than a second: one per hour, so the newest of this hour stays.
    app.history_retention = [(1.0, 0.0), (0.0, 3600.0)]
    store = app.store
    before = await store.history_bytes()
    await asyncio.sleep(1.2)
    dropped = await store.thin_history(app.retention_policy(), app.history_keep_deleted)
    versions = await client.history()
    assert dropped >= 3 and len(versions) <= 2 and versions[-1]["version"] == 5
    for version in versions:
        content = (await client.version(version["version"]))["content"]
        assert content["cells"][0]["source"] == f"v{version['version'] - 1}"
    assert await store.history_bytes() < before


async def test_a_restore_while_another_window_types_loses_none_of_its_keystrokes(
    make_notebook, connect
):
    path = make_notebook("nb.ipynb", ["one", "two", "typing here: "])
    typist, restorer = await connect("nb.ipynb"), await connect("nb.ipynb")
    restorer.delete_cell("cell-1")
    await wait_for_file(path, ["one", "typing here: "])
    await wait_versions(restorer, 2)
    typed = ""

    async def type_along() -> None:
        nonlocal typed
        for index in range(60):
            char = "abcdefghij"[index % 10]
            typist.insert_text("cell-2", len(typist.source("cell-2")), char)
            typed += char
            await asyncio.sleep(0.01)

    typing = asyncio.ensure_future(type_along())
    await asyncio.sleep(0.15)
    restored = await restorer.restore(1, cell_ids=["cell-1"])
    await typing
    expected = ["one", "two", "typing here: " + typed]
    for client in (typist, restorer):
        await client.wait_for(lambda r: [r.source(c) for c in r.cell_ids()] == expected)
    await wait_for_file(path, expected)
    versions = await wait_versions(restorer, restored + 1)
    newest = await restorer.version(versions[-1]["version"])
    assert newest["content"] == on_disk(path)
    assert any(v.get("restored_cells") == ["cell-1"] for v in versions)
