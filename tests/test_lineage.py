"""A window holding a copy of an earlier room's history is refused, never merged as a second
copy of every cell: when the room's history is gone (cache off) or the file changed."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import FAST_TIMINGS
from .test_rooms import wait_evicted


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "closed_room_cache_bytes": 0}


async def test_stale_replica_is_refused_when_history_is_gone(make_notebook, connect, room_manager):
    make_notebook("nb.ipynb", ["abcd", "efgh"])
    window = await connect("nb.ipynb")
    await window.disconnect()
    await wait_evicted(room_manager, "nb.ipynb")
    with pytest.raises(ConnectionError):
        await window.connect()
    assert window.close_code == 4409
    fresh = await connect("nb.ipynb")
    assert fresh.cell_ids() == ["cell-0", "cell-1"]
    assert [fresh.source(c) for c in fresh.cell_ids()] == ["abcd", "efgh"]
