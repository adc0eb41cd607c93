"""Who may join a room, and what a refused request leaves behind: nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from jupyter_crdt_sync.client import RoomClient, room_url

from .auth_config import READER_TOKEN
from .conftest import file_sources

# The start of a PNG file: not UTF-8, so not a text file.
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"].update(
        identity_provider_class="tests.auth_config.ReaderTokenIdentityProvider",
        authorizer_class="tests.auth_config.ReaderMayNotWriteAuthorizer",
    )
    return jp_server_config


async def expect_refused(url: str, headers: dict[str, str] | None = None) -> int:
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url, headers=headers or {}))
    return refused.value.code


async def test_no_token_is_refused(make_notebook, server_url):
    make_notebook("nb.ipynb")
    assert await expect_refused(room_url(server_url, "nb.ipynb")) in (401, 403)


async def test_wrong_token_is_refused(make_notebook, server_url):
    make_notebook("nb.ipynb")
    code = await expect_refused(
        room_url(server_url, "nb.ipynb"), {"Authorization": "token not-the-token"}
    )
    assert code in (401, 403)


async def test_token_in_query_is_accepted(make_notebook, server_url, token):
    make_notebook("nb.ipynb", ["hello"])
    client = RoomClient(server_url, "nb.ipynb")
    client.url += f"?token={token}"
    await client.connect()
    assert client.source("cell-0") == "hello"
    await client.disconnect()


async def test_foreign_origin_is_refused_for_browser_sessions(make_notebook, server_url, jp_fetch):
    # As for kernel websockets, the origin is checked for cookie (browser) sessions; a
    # request carrying the token itself is not one a foreign page could forge.
    make_notebook("nb.ipynb", ["x"])
    response = await jp_fetch("api", "status")
    cookie = response.headers["Set-Cookie"].split(";")[0]
    url = room_url(server_url, "nb.ipynb")
    host = url.split("/")[2]
    code = await expect_refused(url, {"Cookie": cookie, "Origin": "http://evil.example"})
    assert code == 403
    same_origin = RoomClient(
        server_url, "nb.ipynb", headers={"Cookie": cookie, "Origin": f"http://{host}"}
    )
    await same_origin.connect()
    assert same_origin.source("cell-0") == "x"
    await same_origin.disconnect()


async def test_read_only_peer_sees_but_cannot_change(make_notebook, connect, jp_root_dir):
    path = make_notebook("nb.ipynb", ["abcd"])
    writer = await connect("nb.ipynb")
    reader = await connect("nb.ipynb", token=READER_TOKEN)
    assert reader.source("cell-0") == "abcd"
    reader.insert_text("cell-0", 0, "READER ")
    writer.insert_text("cell-0", 4, "!")
    await reader.wait_for(lambda r: "!" in r.source("cell-0"))
    await asyncio.sleep(0.3)
    assert writer.source("cell-0") == "abcd!"
    # A fresh peer sees the room as the writer left it, and so does the file.
    await connect("nb.ipynb")
    fresh = await connect("nb.ipynb")
    assert fresh.source("cell-0") == "abcd!"
    await asyncio.sleep(0.3)
    assert file_sources(path) == ["abcd!"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("missing.ipynb", 404),
        ("../outside.ipynb", 404),
        ("%2e%2e/outside.ipynb", 404),
        ("sub/../../outside.ipynb", 404),
        ("image.png", 400),
        ("folder", 400),
        ("broken.ipynb", 400),
    ],
)
async def test_bad_paths_are_refused_and_other_rooms_go_on(
    path, expected, make_notebook, connect, server_url, token, jp_root_dir, room_manager
):
    make_notebook("good.ipynb", ["fine"])
    make_notebook("../outside.ipynb", ["secret"])
    (jp_root_dir / "image.png").write_bytes(PNG_BYTES)
    (jp_root_dir / "folder").mkdir()
    (jp_root_dir / "broken.ipynb").write_text("{ this is not json")
    good = await connect("good.ipynb")
    url = room_url(server_url, "x").rsplit("/", 1)[0] + "/" + path
    assert await expect_refused(url, {"Authorization": f"token {token}"}) == expected
    # The refused request left no room behind, and the open room still serves.
    assert list(room_manager.rooms) == ["good.ipynb"]
    other = await connect("good.ipynb")
    good.insert_text("cell-0", 4, "!")
    await other.wait_for(lambda r: r.source("cell-0") == "fine!")


async def test_concurrent_bad_and_good_requests(make_notebook, connect, server_url, token):
    make_notebook("good.ipynb", ["fine"])
    headers = {"Authorization": f"token {token}"}
    bad = [expect_refused(room_url(server_url, f"missing-{i}.ipynb"), headers) for i in range(10)]
    good = [connect("good.ipynb") for _ in range(5)]
    results = await asyncio.gather(*bad, *good)
    assert results[:10] == [404] * 10
    assert all(peer.source("cell-0") == "fine" for peer in results[10:])


async def test_status_requires_authentication(jp_fetch, server_url):
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("api", "crdtsync", "status", headers={"Authorization": ""})
    assert refused.value.code in (401, 403)
