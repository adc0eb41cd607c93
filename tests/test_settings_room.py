"""The settings room: JupyterLab's user settings shared live, mirrored to the
`.jupyterlab-settings` files (a real server with JupyterLab's settings API, real peers,
real files)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import json5
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from jupyter_crdt_sync.client import RoomClient
from jupyter_crdt_sync.settings_doc import SettingsDocument, parse_settings, render

THEMES = "@jupyterlab/apputils-extension:themes"
THEMES_FILE = Path("@jupyterlab", "apputils-extension", "themes.jupyterlab-settings")
# Written by "a plain JupyterLab" before the server starts: taken in as it is.
EXISTING = '{\n    // chosen long ago\n    "theme": "JupyterLab Dark"\n}\n'


@pytest.fixture
def settings_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "user-settings"
    (directory / THEMES_FILE).parent.mkdir(parents=True)
    (directory / THEMES_FILE).write_text(EXISTING, encoding="utf-8")
    return directory


@pytest.fixture
def jp_server_config(crdtsync_config: dict[str, Any], settings_dir: Path) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {
                "jupyter_crdt_sync": True,
                "jupyterlab": True,
                "jupyter_server_terminals": False,
            },
            "allow_unauthenticated_access": False,
        },
        "LabApp": {"user_settings_dir": str(settings_dir)},
        "CRDTSync": {**crdtsync_config, "settings_debounce": 0.2, "max_setting_bytes": 4096},
    }


@pytest.fixture
def settings_peer(server_url: str, token: str, jp_asyncio_loop: Any, jp_serverapp: Any) -> Any:
    peers: list[RoomClient] = []

    async def open_peer() -> RoomClient:
        peer = RoomClient(server_url, "-", token)
        peer.url = "ws" + server_url.rstrip("/")[4:] + "/api/crdtsync/settings"
        peers.append(peer)
        await peer.connect()
        return peer

    yield open_peer

    async def close_all() -> None:
        for peer in peers:
            await peer.disconnect()

    jp_asyncio_loop.run_until_complete(close_all())


def values(peer: RoomClient, plugin: str = THEMES) -> dict[str, Any]:
    state = SettingsDocument(peer.doc).read(plugin)
    return state.values if state is not None else {}


def raw(peer: RoomClient, plugin: str = THEMES) -> str:
    state = SettingsDocument(peer.doc).read(plugin)
    return state.raw if state is not None else ""


def save(peer: RoomClient, changes: dict[str, Any], plugin: str = THEMES) -> None:
    """What a window does when JupyterLab saves a setting: the whole new text."""
    SettingsDocument(peer.doc).set_raw(plugin, render({**values(peer, plugin), **changes}))


def save_text(peer: RoomClient, text: str, plugin: str = THEMES) -> None:
    SettingsDocument(peer.doc).set_raw(plugin, text)


async def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def file_values(settings_dir: Path) -> dict[str, Any]:
    try:
        return dict(json5.loads((settings_dir / THEMES_FILE).read_text(encoding="utf-8")))
    except ValueError:
        return {}


async def status(server_url: str, token: str) -> dict[str, Any]:
    response = await AsyncHTTPClient().fetch(
        server_url + "api/crdtsync/status", headers={"Authorization": f"token {token}"}
    )
    return dict(json.loads(response.body)["settings"])


async def test_existing_file_is_taken_in_as_it_is(settings_peer: Any, settings_dir: Path) -> None:
    peer = await settings_peer()
    assert raw(peer) == EXISTING
    assert values(peer) == {"theme": "JupyterLab Dark"}
    assert (settings_dir / THEMES_FILE).read_text(encoding="utf-8") == EXISTING


async def test_two_peers_and_the_mirror_file(
    settings_peer: Any, settings_dir: Path, server_url: str, token: str
) -> None:
    first, second = await settings_peer(), await settings_peer()
    save(first, {"theme": "JupyterLab Light"})
    await second.wait_for(lambda p: values(p).get("theme") == "JupyterLab Light")
    await wait_until(lambda: file_values(settings_dir).get("theme") == "JupyterLab Light")
    # Only the plugin that changed was written.
    assert sorted(p.name for p in settings_dir.rglob("*.jupyterlab-settings")) == [
        "themes.jupyterlab-settings"
    ]
    report = await status(server_url, token)
    assert report["peers"] == 2
    assert report["plugins"] == 1
    assert report["last_write"] is not None
    assert report["errors"] == []


async def test_outside_edit_merges_into_every_peer(settings_peer: Any, settings_dir: Path) -> None:
    first, second = await settings_peer(), await settings_peer()
    edited = (
        '{\n    // by hand\n    "theme": "JupyterLab Light",\n    "theme-scrollbars": true\n}\n'
    )
    (settings_dir / THEMES_FILE).write_text(edited, encoding="utf-8")
    for peer in (first, second):
        await peer.wait_for(lambda p: raw(p) == edited)
        assert values(peer) == {"theme": "JupyterLab Light", "theme-scrollbars": True}


async def test_outside_edit_keeps_changes_made_in_the_room_meanwhile(
    settings_peer: Any, settings_dir: Path, jp_serverapp: Any
) -> None:
    peer = await settings_peer()
    room = jp_serverapp.web_app.settings["crdtsync_settings_room"]
    # The file is edited while the room's own change is still waiting to be written.
    room._settings = type(room._settings)(write_delay=2.0, debounce=0.2)
    save(peer, {"theme-scrollbars": True})
    await wait_until(lambda: values_of(room).get("theme-scrollbars") is True)
    (settings_dir / THEMES_FILE).write_text('{"theme": "JupyterLab Light"}', encoding="utf-8")
    await peer.wait_for(lambda p: values(p).get("theme") == "JupyterLab Light")
    assert values(peer) == {"theme": "JupyterLab Light", "theme-scrollbars": True}
    await wait_until(
        lambda: (
            file_values(settings_dir) == {"theme": "JupyterLab Light", "theme-scrollbars": True}
        ),
        timeout=10,
    )


def values_of(room: Any) -> dict[str, Any]:
    state = room.document.read(THEMES)
    return state.values if state is not None else {}


async def test_invalid_json5_is_refused_and_the_previous_settings_kept(
    settings_peer: Any, settings_dir: Path, server_url: str, token: str, server_log: Any
) -> None:
    peer = await settings_peer()
    broken = '{\n    "theme": "JupyterLab Light",\n    "theme-scrollbars": \n}\n'
    path = settings_dir / THEMES_FILE
    path.write_text(broken, encoding="utf-8")

    def has_error() -> bool:
        return THEMES in SettingsDocument(peer.doc).errors

    await peer.wait_for(lambda p: has_error())
    error = SettingsDocument(peer.doc).error_list()[0]
    assert error["file"] == str(path) and error["line"] == 4
    assert values(peer) == {"theme": "JupyterLab Dark"}
    report = await status(server_url, token)
    assert report["errors"][0]["line"] == 4 and report["errors"][0]["file"] == str(path)
    assert f"{path} line 4" in server_log.text
    # A change from a window meanwhile is held back: the broken file is not written over.
    save(peer, {"theme-scrollbars": False})
    await asyncio.sleep(1.0)
    assert path.read_text(encoding="utf-8") == broken
    # Fixed: the edit is merged with the window's change, and the file gets both.
    path.write_text('{\n    "theme": "JupyterLab Light"\n}\n', encoding="utf-8")
    await peer.wait_for(lambda p: not has_error() and values(p).get("theme") == "JupyterLab Light")
    await wait_until(
        lambda: (
            file_values(settings_dir) == {"theme": "JupyterLab Light", "theme-scrollbars": False}
        )
    )


async def test_schema_mismatch_is_refused(settings_peer: Any, settings_dir: Path) -> None:
    peer = await settings_peer()
    (settings_dir / THEMES_FILE).write_text('{"theme-scrollbars": "very"}', encoding="utf-8")
    await peer.wait_for(lambda p: THEMES in SettingsDocument(p.doc).errors)
    assert "does not match the schema" in SettingsDocument(peer.doc).error_list()[0]["message"]
    assert values(peer) == {"theme": "JupyterLab Dark"}


async def test_concurrent_changes_to_different_keys_are_both_kept(
    settings_peer: Any, settings_dir: Path
) -> None:
    first, second = await settings_peer(), await settings_peer()
    # Both windows change the plugin before either has seen the other's change, as the
    # Settings Editor does: the text, comments kept.
    text = raw(first)
    save_text(first, text.replace('"JupyterLab Dark"', '"JupyterLab Light"'))
    save_text(second, text.replace('Dark"', 'Dark",\n    "theme-scrollbars": true'))
    expected = {"theme": "JupyterLab Light", "theme-scrollbars": True}
    for peer in (first, second):
        await peer.wait_for(lambda p: values(p) == expected)
    await wait_until(lambda: file_values(settings_dir) == expected)
    # The text merged too, comments and all.
    await first.wait_for(lambda p: parse_settings(raw(p)) == expected)
    assert "chosen long ago" in raw(first)


async def test_concurrent_changes_to_one_setting_converge(
    settings_peer: Any, settings_dir: Path
) -> None:
    first, second = await settings_peer(), await settings_peer()
    save(first, {"theme": "JupyterLab Light"})
    save(second, {"theme": "JupyterLab Dark High Contrast"})

    def converged(peer: RoomClient) -> bool:
        # One value everywhere, and the text says it (the server rewrites a text that the
        # two edits mixed up).
        return values(peer) == values(second) and parse_settings(raw(peer)) == values(peer)

    await first.wait_for(converged)
    await second.wait_for(lambda p: raw(p) == raw(first))
    assert values(first)["theme"] in ("JupyterLab Light", "JupyterLab Dark High Contrast")
    await wait_until(lambda: file_values(settings_dir) == values(first))


async def test_put_through_jupyterlab_reaches_every_peer(
    settings_peer: Any, server_url: str, token: str
) -> None:
    first, second = await settings_peer(), await settings_peer()
    body = '{\n    "overrides": {"code-font-size": "17px"}\n}\n'
    await AsyncHTTPClient().fetch(
        server_url + "lab/api/settings/" + THEMES,
        method="PUT",
        headers={"Authorization": f"token {token}"},
        body=json.dumps({"raw": body}),
    )
    for peer in (first, second):
        await peer.wait_for(lambda p: values(p) == {"overrides": {"code-font-size": "17px"}})


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("unknown", "unknown plugin"),
        ("oversized", "max_setting_bytes"),
        ("not-an-object", "expected {raw, values}"),
        ("bad-value", "does not match the schema"),
    ],
)
async def test_bad_updates_from_a_peer_are_refused(
    settings_peer: Any, settings_dir: Path, bad: str, reason: str
) -> None:
    bystander, peer = await settings_peer(), await settings_peer()
    before = raw(bystander)
    document = SettingsDocument(peer.doc)
    if bad == "unknown":
        document.set_raw("no-such-extension:plugin", '{"a": 1}')
    elif bad == "oversized":
        save(peer, {"theme": "x" * 5000})
    elif bad == "not-an-object":
        document.plugins[THEMES] = "[1, 2]"
    else:
        save(peer, {"theme-scrollbars": "very"})
    await peer.wait_closed()
    assert peer.close_code == 1002
    assert reason in (peer.close_reason or "")
    await asyncio.sleep(0.5)
    assert raw(bystander) == before
    assert (settings_dir / THEMES_FILE).read_text(encoding="utf-8") == EXISTING
    # The room goes on for the others.
    save(bystander, {"theme": "JupyterLab Light"})
    await wait_until(lambda: file_values(settings_dir).get("theme") == "JupyterLab Light")


async def test_bad_files_are_refused(settings_peer: Any, settings_dir: Path) -> None:
    peer = await settings_peer()
    path = settings_dir / THEMES_FILE
    for text, message in (("[1, 2]", "expected an object"), ("{" + " " * 5000 + "}", "bytes")):
        path.write_text(text, encoding="utf-8")
        await peer.wait_for(
            lambda p, m=message: m in str(SettingsDocument(p.doc).error_list() or "")
        )
        assert values(peer) == {"theme": "JupyterLab Dark"}
        assert path.read_text(encoding="utf-8") == text


async def test_joining_needs_credentials(server_url: str, jp_serverapp: Any) -> None:
    stranger = RoomClient(server_url, "-", "wrong-token")
    stranger.url = "ws" + server_url.rstrip("/")[4:] + "/api/crdtsync/settings"
    with pytest.raises(HTTPClientError) as refused:
        await stranger.connect()
    assert refused.value.code in (401, 403)
