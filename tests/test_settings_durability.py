"""The settings room across restarts: its history in the store, its files on disk, and
edits made to the files while no server ran (a real SQLite store, real files, JupyterLab's
installed schemas)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from jupyterlab.commands import get_app_dir

from jupyter_crdt_sync.settings_doc import SettingsDocument, render
from jupyter_crdt_sync.settings_files import SchemaCatalog, SettingsLocation
from jupyter_crdt_sync.settings_room import SettingsRoom, SettingsRoomSettings
from jupyter_crdt_sync.store import Store

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
