"""A window holding a copy of an earlier room's history is refused, never merged as a second
copy of every cell: it happens only when the room's stored history is lost."""

from __future__ import annotations

import sqlite3

import pytest

from .test_rooms import wait_evicted


async def test_stale_replica_is_refused_when_history_is_lost(
    make_notebook, connect, room_manager, server_log
):
    make_notebook("nb.ipynb", ["abcd", "efgh"])
    window = await connect("nb.ipynb")
    await window.disconnect()
    await wait_evicted(room_manager, "nb.ipynb")
    # Damage the stored history: the room is rebuilt from the file, a new history.
    with sqlite3.connect(room_manager.store.path) as database:
        database.execute("UPDATE documents SET snapshot = x'0102' WHERE path = 'nb.ipynb'")
    with pytest.raises(ConnectionError):
        await window.connect()
    assert window.close_code == 4409
    fresh = await connect("nb.ipynb")
    assert fresh.cell_ids() == ["cell-0", "cell-1"]
    assert [fresh.source(c) for c in fresh.cell_ids()] == ["abcd", "efgh"]
    assert "nb.ipynb.corrupt" in server_log.text
