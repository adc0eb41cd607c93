"""The settings room across restarts: its history in the store, its files on disk, and
edits made to the files while no server ran (a real SQLite store, real files, JupyterLab's
installed schemas)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from jupyterlab.commands import get_app_dir

from jupyter_crdt_sync.client import RoomClient
from jupyter_crdt_sync.settings_doc import SettingsDocument, render
from jupyter_crdt_sync.settings_files import SchemaCatalog, SettingsLocation
from jupyter_crdt_sync.settings_room import SettingsRoom, SettingsRoomSettings
from jupyter_crdt_sync.store import Store

from .server_process import ServerProcess

THEMES = "@jupyterlab/apputils-extension:themes"
LOG = logging.getLogger("test_settings_durability")


@pytest.fixture
def location(tmp_path: Path) -> SettingsLocation:
    app_dir = get_app_dir()
    return SettingsLocation(
        settings_dir=str(tmp_path / "user-settings"),
        schemas_dir=str(Path(app_dir, "schemas")),
        app_settings_dir=str(Path(app_dir, "settings")),
    )


async def open_room(location: SettingsLocation, store_path: Path) -> tuple[SettingsRoom, Store]:
    store = Store(str(store_path), LOG)
    store.open()
    room = SettingsRoom(
        location, SchemaCatalog(location), SettingsRoomSettings(write_delay=0.01), LOG, store
    )
    await room.open()
    return room, store


def themes_file(location: SettingsLocation) -> Path:
    return Path(location.settings_dir, "@jupyterlab/apputils-extension/themes.jupyterlab-settings")


async def test_settings_survive_a_restart_and_merge_edits_made_meanwhile(
    location: SettingsLocation, tmp_path: Path
) -> None:
    store_path = tmp_path / "store.sqlite"
    room, store = await open_room(location, store_path)
    SettingsDocument(room.room.doc).set_raw(
        THEMES, render({"theme": "JupyterLab Dark", "theme-scrollbars": True})
    )
    await asyncio.sleep(0.3)
    await room.close()
    await store.close()
    assert themes_file(location).read_text().count("JupyterLab Dark") == 1

    # While no server runs, someone edits one setting in the file.
    edited = themes_file(location).read_text().replace("true", "false")
    themes_file(location).write_text(edited)

    room, store = await open_room(location, store_path)
    state = room.document.read(THEMES)
    assert state is not None
    assert state.values == {"theme": "JupyterLab Dark", "theme-scrollbars": False}
    assert state.raw == edited
    await room.close()
    await store.close()


async def test_a_lost_store_rebuilds_from_the_files(
    location: SettingsLocation, tmp_path: Path
) -> None:
    room, store = await open_room(location, tmp_path / "store.sqlite")
    SettingsDocument(room.room.doc).set_raw(THEMES, render({"theme": "JupyterLab Dark"}))
    await asyncio.sleep(0.3)
    await room.close()
    await store.close()
    # A new store (deleted, or moved aside as corrupt): the files are the truth.
    room, store = await open_room(location, tmp_path / "other.sqlite")
    state = room.document.read(THEMES)
    assert state is not None and state.values == {"theme": "JupyterLab Dark"}
    await room.close()
    await store.close()


def test_kill_9_loses_no_setting_a_window_has_seen(tmp_path: Path) -> None:
    """A setting that reached a second window is in the store: after kill -9 (before or
    after its file was written, whichever the crash hit) it is in the room and in the file."""
    root = tmp_path / "root"
    root.mkdir()
    settings_dir = tmp_path / "user-settings"
    config = {
        "ServerApp": {"jpserver_extensions": {"jupyter_crdt_sync": True, "jupyterlab": True}},
        "LabApp": {"user_settings_dir": str(settings_dir)},
    }
    server = ServerProcess(root, config=config).start()
    changed_file = settings_dir / "@jupyterlab/apputils-extension/themes.jupyterlab-settings"

    def theme(peer: RoomClient) -> Any:
        state = SettingsDocument(peer.doc).read(THEMES)
        return state.values.get("theme") if state is not None else None

    def settings_peer(url: str, token: str) -> RoomClient:
        peer = RoomClient(url, "-", token)
        peer.url = "ws" + url.rstrip("/")[4:] + "/api/crdtsync/settings"
        return peer

    async def before_crash() -> None:
        window, other = (
            settings_peer(server.url, server.token),
            settings_peer(server.url, server.token),
        )
        await window.connect()
        await other.connect()
        SettingsDocument(window.doc).set_raw(THEMES, render({"theme": "JupyterLab Dark"}))
        await other.wait_for(lambda r: theme(r) == "JupyterLab Dark")
        server.kill()

    try:
        asyncio.run(before_crash())
        LOG.info("file written before the crash: %s", changed_file.exists())
        server = ServerProcess(
            root, config=config, data_dir=server.data_dir, token=server.token
        ).start()

        async def after_restart() -> None:
            fresh = settings_peer(server.url, server.token)
            await fresh.connect()
            assert theme(fresh) == "JupyterLab Dark"
            await fresh.disconnect()

        asyncio.run(after_restart())
        deadline = time.monotonic() + 10
        while "JupyterLab Dark" not in (changed_file.read_text() if changed_file.exists() else ""):
            assert time.monotonic() < deadline, "the setting never reached its file"
            time.sleep(0.1)
        # JupyterLab's own settings API serves it too.
        served = server.get_json("lab/api/settings/" + THEMES)
        assert "JupyterLab Dark" in served["raw"]
    finally:
        server.kill()
