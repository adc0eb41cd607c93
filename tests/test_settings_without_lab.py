"""A server without JupyterLab's server extension has no settings room: the status says
so, the endpoint answers 404, and the notebook rooms are not affected."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_crdt_sync.client import RoomClient


async def test_no_settings_room_without_jupyterlab(
    jp_fetch: Any, server_url: str, token: str, make_notebook: Any, connect: Any
) -> None:
    status = json.loads((await jp_fetch("api", "crdtsync", "status")).body)
    assert status["settings"] is None
    peer = RoomClient(server_url, "-", token)
    peer.url = "ws" + server_url.rstrip("/")[4:] + "/api/crdtsync/settings"
    with pytest.raises(HTTPClientError) as refused:
        await peer.connect()
    assert refused.value.code == 404
    make_notebook("nb.ipynb", ["x = 1"])
    room = await connect("nb.ipynb")
    assert room.cells()[0]["source"] == "x = 1"
