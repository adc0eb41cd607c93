"""Who may read and restore versions: contents read permission to read, write to restore;
a refused restore changes nothing. The authors of versions are the users' Jupyter names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from .auth_config import EDITOR_TOKEN, READER_TOKEN
from .conftest import file_sources, wait_for_file
from .test_history import wait_versions


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"].update(
        identity_provider_class="tests.auth_config.TokenReaderAndEditorIdentityProvider",
        authorizer_class="tests.auth_config.ReaderMayNotWriteAuthorizer",
    )
    return jp_server_config


async def test_reading_needs_read_and_restoring_needs_write(make_notebook, connect, jp_fetch):
    path = make_notebook("nb.ipynb", ["one", "two"])
    editor = await connect("nb.ipynb", token=EDITOR_TOKEN)
    reader = await connect("nb.ipynb", token=READER_TOKEN)
    editor.delete_cell("cell-1")
    await wait_for_file(path, ["one"])
    versions = await wait_versions(reader, 2)
    assert versions[1]["authors"] == ["editor"]
    assert len((await reader.version(1))["content"]["cells"]) == 2

    async def status(token: str, *parts: str, **kwargs: Any) -> int:
        headers = {"Authorization": f"token {token}" if token else ""}
        try:
            response = await jp_fetch("api", "crdtsync", *parts, headers=headers, **kwargs)
        except HTTPClientError as error:
            return error.code
        return response.code

    restore = {"method": "POST", "body": json.dumps({"version": 1})}
    assert await status(READER_TOKEN, "history", "nb.ipynb") == 200
    assert await status(READER_TOKEN, "history", "nb.ipynb", "1") == 200
    assert await status(READER_TOKEN, "restore", "nb.ipynb", **restore) == 403
    for parts in (("history", "nb.ipynb"), ("history", "nb.ipynb", "1")):
        assert await status("", *parts) in (401, 403)
    assert await status("", "restore", "nb.ipynb", **restore) in (401, 403)
    # Refused: the room, the file and the history are as they were.
    assert reader.cell_ids() == ["cell-0"] and file_sources(path) == ["one"]
    assert len(await reader.history()) == 2
    with pytest.raises(HTTPClientError) as refused:
        await reader.restore(1)
    assert refused.value.code == 403
    assert await editor.restore(1, cell_ids=["cell-1"]) == 3
    await reader.wait_for(lambda r: r.cell_ids() == ["cell-0", "cell-1"])
    await wait_for_file(path, ["one", "two"])
    assert (await editor.history())[-1]["authors"] == ["editor"]
