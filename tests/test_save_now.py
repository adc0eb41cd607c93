"""POST api/crdtsync/save/{path}: JupyterLab's Save asks the room to write back at once."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
from typing import Any

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map
from tornado.httpclient import HTTPClientError

from .auth_config import READER_TOKEN
from .conftest import FAST_TIMINGS, file_sources, read_file


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    # A debounce far longer than any test: only the save request writes the file.
    return {**FAST_TIMINGS, "save_delay": 60.0, "save_max_delay": 60.0}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"].update(
        identity_provider_class="tests.auth_config.ReaderTokenIdentityProvider",
        authorizer_class="tests.auth_config.ReaderMayNotWriteAuthorizer",
    )
    return jp_server_config


def encoded_state(doc: Doc) -> str:
    return base64.b64encode(doc.get_state()).decode()


async def save(jp_fetch: Any, path: str, body: dict[str, Any] | None = None, **kwargs: Any):
    response = await jp_fetch(
        "api", "crdtsync", "save", path, method="POST", body=json.dumps(body or {}), **kwargs
    )
    return json.loads(response.body)


async def expect_error(jp_fetch: Any, path: str, body: Any = None, **kwargs: Any) -> int:
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(
            "api",
            "crdtsync",
            "save",
            path,
            method="POST",
            body=body if isinstance(body, str) else json.dumps(body or {}),
            **kwargs,
        )
    return refused.value.code


async def test_save_writes_at_once_and_answers_with_the_files_hash(
    make_notebook, connect, jp_fetch, room_manager
):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 4, "!")
    model = await save(jp_fetch, "nb.ipynb", {"state_vector": encoded_state(peer.doc)})
    assert file_sources(path) == ["abcd!"]
    assert model["path"] == "nb.ipynb" and model["type"] == "notebook"
    assert model["content"] is None
    assert model["hash_algorithm"] == "sha256"
    assert model["hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not room_manager.writer("nb.ipynb").dirty
    # Saving again without a change writes nothing.
    before = path.stat().st_mtime_ns
    again = await save(jp_fetch, "nb.ipynb")
    assert again["hash"] == model["hash"] and path.stat().st_mtime_ns == before


async def test_save_waits_for_the_edits_the_window_had_sent(make_notebook, connect, jp_fetch):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    # An edit made on another replica; its update reaches the room only after the request.
    late = Doc()
    late.apply_update(peer.doc.get_update())
    YNotebook(late).ycells[0]["source"].insert(4, " late")
    update = late.get_update(peer.doc.get_state())
    request = asyncio.ensure_future(
        save(jp_fetch, "nb.ipynb", {"state_vector": encoded_state(late)})
    )
    await asyncio.sleep(0.5)
    assert not request.done()
    peer.doc.apply_update(update)
    await asyncio.wait_for(request, 10)
    assert file_sources(path) == ["abcd late"]


async def test_save_without_an_open_room_writes_nothing(make_notebook, jp_fetch):
    path = make_notebook("nb.ipynb", ["abcd"])
    before = path.read_bytes()
    model = await save(jp_fetch, "nb.ipynb")
    assert path.read_bytes() == before
    assert model["hash"] == hashlib.sha256(before).hexdigest()


async def test_a_cell_that_cannot_be_written_is_reported_and_the_rest_is_saved(
    make_notebook, connect, jp_fetch, room_manager
):
    path = make_notebook("nb.ipynb", ["abcd", "efgh"])
    peer = await connect("nb.ipynb")
    cell: Map = peer.notebook.ycells[0]
    cell["cell_type"] = "spreadsheet"
    await save(jp_fetch, "nb.ipynb", {"state_vector": encoded_state(peer.doc)})
    # The rest is written; the cell nbformat refuses stays in the room, and is named.
    assert [c["id"] for c in read_file(path)["cells"]] == ["cell-1"]
    (status,) = room_manager.status()
    assert status["left_out"] == ["cell-0"] and "cell-0" in status["save_error"]
    # Fixed by a peer, the next save writes it.
    cell["cell_type"] = "code"
    await save(jp_fetch, "nb.ipynb", {"state_vector": encoded_state(peer.doc)})
    assert read_file(path)["cells"][0]["cell_type"] == "code"
    assert room_manager.status()[0]["save_error"] is None
    assert peer.connected


async def test_a_window_that_never_catches_up_gets_an_error(make_notebook, connect, jp_fetch):
    path = make_notebook("nb.ipynb", ["abcd"])
    original = path.read_text()
    await connect("nb.ipynb")
    elsewhere = Doc()
    elsewhere.get("cells", type=Map)["x"] = 1
    assert await expect_error(jp_fetch, "nb.ipynb", {"state_vector": encoded_state(elsewhere)}) == (
        500
    )
    assert path.read_text() == original


async def test_bad_requests(make_notebook, jp_root_dir, jp_fetch):
    make_notebook("nb.ipynb", ["abcd"])
    (jp_root_dir / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    assert await expect_error(jp_fetch, "missing.ipynb") == 404
    assert await expect_error(jp_fetch, "../outside.ipynb") == 404
    assert await expect_error(jp_fetch, "image.png") == 400
    assert await expect_error(jp_fetch, "nb.ipynb", '{"state_vector": 7}') == 400
    assert await expect_error(jp_fetch, "nb.ipynb", '{"state_vector": "%%%"}') == 400
    assert await expect_error(jp_fetch, "nb.ipynb", "not json") == 400


async def test_only_writers_may_save(make_notebook, connect, jp_fetch):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 0, "x")
    await asyncio.sleep(0.3)
    reader = {"Authorization": f"token {READER_TOKEN}"}
    assert await expect_error(jp_fetch, "nb.ipynb", headers=reader) == 403
    assert await expect_error(jp_fetch, "nb.ipynb", headers={"Authorization": ""}) in (401, 403)
    assert file_sources(path) == ["abcd"]


async def test_a_full_disk_is_reported_and_the_next_save_writes(
    make_notebook, connect, jp_fetch, jp_serverapp, monkeypatch
):
    path = make_notebook("nb.ipynb", ["abcd"])
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 0, "x")
    state = {"state_vector": encoded_state(peer.doc)}

    def disk_full(model: Any, path: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jp_serverapp.contents_manager, "save", disk_full)
    with pytest.raises(HTTPClientError) as refused:
        await save(jp_fetch, "nb.ipynb", state)
    assert refused.value.code == 500
    assert "No space left on device" in json.loads(refused.value.response.body)["message"]
    assert file_sources(path) == ["abcd"]
    monkeypatch.undo()
    await save(jp_fetch, "nb.ipynb", state)
    assert file_sources(path) == ["xabcd"]
