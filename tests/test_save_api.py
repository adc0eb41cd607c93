"""POST api/crdtsync/save/{path}: JupyterLab's save writes the room back at once."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from .auth_config import READER_TOKEN
from .conftest import FAST_TIMINGS, file_sources


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    # The debounced write-back never happens within a test: only the request writes.
    return {**FAST_TIMINGS, "save_delay": 600.0, "save_max_delay": 600.0}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"].update(
        identity_provider_class="tests.auth_config.ReaderTokenIdentityProvider",
        authorizer_class="tests.auth_config.ReaderMayNotWriteAuthorizer",
    )
    return jp_server_config


async def post_save(jp_fetch: Any, path: str, **kwargs: Any) -> Any:
    # jp_fetch percent-encodes each segment, as the front-end does.
    return await jp_fetch(
        "api", "crdtsync", "save", *path.split("/"), method="POST", body=b"", **kwargs
    )


async def refused(jp_fetch: Any, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPClientError) as error:
        await post_save(jp_fetch, path, **kwargs)
    assert error.value.response is not None
    return error.value.code, json.loads(error.value.response.body)


async def room_has(room_manager: Any, path: str, source: str) -> None:
    for _ in range(200):
        room = room_manager.rooms.get(path)
        if room is not None and room.notebook.get_cell(0)["source"] == source:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the room never held {source!r}")


async def test_save_writes_the_room_now_and_answers_the_model(
    make_notebook, connect, jp_fetch, room_manager
):
    path = make_notebook("dir/nb one.ipynb", ["abc"])
    peer = await connect("dir/nb one.ipynb")
    peer.insert_text("cell-0", 3, "def")
    await room_has(room_manager, "dir/nb one.ipynb", "abcdef")
    assert file_sources(path) == ["abc"]

    response = await post_save(jp_fetch, "dir/nb one.ipynb")
    assert response.code == 200
    model = json.loads(response.body)
    assert file_sources(path) == ["abcdef"]
    assert {k: model[k] for k in ("name", "path", "type", "content", "writable")} == {
        "name": "nb one.ipynb",
        "path": "dir/nb one.ipynb",
        "type": "notebook",
        "content": None,
        "writable": True,
    }
    assert model["hash_algorithm"] == "sha256"
    assert model["hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
    contents = json.loads((await jp_fetch("api", "contents", "dir", "nb one.ipynb")).body)
    assert model["last_modified"] == contents["last_modified"]


async def test_save_without_a_room_answers_the_model_and_writes_nothing(make_notebook, jp_fetch):
    path = make_notebook("nb.ipynb", ["abc"])
    before = path.read_bytes()
    model = json.loads((await post_save(jp_fetch, "nb.ipynb")).body)
    assert model["hash"] == hashlib.sha256(before).hexdigest()
    assert path.read_bytes() == before


async def test_refusals(make_notebook, jp_fetch, jp_root_dir):
    make_notebook("nb.ipynb", ["abc"])
    (jp_root_dir / "notes.txt").write_text("text")
    assert (await refused(jp_fetch, "missing.ipynb"))[0] == 404
    assert (await refused(jp_fetch, "../outside.ipynb"))[0] == 404
    assert (await refused(jp_fetch, "notes.txt"))[0] == 400
    code, _ = await refused(
        jp_fetch, "nb.ipynb", headers={"Authorization": f"token {READER_TOKEN}"}
    )
    assert code == 403


async def test_a_failed_write_is_a_500_with_the_reason(
    make_notebook, connect, jp_fetch, jp_serverapp, room_manager, monkeypatch
):
    path = make_notebook("nb.ipynb", ["abc"])
    peer = await connect("nb.ipynb")
    peer.insert_text("cell-0", 0, "x")
    await room_has(room_manager, "nb.ipynb", "xabc")

    def disk_full(model: Any, path: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jp_serverapp.contents_manager, "save", disk_full)
    code, body = await refused(jp_fetch, "nb.ipynb")
    assert code == 500
    assert "No space left on device" in body["message"]
    assert file_sources(path) == ["abc"]

    monkeypatch.undo()
    assert (await post_save(jp_fetch, "nb.ipynb")).code == 200
    assert file_sources(path) == ["xabc"]
